"""BENCH-ONLY EXPERIMENT: `dirsync serve` with suggested read-path changes patched in.

    .venv/bin/python bench/load.py --experiment prebuilt --configs 4x1
    BENCH_PATCHES=statements,appcache .venv/bin/python bench/load.py --experiment prebuilt

Status: change 1 below was adopted in dirsync 72f4fee ("Build the per-request statements once,
with bind parameters"), so on that commit and later only `appcache` (the default) still
changes anything; `statements` stays here to reproduce the before/after on older commits.

This is not dirsync code and changes nothing in dirsync: it monkeypatches, in this process
only, before gunicorn forks its workers, the three hot spots the profiles found, to measure
what the suggested change would buy:

1. `dirsync.store.reads.find_user` and `groups_of_user`: the statements are built once, with
   bind parameters (user name key, user id, limit, offset), instead of on every call. Today
   each call builds a new Select (the nested one a recursive CTE, whose column collection and
   cache key SQLAlchemy recomputes on every call: ~0.4 ms of CPU); a prebuilt statement
   reuses its memoised cache key and the compiled-statement cache.
2. `dirsync.crowd.auth.find_application` (queries on every authenticated request, on a
   connection of its own):
   results are kept per application name for APP_TTL seconds per worker, so an application
   change (password, allow-list) takes effect within that time instead of at once.

Set BENCH_PATCHES=statements or BENCH_PATCHES=appcache to apply one of the two only.
Same wire output (checked on 1,600 responses); run the test suite against a real change before adopting it.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from sqlalchemy import bindparam, select

from dirsync.crowd import auth
from dirsync.names import name_key
from dirsync.store import reads
from dirsync.store.tables import group_memberships, groups, user_memberships, users

APP_TTL = 1.0
NO_LIMIT = 2**62  # LIMIT must be a number on SQLite; this is "all" in practice

_FIND_USER = select(*reads.USER_COLUMNS).where(users.c.name_key == bindparam("key"))

_anc = (
    select(user_memberships.c.group_id.label("id"))
    .where(user_memberships.c.user_id == bindparam("user_id"))
    .cte("anc", recursive=True)
)
_anc = _anc.union(
    select(group_memberships.c.parent_id).join(_anc, group_memberships.c.child_id == _anc.c.id)
)
_NESTED = (
    select(*reads.GROUP_COLUMNS)
    .where(groups.c.id.in_(select(_anc.c.id)))
    .order_by(groups.c.name_key)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)
_DIRECT = (
    select(*reads.GROUP_COLUMNS)
    .where(groups.c.id.in_(select(user_memberships.c.group_id)
                           .where(user_memberships.c.user_id == bindparam("user_id"))))
    .order_by(groups.c.name_key)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


def find_user(conn: Any, name: str) -> Any:
    return conn.execute(_FIND_USER, {"key": name_key(name)}).first()


def groups_of_user(conn: Any, user_id: int, *, nested: bool, start: int = 0,
                   limit: int | None = None) -> list[Any]:
    params = {"user_id": user_id, "limit": NO_LIMIT if limit is None else limit, "offset": start}
    return list(conn.execute(_NESTED if nested else _DIRECT, params))


_original_find_application = auth.find_application
_apps: dict[str, tuple[float, Any]] = {}
_lock = threading.Lock()


def find_application(conn: Any, name: str) -> Any:
    now = time.monotonic()
    hit = _apps.get(name)
    if hit is not None and now - hit[0] < APP_TTL:
        return hit[1]
    app = _original_find_application(conn, name)
    with _lock:
        _apps[name] = (now, app)
    return app


def patch(parts: str = "statements,appcache") -> None:
    """`parts`: which changes to apply, comma-separated (env BENCH_PATCHES when run as a script)."""
    wanted = {p.strip() for p in parts.split(",") if p.strip()}
    if "statements" in wanted:
        reads.find_user = find_user
        reads.groups_of_user = groups_of_user
    if "appcache" in wanted:
        auth.find_application = find_application


if __name__ == "__main__":
    import os

    patch(os.environ.get("BENCH_PATCHES", "appcache"))
    from dirsync.cli import main

    sys.argv = ["dirsync", *sys.argv[1:]]
    sys.exit(main())

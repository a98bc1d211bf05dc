"""In-process per-call costs behind target B, without HTTP or gunicorn (bench only).

    .venv/bin/python bench/micro.py [--database-url URL] [--calls 3000]

Times, in microseconds of one CPU per call, on random users of the store:
* the queries one request makes, through dirsync's own functions (reads.find_user,
  reads.groups_of_user(nested=True), apps.find_application) at the checked-out commit;
* the same queries as statements built once with bind parameters (SQLAlchemy then reuses the
  statement's memoised cache key and compiled form), and the raw sqlite3 floor. Before
  dirsync 72f4fee the first group cost 82/440 us against 24/58 us for the second;
* a whole request through Flask's test client (routing, app auth, view, render), i.e. the
  request cost without gunicorn's HTTP parsing and socket work.

The alternatives here are bench-only sketches to size a suggested change, not dirsync code.
"""

from __future__ import annotations

import argparse
import base64
import sys
import time
from urllib.parse import quote_plus

from sqlalchemy import bindparam, select

import benchlib
import load
from generate import default_url


def timed(label: str, calls: int, fn, args_list) -> float:  # type: ignore[no-untyped-def]
    for a in args_list[:50]:  # warm caches
        fn(a)
    t0 = time.process_time()
    for i in range(calls):
        fn(args_list[i % len(args_list)])
    us = (time.process_time() - t0) / calls * 1e6
    print(f"  {us:8.0f} us  {label}")
    return us


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="In-process per-call costs.")
    parser.add_argument("--database-url", default=default_url())
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args(argv)

    from dirsync.app import create_app
    from dirsync.names import name_key
    from dirsync.settings import load_settings
    from dirsync.store import apps, reads
    from dirsync.store.db import Store
    from dirsync.store.tables import group_memberships, groups, user_memberships, users

    benchlib.ensure_application(args.database_url)
    names = load.sample_usernames(args.database_url, 5000, 2)
    store = Store(args.database_url)
    with store.read() as conn:
        ids = [reads.find_user(conn, n).id for n in names[:2000]]

    # Prebuilt equivalents (bench-only sketches of the suggested change).
    find_user_stmt = select(*reads.USER_COLUMNS).where(users.c.name_key == bindparam("key"))
    anc = (
        select(user_memberships.c.group_id.label("id"))
        .where(user_memberships.c.user_id == bindparam("user_id"))
        .cte("anc", recursive=True)
    )
    anc = anc.union(
        select(group_memberships.c.parent_id).join(anc, group_memberships.c.child_id == anc.c.id)
    )
    nested_stmt = (select(*reads.GROUP_COLUMNS).where(groups.c.id.in_(select(anc.c.id)))
                   .order_by(groups.c.name_key))

    print(f"store {args.database_url}; {args.calls} calls each, CPU time per call")
    print("queries through dirsync's functions (one pooled connection held open):")
    with store.read() as conn:
        timed("reads.find_user", args.calls, lambda n: reads.find_user(conn, n), names)
        timed("reads.groups_of_user(nested=True)", args.calls,
              lambda i: reads.groups_of_user(conn, i, nested=True), ids)
        timed("apps.find_application (every authenticated request)", args.calls,
              lambda _: apps.find_application(conn, benchlib.APP_NAME), names)
        print("statements built once with bind parameters (bench sketch):")
        timed("find_user, prebuilt", args.calls,
              lambda n: conn.execute(find_user_stmt, {"key": name_key(n)}).first(), names)
        timed("groups_of_user nested, prebuilt", args.calls,
              lambda i: list(conn.execute(nested_stmt, {"user_id": i})), ids)
        raw = conn.connection.dbapi_connection
        sql = str(nested_stmt.compile(compile_kwargs={}))
        cur = raw.cursor()
        timed("groups_of_user nested, raw sqlite3 (floor: SQLite's own cost)", args.calls,
              lambda i: cur.execute(sql, {"user_id": i}).fetchall(), ids)
    print("connection checkout + return (store.read() around each request):")

    def checkout(_):  # type: ignore[no-untyped-def]
        with store.read():
            pass

    timed("store.read() enter/exit", args.calls, checkout, names)

    settings = load_settings(environ={"DIRSYNC_DATABASE_URL": args.database_url,
                                      "DIRSYNC_LOG_LEVEL": "WARNING"})
    app = create_app(settings)
    client = app.test_client()
    token = base64.b64encode(f"{benchlib.APP_NAME}:{benchlib.APP_PASSWORD}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", "Accept": "application/xml"}
    print("whole requests through Flask's test client (no gunicorn, no socket):")
    for label, path in load.ENDPOINTS.items():
        urls = [f"/rest/usermanagement/1{path}{quote_plus(n)}" for n in names]
        status = client.get(urls[0], headers=headers).status_code
        if status != 200:
            print(f"  {label}: answered {status}", file=sys.stderr)
            return 1
        timed(f"GET {path}U (Flask test client)", args.calls,
              lambda u: client.get(u, headers=headers), urls)
    health = lambda _: client.get("/health")  # noqa: E731
    timed("GET /health (Flask test client; no auth, 1 query)", args.calls, health, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One sync per directory at a time, across processes and replicas.

PostgreSQL: a session-level advisory lock on a connection held for the sync; the server drops
it if the process dies. SQLite (one machine by nature): an exclusive flock on a file beside
the database, which the kernel drops if the process dies. Either way a crashed sync never
leaves a directory locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.engine import make_url

from dirsync.store.db import Store


def _key(name: str) -> int:
    digest = hashlib.blake2b(f"dirsync-sync:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def directory_lock(store: Store, name: str) -> Iterator[bool]:
    """Yields True when this process holds the directory's sync lock, False when another
    does; never waits."""
    if store.is_sqlite:
        database = make_url(store.url).database
        if not database or database == ":memory:":
            yield True  # a private in-memory store has no other process to exclude
            return
        path = f"{os.path.abspath(database)}.sync-{_key(name) & 0xFFFFFFFF:08x}.lock"
        with open(path, "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    with store.engine.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _key(name)}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _key(name)})
                conn.commit()

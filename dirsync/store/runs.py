"""Sync history: one row per fixture load or LDAP sync of a directory."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, insert

from dirsync.store.db import utcnow
from dirsync.store.tables import sync_runs


def record_run(
    conn: Connection,
    directory_id: int,
    *,
    mode: str,
    started_at: dt.datetime,
    status: str,
    added: int = 0,
    updated: int = 0,
    deleted: int = 0,
    error: str | None = None,
) -> None:
    conn.execute(
        insert(sync_runs).values(
            directory_id=directory_id,
            mode=mode,
            started_at=started_at,
            finished_at=utcnow(),
            status=status,
            added=added,
            updated=updated,
            deleted=deleted,
            error=error,
        )
    )

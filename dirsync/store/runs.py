"""Sync history: one row per fixture load or LDAP sync of a directory."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from dirsync.store.db import as_utc, utcnow
from dirsync.store.tables import directories, sync_runs


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
    notes: str | None = None,
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
            notes=notes,
        )
    )


@dataclass(frozen=True)
class Run:
    directory: str
    kind: str
    mode: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    added: int
    updated: int
    deleted: int
    error: str | None
    notes: str | None


def _run(row: Any) -> Run:
    return Run(
        directory=row.directory, kind=row.kind, mode=row.mode,
        started_at=as_utc(row.started_at),
        finished_at=as_utc(row.finished_at) if row.finished_at else None,
        status=row.status, added=row.added, updated=row.updated, deleted=row.deleted,
        error=row.error, notes=row.notes,
    )


def history(conn: Connection, directory: str | None = None, limit: int = 20) -> list[Run]:
    """The newest runs first."""
    query = (
        select(sync_runs, directories.c.name.label("directory"), directories.c.kind)
        .join(directories, directories.c.id == sync_runs.c.directory_id)
        .order_by(sync_runs.c.id.desc())
        .limit(limit)
    )
    if directory is not None:
        query = query.where(directories.c.name == directory)
    return [_run(r) for r in conn.execute(query)]


def last_good(conn: Connection, directory: str) -> Run | None:
    row = conn.execute(
        select(sync_runs, directories.c.name.label("directory"), directories.c.kind)
        .join(directories, directories.c.id == sync_runs.c.directory_id)
        .where(directories.c.name == directory, sync_runs.c.status == "ok")
        .order_by(sync_runs.c.id.desc())
        .limit(1)
    ).first()
    return _run(row) if row is not None else None


def sync_state(conn: Connection, directory: str) -> tuple[str | None, int]:
    """(token for the next incremental read, incremental rounds since the last full sync)."""
    row = conn.execute(select(directories.c.sync_token, directories.c.incremental_rounds)
                       .where(directories.c.name == directory)).first()
    return (row.sync_token, int(row.incremental_rounds or 0)) if row is not None else (None, 0)


def set_sync_state(conn: Connection, directory_id: int, token: str | None, rounds: int) -> None:
    conn.execute(update(directories).where(directories.c.id == directory_id)
                 .values(sync_token=token, incremental_rounds=rounds))

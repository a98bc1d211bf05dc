"""Loading fixtures into the store: one transaction, recorded as a sync run.

A failure anywhere rolls the whole load back, so the store keeps its last good state.
"""

from __future__ import annotations

import logging

from dirsync.model import Snapshot
from dirsync.settings import MAX_JOURNAL_ROWS
from dirsync.store.writes import ensure_directory
from dirsync.sync.apply import ApplyCounts, apply_snapshot
from dirsync.store.db import Store, utcnow
from dirsync.store.runs import record_run

log = logging.getLogger(__name__)


def apply_fixtures(store: Store, directory: str, snapshot: Snapshot,
                   journal_limit: int = MAX_JOURNAL_ROWS) -> ApplyCounts:
    started = utcnow()
    with store.write() as conn:
        directory_id = ensure_directory(conn, directory, "fixtures")
        counts = apply_snapshot(conn, directory_id, snapshot, journal_limit)
        record_run(
            conn,
            directory_id,
            mode="fixtures",
            started_at=started,
            status="ok",
            added=counts.users_added + counts.groups_added + counts.memberships_added,
            updated=counts.users_updated + counts.groups_updated,
            deleted=counts.users_removed + counts.groups_removed + counts.memberships_removed,
        )
    log.info("fixtures applied to directory %r: %s", directory, counts.summary())
    return counts

"""Applying a directory's full content set-wise (staged in temporary tables, compared in
SQL), for directories too large to diff as Python objects. Same contract as apply.py: one
transaction, only the difference written, journal rows with the change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dirsync import events as ev
from dirsync.model import Snapshot
from dirsync.store import journal, stage
from dirsync.store.db import Connection
from dirsync.sync.apply import ApplyCounts


@dataclass(frozen=True)
class Losses:
    """What a sync would take away, for the mass-deletion guard, before anything is written."""

    users_lost: int
    users_total: int
    groups_lost: int
    groups_total: int


def apply_setwise(conn: Connection, directory_id: int, snapshot: Snapshot,
                  guard: Callable[[Losses], None], journal_limit: int) -> ApplyCounts:
    """`guard` may raise to refuse the change; nothing has been written when it is called.
    Every entity must carry its external id."""
    stage.create(conn)
    try:
        stage.stage_users_rows(conn, snapshot.users)
        stage.stage_groups_rows(conn, snapshot.groups)
        for kind in (stage.USERS, stage.GROUPS):
            stage.mark(conn, kind, directory_id)
        removed_users = stage.removed(conn, stage.USERS, directory_id)
        removed_groups = stage.removed(conn, stage.GROUPS, directory_id)
        guard(Losses(
            len(removed_users) + stage.deactivated(conn, stage.USERS, directory_id),
            stage.stored_count(conn, stage.USERS, directory_id),
            len(removed_groups) + stage.deactivated(conn, stage.GROUPS, directory_id),
            stage.stored_count(conn, stage.GROUPS, directory_id),
        ))
        new_users, changed_users = stage.counts(conn, stage.USERS)
        new_groups, changed_groups = stage.counts(conn, stage.GROUPS)
        batch = journal.Batch()
        for label, kind, gone in ((ev.USER, stage.USERS, removed_users),
                                  (ev.GROUP, stage.GROUPS, removed_groups)):
            batch.entity(label, ev.DELETED, [(i, name, ()) for i, name in gone])
            batch.entity(label, ev.UPDATED, stage.changes_for_journal(conn, kind, directory_id))
        user_ids = stage.write(conn, stage.USERS, directory_id, [i for i, _ in removed_users])
        group_ids = stage.write(conn, stage.GROUPS, directory_id, [i for i, _ in removed_groups])
        batch.entity(ev.USER, ev.CREATED, [(i, None, ()) for i in user_ids])
        batch.entity(ev.GROUP, ev.CREATED, [(i, None, ()) for i in group_ids])

        stage.stage_pairs(conn, directory_id, snapshot.user_memberships, snapshot.group_memberships)
        changes = stage.pair_changes(conn, directory_id)
        sizes = {label: (stage.count_of(conn, added), stage.count_of(conn, removed))
                 for label, (added, removed) in changes.items()}
        pair_rows = sum(a + r for a, r in sizes.values())
        if len(batch) + pair_rows > journal_limit:
            batch.write(conn, journal_limit, uncounted=pair_rows)  # one reset row
        else:
            for label, kind in (("user", ev.USER_MEMBERSHIP), ("group", ev.GROUP_MEMBERSHIP)):
                added, removed = changes[label]
                n_added, n_removed = sizes[label]
                # Journal pairs are (member, parent group).
                if n_added:
                    batch.pair(kind, ev.CREATED, [(m, p) for p, m in conn.execute(added)])
                if n_removed:
                    batch.pair(kind, ev.DELETED, [(m, p) for p, m in conn.execute(removed)])
            batch.write(conn, journal_limit)
        stage.write_pairs(conn, directory_id, sizes)
    finally:
        stage.drop(conn)
    return ApplyCounts(
        users_added=new_users, users_updated=changed_users, users_removed=len(removed_users),
        groups_added=new_groups, groups_updated=changed_groups,
        groups_removed=len(removed_groups),
        memberships_added=sizes["user"][0] + sizes["group"][0],
        memberships_removed=sizes["user"][1] + sizes["group"][1],
    )

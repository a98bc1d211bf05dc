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


@dataclass
class EntityResult:
    """What `write_entities` did: counts, and the journal rows so far."""

    batch: journal.Batch
    users: tuple[int, int, int]  # (added, updated, removed)
    groups: tuple[int, int, int]


Gone = Callable[[Connection, stage.Kind], list[tuple[int, str]]]


def write_entities(conn: Connection, directory_id: int, snapshot: Snapshot, gone: Gone,
                   guard: Callable[[Losses], None]) -> EntityResult:
    """Stage the snapshot's users and groups and write what differs. `gone(conn, kind)` names
    the stored entities to delete (id, name); it runs after staging. The staging tables are
    left for the caller's memberships and dropped by `stage.drop`."""
    stage.create(conn)
    stage.stage_users_rows(conn, snapshot.users)
    stage.stage_groups_rows(conn, snapshot.groups)
    for kind in (stage.USERS, stage.GROUPS):
        stage.mark(conn, kind, directory_id)
    removed = {kind.name: gone(conn, kind) for kind in (stage.USERS, stage.GROUPS)}
    guard(Losses(
        len(removed["user"]) + stage.deactivated(conn, stage.USERS, directory_id),
        stage.stored_count(conn, stage.USERS, directory_id),
        len(removed["group"]) + stage.deactivated(conn, stage.GROUPS, directory_id),
        stage.stored_count(conn, stage.GROUPS, directory_id),
    ))
    batch = journal.Batch()
    totals = {}
    for label, kind in ((ev.USER, stage.USERS), (ev.GROUP, stage.GROUPS)):
        new, changed = stage.counts(conn, kind)
        batch.entity(label, ev.DELETED, [(i, name, ()) for i, name in removed[kind.name]])
        batch.entity(label, ev.UPDATED, stage.changes_for_journal(conn, kind, directory_id))
        created = stage.write(conn, kind, directory_id, [i for i, _ in removed[kind.name]])
        batch.entity(label, ev.CREATED, [(i, None, ()) for i in created])
        totals[kind.name] = (new, changed, len(removed[kind.name]))
    return EntityResult(batch, totals["user"], totals["group"])


def apply_setwise(conn: Connection, directory_id: int, snapshot: Snapshot,
                  guard: Callable[[Losses], None], journal_limit: int) -> ApplyCounts:
    """`guard` may raise to refuse the change; nothing has been written when it is called.
    Every entity must carry its external id."""
    try:
        done = write_entities(conn, directory_id, snapshot,
                              lambda c, kind: stage.removed(c, kind, directory_id), guard)
        batch = done.batch
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
    return counts_of(done, sizes["user"][0] + sizes["group"][0],
                     sizes["user"][1] + sizes["group"][1])


def counts_of(done: EntityResult, memberships_added: int, memberships_removed: int) -> ApplyCounts:
    return ApplyCounts(
        users_added=done.users[0], users_updated=done.users[1], users_removed=done.users[2],
        groups_added=done.groups[0], groups_updated=done.groups[1], groups_removed=done.groups[2],
        memberships_added=memberships_added, memberships_removed=memberships_removed,
    )

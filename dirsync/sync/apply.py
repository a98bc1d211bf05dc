"""Make the store's copy of one directory equal to a snapshot, in the caller's transaction.

Only the difference is written: reloading the same snapshot writes nothing. Names stay unique
across the store; a name owned by another directory is refused before anything is written.
Every change is journalled in the same transaction, for the event feed (dirsync/events.py):
no change without its journal row, no row without its change.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as _replace
from typing import Any

from dirsync import events as ev
from dirsync.model import EntityChanges, Group, Snapshot, User
from dirsync.names import name_key
from dirsync.settings import MAX_JOURNAL_ROWS
from dirsync.store import journal, writes
from dirsync.store.db import Connection
from dirsync.sync.diff import diff_entities


@dataclass
class ApplyCounts:
    users_added: int = 0
    users_updated: int = 0
    users_removed: int = 0
    groups_added: int = 0
    groups_updated: int = 0
    groups_removed: int = 0
    memberships_added: int = 0
    memberships_removed: int = 0

    @property
    def total(self) -> int:
        return sum(vars(self).values())

    def summary(self) -> str:
        return (
            f"users +{self.users_added} ~{self.users_updated} -{self.users_removed}, "
            f"groups +{self.groups_added} ~{self.groups_updated} -{self.groups_removed}, "
            f"memberships +{self.memberships_added} -{self.memberships_removed}"
        )


def _visible(entity: Any) -> Any:
    """What a Crowd client sees of an entity: a change elsewhere (a password hash, a DN) is
    stored but not announced."""
    if isinstance(entity, User):
        return _replace(entity, password=None, dn=None)
    return _replace(entity, dn=None)


def _journal_entities(batch: journal.Batch, kind: str, changes: EntityChanges[Any],
                      stored: dict[int, User] | dict[int, Group], new_ids: list[int]) -> None:
    batch.entity(kind, ev.DELETED, [(i, stored[i].name, ()) for i in changes.removed])
    batch.entity(kind, ev.UPDATED, [
        (i, stored[i].name, set(stored[i].attributes) - set(entity.attributes))
        for i, entity in changes.updated
        if _visible(entity) != _visible(stored[i])
    ])
    batch.entity(kind, ev.CREATED, [(i, None, ()) for i in new_ids])


@dataclass
class Plan:
    """What applying a snapshot changes, computed from the store before anything is written."""

    directory_id: int
    snapshot: Snapshot
    stored_users: dict[int, User]
    stored_groups: dict[int, Group]
    user_changes: EntityChanges[User]
    group_changes: EntityChanges[Group]


def plan_snapshot(conn: Connection, directory_id: int, snapshot: Snapshot) -> Plan:
    writes.check_user_names(conn, directory_id, (name_key(u.name) for u in snapshot.users))
    writes.check_group_names(conn, directory_id, (name_key(g.name) for g in snapshot.groups))
    stored_users = writes.stored_users(conn, directory_id)
    stored_groups = writes.stored_groups(conn, directory_id)
    return Plan(
        directory_id, snapshot, stored_users, stored_groups,
        diff_entities(stored_users, snapshot.users), diff_entities(stored_groups, snapshot.groups),
    )


def apply_snapshot(conn: Connection, directory_id: int, snapshot: Snapshot,
                   journal_limit: int = MAX_JOURNAL_ROWS) -> ApplyCounts:
    return apply_plan(conn, plan_snapshot(conn, directory_id, snapshot), journal_limit)


def apply_plan(conn: Connection, plan: Plan, journal_limit: int = MAX_JOURNAL_ROWS) -> ApplyCounts:
    """Write the plan and its journal rows; `journal_limit` is events.max_journal_rows."""
    directory_id, snapshot = plan.directory_id, plan.snapshot
    user_changes, group_changes = plan.user_changes, plan.group_changes
    new_users = writes.write_users(conn, directory_id, user_changes, plan.stored_users)
    new_groups = writes.write_groups(conn, directory_id, group_changes, plan.stored_groups)
    batch = journal.Batch()
    _journal_entities(batch, ev.USER, user_changes, plan.stored_users, new_users)
    _journal_entities(batch, ev.GROUP, group_changes, plan.stored_groups, new_groups)

    user_ids = writes.user_ids_by_key(conn, directory_id)
    group_ids = writes.group_ids_by_key(conn, directory_id)
    um_added, um_removed = writes.sync_user_memberships(
        conn, directory_id, {(group_ids[g], user_ids[u]) for g, u in snapshot.user_memberships}
    )
    gm_added, gm_removed = writes.sync_group_memberships(
        conn, directory_id, {(group_ids[p], group_ids[c]) for p, c in snapshot.group_memberships}
    )
    # Journal pairs are (member, parent group).
    batch.pair(ev.USER_MEMBERSHIP, ev.CREATED, [(u, g) for g, u in um_added])
    batch.pair(ev.USER_MEMBERSHIP, ev.DELETED, [(u, g) for g, u in um_removed])
    batch.pair(ev.GROUP_MEMBERSHIP, ev.CREATED, [(c, p) for p, c in gm_added])
    batch.pair(ev.GROUP_MEMBERSHIP, ev.DELETED, [(c, p) for p, c in gm_removed])
    batch.write(conn, journal_limit)
    return ApplyCounts(
        users_added=len(user_changes.added),
        users_updated=len(user_changes.updated),
        users_removed=len(user_changes.removed),
        groups_added=len(group_changes.added),
        groups_updated=len(group_changes.updated),
        groups_removed=len(group_changes.removed),
        memberships_added=len(um_added) + len(gm_added),
        memberships_removed=len(um_removed) + len(gm_removed),
    )

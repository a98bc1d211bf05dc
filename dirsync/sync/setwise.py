"""Applying a directory's full content set-wise, for directories too large to diff as Python
objects. Same contract as apply.py: one transaction, only the difference written, journal rows
with the change, the mass-deletion guard asked before anything is written.

Users and groups: those that may differ from the store are staged in temporary tables and
compared in SQL (dirsync.store.stage). Memberships: each group's member ids as read are
compared with the store's, group by group (dirsync.store.pairs); only the groups that differ
are diffed pair by pair, so a re-sync with nothing changed writes nothing and stages nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter

from dirsync import events as ev
from dirsync.model import Snapshot
from dirsync.store import journal, pairs, stage
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
                   guard: Callable[[Losses], None],
                   journal_limit: int | None = None) -> EntityResult:
    """Write the snapshot's users and groups where they differ from the store: staged and
    compared in SQL, or, for a kind of which the directory has nothing stored yet, inserted
    as they are. `gone(conn, kind)` names the stored entities to delete (id, name); it runs
    after staging. The staging tables are left for the caller to drop (`stage.drop`). Given
    `journal_limit`, the journal batch only counts the rows of a change too big to journal
    row by row."""
    stage.create(conn)
    entities = {stage.USERS: snapshot.users, stage.GROUPS: snapshot.groups}
    stored = {kind: stage.stored_count(conn, kind, directory_id) for kind in entities}
    # How each kind is written: inserted as it is (nothing stored yet), staged and compared,
    # or, when nothing was read that could differ (a re-sync), only its removals.
    staged = {kind: bool(stored[kind] and items) for kind, items in entities.items()}
    for kind, items in entities.items():
        if staged[kind]:
            (stage.stage_users_rows if kind is stage.USERS else stage.stage_groups_rows)(
                conn, items)
            stage.plan_joins(conn, kind)
            stage.mark(conn, kind, directory_id)
    removed = {kind.name: gone(conn, kind) if stored[kind] else [] for kind in entities}
    deactivated = {kind: stage.deactivated(conn, kind, directory_id) if staged[kind] else 0
                   for kind in entities}
    guard(Losses(
        len(removed["user"]) + deactivated[stage.USERS], stored[stage.USERS],
        len(removed["group"]) + deactivated[stage.GROUPS], stored[stage.GROUPS],
    ))
    batch = journal.Batch(journal_limit)
    totals = {}
    for label, kind in ((ev.USER, stage.USERS), (ev.GROUP, stage.GROUPS)):
        gone_ids = [i for i, _ in removed[kind.name]]
        batch.entity(label, ev.DELETED, [(i, name, ()) for i, name in removed[kind.name]])
        if not stored[kind]:
            new = stage.insert_new(conn, kind, directory_id, entities[kind])
            if batch.keeps(new):
                batch.entity(label, ev.CREATED,
                             [(i, None, ()) for i in stage.ids_of(conn, kind, directory_id)])
            else:
                batch.count(new)  # one reset row: the new ids would only be thrown away
            totals[kind.name] = (new, 0, 0)
        elif not staged[kind]:
            stage.delete_ids(conn, kind, gone_ids)
            totals[kind.name] = (0, 0, len(gone_ids))
        else:
            new, changed = stage.counts(conn, kind)
            batch.entity(label, ev.UPDATED, stage.changes_for_journal(conn, kind, directory_id))
            keep = batch.keeps(new)
            created = stage.write(conn, kind, directory_id, gone_ids, new_ids=keep)
            if keep:
                batch.entity(label, ev.CREATED, [(i, None, ()) for i in created])
            else:
                batch.count(new)
            totals[kind.name] = (new, changed, len(gone_ids))
    return EntityResult(batch, totals["user"], totals["group"])


def apply_setwise(conn: Connection, directory_id: int, snapshot: Snapshot,
                  guard: Callable[[Losses], None], journal_limit: int, *,
                  release: bool = False) -> ApplyCounts:
    """`guard` may raise to refuse the change; nothing has been written when it is called.
    Every entity must carry its external id. With `release` the snapshot is emptied as the
    apply goes (memberships once grouped, users and groups once written), so what it holds
    is freed before the store's writes need memory: for a caller with no further use for it."""
    members = {"user": _by_parent(snapshot.user_memberships),
               "group": _by_parent(snapshot.group_memberships)}
    if release:
        snapshot.user_memberships.clear()
        snapshot.group_memberships.clear()
    with stage.sync_cache(conn):
        maybe: dict[str, list] = {}
        gone: dict[str, list[tuple[int, str]]] = {}
        for kind, entities in ((stage.USERS, snapshot.users), (stage.GROUPS, snapshot.groups)):
            maybe[kind.name], gone[kind.name] = stage.candidates(conn, kind, directory_id,
                                                                 entities)
        if release:
            snapshot.users.clear()
            snapshot.groups.clear()
        try:
            done = write_entities(conn, directory_id,
                                  Snapshot(users=maybe.pop("user"), groups=maybe.pop("group")),
                                  lambda _c, kind: gone[kind.name], guard, journal_limit)
        finally:
            stage.drop(conn)
        batch = done.batch
        group_ids = pairs.ids_by_name_key(conn, "group", directory_id)
        changes = {
            "user": pair_changes(members.pop("user"), group_ids,
                                  pairs.ids_by_name_key(conn, "user", directory_id),
                                  pairs.stored_members(conn, "user", directory_id)),
            "group": pair_changes(members.pop("group"), group_ids, group_ids,
                                   pairs.stored_members(conn, "group", directory_id)),
        }
        pair_rows = sum(c.added_count + len(c.removed) for c in changes.values())
        if batch.keeps(pair_rows):
            for label, kind in (("user", ev.USER_MEMBERSHIP), ("group", ev.GROUP_MEMBERSHIP)):
                # Journal pairs are (member, parent group).
                batch.pair(kind, ev.CREATED,
                           [(m, p) for p, m in pairs.flatten(changes[label].added)])
                batch.pair(kind, ev.DELETED, [(m, p) for p, m in changes[label].removed])
        else:
            batch.count(pair_rows)  # one reset row
        batch.write(conn, journal_limit)
        for label, change in changes.items():
            pairs.write(conn, label, change.added, change.added_count, change.removed)
    return counts_of(done, sum(c.added_count for c in changes.values()),
                     sum(len(c.removed) for c in changes.values()))


def _by_parent(pairs_: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """(parent key, member key) pairs -> member keys by parent key."""
    out: defaultdict[str, list[str]] = defaultdict(list)
    for parent, member in pairs_:
        out[parent].append(member)
    return out


@dataclass
class PairChanges:
    """What a read changes in one kind of membership: `added` as (parent, [member ids]),
    both ascending, `added_count` pairs in all; `removed` as ascending (parent, member)."""

    added: list[tuple[int, list[int]]]
    added_count: int
    removed: list[tuple[int, int]]


def pair_changes(members: dict[str, list[str]], parent_ids: dict[str, int],
                  member_ids: dict[str, int], stored: dict[int, str]) -> PairChanges:
    """`members`: the read's member keys by parent key; `stored`: the store's member ids by
    parent id, as `pairs.stored_members` gives them. A group whose text is equal is
    unchanged; any other is diffed by value (SQLite promises no order in that text, so a
    difference in order alone costs time, never a wrong result)."""
    added: list[tuple[int, list[int]]] = []
    removed: list[tuple[int, int]] = []
    count = 0
    for parent_key, keys in members.items():
        parent = parent_ids[parent_key]
        ids = sorted(map(member_ids.__getitem__, keys))
        text = stored.pop(parent, None)
        if text is None:
            new = ids
        elif text == ",".join(map(str, ids)):
            continue
        else:
            have = {int(m) for m in text.split(",")}
            new = [m for m in ids if m not in have]
            removed.extend((parent, m) for m in have.difference(ids))
        if new:
            added.append((parent, new))
            count += len(new)
    for parent, text in stored.items():  # groups the read gives no members of this kind
        removed.extend((parent, int(m)) for m in text.split(","))
    added.sort(key=itemgetter(0))
    removed.sort()
    return PairChanges(added, count, removed)


def counts_of(done: EntityResult, memberships_added: int, memberships_removed: int) -> ApplyCounts:
    return ApplyCounts(
        users_added=done.users[0], users_updated=done.users[1], users_removed=done.users[2],
        groups_added=done.groups[0], groups_updated=done.groups[1], groups_removed=done.groups[2],
        memberships_added=memberships_added, memberships_removed=memberships_removed,
    )

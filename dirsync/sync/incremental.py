"""Applying an incremental read (dirsync.ldap.changes.IncrementalRead) to the store.

The read's contract says what a full read would now give; this applies it, in the caller's
transaction, with journal rows, touching only what changed:

1. entities gone (the log's deleted ids, or everything outside the scanned present sets);
2. changed users and groups upserted by external id, set-wise like a full sync;
3. each changed group's direct members replaced by its member references, resolved against
   the store's DN keys (or usernames for memberUid);
4. each changed entity's memberships in unchanged groups replaced by `listed_by`;
5. the member values logged as added to or removed from a group (`member_deltas`) applied to
   the memberships of its unchanged members.
"""

from __future__ import annotations

from collections.abc import Callable

from dirsync import events as ev
from dirsync.ldap.changes import IncrementalRead
from dirsync.model import Snapshot
from dirsync.store import scoped, stage
from dirsync.store.db import Connection
from dirsync.sync.apply import ApplyCounts
from dirsync.sync.setwise import Losses, counts_of, write_entities


def apply_incremental(conn: Connection, directory_id: int, read: IncrementalRead,
                      snapshot: Snapshot, guard: Callable[[Losses], None],
                      journal_limit: int) -> ApplyCounts:
    """`snapshot` holds the read's changed users and groups after name settlement (entities
    whose names another directory owns are left out)."""
    present = {"user": read.present_user_ids, "group": read.present_group_ids}
    # (id, name) of every stored entity that is gone: named by the accesslog, or missing from
    # a scan's present set.
    gone: dict[str, list[tuple[int, str]]] = {}
    for kind, found in present.items():
        ids = set(read.deleted_ids)
        if found is not None:
            ids |= scoped.external_ids_outside(conn, kind, directory_id, found)
        gone[kind] = sorted(scoped.stored_external_ids(conn, kind, directory_id, ids).values())
    with stage.sync_cache(conn):
        try:
            done = write_entities(conn, directory_id, snapshot,
                                  lambda _c, kind: gone[kind.name], guard)
        finally:
            stage.drop(conn)
    batch = done.batch
    added, removed = _memberships(conn, directory_id, read, snapshot)
    for kind, journal_kind in (("user", ev.USER_MEMBERSHIP), ("group", ev.GROUP_MEMBERSHIP)):
        scoped.replace_pairs(conn, kind, added[kind], removed[kind])
        # Journal pairs are (member, parent group).
        batch.pair(journal_kind, ev.CREATED, [(m, p) for p, m in added[kind]])
        batch.pair(journal_kind, ev.DELETED, [(m, p) for p, m in removed[kind]])
    batch.write(conn, journal_limit)
    return counts_of(done, len(added["user"]) + len(added["group"]),
                     len(removed["user"]) + len(removed["group"]))


def _memberships(conn: Connection, directory_id: int, read: IncrementalRead,
                 snapshot: Snapshot) -> tuple[dict[str, list], dict[str, list]]:
    kept_users = {u.external_id for u in snapshot.users}
    kept_groups = {g.external_id for g in snapshot.groups}
    user_id = scoped.ids_by_external(conn, "user", directory_id, kept_users)
    group_id = scoped.ids_by_external(conn, "group", directory_id,
                                      kept_groups | {g for ids in read.listed_by.values() for g in ids})
    changed_groups = {group_id[x] for x in read.group_members if x in kept_groups and x in group_id}
    # Changed entries whose groups were looked up (step 4); the others keep theirs.
    same = read.parents_kept
    changed_users = {user_id[x] for x in kept_users if x in user_id and x not in same}
    changed_children = {group_id[x] for x in kept_groups if x in group_id and x not in same}

    refs = {group_id[x]: r for x, r in read.group_members.items() if x in kept_groups and x in group_id}
    deltas = {group_id[x]: d for x, d in read.member_deltas.items()
              if x in kept_groups and x in group_id}
    every = [*refs.values(), *(r for d in deltas.values() for r in (d.added, d.removed))]
    dn_keys = {k for r in every for k in r.dn_keys}
    users_by_dn = scoped.ids_by_dn_key(conn, "user", directory_id, dn_keys)
    groups_by_dn = scoped.ids_by_dn_key(conn, "group", directory_id, dn_keys)
    users_by_name = scoped.user_ids_by_name_key(conn, directory_id,
                                                {k for r in every for k in r.name_keys})
    wanted: dict[str, set[tuple[int, int]]] = {"user": set(), "group": set()}
    for parent, r in refs.items():
        wanted["user"] |= {(parent, users_by_dn[k]) for k in r.dn_keys if k in users_by_dn}
        wanted["user"] |= {(parent, users_by_name[k]) for k in r.name_keys if k in users_by_name}
        wanted["group"] |= {(parent, groups_by_dn[k]) for k in r.dn_keys
                            if k in groups_by_dn and groups_by_dn[k] != parent}
    for external, parents in read.listed_by.items():
        ids = {group_id[p] for p in parents if p in group_id} - changed_groups
        if external in user_id:
            wanted["user"] |= {(p, user_id[external]) for p in ids}
        if external in group_id and external in kept_groups:
            wanted["group"] |= {(p, group_id[external]) for p in ids if p != group_id[external]}
    # Logged member values: not for the members step 4 decided from the groups listing them.
    logged: dict[str, dict[bool, set[tuple[int, int]]]] = {
        "user": {True: set(), False: set()}, "group": {True: set(), False: set()}}
    for parent, delta in deltas.items():
        for listed, r in ((True, delta.added), (False, delta.removed)):
            for k in r.dn_keys:
                if k in users_by_dn and users_by_dn[k] not in changed_users:
                    logged["user"][listed].add((parent, users_by_dn[k]))
                child = groups_by_dn.get(k)
                if child is not None and child != parent and child not in changed_children:
                    logged["group"][listed].add((parent, child))
            for k in r.name_keys:
                if k in users_by_name and users_by_name[k] not in changed_users:
                    logged["user"][listed].add((parent, users_by_name[k]))
    added: dict[str, list] = {}
    removed: dict[str, list] = {}
    for kind, members in (("user", changed_users), ("group", changed_children)):
        current = scoped.current_pairs(conn, kind, sorted(changed_groups), sorted(members))
        on, off = logged[kind][True], logged[kind][False]
        have = scoped.current_pairs(conn, kind, (), sorted({m for _, m in on | off})) & (on | off)
        added[kind] = sorted((wanted[kind] - current) | (on - have))
        removed[kind] = sorted((current - wanted[kind]) | (off & have))
    return added, removed

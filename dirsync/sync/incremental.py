"""Applying an incremental read (dirsync.ldap.changes.IncrementalRead) to the store.

The read's contract says what a full read would now give; this applies it, in the caller's
transaction, with journal rows, touching only what changed:

1. entities gone (the log's deleted ids, or everything outside the scanned present sets);
2. changed users and groups upserted by external id, set-wise like a full sync;
3. each group read whole gets its direct members from its member references, compared by
   key (dn_key, or name key for memberUid) with the members the store holds;
4. each changed entity whose groups were looked up (not in `parents_kept`) has its
   memberships in the other groups replaced by `listed_by`;
5. the member values logged as added to or removed from a group (`member_deltas`) applied to
   the memberships of the members step 4 did not decide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from dirsync import events as ev
from dirsync.ldap.changes import IncrementalRead
from dirsync.ldap.delta import MemberDelta, MemberRefs
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


Pairs = set[tuple[int, int]]  # (parent group id, member id)


def _memberships(conn: Connection, directory_id: int, read: IncrementalRead,
                 snapshot: Snapshot) -> tuple[dict[str, list], dict[str, list]]:
    kept_users = {u.external_id for u in snapshot.users}
    kept_groups = {g.external_id for g in snapshot.groups}
    user_id = scoped.ids_by_external(conn, "user", directory_id, kept_users)
    group_id = scoped.ids_by_external(conn, "group", directory_id,
                                      kept_groups | {g for ids in read.listed_by.values() for g in ids})
    refs = {group_id[x]: r for x, r in read.group_members.items() if x in kept_groups and x in group_id}
    deltas = {group_id[x]: d for x, d in read.member_deltas.items()
              if x in kept_groups and x in group_id}
    # Changed entries whose groups were looked up (step 4); the others keep theirs.
    same = read.parents_kept
    looked_up = {"user": {user_id[x] for x in kept_users if x in user_id and x not in same},
                 "group": {group_id[x] for x in kept_groups if x in group_id and x not in same}}
    added: dict[str, Pairs] = {"user": set(), "group": set()}
    removed: dict[str, Pairs] = {"user": set(), "group": set()}
    for kind in ("user", "group"):
        if kind == "group" and read.members_by_name:
            continue  # memberUid names users only
        column = "name_key" if read.members_by_name else "dn_key"
        resolve = _resolver(conn, kind, column, directory_id)
        _member_lists(conn, kind, column, refs, resolve, added[kind], removed[kind])
        _listings(conn, kind, read, group_id, user_id if kind == "user" else group_id,
                  looked_up[kind], set(refs), added[kind], removed[kind])
        _logged_values(conn, kind, column, deltas, resolve, looked_up[kind], added[kind],
                       removed[kind])
    return ({kind: sorted(pairs) for kind, pairs in added.items()},
            {kind: sorted(pairs) for kind, pairs in removed.items()})


def _resolver(conn: Connection, kind: str, column: str, directory_id: int
              ) -> Callable[[Iterable[str]], dict[str, int]]:
    """key -> store id of the members of this kind the read's keys name, looked up once for
    every key step 3 does not find among a group's stored members."""
    found: dict[str, int] = {}
    asked: set[str] = set()

    def resolve(keys: Iterable[str]) -> dict[str, int]:
        wanted = set(keys)
        new = wanted - asked
        if new:
            found.update(scoped.ids_by_key(conn, kind, column, directory_id, new))
            asked.update(new)
        return {k: found[k] for k in wanted if k in found}

    return resolve


def _member_lists(conn: Connection, kind: str, column: str, refs: dict[int, MemberRefs],
                  resolve: Callable[[Iterable[str]], dict[str, int]], added: Pairs,
                  removed: Pairs) -> None:
    """Step 3: each group read whole, its keys resolved to member ids and compared, as sets
    of ids per group, with the members the store holds. (Joining the stored members to
    their keys instead cost 0.67 s for the benchmark's three largest groups, resolving
    every key and comparing ids about a third of that.)"""
    by_name = column == "name_key"
    ids = resolve(k for r in refs.values() for k in r.keys(by_name))
    stored = scoped.members_of(conn, kind, refs)
    for parent, r in refs.items():
        wanted = {ids[k] for k in r.keys(by_name) if k in ids}
        if kind == "group":
            wanted.discard(parent)
        have = stored.get(parent, set())
        added.update((parent, m) for m in wanted - have)
        removed.update((parent, m) for m in have - wanted)


def _listings(conn: Connection, kind: str, read: IncrementalRead, group_id: dict[str, int],
              member_id: dict[str, int], looked_up: set[int], rewritten: set[int],
              added: Pairs, removed: Pairs) -> None:
    """Step 4: the looked-up entries' memberships in groups not read whole."""
    wanted: Pairs = set()
    for external, parents in read.listed_by.items():
        member = member_id.get(external)
        if member is None or member not in looked_up:
            continue
        wanted.update((group_id[p], member) for p in parents
                      if p in group_id and group_id[p] not in rewritten
                      and not (kind == "group" and group_id[p] == member))
    current = {(p, m) for p, m in scoped.current_pairs(conn, kind, (), sorted(looked_up))
               if p not in rewritten}
    added.update(wanted - current)
    removed.update(current - wanted)


def _logged_values(conn: Connection, kind: str, column: str, deltas: dict[int, MemberDelta],
                   resolve: Callable[[Iterable[str]], dict[str, int]], looked_up: set[int],
                   added: Pairs, removed: Pairs) -> None:
    """Step 5: logged member values, for the members step 4 did not decide."""
    change: dict[bool, Pairs] = {True: set(), False: set()}
    by_name = column == "name_key"
    resolve(k for d in deltas.values() for r in (d.added, d.removed) for k in r.keys(by_name))
    for parent, delta in deltas.items():
        for listed, r in ((True, delta.added), (False, delta.removed)):
            ids = resolve(r.keys(by_name))
            change[listed].update((parent, m) for m in ids.values()
                                  if m not in looked_up and not (kind == "group" and m == parent))
    on, off = change[True], change[False]
    if not on and not off:
        return
    have = scoped.current_pairs(conn, kind, (), sorted({m for _, m in on | off})) & (on | off)
    added.update(on - have)
    removed.update(off & have)

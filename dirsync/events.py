"""The event feed's logic: from journal rows to the events a client applies. Pure.

A client holding token t knows the store as it was when seq t committed. The feed sends the net
difference between that state and now, entity by entity and membership by membership, rather
than replaying every row: the answer stays proportional to what changed, not to how often.

What the client knows is read off the *first* journal row after t for each entity or pair:
* an entity whose first row is `created` did not exist at t; any other first row means it did,
  under that row's `old_name` (the name before the change);
* a membership whose first row is `created` was absent at t; `deleted` means it was present.
What is true now comes from the store. Then:
* existed, gone now               -> DELETED, by the name the client knows;
* did not exist, exists now       -> CREATED, with the full entity;
* existed, exists now             -> UPDATED, with the full entity. A user's <key> carries its
                                     identity, so a renamed user is an UPDATED user. Groups have
                                     no key on the wire: a renamed group is DELETED under its old
                                     name and CREATED under its new one, and all its current
                                     memberships are sent again, since the client dropped them;
* memberships: present now but not known to the client -> CREATED; known but gone -> DELETED.
  A membership whose user or group the client deletes goes with it, so none is sent.

Order matters to a client that applies events one by one: deletions first (they free names),
then updates (renames ordered so that a name is vacated before it is taken), then creations,
then memberships, whose ends then all exist under their final names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dirsync.names import name_key

USER, GROUP = "user", "group"
USER_MEMBERSHIP, GROUP_MEMBERSHIP = "user_membership", "group_membership"
CREATED, UPDATED, DELETED = "created", "updated", "deleted"
MEMBER_KIND = {USER_MEMBERSHIP: USER, GROUP_MEMBERSHIP: GROUP}


@dataclass(frozen=True, slots=True)
class JournalRow:
    seq: int
    kind: str
    operation: str
    subject_id: int
    parent_id: int | None = None
    old_name: str | None = None
    removed_attributes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EntityEvent:
    kind: str  # USER | GROUP
    operation: str  # CREATED | UPDATED | DELETED
    entity_id: int | None  # None when DELETED
    name: str | None = None  # DELETED: the name the client knows
    removed_attributes: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class MembershipEvent:
    kind: str  # USER_MEMBERSHIP | GROUP_MEMBERSHIP
    operation: str  # CREATED | DELETED
    child_id: int
    parent_ids: tuple[int, ...]


Event = EntityEvent | MembershipEvent
EntityRef = tuple[str, int]  # (USER | GROUP, store id)
Pair = tuple[str, int, int]  # (USER_MEMBERSHIP | GROUP_MEMBERSHIP, child id, parent group id)


@dataclass
class Touched:
    """What the journal rows after a token touched, and what the client knew of each."""

    entities: dict[EntityRef, JournalRow] = field(default_factory=dict)  # first row of each
    removed_attributes: dict[EntityRef, set[str]] = field(default_factory=dict)
    pairs: dict[Pair, bool] = field(default_factory=dict)  # present when the token was issued

    def group_ids(self) -> list[int]:
        return [i for k, i in self.entities if k == GROUP]

    def user_ids(self) -> list[int]:
        return [i for k, i in self.entities if k == USER]


def touched(rows: Iterable[JournalRow]) -> Touched:
    """Rows must come in seq order."""
    out = Touched()
    for row in rows:
        if row.parent_id is None:
            ref = (row.kind, row.subject_id)
            out.entities.setdefault(ref, row)
            if row.removed_attributes:
                out.removed_attributes.setdefault(ref, set()).update(row.removed_attributes)
        else:
            pair = (row.kind, row.subject_id, row.parent_id)
            if pair not in out.pairs:
                out.pairs[pair] = row.operation == DELETED
    return out


def renamed_groups(t: Touched, current_names: Mapping[EntityRef, str]) -> set[int]:
    """Groups the client must drop and recreate: they existed at the token under another name."""
    out = set()
    for (kind, entity_id), first in t.entities.items():
        if kind != GROUP or first.operation == CREATED:
            continue
        now = current_names.get((kind, entity_id))
        if now is not None and now != first.old_name:
            out.add(entity_id)
    return out


def plan(t: Touched, current_names: Mapping[EntityRef, str], present_pairs: set[Pair]) -> list[Event]:
    """The events that take a client from the token's state to now.

    `current_names`: the current name of every touched entity that still exists.
    `present_pairs`: which of the touched pairs exist now, plus every current membership of a
    group in `renamed_groups(t, current_names)`.
    """
    recreated = renamed_groups(t, current_names)
    dropped: set[EntityRef] = {(GROUP, i) for i in recreated}
    deletions: list[Event] = []
    updates: list[tuple[EntityEvent, str, str]] = []  # (event, old name key, new name key)
    creations: list[Event] = []
    for ref, first in sorted(t.entities.items(), key=lambda item: item[1].seq):
        kind, entity_id = ref
        existed = first.operation != CREATED
        now = current_names.get(ref)
        if existed and (now is None or entity_id in recreated and kind == GROUP):
            deletions.append(EntityEvent(kind, DELETED, None, first.old_name))
            dropped.add(ref)
        if now is None:
            if not existed:
                dropped.add(ref)  # created and deleted since the token: the client never saw it
            continue
        if existed and ref not in dropped:
            removed = frozenset(t.removed_attributes.get(ref, ()))
            event = EntityEvent(kind, UPDATED, entity_id, removed_attributes=removed)
            updates.append((event, name_key(first.old_name or now), name_key(now)))
        else:
            creations.append(EntityEvent(kind, CREATED, entity_id))
    creations.sort(key=lambda e: e.kind != GROUP)  # groups first, for readability only

    added: dict[tuple[str, int], list[int]] = {}
    removed: dict[tuple[str, int], list[int]] = {}
    for pair in sorted(set(t.pairs) | present_pairs):
        kind, child, parent = pair
        child_dropped = (MEMBER_KIND[kind], child) in dropped
        known = t.pairs.get(pair, False) and not child_dropped and (GROUP, parent) not in dropped
        if pair in present_pairs and not known:
            added.setdefault((kind, child), []).append(parent)
        elif known and pair not in present_pairs:
            removed.setdefault((kind, child), []).append(parent)
    memberships: list[Event] = [
        MembershipEvent(kind, DELETED, child, tuple(parents))
        for (kind, child), parents in removed.items()
    ]
    memberships += [
        MembershipEvent(kind, CREATED, child, tuple(parents))
        for (kind, child), parents in added.items()
    ]
    return deletions + _rename_order(updates) + creations + memberships


def _rename_order(updates: list[tuple[EntityEvent, str, str]]) -> list[Event]:
    """Put each update after the one that vacates the name it takes; cycles (swaps) stay as
    they come, since no order can avoid a moment with two holders of one name."""
    vacating = {(e.kind, old): i for i, (e, old, new) in enumerate(updates) if old != new}
    order: list[Event] = []
    placed: set[int] = set()
    for start in range(len(updates)):
        chain: list[int] = []
        seen: set[int] = set()
        index: int | None = start
        while index is not None and index not in placed and index not in seen:
            seen.add(index)
            chain.append(index)
            event, old, new = updates[index]
            nxt = vacating.get((event.kind, new)) if old != new else None
            index = nxt if nxt != index else None
        for i in reversed(chain):
            order.append(updates[i][0])
            placed.add(i)
    return order

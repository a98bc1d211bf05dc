"""Users, groups and member values of one directory -> a Snapshot and what was odd. Pure.

Owns the decisions a full read has to take once it has seen every entry:

* **Member values are matched as parsed DNs** (`dirsync.dn.dn_key`), never as strings:
  OpenLDAP hands back `cn=Doe\\2C John` for an entry added as `cn=Doe\\, John`, AD
  upper-cases attribute types, and so on. A value naming a user read in the same pass is a
  user membership; one naming a group is a group-in-group membership (nesting, cycles
  included: the store resolves the closure). Anything else is outside the configured scope
  (another subtree, filtered out, or a stale reference) and is counted, not guessed at.
* memberUid values are usernames, matched by name key; memberOf values are group DNs read
  from the member's side.
* **Duplicate names** within one directory (two entries with uid=alice in different OUs)
  keep one winner — the entry whose normalised DN sorts first, so the choice does not depend
  on the order the server returns entries in — and report the rest. Memberships naming a
  losing entry are dropped with it. Entries sharing a unique id are treated the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Generic, Sequence, TypeVar

from dirsync.dn import dn_key
from dirsync.ldap.presets import MEMBER_OF, MEMBER_UID, UNIQUE_MEMBER
from dirsync.model import Group, Snapshot, User
from dirsync.names import name_key

# How many example values each diagnostic keeps (for logs and status), whatever the count.
EXAMPLES = 10
# uniqueMember is NameAndOptionalUID: a DN optionally followed by #'0101'B (RFC 4517 3.3.21).
_UID_SUFFIX = re.compile(r"#'[01]*'B\Z")
def member_dn_key(value: str, membership: str) -> str | None:
    """The dn_key a DN-valued membership value (member, uniqueMember, memberOf) names, or None
    when it is not a DN. uniqueMember's optional `#'0101'B` suffix is dropped. The full read
    and the incremental read (changes.py) both match members through this one function."""
    text = _UID_SUFFIX.sub("", value) if membership == UNIQUE_MEMBER else value
    if not text.strip():
        return None
    try:
        return dn_key(text)
    except ValueError:
        return None


def member_name_key(value: str) -> str:
    """The name key a memberUid value names (usernames match case-insensitively)."""
    return name_key(value.strip())

Entity = TypeVar("Entity", User, Group)


@dataclass(frozen=True)
class Skipped:
    dn: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    """Several entries of one kind claimed the same name (or unique id)."""

    kind: str  # "user name", "group name", "user id", "group id"
    value: str
    kept_dn: str
    dropped_dns: tuple[str, ...]


@dataclass
class Tally:
    """A count with a few examples."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)


@dataclass
class ReadDiagnostics:
    """What a full read found besides the snapshot. Nothing here is an error; all of it is
    worth showing to an administrator."""

    users_read: int = 0  # user entries the search returned
    groups_read: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    # member values naming no user or group read in this pass (other subtree, filtered out,
    # stale reference)
    members_out_of_scope: Tally = field(default_factory=Tally)
    # member values that are not valid DNs, and memberUid values naming no user read
    members_unresolvable: Tally = field(default_factory=Tally)
    # member values naming an entry dropped as a duplicate
    members_of_dropped_duplicates: Tally = field(default_factory=Tally)
    # a group listing itself as a member (ignored: it adds nothing)
    self_memberships: Tally = field(default_factory=Tally)

    def summary(self) -> str:
        parts = [f"{self.users_read} user entries", f"{self.groups_read} group entries"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate names or ids")
        for label, tally in (
            ("members outside the configured scope", self.members_out_of_scope),
            ("unresolvable member values", self.members_unresolvable),
            ("members naming dropped duplicates", self.members_of_dropped_duplicates),
            ("self-memberships", self.self_memberships),
        ):
            if tally.count:
                parts.append(f"{tally.count} {label}")
        return ", ".join(parts)


@dataclass
class _Read(Generic[Entity]):
    entity: Entity
    dn_key: str
    # values still to resolve in finish(): member values that named no user (groups, or
    # nothing), or memberOf values
    values: Sequence[str]
    # member users already resolved when the group arrived (their name keys)
    user_keys: Sequence[str] = ()


@dataclass
class _Users:
    """The users of the directory once they are all read (duplicates already dropped)."""

    reads: list[_Read[User]]
    by_dn: dict[str, str]  # dn_key -> name key
    names: frozenset[str]  # name keys, for memberUid
    dropped: set[str]  # dn_keys of entries dropped as duplicates


class SnapshotBuilder:
    """Collects entries as they are read (page by page) and resolves them in `finish()`.

    Add every user before the first group (read.py reads users first): a group's member
    values are then matched against the users as the group arrives, so only the values that
    name no user (nested groups, out-of-scope entries) are kept until `finish()`, rather than
    every member DN of the directory.
    """

    def __init__(self, membership: str) -> None:
        self.membership = membership
        self.diagnostics = ReadDiagnostics()
        self._user_reads: list[_Read[User]] = []
        self._users: _Users | None = None
        self._groups: list[_Read[Group]] = []
        # dn_key of a member value, by the value as the server wrote it: most values repeat
        # (a user is in many groups), and parsing is the expensive part of resolution.
        self._keys: dict[str, str | None] = {}
        # member value bytes -> name key of the user it names (member / uniqueMember)
        self._user_of: dict[bytes, str] = {}

    def skip(self, dn: str, reason: str) -> None:
        self.diagnostics.skipped.append(Skipped(dn, reason))

    def add_user(self, user: User, member_of: Sequence[str] = ()) -> None:
        if self._users is not None:
            raise RuntimeError("add every user before the first group")
        self.diagnostics.users_read += 1
        key = self._entry_key(user.dn or "")
        if key is not None:
            self._user_reads.append(_Read(user, key, member_of))

    def add_group(self, group: Group, values: Sequence[bytes] = ()) -> None:
        """`values`: the entry's membership values as the server sent them (bytes)."""
        self.diagnostics.groups_read += 1
        key = self._entry_key(group.dn or "")
        if key is None:
            return
        users = self._all_users()
        if self.membership == MEMBER_OF:
            self._groups.append(_Read(group, key, [_text(v) for v in values]))
            return
        resolved: list[str] = []
        rest: list[str] = []
        d = self.diagnostics
        if self.membership == MEMBER_UID:
            for raw in values:
                value = _text(raw)
                name = member_name_key(value)
                if name in users.names:
                    resolved.append(name)
                else:
                    d.members_unresolvable.add(value)
        else:
            # The hot loop of a large read (a million member values): one dict lookup per
            # value that names a user seen before, by its bytes as the server sent them.
            user_of, by_dn, member_key = self._user_of, users.by_dn, self._member_key
            for raw in values:
                user = user_of.get(raw)
                if user is not None:
                    resolved.append(user)
                    continue
                value = _text(raw)
                member = member_key(value)
                user = by_dn.get(member) if member is not None else None
                if user is not None:
                    user_of[raw] = user
                    resolved.append(user)
                elif member is not None and member in users.dropped:
                    d.members_of_dropped_duplicates.add(value)
                else:
                    rest.append(value)
        self._groups.append(_Read(group, key, rest, resolved))

    def finish(self) -> tuple[Snapshot, ReadDiagnostics]:
        d = self.diagnostics
        users = self._all_users()
        groups, dropped_groups = _dedupe(self._groups, "group", d.duplicates)
        group_by_dn = {r.dn_key: name_key(r.entity.name) for r in groups}
        dropped = users.dropped | dropped_groups
        snapshot = Snapshot(
            users=[r.entity for r in users.reads], groups=[r.entity for r in groups]
        )
        if self.membership == MEMBER_OF:
            for r in users.reads:
                child = users.by_dn[r.dn_key]
                for parent in self._groups_named(r.values, group_by_dn, dropped):
                    snapshot.user_memberships.add((parent, child))
            for r in groups:
                child = group_by_dn[r.dn_key]
                for parent in self._groups_named(r.values, group_by_dn, dropped):
                    self._add_nested(snapshot, parent, child, r.entity.dn or "")
        else:
            for r in groups:
                parent = group_by_dn[r.dn_key]
                for user_key in r.user_keys:
                    snapshot.user_memberships.add((parent, user_key))
                for value in r.values:
                    key = self._member_key(value)
                    if key is None:
                        d.members_unresolvable.add(value)
                    elif key in group_by_dn:
                        self._add_nested(snapshot, parent, group_by_dn[key], value)
                    elif key in dropped:
                        d.members_of_dropped_duplicates.add(value)
                    else:
                        d.members_out_of_scope.add(value)
        self._user_reads, self._groups, self._keys, self._user_of = [], [], {}, {}
        return snapshot, d

    def _all_users(self) -> _Users:
        """Close the user list (on the first group, or in finish) and index it."""
        if self._users is None:
            reads, dropped = _dedupe(self._user_reads, "user", self.diagnostics.duplicates)
            by_dn = {r.dn_key: name_key(r.entity.name) for r in reads}
            self._users = _Users(reads, by_dn, frozenset(by_dn.values()), dropped)
            self._user_reads = []
        return self._users

    # -- helpers ---------------------------------------------------------------------------
    def _groups_named(
        self, values: Sequence[str], group_by_dn: dict[str, str], dropped: set[str]
    ) -> list[str]:
        found = []
        for value in values:
            key = self._member_key(value)
            if key is None:
                self.diagnostics.members_unresolvable.add(value)
            elif key in group_by_dn:
                found.append(group_by_dn[key])
            elif key in dropped:
                self.diagnostics.members_of_dropped_duplicates.add(value)
            else:
                self.diagnostics.members_out_of_scope.add(value)
        return found

    def _add_nested(self, snapshot: Snapshot, parent: str, child: str, example: str) -> None:
        if parent == child:
            self.diagnostics.self_memberships.add(example)
        else:
            snapshot.group_memberships.add((parent, child))

    def _entry_key(self, dn: str) -> str | None:
        try:
            return dn_key(dn)
        except ValueError as exc:
            self.skip(dn, f"its DN cannot be parsed: {exc}")
            return None

    def _member_key(self, value: str) -> str | None:
        try:
            return self._keys[value]
        except KeyError:
            pass
        key = self._keys[value] = member_dn_key(value, self.membership)
        return key


def _dedupe(
    reads: list[_Read[Entity]], kind: str, report: list[Duplicate]
) -> tuple[list[_Read[Entity]], set[str]]:
    """Keep one entry per name key and per external id; the lowest dn_key wins."""
    reads = sorted(reads, key=lambda r: r.dn_key)
    dropped: set[str] = set()
    for label, key_of in (
        (f"{kind} name", lambda r: name_key(r.entity.name)),
        (f"{kind} id", lambda r: r.entity.external_id),
    ):
        winners: dict[object, _Read[Entity]] = {}
        losers: dict[object, list[str]] = {}
        kept: list[_Read[Entity]] = []
        for r in reads:
            key = key_of(r)
            if key in winners:
                losers.setdefault(key, []).append(r.entity.dn or "")
                dropped.add(r.dn_key)
            else:
                winners[key] = r
                kept.append(r)
        for key, dns in losers.items():
            winner = winners[key]
            value = winner.entity.name if label.endswith("name") else str(key)
            report.append(Duplicate(label, value, winner.entity.dn or "", tuple(dns)))
        reads = kept
    # An entry DN listed twice (the same entry returned twice) is not a duplicate to drop.
    dropped -= {r.dn_key for r in reads}
    return reads, dropped


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")

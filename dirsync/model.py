"""Plain data: what a directory says about users, groups and memberships.

A `Snapshot` is the complete content of one directory as read from its source (a fixture file,
an LDAP server). It is compared with the store to find what changed. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

# attribute name -> values, in source order; values are strings
Attributes = dict[str, tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class User:
    name: str
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    email: str = ""
    active: bool = True
    # Stable identity at the source (entryUUID, objectGUID, a fixture `id`); None = name is
    # the identity. Becomes part of the Crowd <key>.
    external_id: str | None = None
    # The password as the source gives it: an LDAP-style hash ("{SSHA}...") or clear text
    # (hashed before it is stored). None when the source checks passwords itself (LDAP bind).
    password: str | None = None
    dn: str | None = None
    attributes: Attributes = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    description: str = ""
    active: bool = True
    external_id: str | None = None
    dn: str | None = None
    attributes: Attributes = field(default_factory=dict)


@dataclass(slots=True)
class Snapshot:
    """Everything one directory contains. Memberships name their ends by name key."""

    users: list[User] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    # (group name key, user name key)
    user_memberships: set[tuple[str, str]] = field(default_factory=set)
    # (parent group name key, child group name key)
    group_memberships: set[tuple[str, str]] = field(default_factory=set)


E = TypeVar("E", User, Group)


@dataclass
class EntityChanges(Generic[E]):
    """What a snapshot changes for one kind of entity, against the store's copy."""

    added: list[E] = field(default_factory=list)
    # (store id, new state); the new state keeps the stored external id
    updated: list[tuple[int, E]] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.added) + len(self.updated) + len(self.removed)

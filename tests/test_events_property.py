"""The event feed's guarantee, as a property over random histories (hypothesis).

For random sequences of changes (create, update, rename, swap and delete users and groups; add
and remove user and group memberships, nested ones and cycles included; deactivate and
reactivate), a client that did a full sync at any point and then applied every event feed since
its token ends with exactly the users, groups, attributes and direct memberships that a fresh
full sync gives. Each batch of changes is one fixture load, i.e. one transaction.

Runs over real HTTP against a store seeded through the same path as every other change.
`DIRSYNC_PROPERTY_EXAMPLES` sets the number of examples (CI: 200).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from crowd_cache import CrowdCache
from factories import add_app, start_api
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dirsync.model import Group, Snapshot, User
from dirsync.names import name_key
from dirsync.settings import MAX_JOURNAL_ROWS
from dirsync.store.writes import ensure_directory
from dirsync.sync.fixtures import apply_fixtures
from dirsync.sync.setwise import apply_setwise

EXAMPLES = int(os.environ.get("DIRSYNC_PROPERTY_EXAMPLES", "200"))
USER_NAMES = ["alice", "Alice", "bob", "carol", "dave", "erin", "Zoë", "o'brien"]
GROUP_NAMES = ["devs", "Devs", "ops", "admins", "all", "team a", "qa"]
ATTRS = [{}, {"dept": ("eng",)}, {"dept": ("ops",), "site": ("a", "b")}, {"site": ("b",)}]


@dataclass
class Directory:
    """The source of truth the test drives: entities by external id, memberships by id."""

    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    members: set[tuple[str, str]] = field(default_factory=set)  # (group xid, user xid)
    children: set[tuple[str, str]] = field(default_factory=set)  # (parent xid, child xid)
    serial: int = 0

    def snapshot(self) -> Snapshot:
        users = {x: name_key(u.name) for x, u in self.users.items()}
        groups = {x: name_key(g.name) for x, g in self.groups.items()}
        return Snapshot(
            users=list(self.users.values()),
            groups=list(self.groups.values()),
            user_memberships={(groups[g], users[u]) for g, u in self.members},
            group_memberships={(groups[p], groups[c]) for p, c in self.children},
        )

    def _new_id(self) -> str:
        self.serial += 1
        return f"x{self.serial}"

    @staticmethod
    def _pick(items: dict[str, Any], index: int) -> str | None:
        keys = sorted(items)
        return keys[index % len(keys)] if keys else None

    @staticmethod
    def _free(items: dict[str, Any], name: str, owner: str | None = None) -> bool:
        return all(name_key(e.name) != name_key(name) for x, e in items.items() if x != owner)

    def apply(self, op: tuple[str, int, int, int]) -> None:
        kind, a, b, c = op
        users, groups = self.users, self.groups
        u, g, g2 = self._pick(users, a), self._pick(groups, a), self._pick(groups, b)
        if kind == "add_user":
            name = USER_NAMES[a % len(USER_NAMES)]
            if self._free(users, name):
                xid = self._new_id()  # the external id: what keeps a renamed user the same user
                users[xid] = User(name, f"F{b}", f"L{c}", f"F{b} L{c}", f"{b}@ex",
                                  external_id=xid, attributes=ATTRS[c % len(ATTRS)])
        elif kind == "edit_user" and u:
            users[u] = replace(users[u], email=f"{b}@ex", display_name=f"D{c}",
                               attributes=ATTRS[b % len(ATTRS)])
        elif kind == "rename_user" and u:
            name = USER_NAMES[b % len(USER_NAMES)]
            if self._free(users, name, u):
                users[u] = replace(users[u], name=name)
        elif kind == "swap_users" and u:
            other = self._pick(users, b)
            if other and other != u:
                users[u], users[other] = (replace(users[u], name=users[other].name),
                                          replace(users[other], name=users[u].name))
        elif kind == "toggle_user" and u:
            users[u] = replace(users[u], active=not users[u].active)
        elif kind == "delete_user" and u:
            del users[u]
            self.members = {m for m in self.members if m[1] != u}
        elif kind == "add_group":
            name = GROUP_NAMES[a % len(GROUP_NAMES)]
            if self._free(groups, name):
                xid = self._new_id()
                groups[xid] = Group(name, f"desc {b}", external_id=xid, attributes=ATTRS[c % len(ATTRS)])
        elif kind == "edit_group" and g:
            groups[g] = replace(groups[g], description=f"d{b}", attributes=ATTRS[c % len(ATTRS)])
        elif kind == "rename_group" and g:
            name = GROUP_NAMES[b % len(GROUP_NAMES)]
            if self._free(groups, name, g):
                groups[g] = replace(groups[g], name=name)
        elif kind == "swap_groups" and g and g2 and g != g2:
            groups[g], groups[g2] = (replace(groups[g], name=groups[g2].name),
                                     replace(groups[g2], name=groups[g].name))
        elif kind == "toggle_group" and g:
            groups[g] = replace(groups[g], active=not groups[g].active)
        elif kind == "delete_group" and g:
            del groups[g]
            self.members = {m for m in self.members if m[0] != g}
            self.children = {m for m in self.children if g not in m}
        elif kind == "member" and g and users:
            pair = (self._pick(groups, b) or g, self._pick(users, c) or "")
            self.members ^= {pair}  # add, or remove if present
        elif kind == "nest" and g and g2 and g != g2:
            self.children ^= {(g, g2)}  # cycles allowed


OPS = st.tuples(
    st.sampled_from([
        "add_user", "add_user", "edit_user", "rename_user", "swap_users", "toggle_user",
        "delete_user", "add_group", "add_group", "edit_group", "rename_group", "swap_groups",
        "toggle_group", "delete_group", "member", "member", "member", "nest", "nest",
    ]),
    st.integers(0, 50), st.integers(0, 50), st.integers(0, 50),
)
BATCHES = st.lists(st.lists(OPS, min_size=1, max_size=8), min_size=1, max_size=6)


@pytest.fixture
def api(store, settings, live_app):  # type: ignore[no-untyped-def]
    add_app(store)
    return start_api(live_app, store, settings)


def apply_setwise_load(store: Any, directory: str, snapshot: Snapshot) -> None:
    """What the LDAP mirror does: stage the directory, diff and apply in SQL."""
    with store.write() as conn:
        directory_id = ensure_directory(conn, directory, "fixtures")
        apply_setwise(conn, directory_id, snapshot, lambda _losses: None, MAX_JOURNAL_ROWS)


def check_history(api: Any, batches: list[list[tuple[str, int, int, int]]], sync_at: int,
                  rounds: list[bool], apply: Any = apply_fixtures) -> None:
    store = api.store
    apply(store, "fixtures", Snapshot())  # each example starts from an empty directory
    source = Directory()
    client = CrowdCache(api.base, api.session)
    for index, batch in enumerate(batches):
        if index == min(sync_at, len(batches) - 1) and client.token is None:
            client.full_sync()
        for op in batch:
            source.apply(op)
        apply(store, "fixtures", source.snapshot())
        if client.token is not None and rounds[index]:
            assert client.incremental()
    if client.token is None:
        client.full_sync()
    assert client.incremental(), "a token inside the retained window must not expire"
    fresh = CrowdCache(api.base, api.session)
    fresh.full_sync()
    assert client.state() == fresh.state()
    assert client.full_syncs == 1
    assert without_keys(fresh.state()) == expected_state(source)  # the apply itself is right


def without_keys(state: dict[str, Any]) -> dict[str, Any]:
    users = {n: ({k: v for k, v in u.items() if k != "key"}, attrs)
             for n, (u, attrs) in state["users"].items()}
    return {**state, "users": users}


def expected_state(source: Directory) -> dict[str, Any]:
    return {
        "users": {u.name: ({"name": u.name, "first": u.first_name, "last": u.last_name,
                            "display": u.display_name, "email": u.email, "active": u.active},
                           dict(u.attributes)) for u in source.users.values()},
        "groups": {g.name: ({"name": g.name, "description": g.description, "active": g.active},
                            dict(g.attributes)) for g in source.groups.values()},
        "user_members": {(source.users[u].name, source.groups[g].name) for g, u in source.members},
        "group_members": {(source.groups[c].name, source.groups[p].name)
                          for p, c in source.children},
    }


SETTINGS = {"deadline": None,
            "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]}
GIVEN = {"batches": BATCHES, "sync_at": st.integers(0, 6),
         "rounds": st.lists(st.booleans(), min_size=6, max_size=6)}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(max_examples=EXAMPLES, **SETTINGS)
@given(**GIVEN)
def test_events_take_a_client_to_what_a_full_sync_gives(api: Any, batches: Any, sync_at: int,
                                                          rounds: list[bool]) -> None:
    check_history(api, batches, sync_at, rounds)


# PostgreSQL differs where it matters here (sequences, locking, text rules), at a quarter of
# the examples: each costs several times more on a server database.
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@settings(max_examples=max(10, EXAMPLES // 4), **SETTINGS)
@given(**GIVEN)
def test_events_take_a_client_to_what_a_full_sync_gives_on_postgres(
    api: Any, batches: Any, sync_at: int, rounds: list[bool]
) -> None:
    check_history(api, batches, sync_at, rounds)


# The same guarantee through the set-wise apply the LDAP mirror uses.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(max_examples=max(10, EXAMPLES // 2), **SETTINGS)
@given(**GIVEN)
def test_events_after_setwise_applies(api: Any, batches: Any, sync_at: int,
                                      rounds: list[bool]) -> None:
    check_history(api, batches, sync_at, rounds, apply_setwise_load)


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@settings(max_examples=max(10, EXAMPLES // 8), **SETTINGS)
@given(**GIVEN)
def test_events_after_setwise_applies_on_postgres(api: Any, batches: Any, sync_at: int,
                                                  rounds: list[bool]) -> None:
    check_history(api, batches, sync_at, rounds, apply_setwise_load)

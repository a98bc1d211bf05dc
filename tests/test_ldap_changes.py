"""Incremental reads against a real slapd (syncprov + accesslog): "the mirror as of a full read
at token T, with read_changes(T) applied" must equal a fresh full read, for random batches of
changes; and every situation that cannot give that result must refuse (FullSyncRequired) or
fail (LdapError), never return part of the answer.

`Mirror` below is the smallest faithful version of what the store does with an
IncrementalRead (the order of steps in IncrementalRead's docstring): entities by external id,
direct memberships by id. It exists to pin that contract down; the store's own apply is tested
with the store.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Collection

import pytest

from dirsync.dn import dn_key
from dirsync.ldap import errors
from dirsync.ldap.changes import (
    DELETIONS_ACCESSLOG,
    DELETIONS_NONE,
    DELETIONS_PRESENT,
    IncrementalRead,
    initial_token,
    read_changes,
)
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.read import read_directory
from dirsync.ldap.watermark import METHOD_NONE, parse_token
from dirsync.model import Group, Snapshot, User
from dirsync.names import name_key
from ldap_fixtures import *  # noqa: F403 - until conftest lists ldap_fixtures in pytest_plugins
from ldap_fixtures import LdapTree
from servers import ServerError
from slapd import (
    ACCESSLOG_SUFFIX,
    LIMITED_DN,
    LIMITED_PASSWORD,
    LOCKED_FOREVER,
    SUFFIX,
    SlapdServer,
)

MakeConfig = Callable[..., DirectoryConfig]

USER_FILTER = "(!(employeeType=excluded))"
GROUP_FILTER = "(!(businessCategory=hidden))"
# More coverage on demand: DIRSYNC_CHANGE_SEEDS=4,5,6 DIRSYNC_CHANGE_BATCH=40 pytest ...
SEEDS = [int(s) for s in os.environ.get("DIRSYNC_CHANGE_SEEDS", "1,2,3").split(",")]
ROUNDS = int(os.environ.get("DIRSYNC_CHANGE_ROUNDS", "5"))
BATCH = int(os.environ.get("DIRSYNC_CHANGE_BATCH", "12"))


# -- the mirror -------------------------------------------------------------------------------


@dataclass
class Mirror:
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)  # (group id, member id)

    @classmethod
    def of(cls, snapshot: Snapshot) -> Mirror:
        users = {u.external_id: u for u in snapshot.users if u.external_id}
        groups = {g.external_id: g for g in snapshot.groups if g.external_id}
        user_ids = {name_key(u.name): i for i, u in users.items()}
        group_ids = {name_key(g.name): i for i, g in groups.items()}
        edges = {(group_ids[g], user_ids[u]) for g, u in snapshot.user_memberships}
        edges |= {(group_ids[p], group_ids[c]) for p, c in snapshot.group_memberships}
        return cls(users, groups, edges)

    def apply(self, changes: IncrementalRead) -> None:
        gone = set(changes.deleted_ids)
        if changes.present_user_ids is not None:
            gone |= self.users.keys() - changes.present_user_ids
        if changes.present_group_ids is not None:
            gone |= self.groups.keys() - changes.present_group_ids
        for entity_id in gone:
            self.users.pop(entity_id, None)
            self.groups.pop(entity_id, None)
        self.edges = {(p, c) for p, c in self.edges if p not in gone and c not in gone}
        changed: set[str] = set()
        for user in changes.changed_users:
            assert user.external_id and user.external_id not in gone
            self.users[user.external_id] = user
            changed.add(user.external_id)
        for group in changes.changed_groups:
            assert group.external_id and group.external_id not in gone
            self.groups[group.external_id] = group
            changed.add(group.external_id)
        by_dn = {dn_key(e.dn or ""): i for i, e in (*self.users.items(), *self.groups.items())}
        by_name = {name_key(u.name): i for i, u in self.users.items()}
        rewritten = changes.group_members
        assert changes.parents_kept <= changed
        looked_up = changed - changes.parents_kept
        # 3: changed groups get their member lists; 4: changed members get their parents
        # among the other groups, unless they kept them; everything else stays.
        self.edges = {(p, c) for p, c in self.edges
                      if p not in rewritten and c not in looked_up}
        for group_id, refs in rewritten.items():
            members = {by_dn.get(k) for k in refs.dn_keys} | {by_name.get(k)
                                                              for k in refs.name_keys}
            self.edges |= {(group_id, m) for m in members if m and m != group_id}
        for member_id, parents in changes.listed_by.items():
            assert member_id in looked_up and not parents & rewritten.keys()
            self.edges |= {(p, member_id) for p in parents if p in self.groups and p != member_id}
        # 5: logged member values, for the members that did not change.
        for group_id, delta in changes.member_deltas.items():
            assert group_id in changed and group_id not in rewritten
            for listed, refs in ((True, delta.added), (False, delta.removed)):
                members = {by_dn.get(k) for k in refs.dn_keys} | {by_name.get(k)
                                                                  for k in refs.name_keys}
                edges = {(group_id, m) for m in members
                         if m and m != group_id and m not in looked_up}
                self.edges = self.edges | edges if listed else self.edges - edges

    def held(self, kind: str, ids: Collection[str]) -> dict[str, tuple[str | None, str]]:
        entries: dict[str, User] | dict[str, Group] = self.users if kind == "user" else self.groups
        return {i: (dn_key(entries[i].dn or ""), name_key(entries[i].name))
                for i in ids if i in entries}

    def view(self) -> tuple[object, ...]:
        names = {i: name_key(e.name) for i, e in (*self.users.items(), *self.groups.items())}
        user_edges = {(names[p], names[c]) for p, c in self.edges if c in self.users}
        group_edges = {(names[p], names[c]) for p, c in self.edges if c in self.groups}
        return _view(list(self.users.values()), list(self.groups.values()), user_edges,
                     group_edges)


def _view(users: list[User], groups: list[Group], user_edges: set[tuple[str, str]],
          group_edges: set[tuple[str, str]]) -> tuple[object, ...]:
    return (sorted(map(repr, users)), sorted(map(repr, groups)), sorted(user_edges),
            sorted(group_edges))


def full_view(config: DirectoryConfig) -> tuple[object, ...]:
    s = read_directory(config).snapshot
    return _view(s.users, s.groups, s.user_memberships, s.group_memberships)


# -- random changes ---------------------------------------------------------------------------


class Changer:
    """Random writes to one private subtree, through the OpenLDAP command line tools.

    Layout: people/{p1,p2} and groups/{gsub} are in scope; outside/{o1} is not. Names are
    never reused, so a full read never meets duplicates (those are the store's to settle).
    `anchor` (always in scope, so a full read is never empty) and the refint sentinels are
    left alone. Other servers with the same schema (389 DS) set LOCK to their lock attribute."""

    LOCK = ("pwdAccountLockedTime", LOCKED_FOREVER)  # (attribute, value that disables)

    def __init__(self, tree: LdapTree, seed: int) -> None:
        self.tree = tree
        self.server = tree.server
        self.rng = random.Random(seed)
        self.serial = 0
        self.outside = tree.add_ou("outside")
        for parent, name in ((tree.people, "p1"), (tree.people, "p2"), (tree.groups, "gsub"),
                             (self.outside, "o1")):
            tree.add_ou(name, parent)
        tree.add_user("anchor")
        # refint rewrites member values in a background task; renaming this sentinel and
        # waiting for its group to follow means every earlier rewrite is done too (one queue).
        self.sentinel = tree.add_user("sentinel", ou=self.outside)
        self.sentinel_group = tree.add_group("sentinel-group", [self.sentinel], ou=self.outside)
        self.dangling: list[str] = []
        self.now: list[tuple[str, dict[str, list[str]]]] = []

    # -- what is there now (one ldapsearch per step) -----------------------------------------
    def look(self) -> None:
        self.now = self.server.search(self.tree.base, "(objectClass=*)", [
            "objectClass", "uid", "member", "employeeType", "businessCategory", self.LOCK[0]])

    def entries(self, object_class: str) -> list[tuple[str, dict[str, list[str]]]]:
        wanted = object_class.lower()
        return [(dn, a) for dn, a in self.now
                if wanted in (c.lower() for c in a.get("objectclass", ()))
                and "sentinel" not in dn and "anchor" not in dn]

    def containers(self) -> list[str]:
        return [dn for dn, _ in self.entries("organizationalUnit") if dn != self.tree.base]

    def fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def modify(self, dn: str, op: str, attribute: str, *values: str) -> None:
        lines = "".join(f"{attribute}: {v}\n" for v in values)
        self.server.modify(f"dn: {dn}\nchangetype: modify\n{op}: {attribute}\n{lines}")

    def pick(self, object_class: str) -> tuple[str, dict[str, list[str]]]:
        found = self.entries(object_class)
        if not found:
            raise LookupError(object_class)
        return self.rng.choice(found)

    def member_values(self, count: int) -> list[str]:
        pool = [dn for dn, _ in self.entries("inetOrgPerson") + self.entries("groupOfNames")]
        picked = self.rng.sample(pool, min(count, len(pool)))
        if not picked or self.rng.random() < 0.3:
            ghost = f"uid={self.fresh('ghost')},{self.tree.people}"
            self.dangling.append(ghost)
            picked.append(ghost)
        return picked

    # -- operations (each picks its own targets) -------------------------------------------
    def add_user(self) -> None:
        if self.dangling and self.rng.random() < 0.4:
            dn = self.dangling.pop()  # a DN some group already lists
            rdn, parent = dn.split(",", 1)
            uid = rdn.split("=", 1)[1]
        else:
            uid = self.fresh("u")
            # Mostly where container moves will carry them in and out of the scope.
            roll = self.rng.random()
            parent = (self.tree.people if roll < 0.3 else self.movable() if roll < 0.8
                      else self.rng.choice(self.containers()))
        extra = ""
        if self.rng.random() < 0.15:
            extra += "employeeType: excluded\n"
        if self.rng.random() < 0.15:
            extra += f"{self.LOCK[0]}: {self.LOCK[1]}\n"
        if self.rng.random() < 0.2:
            # Named by cn, so that its uid (the username) can be removed: it then stops
            # being a usable user, and a full read leaves it out.
            self.server.load_ldif(f"dn: cn={uid},{parent}\nobjectClass: inetOrgPerson\n"
                                  f"cn: {uid}\nsn: {uid}\nuid: {uid}\n{extra}")
            return
        self.tree.add_user(uid, ou=parent, extra=extra)

    def toggle_username(self) -> None:
        named_by_cn = [(dn, a) for dn, a in self.entries("inetOrgPerson") if dn.startswith("cn=")]
        if not named_by_cn:
            raise LookupError("user named by cn")
        dn, attrs = self.rng.choice(named_by_cn)
        if "uid" in attrs:
            self.modify(dn, "delete", "uid")
        else:
            self.modify(dn, "add", "uid", dn.split(",", 1)[0].split("=", 1)[1])

    def delete_user(self) -> None:
        self.server.delete(self.pick("inetOrgPerson")[0])

    def rename_user(self) -> None:
        dn = self.pick("inetOrgPerson")[0]
        self.server.modrdn(dn, f"{dn.split('=', 1)[0]}={self.fresh('r')}")

    def move_user(self) -> None:
        dn = self.pick("inetOrgPerson")[0]
        self.server.modrdn(dn, dn.split(",", 1)[0],
                           self.rng.choice([self.tree.people, *self.containers()]))

    def edit_user(self) -> None:
        attribute = self.rng.choice(["mail", "sn", "displayName", "givenName"])
        self.modify(self.pick("inetOrgPerson")[0], "replace", attribute, self.fresh("v"))

    def lock_or_unlock(self) -> None:
        dn, attrs = self.pick("inetOrgPerson")
        attribute, value = self.LOCK
        if attribute.lower() in attrs:
            self.modify(dn, "delete", attribute)
        else:
            self.modify(dn, "add", attribute, value)

    def filter_user(self) -> None:
        dn, attrs = self.pick("inetOrgPerson")
        if "employeetype" in attrs:
            self.modify(dn, "delete", "employeeType")
        else:
            self.modify(dn, "add", "employeeType", "excluded")

    def add_group(self) -> None:
        roll = self.rng.random()
        parent = (self.tree.groups if roll < 0.7 else self.outside if roll < 0.85
                  else self.rng.choice([c for c in self.containers() if "ou=gsub" in c]
                                       or [self.tree.groups]))
        dn = self.tree.add_group(self.fresh("g"), self.member_values(self.rng.randint(1, 4)),
                                 ou=parent)
        if self.rng.random() < 0.2:
            self.modify(dn, "add", "businessCategory", "hidden")

    def delete_group(self) -> None:
        self.server.delete(self.pick("groupOfNames")[0])

    def rename_group(self) -> None:
        self.server.modrdn(self.pick("groupOfNames")[0], f"cn={self.fresh('rg')}")

    def move_group(self) -> None:
        dn = self.pick("groupOfNames")[0]
        self.server.modrdn(dn, dn.split(",", 1)[0], self.rng.choice(
            [self.tree.groups, f"ou=gsub,{self.tree.groups}", self.outside]))

    def add_members(self) -> None:
        dn, attrs = self.pick("groupOfNames")
        new = [m for m in self.member_values(2) if m not in attrs.get("member", [])]
        if new:
            self.modify(dn, "add", "member", *new)

    def nest_group(self) -> None:  # cycles welcome
        dn, attrs = self.pick("groupOfNames")
        others = [g for g, _ in self.entries("groupOfNames") if g not in attrs.get("member", [])]
        if others:
            self.modify(dn, "add", "member", self.rng.choice(others))

    def remove_member(self) -> None:
        dn, attrs = self.pick("groupOfNames")
        members = attrs.get("member", [])
        if len(members) > 1:  # groupOfNames needs one
            self.modify(dn, "delete", "member", self.rng.choice(members))

    def hide_group(self) -> None:
        dn, attrs = self.pick("groupOfNames")
        if "businesscategory" in attrs:
            self.modify(dn, "delete", "businessCategory")
        else:
            self.modify(dn, "add", "businessCategory", "hidden")

    def movable(self) -> str:
        found = [c for c in self.containers()
                 if c.split(",", 1)[0] in ("ou=p1", "ou=p2", "ou=o1", "ou=gsub")
                 or c.startswith("ou=m")]
        if not found:
            raise LookupError("container")
        return self.rng.choice(found)

    def move_container(self) -> None:  # everything below it moves, entryCSN untouched
        ou = self.movable()
        self.server.modrdn(ou, ou.split(",", 1)[0], self.rng.choice(
            [self.tree.people, self.tree.groups, self.outside]))

    def rename_container(self) -> None:
        self.server.modrdn(self.movable(), f"ou={self.fresh('m')}")

    OPERATIONS = (
        (add_user, 4), (delete_user, 2), (rename_user, 2), (move_user, 2), (edit_user, 2),
        (lock_or_unlock, 1), (filter_user, 1), (add_group, 3), (delete_group, 1),
        (rename_group, 1), (move_group, 1), (add_members, 3), (nest_group, 2),
        (remove_member, 2), (hide_group, 1), (move_container, 2), (rename_container, 2),
        (toggle_username, 2),
    )

    def step(self) -> str:
        self.look()
        operations, weights = zip(*self.OPERATIONS)
        operation = self.rng.choices(operations, weights)[0]
        try:
            operation(self)
        except (ServerError, LookupError):
            return f"{operation.__name__} (not possible now)"  # e.g. a move onto itself
        return operation.__name__

    def populate(self, users: int, groups: int) -> None:
        for operation, count in ((Changer.add_user, users), (Changer.add_group, groups),
                                 (Changer.nest_group, groups)):
            for _ in range(count):
                self.look()
                operation(self)
        self.barrier()

    def batch(self, size: int) -> list[str]:
        done = [self.step() for _ in range(size)]
        self.barrier()
        return done

    def barrier(self) -> None:
        old = self.sentinel
        self.sentinel = f"uid={self.fresh('sentinel')},{self.outside}"
        self.server.modrdn(old, self.sentinel.split(",", 1)[0])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            [(_, attrs)] = self.server.search(self.sentinel_group, attributes=["member"],
                                              scope="base")
            if attrs.get("member") == [self.sentinel]:
                return
            time.sleep(0.005)
        raise AssertionError("refint did not catch up within 5 s")


def tree_config(directory_config: MakeConfig, tree: LdapTree, **keys: object) -> DirectoryConfig:
    table: dict[str, object] = {"user_base_dn": tree.people, "group_base_dn": tree.groups,
                                "user_filter": USER_FILTER, "group_filter": GROUP_FILTER}
    table.update(keys)
    return directory_config(**table)


# -- equivalence ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_incremental_equals_full_on_random_batches(seed: int, ldap_tree: LdapTree,
                                                   directory_config: MakeConfig) -> None:
    changer = Changer(ldap_tree, seed)
    config = tree_config(directory_config, ldap_tree)
    changer.populate(users=15, groups=10)
    # Three mirrors follow the same directory: with the accesslog; with the id scan and the
    # default settle window (which re-reads ten minutes every round); with the id scan and
    # a short window (so entries that only changed attributes keep their groups).
    ways = {"logged": ("auto", 0.2), "scanned": (DELETIONS_PRESENT, None),
            "quick-scan": (DELETIONS_PRESENT, 0.2)}
    tokens = {way: initial_token(config, settle_seconds=settle)
              for way, (_, settle) in ways.items()}
    start = read_directory(config).snapshot
    mirrors = {way: Mirror.of(start) for way in ways}
    deltas = 0
    kept = dict.fromkeys(ways, 0)
    for round_number in range(ROUNDS):
        done = changer.batch(BATCH)
        expected = full_view(config)
        context = f"seed {seed}, round {round_number}: {done}"
        for way, (deletions, settle) in ways.items():
            changes = read_changes(config, tokens[way], deletions=deletions,
                                   settle_seconds=settle, held=mirrors[way].held)
            mirrors[way].apply(changes)
            assert mirrors[way].view() == expected, f"{way}, {context}"
            tokens[way] = changes.next_token
            kept[way] += len(changes.parents_kept)
            if deletions == DELETIONS_PRESENT:
                assert changes.deletions == DELETIONS_PRESENT
                assert not changes.member_deltas  # no log, no logged values
            else:
                deltas += changes.diagnostics.member_deltas
                # The accesslog can tell every deletion here, except where a container left
                # a base with entries below it (their ids are in no log record): the scan.
                if changes.deletions != DELETIONS_ACCESSLOG:
                    assert "container" in changes.diagnostics.why_scan, context
    # Groups whose members changed by single values were not read again, and entries that
    # kept their DN were not looked up, with the log and without it.
    assert deltas, "no member list came from the log"
    assert kept["logged"] and kept["quick-scan"], kept


def test_renames_moves_deletes_and_dangling_members(ldap_tree: LdapTree,
                                                    directory_config: MakeConfig) -> None:
    tree, server = ldap_tree, ldap_tree.server
    config = tree_config(directory_config, tree)
    outside = tree.add_ou("outside")
    sub = tree.add_ou("sub", tree.people)
    alice = tree.add_user("alice")
    bob = tree.add_user("bob", ou=sub)
    carol = tree.add_user("carol")
    ghost = f"uid=ghost,{tree.people}"
    team = tree.add_group("team", [alice, bob, ghost])
    tree.add_group("all", [team, carol])
    token = initial_token(config, settle_seconds=0)
    mirror = Mirror.of(read_directory(config).snapshot)

    server.modrdn(alice, "uid=alice2")  # refint rewrites team's member value, silently
    server.modrdn(sub, "ou=sub", outside)  # bob leaves the scope with his container
    server.delete(carol)
    tree.add_user("ghost")  # team listed this DN before it existed
    time.sleep(0.05)  # refint's background task
    changes = read_changes(config, token, settle_seconds=0)
    mirror.apply(changes)
    assert mirror.view() == full_view(config)
    assert changes.deletions == DELETIONS_PRESENT  # a container left the base
    assert "container" in changes.diagnostics.why_scan
    names = {u.name for u in changes.changed_users}
    assert {"alice2", "ghost"} <= names
    assert mirror.view()[2] == [("team", "alice2"), ("team", "ghost")]


def test_a_container_moved_into_the_base_brings_its_entries(ldap_tree: LdapTree,
                                                           directory_config: MakeConfig
                                                           ) -> None:
    tree, server = ldap_tree, ldap_tree.server
    config = tree_config(directory_config, tree)
    outside = tree.add_ou("outside")
    box = tree.add_ou("box", outside)
    dora = tree.add_user("dora", ou=box)
    tree.add_user("anchor")  # a full read of an empty base is refused
    tree.add_group("team", [dora])
    token = initial_token(config, settle_seconds=0)
    mirror = Mirror.of(read_directory(config).snapshot)
    assert [u.name for u in mirror.users.values()] == ["anchor"]
    server.modrdn(box, "ou=box", tree.people)  # dora's own entryCSN does not change
    time.sleep(0.05)
    changes = read_changes(config, token, settle_seconds=0)
    assert changes.deletions == DELETIONS_ACCESSLOG
    assert changes.diagnostics.subtrees_reread == [f"ou=box,{tree.people}"]
    mirror.apply(changes)
    assert mirror.view() == full_view(config)
    assert sorted(u.name for u in mirror.users.values()) == ["anchor", "dora"]
    assert mirror.view()[2] == [("team", "dora")]


def test_member_lookups_escape_what_they_put_in_filters(ldap_tree: LdapTree,
                                                     directory_config: MakeConfig) -> None:
    tree, server = ldap_tree, ldap_tree.server
    config = tree_config(directory_config, tree)
    odd = f"cn=Doe\\, John *(x)\\\\,{tree.people}"  # comma, star, parentheses, backslash
    server.load_ldif(f"dn: {odd}\nobjectClass: inetOrgPerson\ncn: Doe, John *(x)\\\n"
                     "sn: Doe\nuid: jdoe*\n")
    tree.add_user("anchor")
    tree.add_group("team", [odd])
    tree.add_group("other", [f"uid=anchor,{tree.people}"])
    token = initial_token(config, settle_seconds=0)
    mirror = Mirror.of(read_directory(config).snapshot)
    server.modify(f"dn: {odd}\nchangetype: modify\nreplace: mail\nmail: j@example.com\n")
    changes = read_changes(config, token, settle_seconds=0)
    [(user_id, parents)] = changes.listed_by.items()
    assert {g.name for g in mirror.groups.values() if g.external_id in parents} == {"team"}
    mirror.apply(changes)
    assert mirror.view() == full_view(config)


@pytest.mark.parametrize("deletions", ["auto", DELETIONS_PRESENT])
def test_an_entry_that_stops_being_a_user_is_gone(deletions: str, ldap_tree: LdapTree,
                                                  directory_config: MakeConfig) -> None:
    tree, server = ldap_tree, ldap_tree.server
    config = tree_config(directory_config, tree)
    tree.add_user("anchor")
    server.load_ldif(f"dn: cn=Named By Cn,{tree.people}\nobjectClass: inetOrgPerson\n"
                     "cn: Named By Cn\nsn: C\nuid: bycn\n")
    tree.add_group("team", [f"cn=Named By Cn,{tree.people}"])
    token = initial_token(config, settle_seconds=0)
    mirror = Mirror.of(read_directory(config).snapshot)
    assert "bycn" in {u.name for u in mirror.users.values()}
    bycn_id = next(i for i, u in mirror.users.items() if u.name == "bycn")
    server.modify(f"dn: cn=Named By Cn,{tree.people}\nchangetype: modify\ndelete: uid\n")
    changes = read_changes(config, token, deletions=deletions, settle_seconds=0)
    assert bycn_id in changes.deleted_ids  # still in the base, but no longer a usable user
    assert [s.dn for s in changes.diagnostics.skipped] == [f"cn=Named By Cn,{tree.people}"]
    if changes.present_user_ids is not None:
        assert bycn_id not in changes.present_user_ids
    mirror.apply(changes)
    assert mirror.view() == full_view(config)


@pytest.mark.parametrize("membership", ["memberUid", "uniqueMember"])
def test_other_membership_types(membership: str, ldap_tree: LdapTree,
                                directory_config: MakeConfig) -> None:
    tree, server = ldap_tree, ldap_tree.server
    config = directory_config(user_base_dn=tree.people, group_base_dn=tree.groups,
                              membership=membership)
    alice = tree.add_user("alice")
    if membership == "memberUid":
        server.load_ldif(f"dn: cn=devs,{tree.groups}\nobjectClass: posixGroup\ncn: devs\n"
                         "gidNumber: 5000\nmemberUid: ALICE\nmemberUid: nobody-yet\n")
    else:
        server.load_ldif(f"dn: cn=devs,{tree.groups}\nobjectClass: groupOfUniqueNames\n"
                         f"cn: devs\nuniqueMember: {alice}\n"
                         f"uniqueMember: uid=nobody-yet,{tree.people}\n")
    tree.add_user("bob")  # the token's mark re-reads the last write; let that not be devs
    token = initial_token(config, settle_seconds=0)
    mirror = Mirror.of(read_directory(config).snapshot)
    tree.add_user("nobody-yet")  # listed before it existed
    server.modrdn(alice, "uid=alice2")  # memberUid ALICE no longer names anyone
    time.sleep(0.05)
    changes = read_changes(config, token, settle_seconds=0)
    # devs now lists nobody-yet; refint rewrote the uniqueMember value of alice, but nothing
    # rewrites memberUid ALICE.
    assert changes.diagnostics.listings == (1 if membership == "memberUid" else 2)
    mirror.apply(changes)
    assert mirror.view() == full_view(config)


def test_member_values_come_from_the_log(ldap_tree: LdapTree,
                                          directory_config: MakeConfig) -> None:
    tree, server = ldap_tree, ldap_tree.server
    config = tree_config(directory_config, tree)
    people = [tree.add_user(f"u{i}") for i in range(40)]
    everyone = tree.add_group("everyone", people[:30])
    few = tree.add_group("few", people[:2])
    token = initial_token(config, settle_seconds=0)
    mirror = Mirror.of(read_directory(config).snapshot)

    server.modify(f"dn: {everyone}\nchangetype: modify\nadd: member\nmember: {people[30]}\n-\n"
                  f"delete: member\nmember: {people[0].upper()}\n-\nreplace: description\n"
                  "description: all of us\n")
    server.modify(f"dn: {few}\nchangetype: modify\nreplace: member\nmember: {people[5]}\n")
    changes = read_changes(config, token, settle_seconds=0, held=mirror.held)
    mirror.apply(changes)
    assert mirror.view() == full_view(config)
    everyone_id, few_id = tree.entry_uuid(everyone), tree.entry_uuid(few)
    # everyone's list was not read: only the two values the log names; a replace is read.
    assert set(changes.member_deltas) == {everyone_id}
    assert set(changes.group_members) == {few_id}
    assert changes.diagnostics.entries_read < 10
    assert "1 member lists changed by logged values (0 values checked), 1 read whole" in (
        changes.diagnostics.summary())

    # A value removed and added again in the window: the server says where it stands.
    for change in ("delete", "add"):
        server.modify(f"dn: {everyone}\nchangetype: modify\n{change}: member\n"
                      f"member: {people[7]}\n")
    token = changes.next_token
    changes = read_changes(config, token, settle_seconds=0, held=mirror.held)
    mirror.apply(changes)
    assert mirror.view() == full_view(config)
    assert set(changes.member_deltas) == {everyone_id}
    assert changes.diagnostics.member_checks == 1

    # A group the mirror does not hold (it came into the scope some other way) is read whole.
    server.modify(f"dn: {everyone}\nchangetype: modify\nadd: member\nmember: {people[31]}\n")
    again = read_changes(config, changes.next_token, settle_seconds=0,
                         held=lambda kind, ids: {})
    assert not again.member_deltas and everyone_id in again.group_members


def quietly(server: SlapdServer, ldif: str) -> None:
    """A write no incremental read can see, as refint's rewrites are: no new entryCSN
    (lastmod off) and no accesslog record (the overlay disabled) while it runs."""
    database = "olcDatabase={1}mdb,cn=config"
    log = f"olcOverlay={{4}}accesslog,{database}"
    server.modify_config(f"dn: {database}\nchangetype: modify\nreplace: olcLastMod\n"
                         f"olcLastMod: FALSE\n\ndn: {log}\nchangetype: modify\n"
                         "replace: olcDisabled\nolcDisabled: TRUE\n")
    try:
        server.modify(ldif)
    finally:
        server.modify_config(f"dn: {database}\nchangetype: modify\nreplace: olcLastMod\n"
                             f"olcLastMod: TRUE\n\ndn: {log}\nchangetype: modify\n"
                             "replace: olcDisabled\nolcDisabled: FALSE\n")


@pytest.mark.parametrize("deletions", ["auto", DELETIONS_PRESENT])
@pytest.mark.parametrize("renamed", ["entry", "container"])
def test_a_rename_is_looked_up_again_while_it_settles(renamed: str, deletions: str,
                                                       changelog_slapd: SlapdServer,
                                                       directory_config: MakeConfig) -> None:
    server = changelog_slapd
    config = directory_config(server)
    sub = f"ou=sub,ou=people,{SUFFIX}"
    old = f"uid=late,{sub}"
    new = f"uid=late2,{sub}" if renamed == "entry" else f"uid=late,ou=sub2,ou=people,{SUFFIX}"
    team = f"cn=late-team,ou=groups,{SUFFIX}"
    server.load_ldif(f"dn: {sub}\nobjectClass: organizationalUnit\nou: sub\n\n"
                     f"dn: {old}\nobjectClass: inetOrgPerson\nuid: late\ncn: L\nsn: L\n\n"
                     f"dn: {team}\nobjectClass: groupOfNames\ncn: late-team\nmember: {old}\n")
    # The first window reaches `settle` back; the server's accesslog must be older than that.
    settle = 3.0
    time.sleep(settle + 0.5)
    token = initial_token(config, settle_seconds=settle)
    mirror = Mirror.of(read_directory(config).snapshot)

    def team_edges() -> list[tuple[str, str]]:
        return [edge for edge in mirror.view()[2] if edge[0] == "late-team"]

    def state() -> tuple[list[str], str, int]:
        [(_, group)] = server.search(team, attributes=["member", "entryCSN"], scope="base")
        return (group["member"], group["entrycsn"][0],
                len(server.search(ACCESSLOG_SUFFIX, "(reqType=*)", ["reqType"])))

    if renamed == "entry":
        server.modrdn(old, "uid=late2")
    else:  # everything below moves with it, and nothing below gets a record
        server.modrdn(sub, "ou=sub2")
    deadline = time.monotonic() + 5
    while state()[0] != [new] and time.monotonic() < deadline:
        time.sleep(0.01)  # refint's background task
    # As if refint had not got to the team yet, then did after the first incremental read.
    _, csn, records = state()
    quietly(server, f"dn: {team}\nchangetype: modify\nreplace: member\nmember: {old}\n")
    assert state() == ([old], csn, records)  # invisible, as refint's rewrites are
    first = read_changes(config, token, deletions=deletions, settle_seconds=settle,
                         held=mirror.held)
    mirror.apply(first)
    assert mirror.view() == full_view(config) and team_edges() == []
    quietly(server, f"dn: {team}\nchangetype: modify\nreplace: member\nmember: {new}\n")
    second = read_changes(config, first.next_token, deletions=deletions,
                          settle_seconds=settle, held=mirror.held)
    mirror.apply(second)
    # The mirror holds late2 under its new DN now, but a rename in the window is looked up
    # again every round: refint may not have finished at the first lookup. The log says
    # which entries were renamed; without it, the token carries them from round to round.
    assert second.deletions == (DELETIONS_ACCESSLOG if deletions == "auto" else deletions)
    assert mirror.view() == full_view(config)
    assert team_edges() == [("late-team", "late2" if renamed == "entry" else "late")]


# -- refusals and failures --------------------------------------------------------------------


def test_nothing_written_means_one_search(ldap_tree: LdapTree,
                                          directory_config: MakeConfig) -> None:
    config = tree_config(directory_config, ldap_tree)
    ldap_tree.add_user("alice")
    token = initial_token(config, settle_seconds=0)
    first = read_changes(config, token, settle_seconds=0)  # re-reads the last write (>=)
    second = read_changes(config, first.next_token, settle_seconds=0)
    assert second.deletions == DELETIONS_NONE and second.empty
    # The two bases and their parents up to the suffix holding contextCSN, each read once
    # (ou=people, ou=groups, ou=t-..., dc=example,dc=com): nothing else.
    assert second.diagnostics.searches == 4
    assert second.next_token == first.next_token


def test_settling_changes_are_read_again(ldap_tree: LdapTree,
                                         directory_config: MakeConfig) -> None:
    config = tree_config(directory_config, ldap_tree)
    token = initial_token(config, settle_seconds=0.3)
    ldap_tree.add_user("alice")
    first = read_changes(config, token, settle_seconds=0.3)
    assert [u.name for u in first.changed_users] == ["alice"]
    again = read_changes(config, first.next_token, settle_seconds=0.3)
    assert [u.name for u in again.changed_users] == ["alice"]  # not settled yet: again
    time.sleep(0.35)
    settled = read_changes(config, again.next_token, settle_seconds=0.3)
    assert [u.name for u in settled.changed_users] == ["alice"]  # the last look
    quiet = read_changes(config, settled.next_token, settle_seconds=0.3)
    assert quiet.deletions == DELETIONS_NONE and quiet.empty


def test_token_from_another_server(ldap_tree: LdapTree, changelog_slapd: SlapdServer,
                                   directory_config: MakeConfig) -> None:
    config = tree_config(directory_config, ldap_tree)
    token = initial_token(config)
    other = directory_config(changelog_slapd, user_base_dn=ldap_tree.people,
                             group_base_dn=ldap_tree.groups, user_filter=USER_FILTER,
                             group_filter=GROUP_FILTER)
    with pytest.raises(errors.FullSyncRequired, match="token was taken from ldap://"):
        read_changes(other, token)


def test_configuration_change(ldap_tree: LdapTree, directory_config: MakeConfig) -> None:
    ldap_tree.add_user("alice")
    token = initial_token(tree_config(directory_config, ldap_tree))
    changed = tree_config(directory_config, ldap_tree, user_filter="(employeeType=staff)")
    with pytest.raises(errors.FullSyncRequired, match="configuration"):
        read_changes(changed, token)
    # Connection settings are not part of it.
    same = tree_config(directory_config, ldap_tree, page_size=7, operation_timeout=9)
    read_changes(same, token)


@pytest.mark.parametrize("text", ["", "{", '{"v": 99}', '{"v": 1, "method": "magic"}',
                                  '{"v": 1, "method": "openldap-contextcsn"}'])
def test_unusable_tokens(text: str, directory_config: MakeConfig) -> None:
    with pytest.raises(errors.FullSyncRequired, match="token cannot be used"):
        read_changes(directory_config(), text)


def test_member_of_mode_is_refused(directory_config: MakeConfig) -> None:
    config = directory_config(membership="memberOf")
    token = initial_token(config)
    assert parse_token("corp", token).method == METHOD_NONE
    with pytest.raises(errors.FullSyncRequired, match="memberOf"):
        read_changes(config, token)


def test_without_syncprov_every_sync_is_full(private_slapd: SlapdServer,
                                             directory_config: MakeConfig) -> None:
    config = directory_config(private_slapd)
    token = initial_token(config)
    with pytest.raises(errors.FullSyncRequired, match="syncprov"):
        read_changes(config, token)


def test_without_accesslog_deletions_come_from_the_scan(syncprov_slapd: SlapdServer,
                                                        directory_config: MakeConfig) -> None:
    config = directory_config(syncprov_slapd)
    token = initial_token(config, settle_seconds=0)
    mirror = Mirror.of(read_directory(config).snapshot)
    syncprov_slapd.delete(f"uid=bob,ou=people,{SUFFIX}")
    syncprov_slapd.modify(f"dn: cn=staff,ou=groups,{SUFFIX}\nchangetype: modify\n"
                          "replace: description\ndescription: changed\n")
    time.sleep(0.05)
    changes = read_changes(config, token, settle_seconds=0, held=mirror.held)
    assert changes.deletions == DELETIONS_PRESENT
    assert "no accesslog" in changes.diagnostics.why_scan
    # With no log in sight the changed groups come with their member lists, in one search.
    assert changes.group_members and changes.diagnostics.member_lists == 0
    mirror.apply(changes)
    assert mirror.view() == full_view(config)


def test_an_accesslog_younger_than_the_token_is_not_used(syncprov_slapd: SlapdServer,
                                                         directory_config: MakeConfig) -> None:
    config = directory_config(syncprov_slapd)
    token = initial_token(config, settle_seconds=0)
    mirror = Mirror.of(read_directory(config).snapshot)
    syncprov_slapd.delete(f"uid=bob,ou=people,{SUFFIX}")  # before the log exists
    # Switch the log on now, online: it cannot know what happened before.
    syncprov_slapd.modify_config("dn: cn=module{0},cn=config\nchangetype: modify\n"
                                 "add: olcModuleLoad\nolcModuleLoad: accesslog\n")
    syncprov_slapd.modify_config(
        "dn: olcDatabase={2}mdb,cn=config\nobjectClass: olcDatabaseConfig\n"
        f"objectClass: olcMdbConfig\nolcDatabase: {{2}}mdb\nolcSuffix: {ACCESSLOG_SUFFIX}\n"
        f"olcDbDirectory: {syncprov_slapd.base_dir}/log\nolcRootDN: cn=admin,{SUFFIX}\n"
        "olcDbIndex: entryCSN eq\nolcAccess: to * by * read\n", add=True)
    syncprov_slapd.modify_config(
        "dn: olcOverlay=accesslog,olcDatabase={1}mdb,cn=config\n"
        "objectClass: olcOverlayConfig\nobjectClass: olcAccessLogConfig\n"
        f"olcOverlay: accesslog\nolcAccessLogDB: {ACCESSLOG_SUFFIX}\nolcAccessLogOps: writes\n"
        "olcAccessLogSuccess: TRUE\n", add=True)
    syncprov_slapd.delete(f"uid=carol,ou=people,{SUFFIX}")
    changes = read_changes(config, token, settle_seconds=0)
    assert changes.deletions == DELETIONS_PRESENT
    assert "does not reach back" in changes.diagnostics.why_scan
    mirror.apply(changes)
    assert mirror.view() == full_view(config)


def test_slapd_stopped_in_the_middle(changelog_slapd: SlapdServer,
                                     directory_config: MakeConfig) -> None:
    config = directory_config(changelog_slapd, page_size=1)
    token = initial_token(config, settle_seconds=0)
    for uid in ("x1", "x2", "x3"):
        changelog_slapd.load_ldif(f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: "
                                  f"inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n")

    def stop_after_first_entry(phase: str, entries: int) -> None:
        if entries:
            changelog_slapd.stop()

    with pytest.raises(errors.DirectoryUnreachable):
        read_changes(config, token, stop_after_first_entry, settle_seconds=0)
    changelog_slapd.start()
    assert {u.name for u in read_changes(config, token, settle_seconds=0).changed_users} == {
        "x1", "x2", "x3"}


@pytest.mark.parametrize("deletions", ["auto", DELETIONS_PRESENT])
def test_a_partial_read_is_an_error(ldap_tree: LdapTree, directory_config: MakeConfig,
                                    deletions: str) -> None:
    config = tree_config(directory_config, ldap_tree)
    for uid in ("a", "b"):
        ldap_tree.add_user(uid)
    token = initial_token(config)
    limited = tree_config(directory_config, ldap_tree, bind_dn=LIMITED_DN,
                          password=LIMITED_PASSWORD)
    # Few changes, but the settle window and the id scan read more than the account may.
    for uid in ("c", "d", "e", "f"):
        ldap_tree.add_user(uid)
    with pytest.raises(errors.LimitExceeded):
        read_changes(limited, token, deletions=deletions)


def test_an_id_scan_that_finds_no_user_is_an_error(ldap_tree: LdapTree,
                                                   directory_config: MakeConfig) -> None:
    # What a lost read ACL looks like: success, and nothing. The id scan tells the store what
    # to delete, so it refuses this exactly as the full read does.
    config = tree_config(directory_config, ldap_tree)
    alice = ldap_tree.add_user("alice")
    token = initial_token(config)
    ldap_tree.server.modify(f"dn: {alice}\nchangetype: modify\nadd: employeeType\n"
                            "employeeType: excluded\n")
    with pytest.raises(errors.UnexpectedEmptyResult, match="found no entries"):
        read_changes(config, token, deletions=DELETIONS_PRESENT)


def test_progress_and_diagnostics(ldap_tree: LdapTree, directory_config: MakeConfig) -> None:
    config = tree_config(directory_config, ldap_tree, page_size=1)
    token = initial_token(config, settle_seconds=0)
    for uid in ("a", "b", "c"):
        ldap_tree.add_user(uid)
    calls: list[tuple[str, int]] = []
    changes = read_changes(config, token, lambda p, n: calls.append((p, n)),
                           settle_seconds=0)
    assert calls[0] == ("changes", 0) and ("changes", 3) in calls
    d = changes.diagnostics
    assert d.entries_read >= 3 and d.searches >= 3 and d.log_records >= 3
    assert "deletions by accesslog" in d.summary()
    assert changes.seconds < 5 and changes.started_at.tzinfo is not None


def test_the_directory_settle_setting_is_used(ldap_tree: LdapTree,
                                              directory_config: MakeConfig) -> None:
    # settle_seconds from the configuration decides the window when the caller passes none.
    config = tree_config(directory_config, ldap_tree, settle_seconds=0)
    token = initial_token(config)
    assert parse_token("x", token).pending_since is None  # nothing left pending
    ldap_tree.add_user("settled")
    first = read_changes(config, token)
    assert {u.name for u in first.changed_users} == {"settled"}
    assert parse_token("x", first.next_token).pending_since is None
    default = tree_config(directory_config, ldap_tree)
    assert parse_token("x", initial_token(default)).pending_since is not None

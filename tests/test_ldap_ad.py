"""dirsync's LDAP layer against Active Directory — Samba's AD DC — with the
`active_directory` preset: full reads (objectGUID identity, nested groups with a cycle,
escaped DNs, renames, continuation references at the domain root), a group with more members
than AD's MaxValRange, userAccountControl, login by bind (sub-code 533), the probe, and the
attributes an incremental sync will poll (uSNChanged, highestCommittedUSN, invocationID).

The server is tests/samba_ad.py's SambaAdServer (domain EXAMPLE.TEST, seeded from
fixtures/ldap/ad/ plus OU=bulk), one per test run. Tests that write use a private OU
(`ad_tree`); tests that stop the server bring it back. A missing Samba skips locally and
fails under CI=true.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from test_ldap_changes import Mirror, full_view
from test_mirror_incremental import assert_like_a_full_sync

from dirsync.ldap import errors, probe
from dirsync.ldap.changes import DELETIONS_NONE, DELETIONS_PRESENT, initial_token, read_changes
from dirsync.ldap.bind import BindOutcome, PasswordChecker, close_checkers
from dirsync.ldap.config import DirectoryConfig, parse_directories
from dirsync.ldap.connection import bound
from dirsync.ldap.paging import complete_ranges, read_entry, search_pages
from dirsync.ldap.read import read_directory
from dirsync.ldap.watermark import METHOD_AD_USN
from dirsync.model import Snapshot
from dirsync.store.db import Store
from dirsync.sync.mirror import sync_directory
from samba_ad import (
    BULK,
    BULK_GROUP,
    BULK_USERS,
    GROUPS,
    PEOPLE,
    SUFFIX,
    SYNC_DN,
    SYNC_PASSWORD,
    SambaAdServer,
)
from servers import MissingServer, ServerError, skip_or_fail

PASSWORD_ENV = "DIRSYNC_TEST_AD_BIND_PASSWORD"
ALICE = f"CN=Alice Adams,{PEOPLE}"
DAVE = f"CN=Dave Dunn,{PEOPLE}"  # userAccountControl 514: disabled
ERIN = f"CN=Erin Evans,{PEOPLE}"  # userAccountControl 66048: enabled, other bits set
MAX_VAL_RANGE = 1500  # Windows Server 2003 and later

SEED_USERS = {
    "alice", "bob", "carol", "dave", "erin",  # org.ldif (stranger is under OU=outside)
    "jdoe", "plus-sign", "quoted", "backslash", "semicolon", "hash", "star(paren)", "UPPER",
    "jörg",  # escaping.ldif
}
CYCLE = {("cycle-a", "cycle-b"), ("cycle-b", "cycle-c"), ("cycle-c", "cycle-a")}
DIAMOND = {("diamond-top", "diamond-left"), ("diamond-top", "diamond-right"),
           ("diamond-left", "diamond-bottom"), ("diamond-right", "diamond-bottom")}
CHAIN = {("chain-1", "chain-2"), ("chain-2", "chain-3"), ("chain-3", "chain-4")}

MakeConfig = Callable[..., DirectoryConfig]

# -- fixtures --------------------------------------------------------------------------------

_shared: SambaAdServer | None = None
# Why the shared server could not be started, so that the other tests fail at once instead
# of each provisioning a domain again.
_failed: str | None = None


@pytest.fixture
def samba_ad() -> SambaAdServer:
    """The shared, seeded domain controller (started on first use, closed by its atexit
    hook)."""
    global _shared, _failed
    if _failed:
        pytest.fail(_failed, pytrace=False)
    if _shared is None or _shared.base_dir is None:
        try:
            server = SambaAdServer()
        except MissingServer as exc:
            skip_or_fail(str(exc))  # Samba's AD DC installs and runs in CI
        try:
            server.start()
        except BaseException as exc:
            server.close()
            _failed = f"Samba's AD DC did not start earlier in this run: {exc}"
            raise
        _shared = server
    _shared.ensure_running()
    return _shared


@pytest.fixture
def ad_config(samba_ad: SambaAdServer) -> Iterator[MakeConfig]:
    """Factory of DirectoryConfig with the active_directory preset reading the seed as
    svc-sync; `keys` override (or, with None, remove) [[directories]] keys."""

    def make(*, password: str = SYNC_PASSWORD, **keys: Any) -> DirectoryConfig:
        table: dict[str, Any] = {
            "name": "ad",
            "preset": "active_directory",
            "urls": [samba_ad.url],
            "bind_dn": SYNC_DN,
            "bind_password_env": PASSWORD_ENV,
            "user_base_dn": PEOPLE,
            "group_base_dn": GROUPS,
            "connect_timeout": 2,
            "operation_timeout": 10,
        }
        table.update(keys)
        table = {k: v for k, v in table.items() if v is not None}
        return parse_directories([table], {PASSWORD_ENV: password})[0]

    yield make
    close_checkers()


@dataclass
class Tree:
    """A private OU `OU=t-<hex>,DC=example,DC=test` of the shared server for one test."""

    server: SambaAdServer
    base: str

    def add_ou(self, name: str) -> str:
        dn = f"OU={name},{self.base}"
        self.server.load_ldif(f"dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n")
        return dn

    def add_user(self, name: str, *, ou: str | None = None, uac: int = 512) -> str:
        dn = f"CN={name},{ou or self.base}"
        self.server.load_ldif(
            f"dn: {dn}\nobjectClass: user\nsAMAccountName: {name}\n"
            f"unicodePwd: {name}-password\nuserAccountControl: {uac}\n")
        return dn

    def add_group(self, name: str, members: list[str], *, ou: str | None = None) -> str:
        dn = f"CN={name},{ou or self.base}"
        lines = "".join(f"member: {m}\n" for m in members)
        self.server.load_ldif(f"dn: {dn}\nobjectClass: group\nsAMAccountName: {name}\n{lines}")
        return dn

    def set_uac(self, dn: str, value: int) -> None:
        self.server.modify(f"dn: {dn}\nchangetype: modify\nreplace: userAccountControl\n"
                           f"userAccountControl: {value}\n")


@pytest.fixture
def ad_tree(samba_ad: SambaAdServer) -> Iterator[Tree]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    base = f"OU={name},{SUFFIX}"
    samba_ad.load_ldif(f"dn: {base}\nobjectClass: organizationalUnit\nou: {name}\n")
    try:
        yield Tree(samba_ad, base)
    finally:
        samba_ad.ensure_running()
        samba_ad.delete(base, recursive=True)


def names(snapshot: Snapshot) -> tuple[set[str], set[str]]:
    return {u.name for u in snapshot.users}, {g.name for g in snapshot.groups}


# -- the harness ---------------------------------------------------------------------------


def test_harness_serves_the_seeded_domain_on_loopback(samba_ad: SambaAdServer) -> None:
    assert samba_ad.url.startswith("ldap://127.0.0.1:")
    # Set-up time of this server (template from the cache or built, copy, start), for CI.
    assert samba_ad.setup_seconds < 60
    [(_, alice)] = samba_ad.search(ALICE, attributes=["sAMAccountName", "objectGUID"],
                                   scope="base", bind_dn=SYNC_DN, password=SYNC_PASSWORD)
    assert alice["samaccountname"] == ["alice"] and len(alice["objectguid"]) == 1
    [(_, big)] = samba_ad.search(BULK_GROUP, attributes=["member"], scope="base")
    assert len(big["member"]) == BULK_USERS > MAX_VAL_RANGE


# -- full reads ----------------------------------------------------------------------------


def test_full_read_of_the_seed(samba_ad: SambaAdServer, ad_config: MakeConfig) -> None:
    result = read_directory(ad_config(page_size=5))
    users, groups = names(result.snapshot)
    assert users == SEED_USERS
    assert {"staff", "admins", "Sales, EMEA", "all-sales", "cycle-a", "diamond-top",
            "Forschung & Entwicklung – München", "chain-1", "chain-4"} <= groups
    by_name = {u.name: u for u in result.snapshot.users}
    # Identity: objectGUID in its usual string form (the little-endian layout AD shows).
    assert by_name["alice"].external_id == samba_ad.object_guid(ALICE)
    assert by_name["alice"].dn == ALICE
    assert by_name["jdoe"].dn == f"CN=Doe\\, John,{PEOPLE}"
    assert (by_name["alice"].first_name, by_name["alice"].last_name,
            by_name["alice"].display_name, by_name["alice"].email) == (
        "Alice", "Adams", "Alice Adams", "alice@example.com")
    assert by_name["jörg"].last_name == "Größer"
    # userAccountControl: bit 2 disables (dave, 514); other bits do not (erin, 66048).
    assert (by_name["dave"].active, by_name["erin"].active, by_name["alice"].active) == (
        False, True, True)
    assert len({u.external_id for u in result.snapshot.users}) == len(SEED_USERS)
    by_group = {g.name: g for g in result.snapshot.groups}
    assert by_group["staff"].external_id == samba_ad.object_guid(f"CN=staff,{GROUPS}")
    assert result.diagnostics.members_out_of_scope.count == 1  # CN=Stranger,OU=outside


def test_escaped_member_dns_resolve(ad_config: MakeConfig) -> None:
    # AD stores member as links and returns each as the member's own DN, in Samba's escaping
    # style (CN=Doe\, John, CN=semi\3Bcolon), whatever form was written.
    result = read_directory(ad_config())
    sales = {u for g, u in result.snapshot.user_memberships if g == "sales, emea"}
    assert sales == {"jdoe", "plus-sign", "quoted", "backslash", "semicolon", "hash",
                     "star(paren)", "upper", "jörg"}
    assert ("all-sales", "sales, emea") in result.snapshot.group_memberships
    assert ("forschung & entwicklung – münchen", "jörg") in result.snapshot.user_memberships
    assert result.diagnostics.members_unresolvable.count == 0


def test_nesting_cycle_diamond_and_chain(ad_config: MakeConfig) -> None:
    snapshot = read_directory(ad_config()).snapshot
    assert CYCLE | DIAMOND | CHAIN <= snapshot.group_memberships
    assert {("cycle-a", "bob"), ("cycle-b", "carol"), ("cycle-c", "erin"),
            ("diamond-bottom", "alice"), ("chain-4", "carol")} <= snapshot.user_memberships


def test_member_of_mode_gives_the_same_memberships(ad_config: MakeConfig) -> None:
    # AD's memberOf is direct (unlike 389's): read from either side, the edges agree.
    by_member = read_directory(ad_config()).snapshot
    by_member_of = read_directory(ad_config(membership="memberOf")).snapshot
    assert by_member_of.user_memberships == by_member.user_memberships
    assert by_member_of.group_memberships == by_member.group_memberships


def test_page_size_does_not_change_the_result(ad_config: MakeConfig) -> None:
    def canonical(snapshot: Snapshot) -> tuple[object, ...]:
        return (sorted(map(repr, snapshot.users)), sorted(map(repr, snapshot.groups)),
                sorted(snapshot.user_memberships), sorted(snapshot.group_memberships))

    assert canonical(read_directory(ad_config(page_size=1)).snapshot) == canonical(
        read_directory(ad_config(page_size=1000)).snapshot)


def test_reading_from_the_domain_root(ad_config: MakeConfig) -> None:
    # From the domain root a subtree search meets a continuation reference to the
    # Configuration partition; the preset skips it (and counts it), "fail" refuses it.
    result = read_directory(ad_config(base_dn=SUFFIX, user_base_dn=None, group_base_dn=None))
    assert result.references_ignored >= 1
    by_name = {u.name: u for u in result.snapshot.users}
    assert SEED_USERS | {"stranger", "svc-sync", "Administrator"} <= set(by_name)
    assert len([n for n in by_name if n.startswith("bulk-")]) == BULK_USERS
    assert "DC1$" not in by_name  # a computer is objectClass=user but not a person
    assert not by_name["Guest"].active and not by_name["krbtgt"].active
    groups = {g.name for g in result.snapshot.groups}
    assert {"Domain Users", "Domain Admins", "big", "staff"} <= groups
    with pytest.raises(errors.ReferralNotFollowed, match="Configuration"):
        read_directory(ad_config(base_dn=SUFFIX, user_base_dn=None, group_base_dn=None,
                                 continuation_references="fail"))


def test_a_group_larger_than_max_val_range(ad_config: MakeConfig) -> None:
    # 1600 members. Samba returns them all to a plain `member` read (it never forces range
    # retrieval, unlike Windows); the read must resolve every one.
    result = read_directory(ad_config(user_base_dn=BULK, group_base_dn=BULK))
    assert len(result.snapshot.users) == BULK_USERS
    big = {u for g, u in result.snapshot.user_memberships if g == "big"}
    assert len(big) == BULK_USERS
    assert result.diagnostics.members_out_of_scope.count == 0


def test_range_retrieval_against_a_real_ranged_reply(samba_ad: SambaAdServer,
                                                     ad_config: MakeConfig) -> None:
    # Samba does answer ranged requests as AD does: `member;range=0-1499` gives the first
    # 1500 values under that very attribute description. Starting from such a first part,
    # dirsync's range loop must fetch `member;range=1500-*` and end with all 1600.
    [(_, first)] = samba_ad.search(BULK_GROUP, attributes=[f"member;range=0-{MAX_VAL_RANGE - 1}"],
                                   scope="base")
    [(ranged, values)] = first.items()
    assert ranged == f"member;range=0-{MAX_VAL_RANGE - 1}" and len(values) == MAX_VAL_RANGE
    config = ad_config()
    with bound(config) as conn:
        merged = complete_ranges(conn, config, BULK_GROUP,
                                 {ranged: [v.encode("utf-8") for v in values]})
    assert set(merged) == {"member"}
    assert len(merged["member"]) == len(set(merged["member"])) == BULK_USERS
    [(_, whole)] = samba_ad.search(BULK_GROUP, attributes=["member"], scope="base")
    assert {v.decode("utf-8") for v in merged["member"]} == set(whole["member"])


def test_rename_and_move_keep_the_object_guid(ad_tree: Tree, ad_config: MakeConfig) -> None:
    # sAMAccountName is unique in the whole domain: names the seed does not use.
    people, groups = ad_tree.add_ou("people"), ad_tree.add_ou("groups")
    config = ad_config(user_base_dn=ad_tree.base, group_base_dn=groups)
    ann = ad_tree.add_user("ann", ou=people)
    ad_tree.add_user("ben", ou=people)
    team = ad_tree.add_group("team", [ann], ou=groups)
    before = read_directory(config).snapshot
    ids = {u.name: u.external_id for u in before.users}
    [team_before] = before.groups
    assert ids["ann"] == ad_tree.server.object_guid(ann)

    elsewhere = ad_tree.add_ou("elsewhere")
    ad_tree.server.modrdn(ann, "CN=Ann Renamed", new_superior=elsewhere)
    ad_tree.server.modrdn(team, "CN=team-renamed")
    after = read_directory(config).snapshot
    moved = {u.external_id: u for u in after.users}[ids["ann"]]
    # The username is sAMAccountName, which a rename leaves alone; the DN follows.
    assert (moved.name, moved.dn) == ("ann", f"CN=Ann Renamed,{elsewhere}")
    [renamed] = after.groups
    assert (renamed.external_id, renamed.name) == (team_before.external_id, "team-renamed")
    assert after.user_memberships == {("team-renamed", "ann")}  # AD links follow renames


# -- reads that must fail ------------------------------------------------------------------


def test_anonymous_reads_fail_rather_than_come_back_empty(ad_config: MakeConfig) -> None:
    # AD lets anyone bind anonymously but refuses their searches (operationsError).
    config = ad_config(bind_dn=None, bind_password_env=None)
    with pytest.raises(errors.DirectoryOperationFailed, match="without authentication"):
        read_directory(config)
    results = probe.test_directory(config)
    assert results[-1].check == "search" and results[-1].status == "failed"
    assert "without authentication" in results[-1].message


def test_a_missing_base_dn_is_an_error(ad_config: MakeConfig) -> None:
    with pytest.raises(errors.BaseDnMissing, match="OU=nowhere"):
        read_directory(ad_config(user_base_dn=f"OU=nowhere,{SUFFIX}"))


def test_a_stopped_server_is_unreachable(samba_ad: SambaAdServer,
                                         ad_config: MakeConfig) -> None:
    config = ad_config()
    samba_ad.stop()
    try:
        with pytest.raises(errors.DirectoryUnreachable, match="no server could be reached"):
            read_directory(config)
    finally:
        samba_ad.start()
    assert read_directory(config).snapshot.users


# -- login by bind -------------------------------------------------------------------------


@pytest.fixture
def checker(ad_config: MakeConfig) -> Iterator[PasswordChecker]:
    checker = PasswordChecker(ad_config())
    yield checker
    checker.close()


@pytest.mark.parametrize(("dn", "password", "outcome"), [
    (ALICE, "alice-password", BindOutcome.OK),
    (ALICE, "Alice-password", BindOutcome.INVALID),  # AD: data 52e
    (ALICE, "", BindOutcome.INVALID),
    (f"CN=Nobody,{PEOPLE}", "whatever", BindOutcome.INVALID),
    (f"CN=Stranger,OU=outside,{SUFFIX}", "stranger-password", BindOutcome.INVALID),
    # Disabled: the right password is refused with data 533, a wrong one with 52e; both
    # are INACTIVE (the second through the userAccountControl read after the refusal).
    (DAVE, "dave-password", BindOutcome.INACTIVE),
    (DAVE, "wrong", BindOutcome.INACTIVE),
    (ERIN, "erin-password", BindOutcome.OK),
    # Escaped DNs, in Samba's spelling and in others.
    (f"CN=Doe\\, John,{PEOPLE}", "jdoe-password", BindOutcome.OK),
    (f"CN=Doe\\2C John,{PEOPLE}", "jdoe-password", BindOutcome.OK),
    (f"CN=semi\\3Bcolon,{PEOPLE}", "semicolon-password", BindOutcome.OK),
    (f"CN=semi\\;colon,{PEOPLE}", "semicolon-password", BindOutcome.OK),
    (f"CN=star*(paren),{PEOPLE}", "star-password", BindOutcome.OK),
    (f"CN=Jörg Größer,{PEOPLE}", "jörg-password", BindOutcome.OK),
])
def test_bind_outcomes(checker: PasswordChecker, dn: str, password: str,
                       outcome: BindOutcome) -> None:
    assert checker.check(dn, password) is outcome


def test_sub_code_533_alone_means_inactive(ad_config: MakeConfig) -> None:
    # With the disabled flag not configured at all, only the bind's "data 533" can tell.
    checker = PasswordChecker(ad_config(disabled_method="none"))
    try:
        assert checker.check(DAVE, "dave-password") is BindOutcome.INACTIVE
        assert checker.check(DAVE, "wrong") is BindOutcome.INVALID  # 52e, flag not read
        assert checker.check(ALICE, "alice-password") is BindOutcome.OK
    finally:
        checker.close()


def test_disabling_and_enabling_an_account(ad_tree: Tree, ad_config: MakeConfig) -> None:
    dn = ad_tree.add_user("kim")
    config = ad_config(user_base_dn=ad_tree.base)
    checker = PasswordChecker(config)
    try:
        assert checker.check(dn, "kim-password") is BindOutcome.OK
        ad_tree.set_uac(dn, 514)
        assert checker.check(dn, "kim-password") is BindOutcome.INACTIVE
        [kim] = read_directory(config).snapshot.users
        assert kim.active is False
        ad_tree.set_uac(dn, 512)
        assert checker.check(dn, "kim-password") is BindOutcome.OK
    finally:
        checker.close()


def test_a_renamed_user_is_found_by_object_guid(ad_tree: Tree, ad_config: MakeConfig) -> None:
    old_dn = ad_tree.add_user("max")
    guid = ad_tree.server.object_guid(old_dn)
    ad_tree.server.modrdn(old_dn, "CN=Maximilian")
    checker = PasswordChecker(ad_config(user_base_dn=ad_tree.base))
    try:
        assert checker.check(old_dn, "max-password") is BindOutcome.INVALID
        assert checker.check(old_dn, "max-password", external_id=guid) is BindOutcome.OK
        assert checker.check(old_dn, "wrong", external_id=guid) is BindOutcome.INVALID
    finally:
        checker.close()


def test_unavailable_when_stopped_and_back_after_a_restart(samba_ad: SambaAdServer,
                                                          checker: PasswordChecker) -> None:
    assert checker.check(ALICE, "alice-password") is BindOutcome.OK
    samba_ad.stop()
    try:
        assert checker.check(ALICE, "alice-password") is BindOutcome.UNAVAILABLE
        assert checker.check(ALICE, "wrong") is BindOutcome.UNAVAILABLE
        assert checker.check(DAVE, "dave-password") is BindOutcome.UNAVAILABLE
    finally:
        samba_ad.start()
    assert checker.check(ALICE, "alice-password") is BindOutcome.OK
    assert checker.check(ALICE, "wrong") is BindOutcome.INVALID


# -- the probe -----------------------------------------------------------------------------


def summary(results: list[probe.CheckResult]) -> list[tuple[str, str]]:
    return [(r.check, r.status) for r in results]


def test_probe_of_a_good_configuration(ad_config: MakeConfig) -> None:
    results = probe.test_directory(ad_config())
    assert summary(results) == [("connection", "ok"), ("bind", "ok"), ("user base", "ok"),
                                ("group base", "ok"), ("user filter", "ok"),
                                ("group filter", "ok")]
    assert results[4].count == len(SEED_USERS)
    assert results[5].count and results[5].count >= 16


def test_probe_of_a_wrong_password(ad_config: MakeConfig) -> None:
    results = probe.test_directory(ad_config(password="wrong"))
    assert summary(results) == [("connection", "ok"), ("bind", "failed")]
    assert "bind DN or password was refused" in results[1].message


def test_probe_of_a_stopped_server(samba_ad: SambaAdServer, ad_config: MakeConfig) -> None:
    config = ad_config()
    samba_ad.stop()
    try:
        results = probe.test_directory(config)
    finally:
        samba_ad.start()
    assert summary(results) == [("connection", "failed"), ("bind", "skipped")]


# -- what incremental sync will read ---------------------------------------------------------


def _integer(entry: tuple[str, dict[str, list[bytes]]] | None, attribute: str) -> int:
    assert entry is not None
    [value] = entry[1][attribute.lower()]
    return int(value)


def test_usn_and_invocation_id_are_readable_by_the_sync_account(
        ad_tree: Tree, ad_config: MakeConfig) -> None:
    # Microsoft's recipe for polling a DC: remember its invocationID and highestCommittedUSN,
    # then ask for (uSNChanged>=last+1). All of it must be readable by the sync account,
    # through dirsync's own reads.
    dn = ad_tree.add_user("usn")
    config = ad_config()
    with bound(config) as conn:
        root = read_entry(conn, config, "", ["highestCommittedUSN", "dsServiceName"],
                          what="the root DSE")
        assert root is not None
        highest = _integer(root, "highestCommittedUSN")
        [service] = root[1]["dsservicename"]
        ntds = read_entry(conn, config, service.decode("utf-8"), ["invocationId"],
                          what="the DC's NTDS Settings")
        assert ntds is not None
        [invocation_id] = ntds[1]["invocationid"]
        assert len(invocation_id) == 16 and uuid.UUID(bytes_le=invocation_id).int
        before = _integer(read_entry(conn, config, dn, ["uSNChanged"]), "uSNChanged")
        assert before <= highest

        ad_tree.server.modify(f"dn: {dn}\nchangetype: modify\nreplace: description\n"
                              "description: touched\n")
        after = _integer(read_entry(conn, config, dn, ["uSNChanged"]), "uSNChanged")
        now = _integer(read_entry(conn, config, "", ["highestCommittedUSN"]),
                       "highestCommittedUSN")
        assert before < after <= now
        # The poll itself: a paged search for what changed since `before`.
        changed = [dn for page in search_pages(
            conn, config, ad_tree.base, f"(&(objectClass=user)(uSNChanged>={before + 1}))",
            ["uSNChanged"], what="changed users") for dn, _ in page]
        assert changed == [dn]
        # The same invocationID as long as this DC's database is the same.
        again = read_entry(conn, config, service.decode("utf-8"), ["invocationId"])
        assert again is not None and again[1]["invocationid"] == [invocation_id]


# -- incremental reads (uSNChanged, invocationID guard) ----------------------------------------

AD_USER_FILTER = "(&(objectCategory=person)(!(description=excluded)))"
AD_GROUP_FILTER = "(!(description=hidden))"
AD_CHANGE_SEED = int(os.environ.get("DIRSYNC_AD_CHANGE_SEED", "31"))


class AdChanger:
    """Random writes to one private OU of the domain controller (the AD counterpart of
    tests/test_ldap_changes.Changer): users and groups added, deleted, renamed, moved in and
    out of scope, edited, disabled, filtered out; members added and removed, groups nested
    (cycles welcome), containers moved and renamed. AD keeps member values pointing at live
    objects, so there are no dangling members; sAMAccountName is unique in the domain, so
    every name carries the tree's tag."""

    def __init__(self, tree: Tree, seed: int) -> None:
        self.tree, self.server = tree, tree.server
        self.rng = random.Random(seed)
        self.tag = tree.base.split(",", 1)[0][5:9]
        self.serial = 0
        self.people = tree.add_ou("people")
        self.groups = tree.add_ou("groups")
        self.outside = tree.add_ou("outside")
        for parent, name in ((self.people, "p1"), (self.groups, "gsub"), (self.outside, "o1")):
            self.server.load_ldif(f"dn: OU={name},{parent}\nobjectClass: organizationalUnit\n")
        tree.add_user(f"{self.tag}anchor", ou=self.people)
        self.now: list[tuple[str, dict[str, list[str]]]] = []

    def look(self) -> None:
        self.now = self.server.search(self.tree.base, "(objectClass=*)", [
            "objectClass", "member", "description", "userAccountControl"])

    def entries(self, object_class: str) -> list[tuple[str, dict[str, list[str]]]]:
        return [(dn, a) for dn, a in self.now
                if object_class in (c.lower() for c in a.get("objectclass", ()))
                and "anchor" not in dn]

    def containers(self) -> list[str]:
        return [dn for dn, _ in self.entries("organizationalunit") if dn != self.tree.base]

    def movable(self) -> str:
        found = [c for c in self.containers() if c.split(",", 1)[0][3:] in ("p1", "gsub", "o1")
                 or c.startswith("OU=m")]
        if not found:
            raise LookupError("container")
        return self.rng.choice(found)

    def fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{self.tag}{prefix}{self.serial}"

    def pick(self, object_class: str) -> tuple[str, dict[str, list[str]]]:
        found = self.entries(object_class)
        if not found:
            raise LookupError(object_class)
        return self.rng.choice(found)

    def modify(self, dn: str, op: str, attribute: str, *values: str) -> None:
        lines = "".join(f"{attribute}: {v}\n" for v in values)
        self.server.modify(f"dn: {dn}\nchangetype: modify\n{op}: {attribute}\n{lines}")

    def toggle(self, dn: str, attrs: dict[str, list[str]], value: str) -> None:
        if attrs.get("description"):
            self.modify(dn, "delete", "description")
        else:
            self.modify(dn, "add", "description", value)

    # -- operations --------------------------------------------------------------------------
    def add_user(self) -> None:
        roll = self.rng.random()
        parent = (self.people if roll < 0.5 else self.rng.choice(self.containers()))
        dn = self.tree.add_user(self.fresh("u"), ou=parent,
                                uac=514 if self.rng.random() < 0.15 else 512)
        if self.rng.random() < 0.15:
            self.modify(dn, "add", "description", "excluded")

    def delete_user(self) -> None:
        self.server.delete(self.pick("user")[0])

    def rename_user(self) -> None:
        self.server.modrdn(self.pick("user")[0], f"CN={self.fresh('r')}")

    def move_user(self) -> None:
        dn = self.pick("user")[0]
        self.server.modrdn(dn, dn.split(",", 1)[0], self.rng.choice(
            [self.people, *self.containers()]))

    def edit_user(self) -> None:
        attribute = self.rng.choice(["mail", "sn", "displayName", "givenName"])
        self.modify(self.pick("user")[0], "replace", attribute, self.fresh("v"))

    def disable_or_enable(self) -> None:
        dn, attrs = self.pick("user")
        self.tree.set_uac(dn, 512 if attrs.get("useraccountcontrol") == ["514"] else 514)

    def filter_user(self) -> None:
        self.toggle(*self.pick("user"), "excluded")

    def add_group(self) -> None:
        roll = self.rng.random()
        parent = (self.groups if roll < 0.7 else self.outside if roll < 0.85
                  else next((c for c in self.containers() if "OU=gsub" in c), self.groups))
        pool = [dn for dn, _ in self.entries("user") + self.entries("group")]
        members = self.rng.sample(pool, min(self.rng.randint(0, 3), len(pool)))
        dn = self.tree.add_group(self.fresh("g"), members, ou=parent)
        if self.rng.random() < 0.2:
            self.modify(dn, "add", "description", "hidden")

    def delete_group(self) -> None:
        self.server.delete(self.pick("group")[0])

    def rename_group(self) -> None:
        self.server.modrdn(self.pick("group")[0], f"CN={self.fresh('rg')}")

    def move_group(self) -> None:
        dn = self.pick("group")[0]
        self.server.modrdn(dn, dn.split(",", 1)[0], self.rng.choice(
            [self.groups, f"OU=gsub,{self.groups}", self.outside]))

    def add_members(self) -> None:
        dn, attrs = self.pick("group")
        listed = {m.lower() for m in attrs.get("member", [])}
        pool = [d for d, _ in self.entries("user") + self.entries("group")
                if d.lower() not in listed and d != dn]
        if pool:
            self.modify(dn, "add", "member", *self.rng.sample(pool, min(2, len(pool))))

    def nest_group(self) -> None:
        dn, attrs = self.pick("group")
        listed = {m.lower() for m in attrs.get("member", [])}
        others = [g for g, _ in self.entries("group") if g.lower() not in listed and g != dn]
        if others:
            self.modify(dn, "add", "member", self.rng.choice(others))

    def remove_member(self) -> None:
        dn, attrs = self.pick("group")
        if attrs.get("member"):
            self.modify(dn, "delete", "member", self.rng.choice(attrs["member"]))

    def hide_group(self) -> None:
        self.toggle(*self.pick("group"), "hidden")

    def move_container(self) -> None:  # everything below it moves, uSNChanged untouched
        ou = self.movable()
        self.server.modrdn(ou, ou.split(",", 1)[0], self.rng.choice(
            [self.people, self.groups, self.outside]))

    def rename_container(self) -> None:
        self.server.modrdn(self.movable(), f"OU=m{self.fresh('')}")

    OPERATIONS = (
        (add_user, 4), (delete_user, 2), (rename_user, 2), (move_user, 2), (edit_user, 2),
        (disable_or_enable, 1), (filter_user, 1), (add_group, 3), (delete_group, 1),
        (rename_group, 1), (move_group, 1), (add_members, 3), (nest_group, 2),
        (remove_member, 2), (hide_group, 1), (move_container, 2), (rename_container, 2),
    )

    def step(self) -> str:
        self.look()
        operations, weights = zip(*self.OPERATIONS)
        operation = self.rng.choices(operations, weights)[0]
        try:
            operation(self)
        except (ServerError, LookupError, ValueError):
            return f"{operation.__name__} (not possible now)"
        return operation.__name__

    def populate(self, users: int, groups: int) -> None:
        for operation, count in ((AdChanger.add_user, users), (AdChanger.add_group, groups),
                                 (AdChanger.nest_group, groups)):
            for _ in range(count):
                self.look()
                operation(self)

    def batch(self, size: int) -> list[str]:
        return [self.step() for _ in range(size)]


def ad_tree_config(make: MakeConfig, changer: AdChanger, **keys: Any) -> DirectoryConfig:
    table: dict[str, Any] = {"user_base_dn": changer.people, "group_base_dn": changer.groups,
                             "user_filter": AD_USER_FILTER, "group_filter": AD_GROUP_FILTER}
    table.update(keys)
    return make(**table)


def test_incremental_reads_and_syncs_equal_full_ones(ad_tree: Tree, ad_config: MakeConfig,
                                                     tmp_path: Path) -> None:
    # Two followers of the same random batches: a mirror fed by read_changes (the
    # IncrementalRead contract) and a real store fed by sync_directory; after each batch both
    # must equal a fresh full read / full sync.
    changer = AdChanger(ad_tree, AD_CHANGE_SEED)
    config = ad_tree_config(ad_config, changer, full_sync_every=1000)
    changer.populate(users=10, groups=6)
    store = Store(f"sqlite:///{tmp_path}/store.db")
    store.init_schema()
    try:
        token = initial_token(config)
        mirror = Mirror.of(read_directory(config).snapshot)
        first = sync_directory(store, config)
        assert (first.status, first.mode) == ("ok", "full"), first.summary()
        for round_number in range(3):
            done = changer.batch(10)
            context = f"seed {AD_CHANGE_SEED}, round {round_number}: {done}"
            changes = read_changes(config, token)
            assert (changes.method, changes.deletions) == (METHOD_AD_USN, DELETIONS_PRESENT)
            mirror.apply(changes)
            assert mirror.view() == full_view(config), context
            token = changes.next_token
            result = sync_directory(store, config, allow_mass_delete=True)
            assert (result.status, result.mode) == ("ok", "incremental"), result.summary()
            assert_like_a_full_sync(store, config, tmp_path / f"fresh-{round_number}.db",
                                    context)
    finally:
        store.dispose()


def test_renamed_members_and_moved_containers(ad_tree: Tree, ad_config: MakeConfig) -> None:
    # AD rewrites no group when a member is renamed (member is a link; the group's
    # uSNChanged stays), nor the entries below a renamed OU: listed_by and the subtree
    # re-read must cover both.
    server = ad_tree.server
    people = ad_tree.add_ou("people")
    groups = ad_tree.add_ou("groups")
    sub = f"OU=sub,{people}"
    server.load_ldif(f"dn: {sub}\nobjectClass: organizationalUnit\n")
    tag = ad_tree.base.split(",", 1)[0][5:9]
    ann = ad_tree.add_user(f"{tag}ann", ou=people)
    ben = ad_tree.add_user(f"{tag}ben", ou=sub)
    team = ad_tree.add_group(f"{tag}team", [ann, ben], ou=groups)
    config = ad_config(user_base_dn=people, group_base_dn=groups)
    token = initial_token(config)
    mirror = Mirror.of(read_directory(config).snapshot)
    server.modrdn(ann, "CN=Ann Renamed")
    server.modrdn(sub, "OU=sub2")
    changes = read_changes(config, token)
    mirror.apply(changes)
    assert mirror.view() == full_view(config)
    team_id = server.object_guid(team)
    assert team_id not in {g.external_id for g in changes.changed_groups}
    assert changes.listed_by[server.object_guid(f"CN=Ann Renamed,{people}")] == {team_id}
    assert changes.listed_by[server.object_guid(f"CN={tag}ben,OU=sub2,{people}")] == {team_id}
    assert changes.diagnostics.subtrees_reread == [f"OU=sub2,{people}"]
    quiet = read_changes(config, changes.next_token)
    assert quiet.empty and quiet.deletions == DELETIONS_NONE


def test_another_dc_or_a_restored_one_forces_a_full_sync(ad_tree: Tree,
                                                         ad_config: MakeConfig) -> None:
    config = ad_config(user_base_dn=ad_tree.base, group_base_dn=ad_tree.base)
    ad_tree.add_user(f"{ad_tree.base.split(',', 1)[0][5:9]}usr")
    token = json.loads(initial_token(config))
    assert token["method"] == METHOD_AD_USN
    with bound(config) as conn:
        root = read_entry(conn, config, "", ["dsServiceName", "highestCommittedUSN"])
        assert root is not None
        service = root[1]["dsservicename"][0].decode("utf-8")
        ntds = read_entry(conn, config, service, ["invocationId"])
        assert ntds is not None
    assert token["ad"] == {"server": service, "usn": _integer(root, "highestCommittedUSN"),
                           "invocation_id": str(uuid.UUID(bytes_le=ntds[1]["invocationid"][0]))}
    read_changes(config, json.dumps(token))  # continues
    restored = {**token, "ad": {**token["ad"], "invocation_id": str(uuid.uuid4())}}
    with pytest.raises(errors.FullSyncRequired, match="invocationID changed"):
        read_changes(config, json.dumps(restored))
    other = {**token, "ad": {**token["ad"], "server": service.replace("CN=DC1,", "CN=DC2,")}}
    with pytest.raises(errors.FullSyncRequired, match="different controllers"):
        read_changes(config, json.dumps(other))
    ahead = {**token, "ad": {**token["ad"], "usn": token["ad"]["usn"] + 10**6}}
    with pytest.raises(errors.FullSyncRequired, match="went back"):
        read_changes(config, json.dumps(ahead))
    with pytest.raises(errors.FullSyncRequired, match="taken from ldap://"):
        read_changes(config, json.dumps({**token, "server": "ldap://127.0.0.2:1"}))

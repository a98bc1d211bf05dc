"""dirsync's LDAP layer against a real 389 Directory Server, with the `389ds` preset: full
reads (nsUniqueId identity, nested groups with a cycle, escaped DNs, renames), login by bind
(nsAccountLock), the probe, and the ways a read must fail rather than come back partial.

The server is tests/ds389.py's Ds389Server, seeded from fixtures/ldap/389ds/; one per test
run. Tests that write use a private subtree (`ds389_tree`); tests that stop the server bring
it back themselves (and the fixture restarts it if they did not). A missing 389-ds-base skips
locally and fails under CI=true.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from test_ldap_changes import GROUP_FILTER, USER_FILTER, Changer, Mirror, full_view
from test_mirror_incremental import contents

from dirsync.dn import dn_key
from dirsync.ldap import errors, probe
from dirsync.ldap.bind import BindOutcome, PasswordChecker, close_checkers
from dirsync.ldap.changes import (
    DELETIONS_NONE,
    DELETIONS_PRESENT,
    initial_token,
    read_changes,
)
from dirsync.ldap.config import DirectoryConfig, parse_directories
from dirsync.ldap.read import read_directory
from dirsync.ldap.watermark import METHOD_ENTRYUSN
from dirsync.model import Snapshot
from dirsync.store.db import Store
from dirsync.sync.mirror import sync_directory
from ds389 import (
    LIMITED_DN,
    LIMITED_PASSWORD,
    LIMITED_SIZE,
    SUFFIX,
    SYNC_DN,
    SYNC_PASSWORD,
    Ds389Server,
)
from servers import MissingServer, ServerError, skip_or_fail

SEED = ("org", "disabled", "nesting", "escaping")
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
PASSWORD_ENV = "DIRSYNC_TEST_389_BIND_PASSWORD"
ALICE = f"uid=alice,{PEOPLE}"
DAVE = f"uid=dave,{PEOPLE}"  # nsAccountLock: TRUE (fixtures/ldap/389ds/disabled.ldif)
FRED = f"uid=fred,{PEOPLE}"  # nsAccountLock: false

SEED_USERS = {
    "alice", "bob", "carol", "erin", "dave", "fred",  # org.ldif, disabled.ldif
    "jdoe", "plus+sign", 'quote"d', "joerg", "lspace", "hash", "multi", "back\\slash",
    "semi;colon", "UPPER", "star*(paren)",  # escaping.ldif
}
CYCLE = {("cycle-a", "cycle-b"), ("cycle-b", "cycle-c"), ("cycle-c", "cycle-a")}
DIAMOND = {("diamond-top", "diamond-left"), ("diamond-top", "diamond-right"),
           ("diamond-left", "diamond-bottom"), ("diamond-right", "diamond-bottom")}
CHAIN = {(f"chain-{n}", f"chain-{n + 1}") for n in range(1, 6)}

MakeConfig = Callable[..., DirectoryConfig]

# -- fixtures --------------------------------------------------------------------------------

_shared: Ds389Server | None = None
# Why the shared server could not be started, so that the other tests fail at once.
_failed: str | None = None


def _new_server() -> Ds389Server:
    global _failed
    try:
        server = Ds389Server()
    except MissingServer as exc:
        skip_or_fail(str(exc))  # 389-ds-base installs and runs in CI
    try:
        server.start()
        for name in SEED:
            server.load_fixture(name)
    except BaseException as exc:
        server.close()
        _failed = f"389 Directory Server did not start earlier in this run: {exc}"
        raise
    return server


@pytest.fixture
def ds389() -> Ds389Server:
    """The shared, seeded server (started on first use, closed by its atexit hook)."""
    global _shared
    if _failed:
        pytest.fail(_failed, pytrace=False)
    if _shared is None or _shared.base_dir is None:
        _shared = _new_server()
    _shared.ensure_running()
    return _shared


@pytest.fixture
def ds389_config(ds389: Ds389Server) -> Iterator[MakeConfig]:
    """Factory of DirectoryConfig with the 389ds preset reading the seed as cn=sync; `keys`
    override (or, with None, remove) [[directories]] keys."""

    def make(*, password: str = SYNC_PASSWORD, **keys: Any) -> DirectoryConfig:
        table: dict[str, Any] = {
            "name": "ds",
            "preset": "389ds",
            "urls": [ds389.url],
            "bind_dn": SYNC_DN,
            "bind_password_env": PASSWORD_ENV,
            "user_base_dn": PEOPLE,
            "group_base_dn": GROUPS,
            "connect_timeout": 2,
            "operation_timeout": 5,
        }
        table.update(keys)
        table = {k: v for k, v in table.items() if v is not None}
        return parse_directories([table], {PASSWORD_ENV: password})[0]

    yield make
    close_checkers()


@dataclass
class Tree:
    """A private subtree `ou=t-<hex>,dc=example,dc=com` of the shared server for one test."""

    server: Ds389Server
    base: str
    people: str
    groups: str

    def add_ou(self, name: str, parent: str | None = None) -> str:
        dn = f"ou={name},{parent or self.base}"
        self.server.load_ldif(f"dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n")
        return dn

    def add_user(self, uid: str, *, ou: str | None = None, extra: str = "") -> str:
        dn = f"uid={uid},{ou or self.people}"
        self.server.load_ldif(
            f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
            f"sn: {uid.title()}\nuserPassword: {uid}-password\n{extra}")
        return dn

    def add_group(self, cn: str, members: list[str], *, ou: str | None = None) -> str:
        dn = f"cn={cn},{ou or self.groups}"
        lines = "".join(f"member: {m}\n" for m in members)
        self.server.load_ldif(f"dn: {dn}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}")
        return dn


@pytest.fixture
def ds389_tree(ds389: Ds389Server) -> Iterator[Tree]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    base = f"ou={name},{SUFFIX}"
    ds389.load_ldif(f"dn: {base}\nobjectClass: organizationalUnit\nou: {name}\n")
    tree = Tree(ds389, base, "", "")
    tree.people = tree.add_ou("people")
    tree.groups = tree.add_ou("groups")
    try:
        yield tree
    finally:
        ds389.ensure_running()
        # What 389 refuses to delete (see delete_subtree) stays below this test's own OU,
        # outside every other test's bases.
        ds389.delete_subtree(base)


def names(snapshot: Snapshot) -> tuple[set[str], set[str]]:
    return {u.name for u in snapshot.users}, {g.name for g in snapshot.groups}


# -- the harness ---------------------------------------------------------------------------


def test_harness_listens_on_loopback_with_its_accounts(ds389: Ds389Server) -> None:
    assert ds389.url.startswith("ldap://127.0.0.1:")
    # Set-up time of this server (build, start, base entries), for the CI budget.
    assert ds389.setup_seconds < 60
    [(_, alice)] = ds389.search(ALICE, attributes=["*", "nsUniqueId", "userPassword"],
                                scope="base", bind_dn=SYNC_DN, password=SYNC_PASSWORD)
    assert "userpassword" not in alice and alice["nsuniqueid"]
    assert ds389.search(PEOPLE, bind_dn=None) == []  # anonymous: nothing, and no error
    with pytest.raises(ServerError, match=r"exit 4\b"):
        ds389.search(PEOPLE, "(uid=*)", ["uid"], bind_dn=LIMITED_DN, password=LIMITED_PASSWORD)
    # A locked account's right password: unwillingToPerform, not invalidCredentials.
    with pytest.raises(ServerError, match=r"(?s)exit 53\b.*Account inactivated"):
        ds389.search(DAVE, scope="base", bind_dn=DAVE, password="dave-password")


# -- full reads ----------------------------------------------------------------------------


def test_full_read_of_the_seed(ds389: Ds389Server, ds389_config: MakeConfig) -> None:
    result = read_directory(ds389_config(page_size=4))
    users, groups = names(result.snapshot)
    assert users == SEED_USERS  # uid=stranger is under ou=outside, not the user base
    assert {"staff", "admins", "Sales, EMEA", "all-sales", "cycle-a", "diamond-top",
            "Forschung & Entwicklung – München", "chain-1", "chain-6"} <= groups
    assert "Administrators" not in groups  # admins has two cn values; the RDN's one wins
    by_name = {u.name: u for u in result.snapshot.users}
    # Identity is the nsUniqueId as the server shows it; DNs as the server returns them.
    assert by_name["alice"].external_id == ds389.unique_id(ALICE)
    assert by_name["alice"].dn == ALICE
    assert by_name["jdoe"].dn == f"cn=Doe\\2C John,{PEOPLE}"
    assert (by_name["alice"].email, by_name["alice"].display_name) == (
        "alice@example.com", "Alice Adams")
    assert by_name["joerg"].last_name == "Größer"
    # nsAccountLock: TRUE disables, "false" does not, absent does not.
    assert (by_name["dave"].active, by_name["fred"].active, by_name["alice"].active) == (
        False, True, True)
    assert len({u.external_id for u in result.snapshot.users}) == len(SEED_USERS)
    assert len({g.external_id for g in result.snapshot.groups}) == len(groups)
    assert result.diagnostics.users_read == len(SEED_USERS)


def test_members_outside_the_scope_are_ignored_and_counted(ds389_config: MakeConfig) -> None:
    result = read_directory(ds389_config())
    staff = {u for g, u in result.snapshot.user_memberships if g == "staff"}
    assert staff == {"alice", "bob", "carol", "erin"}
    out = result.diagnostics.members_out_of_scope
    assert out.count == 2
    assert {e.split(",")[0] for e in out.examples} == {"uid=stranger", "uid=ghost"}


def test_escaped_member_dns_resolve(ds389_config: MakeConfig) -> None:
    # 389 stores "Sales, EMEA"'s member values partly rewritten (hex escapes kept, the
    # multi-valued RDN reordered, upper case kept): only parsed DNs match them all.
    result = read_directory(ds389_config())
    sales = {u for g, u in result.snapshot.user_memberships if g == "sales, emea"}
    assert sales == {"jdoe", "plus+sign", 'quote"d', "joerg", "lspace", "hash", "multi",
                     "back\\slash", "semi;colon", "upper", "star*(paren)"}
    assert ("all-sales", "sales, emea") in result.snapshot.group_memberships
    assert ("forschung & entwicklung – münchen", "joerg") in result.snapshot.user_memberships
    assert result.diagnostics.members_unresolvable.count == 0


def test_nesting_cycle_diamond_and_chain(ds389_config: MakeConfig) -> None:
    snapshot = read_directory(ds389_config()).snapshot
    nested = snapshot.group_memberships
    assert CYCLE | DIAMOND | CHAIN <= nested
    # From `member`, only direct edges: 389's transitive memberOf does not leak in.
    assert ("diamond-top", "diamond-bottom") not in nested
    assert ("diamond-top", "alice") not in snapshot.user_memberships
    assert {("cycle-a", "bob"), ("cycle-b", "carol"), ("cycle-c", "erin"),
            ("diamond-bottom", "alice"), ("chain-6", "carol")} <= snapshot.user_memberships


def test_member_of_mode_reads_389s_transitive_member_of(ds389_config: MakeConfig) -> None:
    # What the `membership` key's documentation warns about: 389's memberOf plugin lists
    # every ancestor group, so in memberOf mode a user becomes a *direct* member of each, and
    # a group of each of its ancestors. The effective (closed) memberships are the same.
    by_member = read_directory(ds389_config()).snapshot
    by_member_of = read_directory(ds389_config(membership="memberOf")).snapshot
    assert by_member.user_memberships < by_member_of.user_memberships
    assert ("diamond-top", "alice") in by_member_of.user_memberships
    assert ("chain-1", "carol") in by_member_of.user_memberships
    assert ("diamond-top", "diamond-bottom") in by_member_of.group_memberships
    assert CYCLE <= by_member_of.group_memberships


def test_page_size_does_not_change_the_result(ds389_config: MakeConfig) -> None:
    def canonical(snapshot: Snapshot) -> tuple[object, ...]:
        return (sorted(map(repr, snapshot.users)), sorted(map(repr, snapshot.groups)),
                sorted(snapshot.user_memberships), sorted(snapshot.group_memberships))

    assert canonical(read_directory(ds389_config(page_size=1)).snapshot) == canonical(
        read_directory(ds389_config(page_size=1000)).snapshot)


def test_rename_and_move_keep_the_external_id(ds389_tree: Tree,
                                              ds389_config: MakeConfig) -> None:
    config = ds389_config(user_base_dn=ds389_tree.base, group_base_dn=ds389_tree.groups)
    alice = ds389_tree.add_user("alice")
    ds389_tree.add_user("bob")
    team = ds389_tree.add_group("team", [alice])
    before = read_directory(config).snapshot
    ids = {u.name: u.external_id for u in before.users}
    [team_before] = before.groups
    assert ids["alice"] == ds389_tree.server.unique_id(alice)

    elsewhere = ds389_tree.add_ou("elsewhere")
    ds389_tree.server.modrdn(alice, "uid=alice2", new_superior=elsewhere)  # rename and move
    ds389_tree.server.modrdn(team, "cn=team-renamed")
    after = read_directory(config).snapshot
    moved = {u.external_id: u for u in after.users}[ids["alice"]]
    assert (moved.name, moved.dn) == ("alice2", f"uid=alice2,{elsewhere}")
    [renamed] = after.groups
    assert (renamed.external_id, renamed.name) == (team_before.external_id, "team-renamed")
    # The referential integrity plugin rewrote the member value: the membership follows.
    assert after.user_memberships == {("team-renamed", "alice2")}


# -- reads that must fail ------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, LIMITED_SIZE - 1, LIMITED_SIZE, 1000])
def test_a_size_limited_account_never_gets_a_partial_result(ds389_config: MakeConfig,
                                                            page_size: int) -> None:
    # 389 applies nsSizeLimit / nsPagedSizeLimit to each page, not to the whole paged search
    # (OpenLDAP caps the total): pages smaller than the limit read everything, pages that
    # reach it end in sizeLimitExceeded. Either way: all of it, or an error.
    config = ds389_config(bind_dn=LIMITED_DN, password=LIMITED_PASSWORD, page_size=page_size)
    if page_size < LIMITED_SIZE:
        assert names(read_directory(config).snapshot) == names(
            read_directory(ds389_config()).snapshot)
        return
    with pytest.raises(errors.LimitExceeded) as info:
        read_directory(config)
    assert info.value.result_code == 4
    assert "size limit" in str(info.value)


def test_an_account_without_read_access_is_not_an_empty_directory(
        ds389_config: MakeConfig) -> None:
    # 389 answers a search the ACIs hide with success and no entries, exactly like an empty
    # directory (OpenLDAP says noSuchObject). The read must refuse, not delete everyone.
    with pytest.raises(errors.UnexpectedEmptyResult, match="found no entries"):
        read_directory(ds389_config(bind_dn=None, bind_password_env=None))


def test_a_missing_base_dn_is_never_an_empty_directory(ds389_config: MakeConfig) -> None:
    # 389 DS 2.3 answers a *paged* search under a base that does not exist with success, no
    # entries and no paged-results control (a plain search gets noSuchObject). The read
    # fails, which is what matters; see the next test for how.
    with pytest.raises(errors.LdapError, match="ou=nowhere"):
        read_directory(ds389_config(user_base_dn=f"ou=nowhere,{SUFFIX}"))


def test_a_missing_base_dn_is_reported_as_missing(ds389_config: MakeConfig) -> None:
    with pytest.raises(errors.BaseDnMissing, match="ou=nowhere"):
        read_directory(ds389_config(user_base_dn=f"ou=nowhere,{SUFFIX}"))


def test_a_stopped_server_is_unreachable(ds389: Ds389Server, ds389_config: MakeConfig) -> None:
    config = ds389_config()
    ds389.stop()
    try:
        with pytest.raises(errors.DirectoryUnreachable, match="no server could be reached"):
            read_directory(config)
    finally:
        ds389.start()
    assert read_directory(config).snapshot.users


# -- login by bind -------------------------------------------------------------------------


@pytest.fixture
def checker(ds389_config: MakeConfig) -> Iterator[PasswordChecker]:
    checker = PasswordChecker(ds389_config())
    yield checker
    checker.close()


@pytest.mark.parametrize(("dn", "password", "outcome"), [
    (ALICE, "alice-password", BindOutcome.OK),
    (ALICE, "Alice-password", BindOutcome.INVALID),
    (ALICE, "", BindOutcome.INVALID),
    (f"uid=nobody,{PEOPLE}", "whatever", BindOutcome.INVALID),
    (f"uid=stranger,ou=outside,{SUFFIX}", "stranger-password", BindOutcome.INVALID),
    # nsAccountLock: TRUE — 389 refuses the bind with unwillingToPerform, whatever the
    # password; the flag read afterwards makes it INACTIVE, not a wrong password.
    (DAVE, "dave-password", BindOutcome.INACTIVE),
    (DAVE, "wrong", BindOutcome.INACTIVE),
    (FRED, "fred-password", BindOutcome.OK),  # nsAccountLock: false
    # Escaped DNs, spelled as the server returns them or as they were added.
    (f"cn=Doe\\2C John,{PEOPLE}", "jdoe-password", BindOutcome.OK),
    (f"cn=Doe\\, John,{PEOPLE}", "jdoe-password", BindOutcome.OK),
    (f"uid=star*(paren),{PEOPLE}", "star-password", BindOutcome.OK),
    (f"cn=Jörg Größer,{PEOPLE}", "joerg-password", BindOutcome.OK),
    (f"cn=\\20Leading Space,{PEOPLE}", "lspace-password", BindOutcome.OK),
])
def test_bind_outcomes(checker: PasswordChecker, dn: str, password: str,
                       outcome: BindOutcome) -> None:
    assert checker.check(dn, password) is outcome


def test_locking_and_unlocking_an_account(ds389_tree: Tree, ds389_config: MakeConfig) -> None:
    dn = ds389_tree.add_user("kim")
    checker = PasswordChecker(ds389_config(user_base_dn=ds389_tree.base))
    server = ds389_tree.server
    try:
        assert checker.check(dn, "kim-password") is BindOutcome.OK
        server.modify(f"dn: {dn}\nchangetype: modify\nreplace: nsAccountLock\n"
                      "nsAccountLock: true\n")
        assert checker.check(dn, "kim-password") is BindOutcome.INACTIVE
        server.modify(f"dn: {dn}\nchangetype: modify\ndelete: nsAccountLock\n")
        assert checker.check(dn, "kim-password") is BindOutcome.OK
    finally:
        checker.close()


def test_a_renamed_user_is_found_by_ns_unique_id(ds389_tree: Tree,
                                                 ds389_config: MakeConfig) -> None:
    old_dn = ds389_tree.add_user("max")
    unique_id = ds389_tree.server.unique_id(old_dn)
    ds389_tree.server.modrdn(old_dn, "uid=maximilian")
    checker = PasswordChecker(ds389_config(user_base_dn=ds389_tree.base))
    try:
        assert checker.check(old_dn, "max-password") is BindOutcome.INVALID
        assert checker.check(old_dn, "max-password",
                             external_id=unique_id) is BindOutcome.OK
        assert checker.check(old_dn, "wrong", external_id=unique_id) is BindOutcome.INVALID
    finally:
        checker.close()


def test_unavailable_when_stopped_and_back_after_a_restart(ds389: Ds389Server,
                                                          checker: PasswordChecker) -> None:
    assert checker.check(ALICE, "alice-password") is BindOutcome.OK
    ds389.stop()
    try:
        assert checker.check(ALICE, "alice-password") is BindOutcome.UNAVAILABLE
        assert checker.check(ALICE, "wrong") is BindOutcome.UNAVAILABLE
        assert checker.check(DAVE, "dave-password") is BindOutcome.UNAVAILABLE
    finally:
        ds389.start()
    # The pooled connections died with the server; new ones are opened.
    assert checker.check(ALICE, "alice-password") is BindOutcome.OK
    assert checker.check(ALICE, "wrong") is BindOutcome.INVALID


# -- the probe -----------------------------------------------------------------------------


def summary(results: list[probe.CheckResult]) -> list[tuple[str, str]]:
    return [(r.check, r.status) for r in results]


def test_probe_of_a_good_configuration(ds389_config: MakeConfig) -> None:
    results = probe.test_directory(ds389_config())
    assert summary(results) == [("connection", "ok"), ("bind", "ok"), ("user base", "ok"),
                                ("group base", "ok"), ("user filter", "ok"),
                                ("group filter", "ok")]
    assert results[4].count == len(SEED_USERS)
    assert results[5].count and results[5].count >= 17


def test_probe_of_a_wrong_password(ds389_config: MakeConfig) -> None:
    results = probe.test_directory(ds389_config(password="wrong"))
    assert summary(results) == [("connection", "ok"), ("bind", "failed")]
    assert "bind DN or password was refused" in results[1].message


def test_probe_without_read_access(ds389_config: MakeConfig) -> None:
    # Anonymous: 389 shows neither base (success, no entry), so both are reported missing —
    # "or the account may not see it" — and the filters are not counted.
    results = probe.test_directory(ds389_config(bind_dn=None, bind_password_env=None))
    assert summary(results) == [("connection", "ok"), ("bind", "ok"), ("user base", "failed"),
                                ("group base", "failed"), ("user filter", "skipped"),
                                ("group filter", "skipped")]
    assert "may not see it" in results[2].message


def test_probe_of_a_stopped_server(ds389: Ds389Server, ds389_config: MakeConfig) -> None:
    config = ds389_config()
    ds389.stop()
    try:
        results = probe.test_directory(config)
    finally:
        ds389.start()
    assert summary(results) == [("connection", "failed"), ("bind", "skipped")]
    assert ds389.url.removeprefix("ldap://") in results[0].message


def test_probe_of_the_size_limited_account(ds389_config: MakeConfig) -> None:
    results = probe.test_directory(ds389_config(bind_dn=LIMITED_DN, password=LIMITED_PASSWORD))
    user_filter = next(r for r in results if r.check == "user filter")
    assert user_filter.status == "failed" and "size limit" in user_filter.message


def test_entry_usn_is_readable_for_incremental_sync(ds389_tree: Tree) -> None:
    # What an incremental sync of 389 will poll: entryUSN on entries (readable by the sync
    # account) and the root DSE's lastusn, which every write moves forward.
    server = ds389_tree.server

    def last_usn() -> int:
        [(_, root)] = server.search("", attributes=["lastusn"], scope="base", bind_dn=SYNC_DN,
                                    password=SYNC_PASSWORD)
        # Per backend by default: lastusn;userroot.
        [value] = [v for k, vs in root.items() if k.startswith("lastusn") for v in vs]
        return int(value)

    dn = ds389_tree.add_user("usn")
    before = last_usn()
    server.modify(f"dn: {dn}\nchangetype: modify\nreplace: description\n"
                  "description: touched\n")
    [(_, entry)] = server.search(dn, attributes=["entryUSN"], scope="base", bind_dn=SYNC_DN,
                                 password=SYNC_PASSWORD)
    assert int(entry["entryusn"][0]) == last_usn() > before


# -- incremental reads (entryUSN) ----------------------------------------------------------
# The same equivalence as tests/test_ldap_changes.py against slapd: the mirror as of a full
# read, with each incremental read applied, equals a fresh full read; and the same random
# batches, synced into a real store incrementally and from scratch, give the same contents.

# Seeds picked because they fail when listed_by is left out (checked by hand).
CHANGE_SEEDS = [int(s) for s in os.environ.get("DIRSYNC_389_CHANGE_SEEDS", "22,23").split(",")]
CHANGE_ROUNDS = int(os.environ.get("DIRSYNC_389_CHANGE_ROUNDS", "4"))
CHANGE_BATCH = int(os.environ.get("DIRSYNC_389_CHANGE_BATCH", "12"))


class Ds389Changer(Changer):
    LOCK = ("nsAccountLock", "TRUE")


def tree_config_389(make: MakeConfig, tree: Tree, **keys: Any) -> DirectoryConfig:
    table: dict[str, Any] = {"user_base_dn": tree.people, "group_base_dn": tree.groups,
                             "user_filter": USER_FILTER, "group_filter": GROUP_FILTER}
    table.update(keys)
    return make(**table)


@pytest.mark.parametrize("seed", CHANGE_SEEDS)
def test_incremental_reads_equal_full_reads(seed: int, ds389_tree: Tree,
                                            ds389_config: MakeConfig) -> None:
    changer = Ds389Changer(ds389_tree, seed)  # type: ignore[arg-type]
    config = tree_config_389(ds389_config, ds389_tree)
    changer.populate(users=12, groups=8)
    token = initial_token(config)
    mirror = Mirror.of(read_directory(config).snapshot)
    methods = set()
    for round_number in range(CHANGE_ROUNDS):
        done = changer.batch(CHANGE_BATCH)
        expected = full_view(config)
        changes = read_changes(config, token)
        mirror.apply(changes)
        assert mirror.view() == expected, f"seed {seed}, round {round_number}: {done}"
        methods.add((changes.method, changes.deletions))
        token = changes.next_token
    assert methods == {(METHOD_ENTRYUSN, DELETIONS_PRESENT)}


# Seed 123 (23 + 100) makes ns-slapd 2.3.1 die silently in the middle of a batch (moves of
# containers below which entries had been deleted; see Ds389Server.delete_subtree).
@pytest.mark.parametrize("seed", CHANGE_SEEDS[:1])
def test_incremental_syncs_into_the_store_equal_full_syncs(
        seed: int, ds389_tree: Tree, ds389_config: MakeConfig, tmp_path: Path) -> None:
    changer = Ds389Changer(ds389_tree, seed + 100)  # type: ignore[arg-type]
    config = tree_config_389(ds389_config, ds389_tree, full_sync_every=1000)
    changer.populate(users=12, groups=8)
    store = Store(f"sqlite:///{tmp_path}/store.db")
    store.init_schema()
    try:
        first = sync_directory(store, config)
        assert (first.status, first.mode) == ("ok", "full"), first.summary()
        for round_number in range(3):
            done = changer.batch(10)
            result = sync_directory(store, config, allow_mass_delete=True)
            assert (result.status, result.mode) == ("ok", "incremental"), result.summary()
            fresh = Store(f"sqlite:///{tmp_path}/fresh-{round_number}.db")
            fresh.init_schema()
            try:
                assert sync_directory(fresh, config, full=True).status == "ok"
                assert contents(store) == contents(fresh), f"round {round_number}: {done}"
            finally:
                fresh.dispose()
    finally:
        store.dispose()


def test_refint_rewrites_are_read_as_changes(ds389_tree: Tree,
                                             ds389_config: MakeConfig) -> None:
    # The guarantee the store relies on (IncrementalRead.listed_by): after a rename, every
    # group listing the entry either changed (and comes with its new member list) or is in
    # listed_by. 389's referential integrity plugin rewrites the group in the rename's own
    # transaction and gives it a new entryUSN, so it is a changed group; no settle window.
    tree, server = ds389_tree, ds389_tree.server
    config = tree_config_389(ds389_config, tree)
    alice = tree.add_user("alice")
    bob = tree.add_user("bob")
    ghost = f"uid=ghost,{tree.people}"
    team = tree.add_group("team", [alice])
    everyone = tree.add_group("everyone", [bob])
    haunted = tree.add_group("haunted", [bob, ghost])
    token = initial_token(config)
    mirror = Mirror.of(read_directory(config).snapshot)
    team_id, alice_id = server.unique_id(team), server.unique_id(alice)

    server.modrdn(alice, "uid=alice2")
    ghost_id = server.unique_id(tree.add_user("ghost"))  # a DN haunted listed all along
    changes = read_changes(config, token)
    mirror.apply(changes)
    assert mirror.view() == full_view(config)
    changed_groups = {g.external_id: g for g in changes.changed_groups}
    assert team_id in changed_groups  # rewritten by refint: a new entryUSN
    assert dn_key(f"uid=alice2,{tree.people}") in changes.group_members[team_id].dn_keys
    assert server.unique_id(everyone) not in changed_groups
    assert alice_id in {u.external_id for u in changes.changed_users}
    # haunted did not change: only listed_by can tell that ghost is now its member.
    assert server.unique_id(haunted) not in changed_groups
    assert changes.listed_by[ghost_id] == {server.unique_id(haunted)}

    # A new member of an unchanged group: listed_by names it.
    before = read_changes(config, changes.next_token)  # the overlap round
    mirror.apply(before)
    carol = tree.add_user("carol")
    server.modify(f"dn: {everyone}\nchangetype: modify\nadd: member\nmember: {carol}\n")
    changes = read_changes(config, before.next_token)
    mirror.apply(changes)
    assert mirror.view() == full_view(config)


def test_quiet_directories_read_nothing_after_the_overlap_round(
        ds389_tree: Tree, ds389_config: MakeConfig) -> None:
    config = tree_config_389(ds389_config, ds389_tree)
    ds389_tree.add_user("quiet")
    token = initial_token(config)
    ds389_tree.add_user("loud")
    first = read_changes(config, token)
    assert {u.name for u in first.changed_users} == {"loud"}
    # lastusn is taken before the writes it counts commit: the next round reads this
    # round's window once more.
    again = read_changes(config, first.next_token)
    assert {u.name for u in again.changed_users} == {"loud"}
    assert again.deletions == DELETIONS_PRESENT
    quiet = read_changes(config, again.next_token)
    assert quiet.empty and quiet.deletions == DELETIONS_NONE
    assert quiet.diagnostics.searches == 1  # the root DSE, nothing else


def test_marks_that_cannot_be_continued_require_a_full_sync(
        ds389_tree: Tree, ds389_config: MakeConfig) -> None:
    config = tree_config_389(ds389_config, ds389_tree)
    ds389_tree.add_user("marked")
    token = json.loads(initial_token(config))
    assert token["method"] == METHOD_ENTRYUSN and token["usn"]["seen"]
    # A counter ahead of the server's: a backend restored from a backup or re-imported.
    ahead = {**token, "usn": {k: {b: v + 1000 for b, v in m.items()}
                              for k, m in token["usn"].items()}}
    with pytest.raises(errors.FullSyncRequired, match="went back"):
        read_changes(config, json.dumps(ahead))
    other = {**token, "usn": {k: {"otherroot": 1} for k in token["usn"]}}
    with pytest.raises(errors.FullSyncRequired, match="other 389 DS backends"):
        read_changes(config, json.dumps(other))
    with pytest.raises(errors.FullSyncRequired, match="taken from ldap://"):
        read_changes(config, json.dumps({**token, "server": "ldap://127.0.0.2:1"}))
    # The token of another server type cannot be continued here.
    csn_token = {**token, "method": "openldap-contextcsn"}
    with pytest.raises(errors.FullSyncRequired, match="preset"):
        read_changes(config, json.dumps(csn_token))

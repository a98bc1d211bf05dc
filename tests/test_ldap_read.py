"""Full reads against a real slapd: what the seed contains, how renames and moves keep
identities, and every way a read must fail instead of returning part of the directory."""

from __future__ import annotations

from typing import Callable

import pytest

from dirsync.ldap import errors
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.connection import close_quietly, service_connection
from dirsync.ldap.paging import complete_ranges
from dirsync.ldap.read import DirectoryRead, read_directory
from dirsync.model import Snapshot
from ldap_fixtures import *  # noqa: F403 - until conftest lists ldap_fixtures in pytest_plugins
from ldap_fixtures import GROUPS, LdapTree
from slapd import LIMITED_DN, LIMITED_PASSWORD, LIMITED_SIZE, SUFFIX, SlapdServer

MakeConfig = Callable[..., DirectoryConfig]

SEED_USERS = {
    "alice", "bob", "carol", "dave", "erin",  # org.ldif, disabled.ldif
    "jdoe", "plus+sign", 'quote"d', "jörg", "lspace", "hash", "multi", "back\\slash",
    "semi;colon", "UPPER", "star*(paren)",  # escaping.ldif
}
CHAIN = [f"chain-{n:02d}" for n in range(1, 13)]


def names(snapshot: Snapshot) -> tuple[set[str], set[str]]:
    return {u.name for u in snapshot.users}, {g.name for g in snapshot.groups}


def test_full_read_of_the_seed(slapd: SlapdServer, directory_config: MakeConfig) -> None:
    calls: list[tuple[str, int]] = []
    result = read_directory(directory_config(page_size=5),
                            progress=lambda phase, n: calls.append((phase, n)))
    users, groups = names(result.snapshot)
    assert users == SEED_USERS  # uid=stranger is under ou=outside, not the user base
    assert {"staff", "admins", "Sales, EMEA", "all-sales", "cycle-a", "diamond-top",
            "Forschung & Entwicklung – München", *CHAIN} <= groups
    assert "Administrators" not in groups  # admins has two cn values; the RDN's one wins
    by_name = {u.name: u for u in result.snapshot.users}
    # Ids are the entryUUIDs as the server has them; DNs as the server returns them.
    [(_, attrs)] = slapd.search(f"uid=alice,ou=people,{SUFFIX}", attributes=["entryUUID"],
                                scope="base")
    assert by_name["alice"].external_id == attrs["entryuuid"][0]
    assert by_name["alice"].dn == f"uid=alice,ou=people,{SUFFIX}"
    assert (by_name["alice"].email, by_name["alice"].display_name) == (
        "alice@example.com", "Alice Adams")
    assert by_name["jörg"].last_name == "Größer"
    assert by_name["dave"].active is False and by_name["alice"].active is True
    assert len({u.external_id for u in result.snapshot.users}) == len(SEED_USERS)
    # Progress: each phase starts at 0, then grows page by page (5 entries a page).
    assert calls[0] == ("users", 0) and ("users", 5) in calls and ("users", 16) in calls
    assert calls[-1] == ("resolving", len(SEED_USERS) + len(groups))
    assert result.diagnostics.users_read == len(SEED_USERS)


def test_members_outside_the_scope_are_ignored_and_counted(directory_config: MakeConfig) -> None:
    result = read_directory(directory_config())
    staff = {u for g, u in result.snapshot.user_memberships if g == "staff"}
    assert staff == {"alice", "bob", "carol", "erin"}
    out = result.diagnostics.members_out_of_scope
    assert out.count == 2
    assert {e.split(",")[0] for e in out.examples} == {"uid=stranger", "uid=ghost"}


def test_escaped_member_dns_resolve(directory_config: MakeConfig) -> None:
    result = read_directory(directory_config())
    sales = {u for g, u in result.snapshot.user_memberships if g == "sales, emea"}
    assert sales == {"jdoe", "plus+sign", 'quote"d', "jörg", "lspace", "hash", "multi",
                     "back\\slash", "semi;colon", "upper", "star*(paren)"}
    assert ("all-sales", "sales, emea") in result.snapshot.group_memberships
    assert ("forschung & entwicklung – münchen", "jörg") in result.snapshot.user_memberships
    assert result.diagnostics.members_unresolvable.count == 0


def test_nesting_cycle_diamond_and_deep_chain(directory_config: MakeConfig) -> None:
    nested = read_directory(directory_config()).snapshot.group_memberships
    assert {("cycle-a", "cycle-b"), ("cycle-b", "cycle-c"), ("cycle-c", "cycle-a")} <= nested
    assert {("diamond-top", "diamond-left"), ("diamond-top", "diamond-right"),
            ("diamond-left", "diamond-bottom"), ("diamond-right", "diamond-bottom")} <= nested
    assert {(a, b) for a, b in zip(CHAIN, CHAIN[1:])} <= nested


def test_page_size_does_not_change_the_result(directory_config: MakeConfig) -> None:
    def canonical(read: DirectoryRead) -> tuple[object, ...]:
        s = read.snapshot
        return (sorted(map(repr, s.users)), sorted(map(repr, s.groups)),
                sorted(s.user_memberships), sorted(s.group_memberships))

    assert canonical(read_directory(directory_config(page_size=1))) == canonical(
        read_directory(directory_config(page_size=1000)))


@pytest.mark.parametrize(("membership", "group_base", "group"), [
    ("uniqueMember", f"ou=unique-groups,{SUFFIX}", "unique-staff"),
    ("memberUid", f"ou=posix-groups,{SUFFIX}", "posix-devs"),
])
def test_other_membership_types(directory_config: MakeConfig, membership: str,
                                group_base: str, group: str) -> None:
    result = read_directory(directory_config(membership=membership, group_base_dn=group_base))
    assert names(result.snapshot)[1] == {group}
    # uniqueMember bob carries a #'0101'B suffix; memberUid BOB is upper case.
    assert result.snapshot.user_memberships == {(group, "alice"), (group, "bob")}
    d = result.diagnostics
    if membership == "memberUid":
        assert d.members_unresolvable.examples == ["nobody"]
    else:
        assert d.members_out_of_scope.count == 1  # uid=stranger


def test_member_of_mode_gives_the_same_memberships(directory_config: MakeConfig) -> None:
    by_member = read_directory(directory_config()).snapshot
    by_member_of = read_directory(directory_config(membership="memberOf")).snapshot
    assert by_member_of.user_memberships == by_member.user_memberships
    assert by_member_of.group_memberships == by_member.group_memberships


def test_rename_and_move_keep_the_external_id(ldap_tree: LdapTree,
                                              directory_config: MakeConfig) -> None:
    config = directory_config(user_base_dn=ldap_tree.base, group_base_dn=ldap_tree.groups)
    alice = ldap_tree.add_user("alice")
    ldap_tree.add_user("bob")
    team = ldap_tree.add_group("team", [alice])
    before = read_directory(config).snapshot
    ids = {u.name: u.external_id for u in before.users}
    team_id = before.groups[0].external_id

    other = ldap_tree.add_ou("elsewhere")
    server = ldap_tree.server
    server.modrdn(alice, "uid=alice2", new_superior=other)  # rename and move in one
    server.modrdn(team, "cn=team-renamed")
    after = read_directory(config).snapshot
    moved = {u.external_id: u for u in after.users}[ids["alice"]]
    assert moved.dn == f"uid=alice2,{other}"
    assert moved.name == "alice2"  # ldapmodrdn -r replaced the uid value with the RDN's
    [renamed] = after.groups
    assert (renamed.external_id, renamed.name) == (team_id, "team-renamed")
    # refint rewrote the member value; the membership follows both renames.
    assert after.user_memberships == {("team-renamed", "alice2")}


def test_duplicate_usernames_keep_one_deterministic_winner(ldap_tree: LdapTree,
                                                           directory_config: MakeConfig) -> None:
    config = directory_config(user_base_dn=ldap_tree.base, group_base_dn=ldap_tree.groups)
    first = ldap_tree.add_user("twin", ou=ldap_tree.add_ou("a"))
    second = ldap_tree.add_user("twin", ou=ldap_tree.add_ou("b"))
    ldap_tree.add_group("g", [first, second])
    result = read_directory(config)
    [twin] = result.snapshot.users
    assert twin.dn == first  # ou=a sorts before ou=b
    [duplicate] = result.diagnostics.duplicates
    assert duplicate.dropped_dns == (second,)
    assert result.snapshot.user_memberships == {("g", "twin")}
    assert result.diagnostics.members_of_dropped_duplicates.count == 1


# -- reads that must fail ------------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, LIMITED_SIZE - 1, LIMITED_SIZE, 1000])
def test_a_size_limited_account_never_gets_a_partial_result(directory_config: MakeConfig,
                                                            page_size: int) -> None:
    config = directory_config(bind_dn=LIMITED_DN, password=LIMITED_PASSWORD, page_size=page_size)
    with pytest.raises(errors.LimitExceeded) as info:
        read_directory(config)
    assert info.value.result_code == 4
    assert "size limit" in str(info.value)


def test_an_empty_user_search_is_an_error(directory_config: MakeConfig) -> None:
    with pytest.raises(errors.UnexpectedEmptyResult, match="found no entries"):
        read_directory(directory_config(user_filter="(uid=nobody-at-all)"))


def test_entries_without_a_usable_user_are_an_error(directory_config: MakeConfig) -> None:
    config = directory_config(attributes={"username": "employeeNumber"})
    with pytest.raises(errors.UnexpectedEmptyResult, match="none is a usable user"):
        read_directory(config)


def test_a_missing_base_dn_is_an_error(directory_config: MakeConfig) -> None:
    with pytest.raises(errors.BaseDnMissing, match="ou=nowhere"):
        read_directory(directory_config(user_base_dn=f"ou=nowhere,{SUFFIX}"))


def test_hidden_entries_are_not_an_empty_directory(directory_config: MakeConfig) -> None:
    # Anonymous may read nothing: slapd answers noSuchObject for the base, not "0 entries".
    with pytest.raises(errors.BaseDnMissing):
        read_directory(directory_config(bind_dn=None, bind_password_env=None))


def test_continuation_references_are_refused_or_skipped(ldap_tree: LdapTree,
                                                       directory_config: MakeConfig) -> None:
    ldap_tree.add_user("alice")
    ldap_tree.server.load_ldif(
        f"dn: ou=remote,{ldap_tree.base}\nobjectClass: referral\nobjectClass: extensibleObject\n"
        f"ou: remote\nref: ldap://other.example.com/ou=remote,{SUFFIX}\n")
    keys = {"user_base_dn": ldap_tree.base, "group_base_dn": ldap_tree.groups}
    with pytest.raises(errors.ReferralNotFollowed, match="other.example.com"):
        read_directory(directory_config(**keys))
    result = read_directory(directory_config(continuation_references="ignore", **keys))
    assert [u.name for u in result.snapshot.users] == ["alice"]
    assert result.references_ignored == 1
    # A base DN that is itself a referral: result code 10.
    with pytest.raises(errors.ReferralNotFollowed) as info:
        read_directory(directory_config(user_base_dn=f"ou=remote,{ldap_tree.base}"))
    assert info.value.result_code == 10


def test_slapd_killed_in_the_middle_of_a_read(private_slapd: SlapdServer,
                                              directory_config: MakeConfig) -> None:
    config = directory_config(private_slapd, page_size=2)

    def crash_after_first_page(phase: str, entries: int) -> None:
        if entries:
            private_slapd.kill()

    with pytest.raises(errors.DirectoryUnreachable) as info:
        read_directory(config, progress=crash_after_first_page)
    assert isinstance(info.value, errors.ConnectionLost)
    assert "searching users" in str(info.value)
    with pytest.raises(errors.DirectoryUnreachable, match="no server could be reached"):
        read_directory(config)
    private_slapd.start()
    assert read_directory(config).snapshot.users


def test_group_base_is_searched_separately(directory_config: MakeConfig) -> None:
    result = read_directory(directory_config(group_base_dn=GROUPS, group_filter="(cn=chain-*)"))
    assert names(result.snapshot)[1] == set(CHAIN)
    # chain-12's member carol is a user; the other chains nest; staff etc. are not read.
    assert result.snapshot.user_memberships == {("chain-12", "carol")}


def test_range_retrieval_that_breaks_off_is_an_error(slapd: SlapdServer,
                                                     directory_config: MakeConfig) -> None:
    # slapd has no range retrieval: asked for member;range=1-* it sends no such values,
    # as AD does when the group changed between two reads. That must raise, not leave the
    # group with the values of the first range only.
    config = directory_config()
    conn = service_connection(config)
    try:
        staff = f"cn=staff,{GROUPS}"
        with pytest.raises(errors.PagingIncomplete, match="range"):
            complete_ranges(conn, config, staff, {"member;range=0-0": [b"uid=alice"]})
        # A complete first range needs no second read.
        assert complete_ranges(conn, config, staff, {"member;range=0-*": [b"x"]}) == {
            "member": [b"x"]}
    finally:
        close_quietly(conn)

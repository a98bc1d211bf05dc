"""The pure parts of dirsync.ldap, table-driven: filter escaping, range retrieval bookkeeping,
entry decoding, member resolution and duplicates, result codes. No server."""

from __future__ import annotations

import uuid
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dirsync.ldap import errors
from dirsync.ldap.bind import ad_bind_subcode
from dirsync.ldap.config import parse_directories
from dirsync.ldap.entries import EntryMapper, Skip
from dirsync.ldap.filters import (
    all_of,
    entry_filter,
    equality,
    escape_filter_value,
    filter_syntax_problem,
)
from dirsync.dn import _slow_dn_key, dn_key
from dirsync.ldap.members import SnapshotBuilder
from dirsync.ldap.ranges import merge_ranges, next_part, parse_ranged, range_request, RangePart
from dirsync.ldap.results import error_for_result
from dirsync.model import Group, User


def config(**keys: Any) -> Any:
    base = {"name": "corp", "preset": "openldap", "urls": "ldap://x", "base_dn": "dc=x"}
    base.update(keys)
    return parse_directories([base], {})[0]


# -- filters -------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "escaped"), [
    ("alice", "alice"),
    ("star*(paren)", "star\\2a\\28paren\\29"),
    ("back\\slash", "back\\5cslash"),
    ("nul\x00", "nul\\00"),
    ("*)(uid=*))(|(uid=*", "\\2a\\29\\28uid=\\2a\\29\\29\\28|\\28uid=\\2a"),
    ("jörg", "jörg"),
    (b"\x01\xff(", "\\01\\ff\\28"),
])
def test_filter_values_are_escaped(value: str | bytes, escaped: str) -> None:
    assert escape_filter_value(value) == escaped


def test_filters_are_combined() -> None:
    assert equality("uid", "a*") == "(uid=a\\2a)"
    assert entry_filter("inetOrgPerson", None) == "(objectClass=inetOrgPerson)"
    assert entry_filter("user", "(objectCategory=person)") == (
        "(&(objectClass=user)(objectCategory=person))")
    assert all_of() == "(objectClass=*)"


@pytest.mark.parametrize(("text", "problem"), [
    ("(a=b)", None),
    ("(&(a=b)(|(c=d)(!(e=f))))", None),
    ("(cn=a\\29b)", None),
    ("a=b", "parentheses"),
    ("(a=b", "parentheses"),
    ("((a=b)", "missing"),
    ("(a=b))", "unbalanced ')'"),
    ("(a=b)(c=d)", "more than one"),
    ("(&())", "empty"),
])
def test_filter_shape_check(text: str, problem: str | None) -> None:
    found = filter_syntax_problem(text)
    assert (found is None) if problem is None else (problem in (found or ""))


# -- range retrieval -----------------------------------------------------------------------


@pytest.mark.parametrize(("description", "part"), [
    ("member", None),
    ("member;range=0-1499", RangePart("member", 0, 1499)),
    ("Member;Range=1500-*", RangePart("member", 1500, None)),
    ("member;binary;range=0-9", RangePart("member;binary", 0, 9)),
    ("member;range=a-b", None),
])
def test_ranged_attribute_names(description: str, part: RangePart | None) -> None:
    assert parse_ranged(description) == part


def test_ranges_are_merged_and_followed() -> None:
    merged, pending = merge_ranges({"cn": [b"g"], "member;range=0-1": [b"a", b"b"]})
    assert merged == {"cn": [b"g"], "member": [b"a", b"b"]}
    assert pending == {"member": 2}
    assert range_request("member", 2) == "member;range=2-*"
    assert next_part("member", 2, {"member;range=2-3": [b"c", b"d"]}) == ([b"c", b"d"], 4)
    assert next_part("member", 4, {"member;range=4-*": [b"e"]}) == ([b"e"], None)


@pytest.mark.parametrize("reply", [
    {},  # the values are gone (entry changed)
    {"member;range=3-*": [b"x"]},  # does not start where asked
    {"member;range=2-1": []},  # empty range: would loop for ever
])
def test_a_broken_range_reply_is_a_reason_not_values(reply: dict[str, list[bytes]]) -> None:
    assert isinstance(next_part("member", 2, reply), str)


def test_complete_attributes_have_nothing_pending() -> None:
    assert merge_ranges({"member;range=0-*": [b"a"]}) == ({"member": [b"a"]}, {})


# -- entries -------------------------------------------------------------------------------


def test_user_entry_is_mapped() -> None:
    mapper = EntryMapper(config())
    user = mapper.user("uid=alice,ou=p,dc=x", {
        "uid": [b"alice"], "givenname": [b"Alice"], "sn": [b"Adams"], "mail": [b"a@x"],
        "displayname": [b"Alice \x07Adams"], "entryuuid": [b"0A2F-UUID"],
    })
    assert user == User(name="alice", first_name="Alice", last_name="Adams",
                        display_name="Alice Adams", email="a@x", active=True,
                        external_id="0a2f-uuid", dn="uid=alice,ou=p,dc=x")


def test_naming_attribute_prefers_the_rdn_value() -> None:
    mapper = EntryMapper(config())
    group = mapper.group("cn=admins,dc=x", {"cn": [b"Administrators", b"ADMINS"],
                                            "entryuuid": [b"1"]})
    assert group.name == "ADMINS"


@pytest.mark.parametrize(("values", "reason"), [
    ({"entryuuid": [b"1"]}, "has no uid"),
    ({"uid": [b"x"]}, "has no entryUUID"),
    ({"uid": [b" padded"], "entryuuid": [b"1"]}, "leading or trailing"),
    ({"uid": [b"bad\x01"], "entryuuid": [b"1"]}, "control character"),
    ({"uid": [b"x" * 256], "entryuuid": [b"1"]}, "longer than 255"),
    ({"uid": [b"\xff"], "entryuuid": [b"1"]}, "not UTF-8"),
])
def test_unusable_entries_are_skipped_with_a_reason(values: dict[str, list[bytes]],
                                                   reason: str) -> None:
    with pytest.raises(Skip, match=reason):
        EntryMapper(config()).user("uid=x,dc=x", values)


def test_object_guid_becomes_the_canonical_uuid_string() -> None:
    guid = uuid.UUID("0d9d1c5b-5b83-4f4c-9a4e-5b1c1b1d1e1f")
    mapper = EntryMapper(config(preset="active_directory"))
    assert mapper.external_id({"objectguid": [guid.bytes_le]}) == str(guid)
    with pytest.raises(Skip, match="16 bytes"):
        mapper.external_id({"objectguid": [b"short"]})


@pytest.mark.parametrize(("preset", "values", "disabled"), [
    ("openldap", {}, False),
    ("openldap", {"pwdaccountlockedtime": [b"000001010000Z"]}, True),
    ("389ds", {"nsaccountlock": [b"TRUE"]}, True),
    ("389ds", {"nsaccountlock": [b"false"]}, False),
    ("active_directory", {"useraccountcontrol": [b"514"]}, True),
    ("active_directory", {"useraccountcontrol": [b"512"]}, False),
    ("active_directory", {"useraccountcontrol": [b"junk"]}, False),
])
def test_disabled_flags(preset: str, values: dict[str, list[bytes]], disabled: bool) -> None:
    assert EntryMapper(config(preset=preset)).is_disabled(values) is disabled


def test_requested_attributes_are_only_the_mapped_ones() -> None:
    mapper = EntryMapper(config())
    assert mapper.user_attributes() == ["uid", "givenName", "sn", "displayName", "mail",
                                        "entryUUID", "pwdAccountLockedTime"]
    assert mapper.group_attributes() == ["cn", "description", "entryUUID", "member"]
    member_of = EntryMapper(config(membership="memberOf", disabled_method="none"))
    assert member_of.user_attributes()[-1] == "memberOf"
    assert member_of.group_attributes()[-1] == "memberOf"


# -- member resolution ---------------------------------------------------------------------


def user(name: str, dn: str, uid: str | None = None) -> User:
    return User(name=name, external_id=uid or name, dn=dn)


def group(name: str, dn: str) -> Group:
    return Group(name=name, external_id=name, dn=dn)


def raw(*values: str) -> list[bytes]:
    """Member values as they arrive from the server."""
    return [v.encode() for v in values]


def test_member_dns_match_in_any_spelling() -> None:
    builder = SnapshotBuilder("member")
    builder.add_user(user("jdoe", "cn=Doe\\, John,ou=people,dc=x"))
    builder.add_user(user("jörg", "uid=jörg,ou=people,dc=x"))
    builder.add_group(group("g", "cn=g,dc=x"), raw(
        "CN=Doe\\2C John, OU=People,DC=X", "uid=j\\C3\\B6rg,ou=people,dc=x",
        "uid=out,ou=elsewhere,dc=x", "not a dn", "cn=G,dc=x",
    ))
    snapshot, d = builder.finish()
    assert snapshot.user_memberships == {("g", "jdoe"), ("g", "jörg")}
    assert d.members_out_of_scope.count == 1
    assert d.members_unresolvable.examples == ["not a dn"]
    assert d.self_memberships.count == 1


def test_nesting_cycles_and_unique_member_suffix() -> None:
    builder = SnapshotBuilder("uniqueMember")
    builder.add_user(user("bob", "uid=bob,dc=x"))
    builder.add_group(group("a", "cn=a,dc=x"), raw("cn=b,dc=x", "uid=bob,dc=x#'0101'B"))
    builder.add_group(group("b", "cn=b,dc=x"), raw("cn=a,dc=x"))
    snapshot, _ = builder.finish()
    assert snapshot.group_memberships == {("a", "b"), ("b", "a")}
    assert snapshot.user_memberships == {("a", "bob")}


def test_member_uid_matches_usernames_case_insensitively() -> None:
    builder = SnapshotBuilder("memberUid")
    builder.add_user(user("Alice", "uid=Alice,dc=x"))
    builder.add_group(group("devs", "cn=devs,dc=x"), raw("alice", "nobody"))
    snapshot, d = builder.finish()
    assert snapshot.user_memberships == {("devs", "alice")}
    assert d.members_unresolvable.examples == ["nobody"]


def test_member_of_is_read_from_the_member_side() -> None:
    builder = SnapshotBuilder("memberOf")
    builder.add_user(user("u", "uid=u,dc=x"), ["cn=child,dc=x", "cn=elsewhere,dc=y"])
    builder.add_group(group("parent", "cn=parent,dc=x"), raw())
    builder.add_group(group("child", "cn=child,dc=x"), raw("CN=Parent,DC=X"))
    snapshot, d = builder.finish()
    assert snapshot.user_memberships == {("child", "u")}
    assert snapshot.group_memberships == {("parent", "child")}
    assert d.members_out_of_scope.count == 1


@pytest.mark.parametrize("order", [0, 1])
def test_duplicate_names_keep_the_same_winner_whatever_the_order(order: int) -> None:
    entries = [user("alice", "uid=alice,ou=b,dc=x", "id-b"),
               user("ALICE", "uid=alice,ou=a,dc=x", "id-a")]
    builder = SnapshotBuilder("member")
    for entry in entries[::1 if order else -1]:
        builder.add_user(entry)
    builder.add_group(group("g", "cn=g,dc=x"), raw("uid=alice,ou=a,dc=x", "uid=alice,ou=b,dc=x"))
    snapshot, d = builder.finish()
    assert [u.external_id for u in snapshot.users] == ["id-a"]
    assert snapshot.user_memberships == {("g", "alice")}
    [duplicate] = d.duplicates
    assert (duplicate.kind, duplicate.kept_dn, duplicate.dropped_dns) == (
        "user name", "uid=alice,ou=a,dc=x", ("uid=alice,ou=b,dc=x",))
    assert d.members_of_dropped_duplicates.count == 1


def test_duplicate_unique_ids_are_reported_too() -> None:
    builder = SnapshotBuilder("member")
    builder.add_user(user("a", "uid=a,dc=x", "same"))
    builder.add_user(user("b", "uid=b,dc=x", "same"))
    snapshot, d = builder.finish()
    assert [u.name for u in snapshot.users] == ["a"]
    assert d.duplicates[0].kind == "user id"


def test_an_entry_with_an_unparsable_dn_is_skipped() -> None:
    builder = SnapshotBuilder("member")
    builder.add_user(user("a", "uid=a,,dc=x"))
    snapshot, d = builder.finish()
    assert snapshot.users == [] and "cannot be parsed" in d.skipped[0].reason


# -- result codes --------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "cls"), [
    (3, errors.LimitExceeded),
    (4, errors.LimitExceeded),
    (11, errors.LimitExceeded),
    (10, errors.ReferralNotFollowed),
    (12, errors.PagingIncomplete),
    (32, errors.BaseDnMissing),
    (49, errors.BindRejected),
    (51, errors.DirectoryUnreachable),
    (52, errors.DirectoryUnreachable),
    (50, errors.DirectoryOperationFailed),
    (80, errors.DirectoryOperationFailed),
])
def test_every_failure_code_is_an_error_with_a_reason(code: int, cls: type) -> None:
    error = error_for_result("corp", code, "someCode", "server says why", "searching users")
    assert type(error) is cls
    assert error.result_code == code
    assert str(error).startswith("directory 'corp': searching users failed")
    assert "server says why" in str(error)
    partial = isinstance(error, errors.IncompleteRead)
    assert partial is (code in (3, 4, 10, 11, 12))


@pytest.mark.parametrize(("message", "subcode"), [
    ("80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 533, v2580",
     "533"),
    ("80090308: LdapErr: DSID-0C090447, comment: AcceptSecurityContext error, data 52e, v3839",
     "52e"),
    ("", None),
    ("invalid credentials", None),
])
def test_active_directory_bind_subcodes(message: str, subcode: str | None) -> None:
    assert ad_bind_subcode(message) == subcode


@pytest.mark.parametrize("text", [
    "uid=alice,ou=people,dc=example,dc=com",
    "UID=Alice,OU=People,DC=Example,DC=COM",
    "cn=Alice Adams,ou=Sales Team,dc=x",
    "cn=a.b_c@d-e,dc=x",
    "2.5.4.3=x,dc=y",
    # not plain: go through the parser, and must still agree
    "cn=Doe\\, John,dc=x", "cn=Multi+uid=m,dc=x", "uid=jörg,dc=x", "cn= padded ,dc=x",
    "uid=a , dc=x", "cn=STRASSE,dc=x", "cn=Straße,dc=x", "cn=\\#x,dc=x", "cn=#41,dc=x",
])
def test_the_plain_dn_shortcut_agrees_with_dn_key(text: str) -> None:
    assert dn_key(text) == _slow_dn_key(text)


_TYPES = st.sampled_from(["cn", "uid", "OU", "dc", "2.5.4.3", "x-Attr"])
_VALUES = st.text(st.sampled_from("aZ09 ._@-ßé,+\\\"#="), max_size=8)
_DNS = st.lists(st.tuples(_TYPES, _VALUES, st.sampled_from(["=", " = ", "= "])),
                min_size=1, max_size=4).map(
    lambda rdns: ",".join(f"{t}{eq}{v}" for t, v, eq in rdns))


@settings(max_examples=500, deadline=None)
@given(_DNS)
def test_the_plain_dn_shortcut_agrees_on_random_dns(text: str) -> None:
    def key(function: Callable[[str], str]) -> str | None:
        try:
            return function(text)
        except ValueError:
            return None

    assert key(dn_key) == key(_slow_dn_key)

"""dirsync.ldap.requests: search requests written as BER must be the bytes ldap3 sends.

The reference is ldap3's own encoder (`connection.ldap3_search_request`: ldap3's
search_operation and pyasn1, with dirsync's connection settings), so a difference in any
filter kind, value escape, length form or control shows up as a byte mismatch here.
"""

from __future__ import annotations

import pytest

from dirsync.ldap.connection import ldap3_search_request
from dirsync.ldap.filters import all_of, at_least, equality, matches_with
from dirsync.ldap.requests import (
    SCOPE_BASE,
    SCOPE_SUBTREE,
    FilterNotEncodable,
    encode_filter,
    search_request,
)

DN = "cn=Doe\\, John+uid=j (x)*\\5c,ou=people,dc=example,dc=com"

FILTERS = [
    "(objectClass=*)",
    all_of(equality("objectClass", "groupOfNames"), equality("member", DN)),
    all_of("(&(objectClass=groupOfNames)(!(description=hidden)))", equality("member", DN)),
    equality("cn", "Jörg Größer"),
    equality("objectGUID", bytes(range(16))),
    equality("cn", "\x00*()\\"),
    at_least("entryCSN", "20240101000000.000000Z#000000#000#000000"),
    matches_with("memberUid", "caseIgnoreIA5Match", "j*doe"),
    "(|(a=1)(b>=2)(c<=3)(d~=4))",
    "(cn=a*b*c)", "(cn=*b*)", "(cn=a*)", "(cn=*a)", "(cn=a**b)",
    "(cn:dn:2.4.6.8.10:=Dino)", "(:dn:2.4.6.8.10:=Dino)", "(o:dn:=Ace)", "(cn:=x)",
    "(userAccountControl:1.2.840.113556.1.4.803:=2)",
    "(member;range=0-*=x)",
    "(&(objectClass=user)(objectCategory=person)(|(cn=" + "x" * 300 + ")(sn=y)))",
]


@pytest.mark.parametrize("search_filter", FILTERS)
@pytest.mark.parametrize("paged", [None, (1000, b""), (7, bytes(range(256)) * 2)])
def test_the_bytes_are_ldap3s(search_filter: str, paged: tuple[int, bytes] | None) -> None:
    for message_id, attributes in ((1, ["entryUUID"]), (2**31 - 1, ["1.1"]),
                                   (128, ["cn", "member", "objectGUID", "x" * 200])):
        mine = search_request(message_id, "ou=groups,dc=example,dc=com", SCOPE_SUBTREE,
                              encode_filter(search_filter), attributes, paged=paged)
        assert mine == ldap3_search_request(message_id, "ou=groups,dc=example,dc=com", True,
                                            search_filter, attributes, paged=paged)


def test_a_base_search_and_a_size_limit() -> None:
    mine = search_request(5, DN, SCOPE_BASE, encode_filter("(objectClass=*)"), ["1.1"],
                          size_limit=3)
    assert mine == ldap3_search_request(5, DN, False, "(objectClass=*)", ["1.1"], size_limit=3)


@pytest.mark.parametrize("text", [
    "", "cn=a", "(cn=a", "(cn=a))", "(cn=a)(cn=b)", "(&)", "(|)", "(!(a=1)(b=2))",
    " (cn=a)", "(& (cn=a))", "(cn =a)", "(=a)", "(cn=a\\zz)", "(cn=a\\4)", "(cn>=a*)",
    "(cn=\x00)", "(:=a)", "(cn:dn:x:y:=a)",
])
def test_outside_rfc_4515_is_not_encoded(text: str) -> None:
    # These go to ldap3 instead (wire.py), which accepts some of them (spaces) and refuses
    # the rest with its own error.
    with pytest.raises(FilterNotEncodable):
        encode_filter(text)


def test_spaces_in_a_value_are_kept() -> None:
    # ldap3 strips them (its parser trims every assertion value); RFC 4515 keeps them, and a
    # DN value ending in an escaped space must not lose it.
    assert b"\x04\x07 a b \\ " in encode_filter("(cn= a b \\5c )")

"""dirsync.dn: parsing, comparison keys and escaping of RFC 4514 DN strings."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dirsync import dn as dn_module
from dirsync.dn import RDN, dn_key, escape_rdn_value, parse_dn

PARSED = [
    ("", ()),
    ("   ", ()),
    ("dc=example,dc=com", ((("dc", "example"),), (("dc", "com"),))),
    ("uid=alice,ou=people", ((("uid", "alice"),), (("ou", "people"),))),
    ("UID=Alice,OU=People", ((("UID", "Alice"),), (("OU", "People"),))),
    # spaces around separators and '=' are padding
    ("uid = alice , ou = people", ((("uid", "alice"),), (("ou", "people"),))),
    ("cn=John Smith,ou=x", ((("cn", "John Smith"),), (("ou", "x"),))),
    ("cn=a  ", ((("cn", "a"),),)),
    # escaped specials
    ("uid=comma\\,user", ((("uid", "comma,user"),),)),
    ("uid=plus\\+user", ((("uid", "plus+user"),),)),
    ('uid=quote\\"user', ((("uid", 'quote"user'),),)),
    ("uid=back\\\\slash", ((("uid", "back\\slash"),),)),
    ("uid=\\<angle\\>", ((("uid", "<angle>"),),)),
    ("uid=semi\\;colon", ((("uid", "semi;colon"),),)),
    ("uid=eq\\=sign", ((("uid", "eq=sign"),),)),
    ("uid=eq=sign", ((("uid", "eq=sign"),),)),
    ("uid=\\#hash", ((("uid", "#hash"),),)),
    ("uid=mid#hash", ((("uid", "mid#hash"),),)),
    ("cn=\\ lead", ((("cn", " lead"),),)),
    ("cn=trail\\ ", ((("cn", "trail "),),)),
    ("cn=\\20both\\20", ((("cn", " both "),),)),
    ("cn=\\ ", ((("cn", " "),),)),
    # hex escapes, including UTF-8 sequences
    ("uid=comma\\2Cuser", ((("uid", "comma,user"),),)),
    ("uid=comma\\2cuser", ((("uid", "comma,user"),),)),
    ("cn=Jos\\c3\\a9", ((("cn", "José"),),)),
    ("cn=Jos\\C3\\A9", ((("cn", "José"),),)),
    ("cn=José", ((("cn", "José"),),)),
    ("cn=\\e5\\b1\\b1\\e7\\94\\b0", ((("cn", "山田"),),)),
    ("cn=nul\\00byte", ((("cn", "nul\x00byte"),),)),
    # multi-valued RDNs
    ("cn=Multi+uid=m,ou=x", ((("cn", "Multi"), ("uid", "m")), (("ou", "x"),))),
    ("cn = a + uid = b", ((("cn", "a"), ("uid", "b")),)),
    # BER hex values are kept as their string form, lower-cased
    ("cn=#04024869,ou=x", ((("cn", "#04024869"),), (("ou", "x"),))),
    ("cn=#0402ABCD", ((("cn", "#0402abcd"),),)),
    ("cn=#0402ab , ou=x", ((("cn", "#0402ab"),), (("ou", "x"),))),
    # numeric OIDs as attribute types; an empty value
    ("2.5.4.3=alice", ((("2.5.4.3", "alice"),),)),
    ("cn=", ((("cn", ""),),)),
    ("cn=,ou=x", ((("cn", ""),), (("ou", "x"),))),
    ("x-custom-attr1=v", ((("x-custom-attr1", "v"),),)),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parse_dn(text: str, expected: tuple[RDN, ...]) -> None:
    assert parse_dn(text) == expected


EQUAL = [
    ("uid=alice,ou=people,dc=example,dc=com", "UID=Alice,OU=People,DC=Example,DC=COM"),
    ("uid=alice,ou=people", "uid = alice , ou = people"),
    ("uid=alice,ou=people", "uid=alice, ou=people"),
    ("uid=comma\\,user,ou=x", "uid=comma\\2Cuser,ou=x"),
    ("uid=comma\\,user,ou=x", "uid=comma\\2cuser,ou=x"),
    ("uid=plus\\+user", "uid=plus\\2Buser"),
    ('uid=quote\\"user', "uid=quote\\22user"),
    ("uid=back\\\\slash", "uid=back\\5Cslash"),
    ("uid=\\<a\\>", "uid=\\3Ca\\3E"),
    ("uid=semi\\;colon", "uid=semi\\3bcolon"),
    ("uid=\\#hash", "uid=\\23hash"),
    ("uid=eq=sign", "uid=eq\\=sign"),
    ("cn=jürgen", "cn=j\\c3\\bcrgen"),
    ("cn=jürgen", "cn=J\\C3\\9Crgen"),  # Ü (c3 9c) folds to ü
    ("cn=José", "cn=Jose\u0301"),  # precomposed vs combining accent (NFC)
    ("cn=STRASSE", "cn=straße"),  # casefold, not lower
    ("cn=a+uid=b,ou=x", "uid=b+cn=a,ou=x"),
    ("cn=A+UID=B", "uid=b + CN=a"),
    ("cn=#04024869", "CN=#04024869"),
    ("cn=#0402ABCD", "cn=#0402abcd"),
    ("cn=trail\\ ", "cn=trail\\20"),
    ("", "  "),
]


@pytest.mark.parametrize(("left", "right"), EQUAL)
def test_equal_dns_have_equal_keys(left: str, right: str) -> None:
    assert dn_key(left) == dn_key(right)


UNEQUAL = [
    ("uid=alice,ou=people", "uid=bob,ou=people"),
    ("uid=alice,ou=people", "cn=alice,ou=people"),
    ("uid=alice,ou=people", "uid=alice,ou=people,dc=example"),
    ("uid=alice,ou=people", "ou=people,uid=alice"),
    ("uid=a\\,b", "uid=a,b=x"),  # escaped comma vs separator
    ("uid=a\\+cn=b", "uid=a+cn=b"),  # escaped plus vs multi-valued RDN
    ("cn=\\#41", "cn=#41"),  # a string starting with '#' is not a BER value
    ("cn=trail\\ ", "cn=trail"),  # escaped trailing space is part of the value
    ("cn=\\ lead", "cn=lead"),
    ("cn=a b", "cn=a  b"),  # inner spaces are not collapsed
    ("2.5.4.3=alice", "cn=alice"),  # no schema: OIDs are not mapped to names
    ("cn=jose", "cn=José"),
    ("", "dc=com"),
]


@pytest.mark.parametrize(("left", "right"), UNEQUAL)
def test_unequal_dns_have_unequal_keys(left: str, right: str) -> None:
    assert dn_key(left) != dn_key(right)


def test_dn_key_is_canonical_text() -> None:
    assert dn_key("UID=Comma\\2CUser+CN=X , OU=People") == "cn=x+uid=comma\\,user,ou=people"


MALFORMED = [
    ("cn", "expected '=' after attribute type 'cn'"),
    ("=alice", "expected an attribute type"),
    ("cn=a,", "empty RDN"),
    ("cn=a,,ou=b", "empty RDN"),
    (",cn=a", "empty RDN"),
    ("cn=a+", "empty RDN"),
    ("cn=a+,ou=b", "empty RDN"),
    ("cn=a\\", "a '\\' at the end escapes nothing"),
    ("cn=a\\zb", "'\\z' is not an escape"),
    ("cn=a\\4", "'\\4' is not an escape"),
    ("cn=a\\xyz", "'\\x' is not an escape"),
    ("cn=#", "must be followed by pairs of hex digits"),
    ("cn=#0", "must be followed by pairs of hex digits"),
    ("cn=#zz", "must be followed by pairs of hex digits"),
    ("cn=#0102 x", "a '#' hex value must end at ',' or '+'"),
    ("cn=a;b", "unescaped ';' in a value; write it as '\\;'"),
    ("cn=a<b", "unescaped '<'"),
    ("cn=a>b", "unescaped '>'"),
    ('cn="quoted"', "unescaped '\"'"),
    ("cn=a\x00b", "unescaped '\\x00'"),
    ("cn=\\c3", "hex escapes do not form valid UTF-8"),
    ("cn=\\ff\\fe", "hex escapes do not form valid UTF-8"),
    ("c_n=a", "expected '=' after attribute type 'c'"),
    ("1cn=a", "expected an attribute type"),
    ("2=a", "expected an attribute type"),
    ("cn=a,ou", "expected '=' after attribute type 'ou'"),
    ("uid=alice;ou=people", "unescaped ';'"),
]


@pytest.mark.parametrize(("text", "problem"), MALFORMED)
def test_malformed_dn_is_a_clear_value_error(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_dn(text)
    assert problem in str(caught.value)
    assert repr(text) in str(caught.value)
    with pytest.raises(ValueError):
        dn_key(text)


ESCAPED = [
    ("alice", "alice"),
    ("comma,user", "comma\\,user"),
    ("plus+user", "plus\\+user"),
    ('quote"user', 'quote\\"user'),
    ("back\\slash", "back\\\\slash"),
    ("<angle>", "\\<angle\\>"),
    ("semi;colon", "semi\\;colon"),
    ("#hash", "\\#hash"),
    ("mid#hash", "mid#hash"),
    ("eq=sign", "eq=sign"),
    (" lead", "\\ lead"),
    ("trail ", "trail\\ "),
    (" ", "\\ "),
    ("a b", "a b"),
    ("nul\x00", "nul\\00"),
    ("José 山田", "José 山田"),
    ("", ""),
]


@pytest.mark.parametrize(("value", "expected"), ESCAPED)
def test_escape_rdn_value(value: str, expected: str) -> None:
    assert escape_rdn_value(value) == expected


@given(st.text())
def test_escaped_values_parse_back_unchanged(value: str) -> None:
    dn = f"cn={escape_rdn_value(value)}+uid=x,ou=people"
    assert parse_dn(dn) == ((("cn", value), ("uid", "x")), (("ou", "people"),))


@given(st.text(max_size=40))
def test_dn_key_fails_only_with_value_error(text: str) -> None:
    try:
        key = dn_key(text)
    except ValueError:
        return
    assert len(parse_dn(key)) == len(parse_dn(text))  # a key is itself a well-formed DN


# The fast path of dn_key (plain splitting for DNs without escapes) must agree with the
# parser wherever it answers, and leave everything else to the parser.
DN_CHARS = st.sampled_from(list("abcXYZé ß=,+\\\"#;<>0123456789.-") + ["\x00", "Ω", "İ"])


@settings(max_examples=2000, deadline=None)
@given(st.text(DN_CHARS, max_size=40))
def test_fast_dn_key_agrees_with_the_parser(text: str) -> None:
    from dirsync.dn import _simple_key, _slow_dn_key

    if dn_module._NOT_SIMPLE.search(text) is not None:
        return
    fast = _simple_key(text)
    try:
        slow = _slow_dn_key(text)
    except ValueError:
        assert fast is None, (text, fast)
        return
    assert fast is None or fast == slow, (text, fast, slow)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["uid", "cn", "OU", "dc", "2.5.4.3"]),
                          st.text(st.sampled_from(list("abcXYZé ß=.-İΩ")), min_size=1, max_size=8)),
                min_size=1, max_size=5))
def test_fast_dn_key_answers_plain_dns(rdns: list[tuple[str, str]]) -> None:
    from dirsync.dn import _simple_key, _slow_dn_key

    text = ",".join(f"{k}={v}" for k, v in rdns)
    if any(not v.strip(" ") for _, v in rdns):
        return
    assert _simple_key(text) == _slow_dn_key(text)

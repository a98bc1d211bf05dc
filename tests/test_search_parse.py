"""dirsync.search: the XML, JSON and CQL spellings of Crowd search restrictions (table-driven)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dirsync.errors import IllegalArgument
from dirsync.search import (
    MAX_DEPTH,
    MAX_TERMS,
    BooleanRestriction,
    MatchMode,
    NullRestriction,
    PropertyRestriction,
    PropertyType,
    Restriction,
    parse_cql,
    parse_json,
    parse_xml,
)

S, B, D = PropertyType.STRING, PropertyType.BOOLEAN, PropertyType.DATE
M = MatchMode
UTC = dt.timezone.utc


def prop(
    name: str, mode: MatchMode, value: object, ptype: PropertyType = S
) -> PropertyRestriction:
    return PropertyRestriction(name, ptype, mode, value)  # type: ignore[arg-type]


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=UTC)


def eq(name: str, value: object, ptype: PropertyType = S) -> PropertyRestriction:
    return prop(name, M.EXACTLY_MATCHES, value, ptype)


def cases(argnames: str, rows: list[tuple[str, object, object]]) -> pytest.MarkDecorator:
    """Parametrise from (id, *args) rows."""
    return pytest.mark.parametrize(argnames, [pytest.param(*row[1:], id=row[0]) for row in rows])


def AND(*items: Restriction) -> BooleanRestriction:
    return BooleanRestriction("AND", items)


def OR(*items: Restriction) -> BooleanRestriction:
    return BooleanRestriction("OR", items)


def xml_prop(name: str, ptype: str | None, mode: str, value: str | None = None) -> str:
    type_el = f"<type>{ptype}</type>" if ptype is not None else ""
    value_el = f"<value>{value}</value>" if value is not None else ""
    return (
        f"<property-search-restriction><property><name>{name}</name>{type_el}</property>"
        f"<match-mode>{mode}</match-mode>{value_el}</property-search-restriction>"
    )


# The probe Atlassian's "Test settings" button sends, byte for byte as JAXB writes it.
TEST_SETTINGS_PROBE = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b"<property-search-restriction><property><name>name</name><type>STRING</type></property>"
    b"<match-mode>NULL</match-mode></property-search-restriction>"
)

# --- XML -------------------------------------------------------------------------------------

XML_VALID: list[tuple[str, bytes, Restriction]] = [
    ("empty body", b"", NullRestriction()),
    ("blank body", b"  \n", NullRestriction()),
    ("null", b"<null-search-restriction/>", NullRestriction()),
    (
        "null with declaration",
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><null-search-restriction/>',
        NullRestriction(),
    ),
    ("test settings probe", TEST_SETTINGS_PROBE, prop("name", M.NULL, None)),
    (
        "email exact",
        xml_prop("email", "STRING", "EXACTLY_MATCHES", "bob@example.net").encode(),
        prop("email", M.EXACTLY_MATCHES, "bob@example.net"),
    ),
    (
        "type and match-mode case-insensitive",
        xml_prop("email", "string", " starts_with ", "Bob").encode(),
        prop("email", M.STARTS_WITH, "Bob"),
    ),
    (
        "value whitespace and Unicode kept",
        xml_prop("displayName", "STRING", "CONTAINS", " Ünïcødé 名前 😀 ").encode(),
        prop("displayName", M.CONTAINS, " Ünïcødé 名前 😀 "),
    ),
    (
        "escaped markup in value",
        xml_prop("name", "STRING", "EXACTLY_MATCHES", "a&lt;b&amp;c").encode(),
        prop("name", M.EXACTLY_MATCHES, "a<b&c"),
    ),
    (
        "empty value",
        xml_prop("email", "STRING", "EXACTLY_MATCHES", "").encode(),
        prop("email", M.EXACTLY_MATCHES, ""),
    ),
    (
        "boolean TRUE",
        xml_prop("active", "BOOLEAN", "EXACTLY_MATCHES", "TRUE").encode(),
        prop("active", M.EXACTLY_MATCHES, True, B),
    ),
    (
        "Java date",
        xml_prop("createdDate", "DATE", "GREATER_THAN", "2013-01-30T16:38:27.369+1100").encode(),
        prop("createdDate", M.GREATER_THAN, dt.datetime(2013, 1, 30, 5, 38, 27, 369000, UTC), D),
    ),
    (
        "missing type taken from the property",
        xml_prop("active", None, "EXACTLY_MATCHES", "false").encode(),
        prop("active", M.EXACTLY_MATCHES, False, B),
    ),
    (
        "custom attribute",
        xml_prop("department", "STRING", "ENDS_WITH", "ing").encode(),
        prop("department", M.ENDS_WITH, "ing"),
    ),
    (
        "value ignored with NULL",
        xml_prop("email", "STRING", "NULL", "x").encode(),
        prop("email", M.NULL, None),
    ),
    (
        "nested boolean, logic case-insensitive",
        (
            '<boolean-search-restriction boolean-logic="and"><restrictions>'
            + xml_prop("name", "STRING", "STARTS_WITH", "a")
            + '<boolean-search-restriction boolean-logic="Or"><restrictions>'
            + xml_prop("active", "BOOLEAN", "EXACTLY_MATCHES", "true")
            + "<null-search-restriction/>"
            + "</restrictions></boolean-search-restriction>"
            + "</restrictions></boolean-search-restriction>"
        ).encode(),
        AND(
            prop("name", M.STARTS_WITH, "a"),
            OR(prop("active", M.EXACTLY_MATCHES, True, B), NullRestriction()),
        ),
    ),
    (
        "boolean without the restrictions wrapper",
        (
            '<boolean-search-restriction boolean-logic="OR">'
            + xml_prop("name", "STRING", "EXACTLY_MATCHES", "a")
            + "</boolean-search-restriction>"
        ).encode(),
        OR(prop("name", M.EXACTLY_MATCHES, "a")),
    ),
    (
        "empty boolean",
        b'<boolean-search-restriction boolean-logic="AND"><restrictions/>'
        b"</boolean-search-restriction>",
        AND(),
    ),
    (
        "latin-1 declared",
        '<?xml version="1.0" encoding="ISO-8859-1"?>'.encode()
        + xml_prop("name", "STRING", "EXACTLY_MATCHES", "émile").encode("latin-1"),
        prop("name", M.EXACTLY_MATCHES, "émile"),
    ),
    (
        "namespace and unknown elements tolerated",
        b'<property-search-restriction xmlns="urn:x"><link href="x"/><property><name>name'
        b"</name><type>STRING</type></property><match-mode>NULL</match-mode>"
        b"</property-search-restriction>",
        prop("name", M.NULL, None),
    ),
]


@cases("body, expected", XML_VALID)
def test_parse_xml(body: bytes, expected: Restriction) -> None:
    assert parse_xml(body) == expected


def nested_xml(depth: int) -> bytes:
    open_ = '<boolean-search-restriction boolean-logic="AND"><restrictions>' * depth
    close = "</restrictions></boolean-search-restriction>" * depth
    return (open_ + "<null-search-restriction/>" + close).encode()


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<property-search-restriction><property><name>name</name><type>STRING</type></property>"
    b"<match-mode>EXACTLY_MATCHES</match-mode><value>&lol3;</value>"
    b"</property-search-restriction>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b"<property-search-restriction><property><name>name</name><type>STRING</type></property>"
    b"<match-mode>EXACTLY_MATCHES</match-mode><value>&xxe;</value>"
    b"</property-search-restriction>"
)

XML_INVALID: list[tuple[str, bytes, str]] = [
    ("entity expansion bomb", BILLION_LAUGHS, "must not contain a DTD"),
    ("external entity", EXTERNAL_ENTITY, "must not contain a DTD"),
    ("bare doctype", b"<!DOCTYPE x><null-search-restriction/>", "must not contain a DTD"),
    ("not well-formed", b"<null-search-restriction>", "not well-formed XML"),
    ("not XML", b"name = bob", "not well-formed XML"),
    ("undefined entity", b"<null-search-restriction>&x;</null-search-restriction>", "XML"),
    ("unknown encoding", b'<?xml version="1.0" encoding="nope"?><x/>', "cannot be read"),
    ("unknown root", b"<search/>", "unknown search restriction <search>"),
    (
        "unknown match-mode",
        xml_prop("name", "STRING", "FOO", "x").encode(),
        "unknown match-mode 'FOO' in property-search-restriction",
    ),
    ("missing match-mode", xml_prop("name", "STRING", "", "x").encode(), "match-mode is missing"),
    ("unknown type", xml_prop("name", "NUMBER", "NULL").encode(), "unknown property type 'NUMBER'"),
    (
        "missing value",
        xml_prop("name", "STRING", "EXACTLY_MATCHES").encode(),
        "<value> is missing in property-search-restriction; match-mode EXACTLY_MATCHES needs one",
    ),
    (
        "missing property",
        b"<property-search-restriction><match-mode>NULL</match-mode>"
        b"</property-search-restriction>",
        "<property> is missing",
    ),
    (
        "missing name",
        b"<property-search-restriction><property><type>STRING</type></property>"
        b"<match-mode>NULL</match-mode></property-search-restriction>",
        "<property><name> is missing",
    ),
    ("blank name", xml_prop(" ", "STRING", "NULL").encode(), "property name is missing"),
    (
        "bad boolean",
        xml_prop("active", "BOOLEAN", "EXACTLY_MATCHES", "yes").encode(),
        "'yes' is not a BOOLEAN value",
    ),
    (
        "bad date",
        xml_prop("createdDate", "DATE", "LESS_THAN", "30/01/2013").encode(),
        "'30/01/2013' is not a DATE value",
    ),
    (
        "impossible date",
        xml_prop("createdDate", "DATE", "LESS_THAN", "2013-02-30").encode(),
        "not a valid DATE value",
    ),
    (
        "markup in value",
        xml_prop("name", "STRING", "EXACTLY_MATCHES", "<b>x</b>").encode(),
        "<value> must contain text only",
    ),
    (
        "missing boolean-logic",
        b"<boolean-search-restriction><restrictions/></boolean-search-restriction>",
        "boolean-logic is missing",
    ),
    (
        "bad boolean-logic",
        b'<boolean-search-restriction boolean-logic="XOR"><restrictions/>'
        b"</boolean-search-restriction>",
        "unknown boolean-logic 'XOR'",
    ),
    (
        "error inside nesting names the path",
        (
            '<boolean-search-restriction boolean-logic="AND"><restrictions>'
            "<null-search-restriction/>" + xml_prop("name", "STRING", "BAD", "x")
            + "</restrictions></boolean-search-restriction>"
        ).encode(),
        "in boolean-search-restriction/restrictions[2]/property-search-restriction",
    ),
    ("too deep", nested_xml(MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels"),
    (
        "too many terms",
        (
            '<boolean-search-restriction boolean-logic="OR"><restrictions>'
            + xml_prop("name", "STRING", "NULL") * (MAX_TERMS + 1)
            + "</restrictions></boolean-search-restriction>"
        ).encode(),
        f"more than {MAX_TERMS} property restrictions",
    ),
]


@cases("body, message", XML_INVALID)
def test_parse_xml_refuses(body: bytes, message: str) -> None:
    with pytest.raises(IllegalArgument) as caught:
        parse_xml(body)
    assert message in caught.value.message
    assert caught.value.reason == "ILLEGAL_ARGUMENT"


def test_parse_xml_depth_limit_is_inclusive() -> None:
    assert parse_xml(nested_xml(MAX_DEPTH)) is not None


def test_parse_xml_entity_aware_typing() -> None:
    # "local" is a group property; for users it is a custom attribute, hence STRING.
    body = xml_prop("local", None, "EXACTLY_MATCHES", "yes").encode()
    assert parse_xml(body, entity="user") == prop("local", M.EXACTLY_MATCHES, "yes")
    with pytest.raises(IllegalArgument, match="not a BOOLEAN value"):
        parse_xml(body, entity="group")


# --- JSON ------------------------------------------------------------------------------------

JSON_VALID: list[tuple[str, object, Restriction]] = [
    ("null body", None, NullRestriction()),
    ("null", {"restriction-type": "null-search-restriction"}, NullRestriction()),
    ("short name", {"restriction-type": "null"}, NullRestriction()),
    (
        "protocol example",
        {
            "restriction-type": "property-search-restriction",
            "property": {"name": "email", "type": "STRING"},
            "match-mode": "EXACTLY_MATCHES",
            "value": "bob@example.net",
        },
        prop("email", M.EXACTLY_MATCHES, "bob@example.net"),
    ),
    (
        "documentation spelling matchMode",
        {
            "restriction-type": "property",
            "property": {"name": "email", "type": "STRING"},
            "matchMode": "contains",
            "value": "@example",
        },
        prop("email", M.CONTAINS, "@example"),
    ),
    (
        "JSON boolean value",
        {
            "restriction-type": "PROPERTY-SEARCH-RESTRICTION",
            "property": {"name": "active"},
            "match-mode": "EXACTLY_MATCHES",
            "value": False,
        },
        prop("active", M.EXACTLY_MATCHES, False, B),
    ),
    (
        "NULL without value",
        {
            "restriction-type": "property-search-restriction",
            "property": {"name": "name", "type": "STRING"},
            "match-mode": "NULL",
        },
        prop("name", M.NULL, None),
    ),
    (
        "nested boolean",
        {
            "restriction-type": "boolean-search-restriction",
            "boolean-logic": "and",
            "restrictions": [
                {"restriction-type": "null-search-restriction"},
                {
                    "restriction-type": "boolean",
                    "booleanLogic": "OR",
                    "restrictions": [
                        {
                            "restriction-type": "property-search-restriction",
                            "property": {"name": "updatedDate", "type": "DATE"},
                            "match-mode": "LESS_THAN_OR_EQUAL",
                            "value": "2020-02-29T23:59:59Z",
                        }
                    ],
                },
            ],
        },
        AND(
            NullRestriction(),
            OR(prop("updatedDate", M.LESS_THAN_OR_EQUAL, utc(2020, 2, 29, 23, 59, 59), D)),
        ),
    ),
    (
        "boolean without restrictions",
        {"restriction-type": "boolean-search-restriction", "boolean-logic": "OR"},
        OR(),
    ),
]


@cases("obj, expected", JSON_VALID)
def test_parse_json(obj: object, expected: Restriction) -> None:
    assert parse_json(obj) == expected


def _json_prop(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "restriction-type": "property-search-restriction",
        "property": {"name": "email", "type": "STRING"},
        "match-mode": "EXACTLY_MATCHES",
        "value": "bob@example.net",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def nested_json(depth: int) -> object:
    obj: object = {"restriction-type": "null-search-restriction"}
    for _ in range(depth):
        obj = {"restriction-type": "boolean", "boolean-logic": "AND", "restrictions": [obj]}
    return obj


JSON_INVALID: list[tuple[str, object, str]] = [
    ("not an object", [], "must be a JSON object at $, not a list"),
    ("a string", "name = bob", "must be a JSON object"),
    ("no type", {"property": {}}, '"restriction-type" is missing at $'),
    ("type not text", {"restriction-type": 3}, "unknown restriction-type 3"),
    ("unknown type", {"restriction-type": "term"}, "unknown restriction-type 'term'"),
    ("property not an object", _json_prop(property="email"), '"property" must be an object'),
    ("name missing", _json_prop(property={"type": "STRING"}), '"property.name" is missing'),
    ("name not text", _json_prop(property={"name": 1}), '"property.name" must be a string'),
    ("type not text", _json_prop(property={"name": "x", "type": True}), '"property.type" must be'),
    (
        "unknown match-mode",
        _json_prop(**{"match-mode": "FOO"}),
        "unknown match-mode 'FOO' in property-search-restriction at $",
    ),
    ("match-mode missing", _json_prop(**{"match-mode": None}), "match-mode is missing"),
    ("value missing", _json_prop(value=None), '"value" is missing'),
    ("value a number", _json_prop(value=3), '"value" must be a string, not a number'),
    ("value a list", _json_prop(value=["a"]), '"value" must be a string, not a list'),
    ("boolean for text", _json_prop(value=True), "a STRING value must be text, not true"),
    ("NUL in value", _json_prop(value="a\x00b"), "contains a NUL character"),
    ("lone surrogate", _json_prop(value="\ud800"), "not valid Unicode text"),
    (
        "restrictions not a list",
        {"restriction-type": "boolean", "boolean-logic": "AND", "restrictions": {}},
        '"restrictions" must be a list, not an object',
    ),
    (
        "bad member names its path",
        {
            "restriction-type": "boolean",
            "boolean-logic": "AND",
            "restrictions": [{"restriction-type": "null"}, _json_prop(value=1)],
        },
        "at $.restrictions[1]",
    ),
    ("logic missing", {"restriction-type": "boolean"}, "boolean-logic is missing"),
    ("too deep", nested_json(MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} levels"),
    ("very deep", nested_json(5000), f"nested more than {MAX_DEPTH} levels"),
]


@cases("obj, message", JSON_INVALID)
def test_parse_json_refuses(obj: object, message: str) -> None:
    with pytest.raises(IllegalArgument) as caught:
        parse_json(obj)
    assert message in caught.value.message


# --- CQL -------------------------------------------------------------------------------------

CQL_VALID: list[tuple[str, Restriction]] = [
    ("", NullRestriction()),
    ("   ", NullRestriction()),
    ("email=bob@example.net", prop("email", M.EXACTLY_MATCHES, "bob@example.net")),
    (
        'firstName = "bob" and email = "bob@example.net"',
        AND(eq("firstName", "bob"), eq("email", "bob@example.net")),
    ),
    (
        'name = "admin*" and active = false',
        AND(prop("name", M.STARTS_WITH, "admin"), eq("active", False, B)),
    ),
    ("name = *min", prop("name", M.ENDS_WITH, "min")),
    ("name = *dm*", prop("name", M.CONTAINS, "dm")),
    ("name = a*b", prop("name", M.EXACTLY_MATCHES, "a*b")),
    ("name = *", prop("name", M.CONTAINS, "")),
    ("name = **", prop("name", M.CONTAINS, "")),
    (r'name = "\*admin\*"', prop("name", M.EXACTLY_MATCHES, "*admin*")),
    (r'name = "say \"hi\" \\ bye"', prop("name", M.EXACTLY_MATCHES, 'say "hi" \\ bye')),
    (r"name = DOMAIN\user", prop("name", M.EXACTLY_MATCHES, "DOMAIN\\user")),
    ("externalId = abc==", prop("externalId", M.EXACTLY_MATCHES, "abc==")),
    ('displayName = "Émile Zola"', prop("displayName", M.EXACTLY_MATCHES, "Émile Zola")),
    ("lastName=straße", prop("lastName", M.EXACTLY_MATCHES, "straße")),
    ("active = TRUE", prop("active", M.EXACTLY_MATCHES, True, B)),
    (
        "createdDate > 2010-12-01",
        prop("createdDate", M.GREATER_THAN, dt.datetime(2010, 12, 1, tzinfo=UTC), D),
    ),
    (
        "updatedDate<=2013-01-30T16:38:27.369+1100",
        prop("updatedDate", M.LESS_THAN_OR_EQUAL, dt.datetime(2013, 1, 30, 5, 38, 27, 369000, UTC),
             D),
    ),
    (
        'createdDate >= "2013-01-30T16:38:27+11:00"',
        prop("createdDate", M.GREATER_THAN_OR_EQUAL, utc(2013, 1, 30, 5, 38, 27), D),
    ),
    ("name < m", prop("name", M.LESS_THAN, "m")),
    (
        "lastName = Smith OR lastName = Jones",
        OR(eq("lastName", "Smith"), eq("lastName", "Jones")),
    ),
    (
        "a = 1 or b = 2 and c = 3",
        OR(eq("a", "1"), AND(eq("b", "2"), eq("c", "3"))),
    ),
    (
        "a = 1 AND b = 2 Or c = 3 and d = 4",
        OR(
            AND(prop("a", M.EXACTLY_MATCHES, "1"), prop("b", M.EXACTLY_MATCHES, "2")),
            AND(prop("c", M.EXACTLY_MATCHES, "3"), prop("d", M.EXACTLY_MATCHES, "4")),
        ),
    ),
    (
        "(a = 1 or b = 2) and c = 3",
        AND(OR(eq("a", "1"), eq("b", "2")), eq("c", "3")),
    ),
    ("((a=1))", prop("a", M.EXACTLY_MATCHES, "1")),
    (
        "(a=1)or(b=2)",
        OR(prop("a", M.EXACTLY_MATCHES, "1"), prop("b", M.EXACTLY_MATCHES, "2")),
    ),
    ("order = and", prop("order", M.EXACTLY_MATCHES, "and")),
    ('"cost centre" = "4 2"', prop("cost centre", M.EXACTLY_MATCHES, "4 2")),
]


@pytest.mark.parametrize(
    ("text", "expected"), CQL_VALID, ids=[c[0] or "<empty>" for c in CQL_VALID]
)
def test_parse_cql(text: str, expected: Restriction) -> None:
    assert parse_cql(text) == expected


CQL_INVALID: list[tuple[str, str]] = [
    ("name =", "CQL: expected a value after '=' at position 7"),
    ("email = bob and name =  ", "CQL: expected a value after '=' at position 25"),
    ("name = )", "CQL: expected a value after '=' at position 8"),
    ("name bob", "expected an operator (=, <, >, <=, >=) after 'name', found 'b' at position 6"),
    ("name", "expected an operator"),
    ("= bob", "CQL: expected a property name, found '=' at position 1"),
    ("name = bob and", "expected a property name, found the end of the restriction at position 15"),
    ("name = bob or or x = 1", "expected an operator (=, <, >, <=, >=) after 'or'"),
    ("name = bob bob", "CQL: expected 'and', 'or' or the end, found 'b' at position 12"),
    ("(name = bob", "CQL: expected ')' to close the '(' at position 1"),
    ("name = bob)", "CQL: unmatched ')' at position 11"),
    ("()", "expected a property name, found ')'"),
    ('name = "bob', "CQL: a quoted text is not closed with '\"'; it opens at position 8"),
    ("name != bob", "'!=' is not supported"),
    ("name < b*", "a '*' wildcard only works with '=', not '<'"),
    ("active = tru*", "'active' is BOOLEAN; '*' wildcards only apply to text"),
    ("active = yes", "CQL: 'yes' is not a BOOLEAN value for 'active' at position 10"),
    ("createdDate > yesterday", "CQL: 'yesterday' is not a DATE value for 'createdDate'"),
    ("createdDate > 2010-02-30", "not a valid DATE value"),
    ("createdDate > 0001-01-01T00:00:00+0100", "not a valid DATE value"),
    ("name = a\x00b", "contains a NUL character"),
    ("(" * (MAX_DEPTH + 1) + "a=1" + ")" * (MAX_DEPTH + 1), f"nested more than {MAX_DEPTH} deep"),
    (" or ".join(["a=1"] * (MAX_TERMS + 1)), f"more than {MAX_TERMS} property restrictions"),
]


@pytest.mark.parametrize(("text", "message"), CQL_INVALID, ids=[c[0][:40] for c in CQL_INVALID])
def test_parse_cql_refuses(text: str, message: str) -> None:
    with pytest.raises(IllegalArgument) as caught:
        parse_cql(text)
    assert message in caught.value.message


def test_parse_cql_entity_aware_typing() -> None:
    assert parse_cql("local = yes", entity="user") == prop("local", M.EXACTLY_MATCHES, "yes")
    assert parse_cql("local = true", entity="group") == prop("local", M.EXACTLY_MATCHES, True, B)


def test_parse_cql_depth_limit_is_inclusive() -> None:
    text = "(" * MAX_DEPTH + "a=1" + ")" * MAX_DEPTH
    assert parse_cql(text) == prop("a", M.EXACTLY_MATCHES, "1")


def test_restrictions_are_immutable_and_hashable() -> None:
    restriction = parse_cql("a = 1 and (b = 2 or c = 3)")
    assert hash(restriction) == hash(parse_cql("a = 1 and (b = 2 or c = 3)"))
    with pytest.raises(AttributeError):
        restriction.logic = "OR"  # type: ignore[misc,union-attr]


# --- nothing but IllegalArgument escapes ----------------------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["restriction-type", "property", "name", "type", "match-mode", "value",
             "boolean-logic", "restrictions"]
        )
        | st.text(max_size=5),
        children,
        max_size=5,
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(list('ab =<>!*"\\()\t') + [" and ", " or ", "é", "\x00"]), max_size=30
    )
    .map("".join)
)
def test_parse_cql_fails_only_with_illegal_argument(text: str) -> None:
    try:
        parse_cql(text)
    except IllegalArgument:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_parse_xml_fails_only_with_illegal_argument(body: bytes) -> None:
    try:
        parse_xml(body)
    except IllegalArgument:
        pass


@settings(max_examples=300, deadline=None)
@given(_json_values)
def test_parse_json_fails_only_with_illegal_argument(obj: object) -> None:
    try:
        parse_json(obj)
    except IllegalArgument:
        pass

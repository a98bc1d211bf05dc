"""Crowd search restrictions: the model, and parsers for their XML, JSON and CQL spellings. Pure.

Owns: `NullRestriction`, `PropertyRestriction` and `BooleanRestriction` (immutable), the list of
known user and group properties with their types, and the three parsers used by `/search`
(crowd-protocol §2.3, §3.7):

* `parse_xml(body)`   the JAXB body every Atlassian client sends to `POST /search`;
* `parse_json(obj)`   the `restriction-type` JSON form (curl and other tools);
* `parse_cql(text)`   the Crowd Query Language of `GET /search?restriction=`.

Must not: know about SQL, HTTP or Flask. Turning a restriction into a WHERE clause is
`dirsync.store.search`; reading the request is the Crowd blueprint's job.

Every malformed input raises `IllegalArgument` with a message saying what is wrong and where;
no parser exception (XML, JSON shape, recursion) escapes. Nesting and size are bounded
(`MAX_DEPTH`, `MAX_TERMS`) because a restriction becomes one SQL expression, and databases
limit expression depth (SQLite: 1000).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from dirsync.errors import IllegalArgument

__all__ = [
    "GROUP_PROPERTIES",
    "MAX_DEPTH",
    "MAX_TERMS",
    "USER_PROPERTIES",
    "BooleanRestriction",
    "Entity",
    "MatchMode",
    "NullRestriction",
    "PropertyRestriction",
    "PropertyType",
    "Restriction",
    "parse_cql",
    "parse_json",
    "parse_xml",
    "property_type",
]

# Boolean restrictions nested deeper than this are refused (Crowd's own clients nest two deep).
MAX_DEPTH = 32
# At most this many property restrictions in one search: each becomes a few SQL terms, and
# SQLite refuses expressions nested more than 1000 deep (a long AND/OR chain nests).
MAX_TERMS = 256


class PropertyType(enum.StrEnum):
    STRING = "STRING"
    BOOLEAN = "BOOLEAN"
    DATE = "DATE"


class MatchMode(enum.StrEnum):
    EXACTLY_MATCHES = "EXACTLY_MATCHES"
    STARTS_WITH = "STARTS_WITH"
    ENDS_WITH = "ENDS_WITH"
    CONTAINS = "CONTAINS"
    LESS_THAN = "LESS_THAN"
    LESS_THAN_OR_EQUAL = "LESS_THAN_OR_EQUAL"
    GREATER_THAN = "GREATER_THAN"
    GREATER_THAN_OR_EQUAL = "GREATER_THAN_OR_EQUAL"
    NULL = "NULL"


Entity = Literal["user", "group"]
Logic = Literal["AND", "OR"]
# STRING -> str, BOOLEAN -> bool, DATE -> aware datetime in UTC; None only with match mode NULL.
Value = str | bool | dt.datetime | None

USER_PROPERTIES: Mapping[str, PropertyType] = MappingProxyType(
    {
        "name": PropertyType.STRING,
        "email": PropertyType.STRING,
        "firstName": PropertyType.STRING,
        "lastName": PropertyType.STRING,
        "displayName": PropertyType.STRING,
        "active": PropertyType.BOOLEAN,
        "externalId": PropertyType.STRING,
        "createdDate": PropertyType.DATE,
        "updatedDate": PropertyType.DATE,
    }
)
GROUP_PROPERTIES: Mapping[str, PropertyType] = MappingProxyType(
    {
        "name": PropertyType.STRING,
        "description": PropertyType.STRING,
        "active": PropertyType.BOOLEAN,
        "createdDate": PropertyType.DATE,
        "updatedDate": PropertyType.DATE,
        "local": PropertyType.BOOLEAN,
        "externalId": PropertyType.STRING,
    }
)
_ANY_PROPERTIES: Mapping[str, PropertyType] = MappingProxyType(
    {**USER_PROPERTIES, **GROUP_PROPERTIES}
)


def property_type(name: str, entity: Entity | None = None) -> PropertyType:
    """The type of a known property; any other name is a custom attribute, which is STRING.

    Without an entity, a name known for either users or groups counts as known.
    """
    known = {"user": USER_PROPERTIES, "group": GROUP_PROPERTIES, None: _ANY_PROPERTIES}[entity]
    return known.get(name, PropertyType.STRING)


@dataclass(frozen=True, slots=True)
class NullRestriction:
    """Matches everything."""


@dataclass(frozen=True, slots=True)
class PropertyRestriction:
    name: str
    type: PropertyType
    match_mode: MatchMode
    value: Value


@dataclass(frozen=True, slots=True)
class BooleanRestriction:
    logic: Logic
    restrictions: tuple[Restriction, ...]


Restriction = NullRestriction | PropertyRestriction | BooleanRestriction


# --- shared by the three parsers -------------------------------------------------------------

_XML_TAGS = {
    "null-search-restriction": "null",
    "property-search-restriction": "property",
    "boolean-search-restriction": "boolean",
}

# Java's SimpleDateFormat "yyyy-MM-dd'T'HH:mm:ss.SSSZ" gives 2013-01-30T16:38:27.369+1100;
# we also take ISO-8601 (Z, +11:00, any fraction, a space for T) and a bare date (CQL).
_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?)?",
    re.ASCII | re.IGNORECASE,
)
_FRACTION = re.compile(r"[.,](\d+)")


class _Limits:
    """Counts property restrictions across one parse, and bounds nesting."""

    def __init__(self) -> None:
        self.terms = 0

    def enter(self, depth: int, where: str) -> None:
        if depth > MAX_DEPTH:
            raise IllegalArgument(
                f"search restriction is nested more than {MAX_DEPTH} levels deep at {where}"
            )

    def term(self, where: str) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise IllegalArgument(
                f"search restriction has more than {MAX_TERMS} property restrictions "
                f"(at {where}); split the search"
            )


def _check_text(text: str, what: str, where: str) -> str:
    # XML cannot carry these, but JSON ("\u0000", "\ud800") and CQL (%00) can; PostgreSQL
    # refuses NUL in text and lone surrogates cannot be encoded, so refuse them here.
    if "\x00" in text:
        raise IllegalArgument(f"{what} contains a NUL character {where}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise IllegalArgument(f"{what} is not valid Unicode text {where}") from None
    return text


def _parse_type(text: str | None, name: str, entity: Entity | None, where: str) -> PropertyType:
    if text is None or not text.strip():
        # Crowd's clients always send the type; when a tool leaves it out, the property knows.
        return property_type(name, entity)
    try:
        return PropertyType(text.strip().upper())
    except ValueError:
        raise IllegalArgument(
            f"unknown property type '{text}' {where}; expected STRING, BOOLEAN or DATE"
        ) from None


def _parse_mode(text: str | None, where: str) -> MatchMode:
    if text is None or not text.strip():
        raise IllegalArgument(f"match-mode is missing {where}")
    try:
        return MatchMode(text.strip().upper())
    except ValueError:
        raise IllegalArgument(
            f"unknown match-mode '{text}' {where}; expected one of "
            + ", ".join(mode.value for mode in MatchMode)
        ) from None


def _parse_logic(text: object, where: str) -> Logic:
    logic = text.strip().upper() if isinstance(text, str) else None
    if logic == "AND":
        return "AND"
    if logic == "OR":
        return "OR"
    if text is None:
        raise IllegalArgument(f"boolean-logic is missing {where}; expected AND or OR")
    raise IllegalArgument(f"unknown boolean-logic {text!r} {where}; expected AND or OR")


def _parse_bool(text: str, where: str) -> bool:
    word = text.strip().lower()
    if word == "true":
        return True
    if word == "false":
        return False
    raise IllegalArgument(f"'{text}' is not a BOOLEAN value {where}; expected true or false")


def _parse_date(text: str, where: str) -> dt.datetime:
    stripped = text.strip()
    if not _DATE.fullmatch(stripped):
        raise IllegalArgument(
            f"'{text}' is not a DATE value {where}; expected yyyy-MM-dd'T'HH:mm:ss.SSSZ "
            "(e.g. 2013-01-30T16:38:27.369+1100), ISO-8601 or yyyy-MM-dd"
        )
    # ISO-8601 allows a decimal comma and any number of fraction digits; Python does not.
    iso = _FRACTION.sub(lambda m: "." + m.group(1)[:6], stripped, count=1)
    try:
        value = dt.datetime.fromisoformat(iso.upper())
        if value.tzinfo is None:
            # A date or time without an offset: we keep and compare everything in UTC.
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError) as exc:
        raise IllegalArgument(f"'{text}' is not a valid DATE value {where}: {exc}") from None


def _typed_value(raw: str | bool, ptype: PropertyType, where: str) -> str | bool | dt.datetime:
    if ptype is PropertyType.BOOLEAN:
        return raw if isinstance(raw, bool) else _parse_bool(raw, where)
    if isinstance(raw, bool):
        raise IllegalArgument(f"a {ptype} value must be text, not {str(raw).lower()} {where}")
    if ptype is PropertyType.DATE:
        return _parse_date(raw, where)
    return raw


def _property(
    name: str,
    type_text: str | None,
    mode_text: str | None,
    raw: str | bool | None,
    *,
    entity: Entity | None,
    where: str,
    missing_value: str,
) -> PropertyRestriction:
    name = _check_text(name.strip(), "the property name", where)
    if not name:
        raise IllegalArgument(f"the property name is missing {where}")
    ptype = _parse_type(type_text, name, entity, where)
    mode = _parse_mode(mode_text, where)
    if mode is MatchMode.NULL:
        # The "Test settings" probe sends no value; a stray one means nothing either.
        return PropertyRestriction(name, ptype, mode, None)
    if raw is None:
        raise IllegalArgument(f"{missing_value} is missing {where}; match-mode {mode} needs one")
    if isinstance(raw, str):
        _check_text(raw, "the value", where)
    return PropertyRestriction(name, ptype, mode, _typed_value(raw, ptype, where))


def _combine(logic: Logic, items: list[Restriction]) -> Restriction:
    return items[0] if len(items) == 1 else BooleanRestriction(logic, tuple(items))


# --- XML -------------------------------------------------------------------------------------


def parse_xml(body: bytes | str, *, entity: Entity | None = None) -> Restriction:
    """Parse a JAXB search restriction; an empty body means "everything"."""
    if not body.strip():
        return NullRestriction()
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise IllegalArgument(
            "search restriction XML must not contain a DTD or entity declarations"
        ) from exc
    except ParseError as exc:
        raise IllegalArgument(f"search restriction is not well-formed XML: {exc}") from exc
    except (ValueError, LookupError) as exc:
        # e.g. an unknown encoding in the XML declaration
        raise IllegalArgument(f"search restriction XML cannot be read: {exc}") from exc
    return _XmlReader(entity).restriction(root, _local(root.tag), 0)


def _local(tag: object) -> str:
    # JAXB writes no namespace; tolerate one rather than refuse an otherwise fine body.
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _child(elem: Element, name: str) -> Element | None:
    return next((child for child in elem if _local(child.tag) == name), None)


def _child_text(elem: Element | None, name: str) -> str | None:
    child = _child(elem, name) if elem is not None else None
    return None if child is None else (child.text or "")


class _XmlReader:
    def __init__(self, entity: Entity | None) -> None:
        self.entity = entity
        self.limits = _Limits()

    def restriction(self, elem: Element, path: str, depth: int) -> Restriction:
        kind = _XML_TAGS.get(_local(elem.tag))
        if kind == "null":
            return NullRestriction()
        if kind == "property":
            return self.property(elem, path)
        if kind == "boolean":
            return self.boolean(elem, path, depth)
        at = f" at {path}" if "/" in path else ""  # the root needs no path
        raise IllegalArgument(
            f"unknown search restriction <{_local(elem.tag)}>{at}; expected "
            "null-search-restriction, property-search-restriction or boolean-search-restriction"
        )

    def property(self, elem: Element, path: str) -> PropertyRestriction:
        where = f"in {path}"
        self.limits.term(path)
        prop = _child(elem, "property")
        if prop is None:
            raise IllegalArgument(f"<property> is missing {where}")
        name = _child_text(prop, "name")
        if name is None:
            raise IllegalArgument(f"<property><name> is missing {where}")
        value = _child(elem, "value")
        if value is not None and len(value):
            raise IllegalArgument(f"<value> must contain text only {where}")
        return _property(
            name,
            _child_text(prop, "type"),
            _child_text(elem, "match-mode"),
            None if value is None else (value.text or ""),
            entity=self.entity,
            where=where,
            missing_value="<value>",
        )

    def boolean(self, elem: Element, path: str, depth: int) -> BooleanRestriction:
        self.limits.enter(depth + 1, path)
        logic = _parse_logic(elem.get("boolean-logic"), f"in {path}")
        wrapper = _child(elem, "restrictions")
        if wrapper is not None:
            children, base = list(wrapper), f"{path}/restrictions"
        else:
            # JAXB always writes the <restrictions> wrapper; accept the members without it.
            children = [c for c in elem if _local(c.tag) in _XML_TAGS]
            base = path
        return BooleanRestriction(
            logic,
            tuple(
                self.restriction(child, f"{base}[{i}]/{_local(child.tag)}", depth + 1)
                for i, child in enumerate(children, 1)
            ),
        )


# --- JSON ------------------------------------------------------------------------------------


def parse_json(obj: object, *, entity: Entity | None = None) -> Restriction:
    """Parse a decoded JSON restriction (`restriction-type` discriminator); null = everything.

    Crowd's documentation spells some keys two ways ("match-mode" and "matchMode"), and
    the restriction types long or short ("property-search-restriction" or "property"); both are
    accepted.
    """
    if obj is None:
        return NullRestriction()
    return _JsonReader(entity).restriction(obj, "$", 0)


def _get(obj: Mapping[str, object], *keys: str) -> object:
    return next((obj[key] for key in keys if key in obj), None)


class _JsonReader:
    def __init__(self, entity: Entity | None) -> None:
        self.entity = entity
        self.limits = _Limits()

    def restriction(self, obj: object, path: str, depth: int) -> Restriction:
        if not isinstance(obj, dict):
            raise IllegalArgument(
                f"a search restriction must be a JSON object at {path}, not {_json_kind(obj)}"
            )
        raw_kind = _get(obj, "restriction-type", "restrictionType")
        if raw_kind is None:
            raise IllegalArgument(f'"restriction-type" is missing at {path}')
        kind = raw_kind.strip().lower() if isinstance(raw_kind, str) else ""
        kind = _XML_TAGS.get(kind, kind)
        if kind == "null":
            return NullRestriction()
        if kind == "property":
            return self.property(obj, path)
        if kind == "boolean":
            return self.boolean(obj, path, depth)
        raise IllegalArgument(
            f"unknown restriction-type {raw_kind!r} at {path}; expected "
            "null-search-restriction, property-search-restriction or boolean-search-restriction"
        )

    def property(self, obj: Mapping[str, object], path: str) -> PropertyRestriction:
        where = f"in property-search-restriction at {path}"
        self.limits.term(path)
        prop = obj.get("property")
        if not isinstance(prop, dict):
            raise IllegalArgument(f'"property" must be an object with a "name" {where}')
        name = self.text(prop.get("name"), '"property.name"', where)
        if name is None:
            raise IllegalArgument(f'"property.name" is missing {where}')
        value = obj.get("value")
        if value is not None and not isinstance(value, (str, bool)):
            raise IllegalArgument(f'"value" must be a string, not {_json_kind(value)} {where}')
        return _property(
            name,
            self.text(prop.get("type"), '"property.type"', where),
            self.text(_get(obj, "match-mode", "matchMode"), '"match-mode"', where),
            value,
            entity=self.entity,
            where=where,
            missing_value='"value"',
        )

    def boolean(self, obj: Mapping[str, object], path: str, depth: int) -> BooleanRestriction:
        where = f"in boolean-search-restriction at {path}"
        self.limits.enter(depth + 1, path)
        logic = _parse_logic(_get(obj, "boolean-logic", "booleanLogic"), where)
        members = obj.get("restrictions", [])
        if not isinstance(members, list):
            raise IllegalArgument(
                f'"restrictions" must be a list, not {_json_kind(members)} {where}'
            )
        return BooleanRestriction(
            logic,
            tuple(
                self.restriction(member, f"{path}.restrictions[{i}]", depth + 1)
                for i, member in enumerate(members)
            ),
        )

    @staticmethod
    def text(value: object, what: str, where: str) -> str | None:
        if value is None or isinstance(value, str):
            return value
        raise IllegalArgument(f"{what} must be a string, not {_json_kind(value)} {where}")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "a string" if isinstance(value, str) else type(value).__name__


# --- CQL -------------------------------------------------------------------------------------


def parse_cql(text: str, *, entity: Entity | None = None) -> Restriction:
    """Parse Crowd Query Language; an empty string means "everything".

    Grammar (keywords case-insensitive, AND binds tighter than OR):

        query    := [ or ]
        or       := and { "or" and }
        and      := term { "and" term }
        term     := "(" or ")" | property op value
        property := bare word | quoted
        op       := "=" | "<" | ">" | "<=" | ">="
        value    := bare word (up to whitespace or ")") | quoted ("..." with \\ escapes)

    With "=", an unescaped "*" at the start and/or end of a value makes ENDS_WITH,
    STARTS_WITH or CONTAINS (`name = "admin*"`); "\\*" in a quoted value is a literal star.
    Bare values take no escapes, so `DOMAIN\\user` means what it says. The property's type
    decides how the value is read: `active = false`, `createdDate > 2010-12-01`.
    """
    return _CqlParser(text, entity).parse()


# A bare property name ends at whitespace or any of these; a bare value only at whitespace or ")".
_NAME_STOP = frozenset('=<>!()"')
_OPERATORS = {
    "<=": MatchMode.LESS_THAN_OR_EQUAL,
    ">=": MatchMode.GREATER_THAN_OR_EQUAL,
    "=": MatchMode.EXACTLY_MATCHES,
    "<": MatchMode.LESS_THAN,
    ">": MatchMode.GREATER_THAN,
}


class _CqlParser:
    def __init__(self, text: str, entity: Entity | None) -> None:
        if not isinstance(text, str):
            raise IllegalArgument("CQL: the restriction must be text")
        self.text = text
        self.pos = 0
        self.entity = entity
        self.limits = _Limits()

    # Positions in messages count characters from 1.
    def fail(self, message: str, pos: int | None = None) -> IllegalArgument:
        at = self.pos if pos is None else pos
        return IllegalArgument(f"CQL: {message} at position {at + 1}")

    def found(self) -> str:
        if self.pos >= len(self.text):
            return "the end of the restriction"
        return f"'{self.text[self.pos]}'"

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def keyword(self, word: str) -> bool:
        self.skip_space()
        end = self.pos + len(word)
        if self.text[self.pos : end].lower() != word:
            return False
        if end < len(self.text) and not (self.text[end].isspace() or self.text[end] in '()"'):
            return False  # "order = x": a word that merely starts with "or"
        self.pos = end
        return True

    def parse(self) -> Restriction:
        if not self.peek():
            return NullRestriction()
        result = self.disjunction(0)
        if self.peek() == ")":
            raise self.fail("unmatched ')'")
        if self.peek():
            raise self.fail(f"expected 'and', 'or' or the end, found {self.found()}")
        return result

    def disjunction(self, depth: int) -> Restriction:
        items = [self.conjunction(depth)]
        while self.keyword("or"):
            items.append(self.conjunction(depth))
        return _combine("OR", items)

    def conjunction(self, depth: int) -> Restriction:
        items = [self.term(depth)]
        while self.keyword("and"):
            items.append(self.term(depth))
        return _combine("AND", items)

    def term(self, depth: int) -> Restriction:
        if self.peek() == "(":
            start = self.pos
            if depth >= MAX_DEPTH:
                raise self.fail(f"parentheses nested more than {MAX_DEPTH} deep", start)
            self.pos += 1
            inner = self.disjunction(depth + 1)
            if self.peek() != ")":
                raise self.fail(
                    f"expected ')' to close the '(' at position {start + 1}, found {self.found()}"
                )
            self.pos += 1
            return inner
        return self.comparison()

    def comparison(self) -> PropertyRestriction:
        self.skip_space()
        name_at = self.pos
        name = self.property_name()
        self.limits.term(f"position {name_at + 1}")
        self.skip_space()
        op = next((op for op in _OPERATORS if self.text.startswith(op, self.pos)), None)
        if op is None:
            if self.text.startswith("!=", self.pos):
                raise self.fail("'!=' is not supported (Crowd search restrictions cannot negate)")
            raise self.fail(
                f"expected an operator (=, <, >, <=, >=) after '{name}', found {self.found()}"
            )
        self.pos += len(op)
        self.skip_space()
        value_at = self.pos
        chars = self.value(op)

        lead = bool(chars) and chars[0] == ("*", False)
        if lead:
            chars = chars[1:]
        # A lone "*" is both ends: anything at all (with a value).
        trail = (lead and not chars) or (bool(chars) and chars[-1] == ("*", False))
        if trail and chars:
            chars = chars[:-1]
        value = "".join(char for char, _escaped in chars)
        mode = _OPERATORS[op]
        ptype = property_type(name, self.entity)
        if lead or trail:
            if op != "=":
                raise self.fail(f"a '*' wildcard only works with '=', not '{op}'", value_at)
            if ptype is not PropertyType.STRING:
                raise self.fail(f"'{name}' is {ptype}; '*' wildcards only apply to text", value_at)
            mode = (
                MatchMode.CONTAINS
                if lead and trail
                else MatchMode.ENDS_WITH if lead else MatchMode.STARTS_WITH
            )
        where = f"for '{name}' at position {value_at + 1}"
        try:
            typed = _typed_value(_check_text(value, "the value", where), ptype, where)
        except IllegalArgument as exc:
            raise IllegalArgument(f"CQL: {exc.message}") from None
        return PropertyRestriction(name, ptype, mode, typed)

    def property_name(self) -> str:
        start = self.pos
        if self.peek() == '"':
            name = "".join(char for char, _escaped in self.quoted())
        else:
            while (
                self.pos < len(self.text)
                and not self.text[self.pos].isspace()
                and self.text[self.pos] not in _NAME_STOP
            ):
                self.pos += 1
            name = self.text[start : self.pos]
        if not name.strip():
            raise self.fail(f"expected a property name, found {self.found()}", start)
        return _check_text(name, "the property name", f"at position {start + 1}")

    def value(self, op: str) -> list[tuple[str, bool]]:
        """The value's characters, each with whether it was escaped (an escaped '*' is literal)."""
        if self.pos >= len(self.text) or self.text[self.pos] == ")":
            raise self.fail(f"expected a value after '{op}'")
        if self.text[self.pos] == '"':
            return self.quoted()
        start = self.pos
        while (
            self.pos < len(self.text)
            and not self.text[self.pos].isspace()
            and self.text[self.pos] != ")"
        ):
            self.pos += 1
        return [(char, False) for char in self.text[start : self.pos]]

    def quoted(self) -> list[tuple[str, bool]]:
        start = self.pos
        self.pos += 1  # the opening quote
        chars: list[tuple[str, bool]] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == '"':
                return chars
            if char == "\\" and self.pos < len(self.text):
                chars.append((self.text[self.pos], True))
                self.pos += 1
            else:
                chars.append((char, False))
        raise self.fail("a quoted text is not closed with '\"'; it opens", start)

"""Search requests written as BER bytes (RFC 4511 section 4.5.1), filters included. Pure.

Why this exists: ldap3 builds every request as a tree of pyasn1 objects and encodes it with
pyasn1's general encoder, about 1 ms per search. An incremental read makes hundreds of small
searches (member lookups, pages of the id scan); a search request has one fixed shape, so it
is written here directly. The bytes are the ones ldap3 sends for the same search (checked
byte for byte in tests/test_ldap_requests.py), with one deliberate difference: ldap3 strips
spaces around an assertion value, RFC 4515 does not, and neither does this module.

Filters are parsed as RFC 4515 writes them (no spaces between parts). A filter outside that
grammar raises `FilterNotEncodable`; the caller then lets ldap3 encode it (connection.py), so
an administrator's unusual but accepted filter keeps working.
"""

from __future__ import annotations

from typing import Sequence

SCOPE_BASE = 0
SCOPE_SUBTREE = 2
DEREF_ALWAYS = 3  # what ldap3's Connection.search sends unless told otherwise
PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"

_SEARCH_REQUEST = 0x63  # [APPLICATION 3], constructed
_AND, _OR, _NOT = 0xA0, 0xA1, 0xA2
_EQUALITY, _SUBSTRINGS, _GREATER, _LESS = 0xA3, 0xA4, 0xA5, 0xA6
_PRESENT, _APPROX, _EXTENSIBLE = 0x87, 0xA8, 0xA9
_HEX = frozenset("0123456789abcdefABCDEF")


class FilterNotEncodable(ValueError):
    """A filter this module does not parse (outside RFC 4515's grammar)."""


def search_request(message_id: int, base: str, scope: int, filter_ber: bytes,
                   attributes: Sequence[str], *, size_limit: int = 0,
                   paged: tuple[int, bytes] | None = None) -> bytes:
    """One LDAPMessage holding a SearchRequest; `filter_ber` comes from `encode_filter`.
    `paged` = (page size, cookie) adds a critical paged results control (RFC 2696)."""
    request = _tlv(_SEARCH_REQUEST, b"".join((
        _octets(base.encode("utf-8")),
        _tlv(0x0A, _int_content(scope)),
        _tlv(0x0A, _int_content(DEREF_ALWAYS)),
        _tlv(0x02, _int_content(size_limit)),
        b"\x02\x01\x00",  # timeLimit 0: the server's own limit
        b"\x01\x01\x00",  # typesOnly FALSE
        filter_ber,
        _tlv(0x30, b"".join(_octets(a.encode("utf-8")) for a in attributes)),
    )))
    controls = b""
    if paged is not None:
        size, cookie = paged
        value = _tlv(0x30, _tlv(0x02, _int_content(size)) + _octets(cookie))
        control = _octets(PAGED_RESULTS_OID.encode("ascii")) + b"\x01\x01\xff" + _octets(value)
        controls = _tlv(0xA0, _tlv(0x30, control))
    return _tlv(0x30, _tlv(0x02, _int_content(message_id)) + request + controls)


def encode_filter(text: str) -> bytes:
    """The BER of an RFC 4515 filter string; raises FilterNotEncodable outside the grammar."""
    encoded, end = _filter(text, 0)
    if end != len(text):
        raise FilterNotEncodable(f"text after the end of the filter at {end}")
    return encoded


def _filter(text: str, at: int) -> tuple[bytes, int]:
    if text[at:at + 1] != "(":
        raise FilterNotEncodable(f"expected '(' at {at}")
    kind = text[at + 1:at + 2]
    if kind in ("&", "|"):
        parts = []
        at += 2
        while text[at:at + 1] == "(":
            part, at = _filter(text, at)
            parts.append(part)
        if not parts or text[at:at + 1] != ")":
            raise FilterNotEncodable(f"an empty or unclosed '{kind}' at {at}")
        return _tlv(_AND if kind == "&" else _OR, b"".join(parts)), at + 1
    if kind == "!":
        part, at = _filter(text, at + 2)
        if text[at:at + 1] != ")":
            raise FilterNotEncodable(f"an unclosed '!' at {at}")
        return _tlv(_NOT, part), at + 1
    end = text.find(")", at)
    if end < 0:
        raise FilterNotEncodable(f"an unclosed item at {at}")
    return _item(text[at + 1:end]), end + 1


def _item(item: str) -> bytes:
    left, equals, right = item.partition("=")
    if not equals or not left or "(" in item:
        raise FilterNotEncodable(f"not a filter item: {item!r}")
    last = left[-1]
    if last == ":":
        return _extensible(left[:-1], right)
    if last in "~><":
        tag = {"~": _APPROX, ">": _GREATER, "<": _LESS}[last]
        return _tlv(tag, _octets(_attribute(left[:-1])) + _octets(_value(right)))
    attribute = _attribute(left)
    if right == "*":
        return _tlv(_PRESENT, attribute)
    if "*" not in right:
        return _tlv(_EQUALITY, _octets(attribute) + _octets(_value(right)))
    pieces = right.split("*")
    parts = []
    if pieces[0]:
        parts.append(_tlv(0x80, _value(pieces[0])))
    parts.extend(_tlv(0x81, _value(p)) for p in pieces[1:-1] if p)
    if pieces[-1]:
        parts.append(_tlv(0x82, _value(pieces[-1])))
    return _tlv(_SUBSTRINGS, _octets(attribute) + _tlv(0x30, b"".join(parts)))


def _extensible(left: str, right: str) -> bytes:
    # attr[:dn][:rule]:=value or [:dn]:rule:=value (RFC 4515 section 3).
    names = left.split(":")
    attribute, rest = names[0], names[1:]
    dn_attributes = bool(rest) and rest[0].lower() == "dn"
    if dn_attributes:
        rest = rest[1:]
    if len(rest) > 1 or (not attribute and not rest) or any(not n for n in rest):
        raise FilterNotEncodable(f"not an extensible match: {left}:={right}")
    content = b""
    if rest:
        content += _tlv(0x81, _attribute(rest[0]))
    if attribute:
        content += _tlv(0x82, _attribute(attribute))
    content += _tlv(0x83, _value(right))
    if dn_attributes:
        content += b"\x84\x01\xff"
    return _tlv(_EXTENSIBLE, content)


def _attribute(name: str) -> bytes:
    if not name or not all(c.isascii() and (c.isalnum() or c in "-;.") for c in name):
        raise FilterNotEncodable(f"not an attribute description: {name!r}")
    return name.encode("ascii")


def _value(text: str) -> bytes:
    """An assertion value with its `\\XX` escapes resolved (RFC 4515 valueencoding)."""
    if "*" in text or "\x00" in text:
        raise FilterNotEncodable(f"an unescaped special character in {text!r}")
    if "\\" not in text:
        return text.encode("utf-8")
    out = bytearray()
    parts = text.split("\\")
    out += parts[0].encode("utf-8")
    for part in parts[1:]:
        if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
            raise FilterNotEncodable(f"a backslash not followed by two hex digits in {text!r}")
        out.append(int(part[:2], 16))
        out += part[2:].encode("utf-8")
    return bytes(out)


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _tlv(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _int_content(value: int) -> bytes:
    # Two's complement, shortest form (X.690 section 8.3).
    return value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)

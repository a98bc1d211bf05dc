"""Distinguished names as strings (RFC 4514): parse, compare, escape. Pure.

Owns the one DN grammar dirsync understands, so that a member DN written as
`UID=Comma\\2CUser, OU=People,dc=example,dc=com` finds the entry whose own DN is
`uid=comma\\,user,ou=people,dc=example,dc=com`. No I/O and no ldap3 here: fixtures and the
LDAP reader both use it, and only `dirsync/ldap/` may import ldap3.

Leniency, on purpose and no further: unescaped spaces around `,`, `+` and `=` are ignored (RFC
2253 writers put them there). Everything else RFC 4514 forbids (unescaped `"` `;` `<` `>`, bad
escapes, `#` not followed by hex pairs) is a ValueError naming the problem, because a DN we
half-understand is a membership we would silently get wrong.
"""

from __future__ import annotations

import functools
import re

from dirsync.names import name_key

# One attribute type/value pair of an RDN, e.g. ("uid", "alice").
AVA = tuple[str, str]
# A relative DN: one pair, or several joined with "+" (multi-valued RDN).
RDN = tuple[AVA, ...]

# descr (cn, uid, x-custom-attr) or numericoid (2.5.4.3); RFC 4512 section 1.4.
_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")
_HEX_STRING = re.compile(r"#((?:[0-9A-Fa-f]{2})+)")
# Characters that may follow a backslash literally (RFC 4514 `pair`).
_ESCAPABLE = frozenset('\\"+,;<> #=')
# Characters that must never appear unescaped inside a value.
_FORBIDDEN = frozenset('";<>\x00')
# Characters escape_rdn_value always escapes (RFC 4514 section 2.4).
_ALWAYS_ESCAPED = frozenset('\\"+,;<>')


class _Value(str):
    """A value written as `#hex` (BER); kept apart so it never equals the string `\\#hex`."""


def parse_dn(text: str) -> tuple[RDN, ...]:
    """Split a DN into RDNs, most specific first, with escapes decoded.

    Attribute types are returned as written. A `#hex` (BER-encoded) value is returned as that
    string, lower-cased. The empty DN (the root) is the empty tuple.
    """
    return tuple(tuple((kind, str(value)) for kind, value in rdn) for rdn in _Parser(text).dn())


# A DN without any of these needs no escape handling and has single-valued RDNs only.
_NOT_SIMPLE = re.compile(r'[\\"+;<>#\x00]')
# A DN in the plain form most servers write most DNs in: ASCII attribute types and values of
# letters, digits, inner spaces and . _ @ -, no escapes, no multi-valued RDNs, no padding
# around separators. For exactly these the key is the lower-cased string (ASCII casefold is
# lower(); NFC and escaping change nothing; there is nothing to sort): one regex match instead
# of splitting, for the million member values of a large sync.
_PLAIN_VALUE = r"[A-Za-z0-9._@-](?:[A-Za-z0-9 ._@-]*[A-Za-z0-9._@-])?"
_PLAIN_RDN = rf"[A-Za-z][A-Za-z0-9-]*={_PLAIN_VALUE}"
_PLAIN_DN = re.compile(rf"{_PLAIN_RDN}(?:,{_PLAIN_RDN})*")


def dn_key(text: str) -> str:
    """A canonical comparison key: two DNs name the same entry when their keys are equal.

    Attribute types are lower-cased (numeric OIDs are left as they are: we have no schema to map
    2.5.4.3 to cn). Values are NFC-normalised and casefolded, since the usual naming attributes
    (uid, cn, ou, dc, o) all match case-insensitively. Components of a multi-valued RDN are
    sorted, because `uid=a+cn=b` and `cn=b+uid=a` are the same RDN.
    """
    if _PLAIN_DN.fullmatch(text):
        return text.lower()
    if _NOT_SIMPLE.search(text) is None:
        # The common case, a million times per large sync: plain string splitting, ten times
        # faster than the parser and equal to it (tests/test_dn.py checks both ways).
        key = _simple_key(text)
        if key is not None:
            return key
    return _slow_dn_key(text)


# DNs with escapes (a comma or an accent in a name) take the parser, about 0.1 ms each, and an
# incremental round may read the same large member lists again (4,700 such values in the
# benchmark's three largest groups). Bounded: at most a few MB.
@functools.lru_cache(maxsize=1 << 14)
def _slow_dn_key(text: str) -> str:
    rdns = []
    for rdn in _Parser(text).dn():
        parts = sorted(f"{kind.lower()}={_value_key(value)}" for kind, value in rdn)
        rdns.append("+".join(parts))
    return ",".join(rdns)


def _simple_key(text: str) -> str | None:
    parts = []
    for rdn in text.split(","):
        kind, sep, value = rdn.partition("=")
        kind = kind.strip(" ")
        value = value.strip(" ")
        if not sep or not value or _TYPE.fullmatch(kind) is None:
            return None  # let the parser accept or explain it
        parts.append(f"{kind.lower()}={name_key(value)}")
    return ",".join(parts)


def _value_key(value: str) -> str:
    if isinstance(value, _Value):
        return value  # already lower-case; left unescaped so it stays apart from "\#..."
    return escape_rdn_value(name_key(value))


def escape_rdn_value(value: str) -> str:
    """Escape a value for use in a DN string (RFC 4514 section 2.4)."""
    out = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if char in _ALWAYS_ESCAPED:
            out.append("\\" + char)
        elif char == "\x00":
            out.append("\\00")
        elif char == " " and index in (0, last):
            out.append("\\ ")
        elif char == "#" and index == 0:
            out.append("\\#")
        else:
            out.append(char)
    return "".join(out)


class _Parser:
    """A one-pass reader over one DN string."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, problem: str) -> ValueError:
        return ValueError(f"malformed DN {self.text!r}: {problem} (at character {self.pos + 1})")

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip_spaces(self) -> None:
        while self.peek() == " ":
            self.pos += 1

    def dn(self) -> list[list[tuple[str, str]]]:
        if not self.text.strip(" "):
            return []
        rdns = [self.rdn()]
        while self.peek() == ",":
            self.pos += 1
            rdns.append(self.rdn())
        if self.pos != len(self.text):
            raise self.fail(f"unexpected {self.peek()!r}")
        return rdns

    def rdn(self) -> list[tuple[str, str]]:
        pairs = [self.ava()]
        while self.peek() == "+":
            self.pos += 1
            pairs.append(self.ava())
        return pairs

    def ava(self) -> tuple[str, str]:
        self.skip_spaces()
        match = _TYPE.match(self.text, self.pos)
        if match is None:
            if self.peek() in ("", ",", "+"):
                raise self.fail("empty RDN (a ',' or '+' with nothing after it)")
            raise self.fail("expected an attribute type such as 'cn' or '2.5.4.3'")
        self.pos = match.end()
        self.skip_spaces()
        if self.peek() != "=":
            raise self.fail(f"expected '=' after attribute type {match.group()!r}")
        self.pos += 1
        self.skip_spaces()
        if self.peek() == "#":
            return match.group(), self.hex_value()
        return match.group(), self.string_value()

    def hex_value(self) -> _Value:
        match = _HEX_STRING.match(self.text, self.pos)
        if match is None:
            raise self.fail(
                "'#' starts a BER value and must be followed by pairs of hex digits; "
                "escape a literal leading '#' as '\\#'"
            )
        self.pos = match.end()
        self.skip_spaces()
        if self.peek() not in ("", ",", "+"):
            raise self.fail("a '#' hex value must end at ',' or '+'")
        return _Value(match.group().lower())

    def string_value(self) -> str:
        raw = bytearray()
        # Length of `raw` up to its last escaped or non-space byte: unescaped trailing spaces
        # are padding around the separator, escaped ones ("\ ", "\20") belong to the value.
        kept = 0
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in ",+":
                break
            if char == "\\":
                raw += self.escape()
                kept = len(raw)
                continue
            if char in _FORBIDDEN:
                shown = "\\00" if char == "\x00" else "\\" + char
                raise self.fail(f"unescaped {char!r} in a value; write it as '{shown}'")
            raw += char.encode("utf-8", "surrogatepass")
            self.pos += 1
            if char != " ":
                kept = len(raw)
        try:
            return bytes(raw[:kept]).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("hex escapes do not form valid UTF-8") from None

    def escape(self) -> bytes:
        following = self.text[self.pos + 1 : self.pos + 2]
        if following and following in _ESCAPABLE:
            self.pos += 2
            return following.encode()
        if _HEX_PAIR.fullmatch(self.text[self.pos + 1 : self.pos + 3]):
            byte = int(self.text[self.pos + 1 : self.pos + 3], 16)
            self.pos += 3
            return bytes([byte])
        if not following:
            raise self.fail("a '\\' at the end escapes nothing")
        raise self.fail(f"'\\{following}' is not an escape; use '\\\\' for a backslash")

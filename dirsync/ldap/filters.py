"""LDAP search filters (RFC 4515): the one place a value is escaped into a filter. Pure.

Configured filters (user_filter, group_filter) are written by an administrator and used as
they are, after a syntax check; everything else that reaches a filter — a username, a unique
id, an objectClass from the configuration — goes through `escape_filter_value` here, so that
`*`, parentheses, a backslash or a NUL in a value can never change what a filter means.
"""

from __future__ import annotations

# RFC 4515 section 3: these must be written as a backslash and two hex digits.
_SPECIAL = {"\\": "\\5c", "*": "\\2a", "(": "\\28", ")": "\\29", "\x00": "\\00"}


def escape_filter_value(value: str | bytes) -> str:
    """Escape an assertion value. Text keeps non-ASCII characters (the filter is sent as
    UTF-8); bytes (a binary objectGUID) are written entirely as hex escapes."""
    if isinstance(value, bytes):
        return "".join(f"\\{byte:02x}" for byte in value)
    return "".join(_SPECIAL.get(char, char) for char in value)


def equality(attribute: str, value: str | bytes) -> str:
    """`(attribute=value)` with the value escaped."""
    return f"({attribute}={escape_filter_value(value)})"


def at_least(attribute: str, value: str) -> str:
    """`(attribute>=value)` with the value escaped (ordering match: entryCSN, uSNChanged)."""
    return f"({attribute}>={escape_filter_value(value)})"


def matches_with(attribute: str, rule: str, value: str) -> str:
    """`(attribute:rule:=value)`, an extensible match with the value escaped: compares with a
    matching rule other than the attribute's own (memberUid is case-exact, names are not)."""
    return f"({attribute}:{rule}:={escape_filter_value(value)})"


def all_of(*filters: str | None) -> str:
    """AND of the given filters, leaving out None; a single filter is returned as it is."""
    parts = [f for f in filters if f]
    if not parts:
        return "(objectClass=*)"
    if len(parts) == 1:
        return parts[0]
    return "(&" + "".join(parts) + ")"


def any_of(*filters: str) -> str:
    """OR of the given filters; a single filter is returned as it is."""
    if len(filters) == 1:
        return filters[0]
    return "(|" + "".join(filters) + ")"


def entry_filter(object_class: str, extra: str | None) -> str:
    """The filter selecting a directory's users or groups: the object class, AND the
    configured extra filter if there is one."""
    return all_of(equality("objectClass", object_class), extra)


def filter_syntax_problem(text: str) -> str | None:
    """A sentence saying what is wrong with a configured filter, or None if it looks sound.

    A shape check, not a full parser: one parenthesised expression, balanced parentheses,
    no empty `()`. The server has the final word; this catches the usual typing mistakes
    before any connection is made.
    """
    if not (text.startswith("(") and text.endswith(")")):
        return "a filter must be enclosed in parentheses, e.g. (objectClass=person)"
    depth = 0
    closed_at_top = []  # where the outermost expressions end
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
            if text[index + 1 : index + 2] == ")":
                return "a filter must not contain an empty '()'"
        elif char == ")":
            depth -= 1
            if depth < 0:
                return f"unbalanced ')' at character {index + 1}"
            if depth == 0:
                closed_at_top.append(index)
    if depth:
        return "unbalanced '(': a closing parenthesis is missing"
    if len(closed_at_top) > 1:
        return "more than one expression at the top level; combine them with (&...) or (|...)"
    return None

"""Active Directory range retrieval bookkeeping (`member;range=0-1499`). Pure.

AD returns at most MaxValRange values of a multi-valued attribute per read (1500 since
Windows Server 2003). The rest must be asked for by name: `member;range=1500-*`, and so on,
until a reply's range ends in `*`. ldap3 can do this itself (`auto_range`), but when one of
its follow-up reads fails it stops quietly and keeps the values it has — a group that lost
members without any error. So dirsync switches that off and does the loop itself, using
these helpers, with every follow-up read checked like any other search.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

_RANGED = re.compile(r"^([^;]+)((?:;[^;]+)*?);range=(\d+)-(\d+|\*)((?:;[^;]+)*)$", re.IGNORECASE)


@dataclass(frozen=True)
class RangePart:
    attribute: str  # lower-cased, without the range option
    low: int
    high: int | None  # None: this part ends with `*`, the last one


def parse_ranged(description: str) -> RangePart | None:
    """`member;range=0-1499` -> RangePart("member", 0, 1499); None when not ranged."""
    match = _RANGED.match(description)
    if match is None:
        return None
    name, before, low, high, after = match.groups()
    return RangePart(
        attribute=(name + before + after).lower(),
        low=int(low),
        high=None if high == "*" else int(high),
    )


def range_request(attribute: str, low: int) -> str:
    """The attribute description asking for the values from `low` onwards."""
    return f"{attribute};range={low}-*"


def merge_ranges(
    values: Mapping[str, Sequence[bytes]]
) -> tuple[dict[str, list[bytes]], dict[str, int]]:
    """Fold ranged attributes of one entry into plain ones.

    Returns the entry's values with `attr;range=a-b` merged into `attr`, and, for each
    attribute that is not complete yet, the index of the first value still to fetch.
    Attribute names in `values` must be lower-cased.
    """
    merged: dict[str, list[bytes]] = {}
    pending: dict[str, int] = {}
    for name, items in values.items():
        part = parse_ranged(name)
        if part is None:
            merged.setdefault(name, []).extend(items)
            continue
        merged.setdefault(part.attribute, []).extend(items)
        if part.high is not None:
            pending[part.attribute] = part.high + 1
    return merged, pending


def next_part(
    attribute: str, asked_from: int, values: Mapping[str, Sequence[bytes]]
) -> tuple[list[bytes], int | None] | str:
    """Interpret the reply to `range_request(attribute, asked_from)`.

    Returns (values, index to ask from next, or None when complete), or a sentence saying why
    the reply cannot be trusted (the range vanished, or did not start where it was asked to).
    """
    for name, items in values.items():
        part = parse_ranged(name)
        if part is None or part.attribute != attribute:
            continue
        if part.low != asked_from:
            return (f"asked for {attribute} values from {asked_from} on, the server sent "
                    f"{part.low} on")
        if part.high is not None and part.high < part.low:
            return f"the server sent an empty range {part.low}-{part.high} of {attribute}"
        return list(items), None if part.high is None else part.high + 1
    return (f"the server sent no {attribute};range= values when asked for the values from "
            f"{asked_from} on (the entry may have changed during the read)")

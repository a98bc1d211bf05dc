"""Searches that return everything or raise: paged results (RFC 2696), checked page by page.

ldap3's own `paged_search` stops yielding when a page ends in sizeLimitExceeded or
timeLimitExceeded and raises nothing, even with raise_exceptions=True (those codes are in its
DO_NOT_RAISE_EXCEPTIONS): the caller gets a truncated directory that looks complete. So the
loop is written out here, and after **every** page the result code is checked (anything but
0 raises), continuation references are refused unless configured away, the paged-results
control must be present, and ranged attributes (AD's `member;range=0-1499`) are completed
before the page is handed on.

Entries leave this module as `(dn, {lower-cased attribute: [raw bytes, ...]})`: no ldap3
types escape it.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.connection import BASE, SUBTREE, Connection, lx, translate
from dirsync.ldap.errors import (
    ConnectionLost,
    PagingIncomplete,
    ReferralNotFollowed,
)
from dirsync.ldap.ranges import merge_ranges, next_part, range_request
from dirsync.ldap.results import NO_SUCH_OBJECT, SUCCESS, error_for_result

PAGED_RESULTS_OID = "1.2.840.113556.1.4.319"
# Ask for no attributes at all (RFC 4511 section 4.5.1.8): for counting entries.
NO_ATTRIBUTES = "1.1"

RawValues = dict[str, list[bytes]]
RawEntry = tuple[str, RawValues]


class PageCounter:
    """Counts continuation references a search was allowed to skip (AD domain roots)."""

    def __init__(self) -> None:
        self.references_ignored = 0


def search_pages(
    conn: Connection,
    config: DirectoryConfig,
    base: str,
    search_filter: str,
    attributes: Sequence[str],
    *,
    what: str,
    counter: PageCounter | None = None,
) -> Iterator[list[RawEntry]]:
    """Yield the entries of a subtree search, one page at a time.

    `what` names the search in messages ("users", "groups"). When the server does not hand
    over everything, the generator raises an LdapError instead of ending: the pages already
    yielded count only once it has finished without raising.
    """
    doing = f"searching {what} under '{base}'"
    cookie: bytes | None = None
    while True:
        result, response = _search(conn, config, doing, base, search_filter, SUBTREE,
                                   list(attributes), paged_size=config.page_size,
                                   paged_cookie=cookie, paged_criticality=True)
        entries = _entries(config, doing, response, counter)
        control = (result.get("controls") or {}).get(PAGED_RESULTS_OID)
        if control is None and cookie is None and not entries:
            check_base(conn, config, doing, base, result)
        if control is None:
            raise missing_control_error(config, doing)
        cookie = control.get("value", {}).get("cookie") or None
        for index, (dn, values) in enumerate(entries):
            if any(";range=" in name for name in values):
                entries[index] = (dn, complete_ranges(conn, config, dn, values))
        yield entries
        if not cookie:
            return


def check_base(conn: Connection, config: DirectoryConfig, doing: str, base: str,
               result: dict[str, Any]) -> None:
    """389 DS answers a paged search under a base that does not exist with success, no entries
    and no control (a plain search gets noSuchObject): raise BaseDnMissing then. `result`:
    the search's result ("description", "message")."""
    if read_entry(conn, config, base, [NO_ATTRIBUTES]) is None:
        raise _error(config, doing, result, NO_SUCH_OBJECT)


def missing_control_error(config: DirectoryConfig, doing: str) -> PagingIncomplete:
    return PagingIncomplete(config.name, f"{doing}: the server did not return the paged "
                            "results control, so it cannot be known whether every entry arrived")


def references_error(config: DirectoryConfig, doing: str,
                     uris: Sequence[str]) -> ReferralNotFollowed:
    return ReferralNotFollowed(
        config.name, f"{doing}: part of the subtree is held by "
        f"{', '.join(uris) or 'another server'} (a continuation reference), which dirsync does "
        "not follow; narrow the base DN to exclude it, or set continuation_references = "
        "\"ignore\" if that part holds no users or groups")


def read_entry(
    conn: Connection, config: DirectoryConfig, dn: str, attributes: Sequence[str],
    *, what: str = "entry", search_filter: str = "(objectClass=*)",
) -> RawEntry | None:
    """One entry by DN (a base search), or None when it does not exist or does not match
    `search_filter`."""
    doing = f"reading {what} '{dn}'"
    try:
        result, response = _search(conn, config, doing, dn, search_filter, BASE,
                                   list(attributes))
    except lx.LDAPNoSuchObjectResult:
        return None
    entries = _entries(config, doing, response, None)
    return entries[0] if entries else None


def count_entries(
    conn: Connection, config: DirectoryConfig, base: str, search_filter: str, *, what: str
) -> int:
    """How many entries a search matches, read page by page without attributes."""
    return sum(len(page) for page in search_pages(conn, config, base, search_filter,
                                                  [NO_ATTRIBUTES], what=what))


def _search(conn: Connection, config: DirectoryConfig, doing: str, base: str,
            search_filter: str, scope: str, attributes: list[str],
            **paging: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        conn.search(base, search_filter, search_scope=scope, attributes=attributes, **paging)
    except lx.LDAPNoSuchObjectResult:
        if scope == BASE:
            raise  # read_entry turns this into None
        raise _error(config, doing, conn.result, NO_SUCH_OBJECT) from None
    except lx.LDAPException as exc:
        raise translate(exc, config, doing) from exc
    result = conn.result
    if not result:
        raise ConnectionLost(config.name, f"{doing}: the server sent no result")
    code = result.get("result")
    if code != SUCCESS:
        # Size and time limits and referrals arrive here: ldap3 does not raise for them.
        raise _error(config, doing, result, code)
    return result, list(conn.response or ())


def _error(config: DirectoryConfig, doing: str, result: dict[str, Any] | None,
           code: Any) -> Exception:
    result = result or {}
    return error_for_result(config.name, int(code if code is not None else 80),
                            str(result.get("description") or ""),
                            str(result.get("message") or ""), doing)


def _entries(config: DirectoryConfig, doing: str, response: list[dict[str, Any]],
             counter: PageCounter | None) -> list[RawEntry]:
    entries: list[RawEntry] = []
    for item in response:
        kind = item.get("type")
        if kind == "searchResEntry":
            # connection.py's strategy reads entries with names lower-cased already.
            entries.append((item["dn"], item["raw_attributes"]))
        elif kind == "searchResRef":
            if config.continuation_references == "ignore":
                if counter is not None:
                    counter.references_ignored += 1
                continue
            raise references_error(config, doing, item.get("uri") or ())
    return entries


def complete_ranges(conn: Connection, config: DirectoryConfig, dn: str,
                    values: RawValues) -> RawValues:
    """An entry's values with every ranged attribute read to its end (AD range retrieval).
    Raises PagingIncomplete when a follow-up read does not continue where it should."""
    merged, pending = merge_ranges(values)
    for attribute, start in pending.items():
        low: int | None = start
        while low is not None:
            doing = f"reading the {attribute} values of '{dn}' from number {low} on"
            _, response = _search(conn, config, doing, dn, "(objectClass=*)", BASE,
                                  [range_request(attribute, low)])
            entries = _entries(config, doing, response, None)
            if not entries:
                raise PagingIncomplete(config.name, f"{doing}: the entry is gone")
            part = next_part(attribute, low, entries[0][1])
            if isinstance(part, str):
                raise PagingIncomplete(config.name, f"{doing}: {part}")
            items, low = part
            merged.setdefault(attribute, []).extend(items)
    return merged

"""Searches dirsync writes and reads itself: many small lookups at once, and the id scan.

An incremental read asks two things whose cost grows with the directory (changes.py):
which groups list each changed entry (hundreds of small searches), and every entry's unique
id (the deletion scan, one paged search over ~100,000 entries). Through ldap3 each search
costs about a millisecond of request building (pyasn1) and a full round trip, and each entry a
dict and a tuple; here requests are written by requests.py, answers read by ber.py, and:

* `search_each` sends the small searches one after another without waiting (pipelining,
  RFC 4511 section 4.1.1.1: answers are matched by message id, and a server may interleave
  them), at most `WINDOW` outstanding. OpenLDAP closes an anonymous session with more than
  100 pending requests (conn_max_pending), 389 DS stops reading from a connection that runs
  more operations than its threads per connection: 16 stays clear of both, and the requests
  in flight fit in any socket buffer, so sending cannot block on answers not yet read.
* `scan_first_values` is the paged search of `paging.search_pages`, reading from each entry
  only the first value of the one attribute asked for, without building the entry.

Both are exactly as strict as `paging.search_pages`: any result code but success, a
continuation reference (unless configured away), a missing paged results control or a lost
connection raises the same LdapError, and nothing is returned before every answer arrived.
Plain (unpaged) lookups differ from paged ones in one way: a size limit may allow paging only
(OpenLDAP's size.pr / size.prtotal, AD's MaxPageSize), so a lookup stopped by a size or
administrative limit is asked again through `search_pages`, which raises if paging is limited
too. Every request is answered before any error is raised, so the connection stays usable.
"""

from __future__ import annotations

from typing import Iterator, Sequence

from dirsync.ldap import ber
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.connection import (
    Connection,
    close_quietly,
    ldap3_search_request,
    next_message_id,
    receive_raw,
    result_description,
    send_raw,
)
from dirsync.ldap.errors import ConnectionLost, LdapError, PagingIncomplete
from dirsync.ldap.paging import (
    NO_ATTRIBUTES,
    PAGED_RESULTS_OID,
    PageCounter,
    RawEntry,
    check_base,
    complete_ranges,
    missing_control_error,
    references_error,
    search_pages,
)
from dirsync.ldap.requests import (
    SCOPE_SUBTREE,
    FilterNotEncodable,
    encode_filter,
    search_request,
)
from dirsync.ldap.results import (
    ADMIN_LIMIT_EXCEEDED,
    SIZE_LIMIT_EXCEEDED,
    SUCCESS,
    error_for_result,
)

WINDOW = 16
_LIMITS = frozenset({SIZE_LIMIT_EXCEEDED, ADMIN_LIMIT_EXCEEDED})
_NOTICE_OF_DISCONNECTION = 0  # the message id of an unsolicited notification


class _Answer:
    """What arrived for one request."""

    __slots__ = ("entries", "references", "done")

    def __init__(self) -> None:
        self.entries: list[RawEntry] = []
        self.references: list[list[str]] = []
        self.done: ber.Done | None = None


def search_each(conn: Connection, config: DirectoryConfig, base: str,
                filters: Sequence[str], attributes: Sequence[str], *, what: str,
                window: int = WINDOW, counter: PageCounter | None = None
                ) -> list[list[RawEntry]]:
    """The entries of one subtree search under `base` per filter, in the order of `filters`:
    what `search_pages` would return for each, with the error it would raise for the first
    that fails. Meant for searches that find few entries each (member lookups)."""
    doing = f"searching {what} under '{base}'"
    attributes = list(attributes) or [NO_ATTRIBUTES]  # as ldap3 sends an empty list
    answers = [_Answer() for _ in filters]
    outstanding: dict[int, int] = {}  # message id -> index in filters
    names: dict[bytes, str] = {}
    following = iter(range(len(filters)))
    with conn.connection_lock:
        while True:
            batch = []
            while len(outstanding) < window:
                index = next(following, None)
                if index is None:
                    break
                message_id = next_message_id(conn)
                outstanding[message_id] = index
                batch.append(_request(message_id, base, filters[index], attributes))
            if batch:
                send_raw(conn, config, doing, b"".join(batch))
            if not outstanding:
                break
            for message in receive_raw(conn, config, doing):
                message_id, operation = _envelope(conn, config, doing, message)
                index = outstanding.get(message_id)
                if index is None:
                    close_quietly(conn)
                    raise _unexpected(config, doing, message_id)
                answer = answers[index]
                try:
                    if operation == ber.SEARCH_RESULT_ENTRY:
                        entry = ber.search_entry(message, names)
                        assert entry is not None
                        answer.entries.append((entry[1], entry[2]))
                    elif operation == ber.SEARCH_RESULT_REFERENCE:
                        answer.references.append(ber.reference_uris(message))
                    elif operation == ber.SEARCH_RESULT_DONE:
                        answer.done = ber.result_done(message)
                        del outstanding[message_id]
                    else:
                        raise ber.BerError(f"operation 0x{operation:02x} in a search's answer")
                except (ber.BerError, IndexError, ValueError) as exc:
                    close_quietly(conn)
                    raise _malformed(config, doing, exc) from exc
    results = []
    for search_filter, answer in zip(filters, answers):
        assert answer.done is not None
        if answer.done.code in _LIMITS:
            results.append([entry for page in search_pages(
                conn, config, base, search_filter, attributes, what=what, counter=counter)
                for entry in page])
            continue
        _check(config, doing, answer.done, answer.references, counter)
        results.append(_complete(conn, config, answer.entries))
    return results


def scan_first_values(conn: Connection, config: DirectoryConfig, base: str,
                      search_filter: str, attribute: str, *, what: str,
                      counter: PageCounter | None = None
                      ) -> Iterator[tuple[list[bytes], list[RawEntry]]]:
    """A paged subtree search asking for `attribute` only, one page at a time: the first
    value of `attribute` of each entry that has it as its first attribute, and the other
    entries as `search_pages` gives them (no such attribute, ranged values, ...). Raises as
    `search_pages` does; the pages already yielded count only once it has finished.

    The next page is asked for as soon as a page's result arrives, before its entries are
    read: the server finds the next page while this one is decoded (and while the caller
    works on it), where one after the other cost the sum of both. So, unlike with
    `search_pages`, the caller must not use the connection until the generator is done."""
    doing = f"searching {what} under '{base}'"
    wanted = attribute.lower()
    names: dict[bytes, str] = {}
    filter_ber = _filter(search_filter)

    def ask(cookie: bytes | None) -> int:
        message_id = next_message_id(conn)
        send_raw(conn, config, doing, search_request(
            message_id, base, SCOPE_SUBTREE, filter_ber, [attribute],
            paged=(config.page_size, cookie or b"")))
        return message_id

    with conn.connection_lock:
        message_id = ask(None)
        page: tuple[list[bytes], ber.Done] | None = _receive_page(conn, config, doing,
                                                                  message_id)
        first = True
        while page is not None:
            messages, done = page
            if done.code != SUCCESS:
                raise error_for_result(config.name, done.code, result_description(done.code),
                                       done.diagnostic, doing)
            control = done.controls.get(PAGED_RESULTS_OID, b"")
            has_control = PAGED_RESULTS_OID in done.controls
            try:
                cookie = ber.paged_cookie(control or b"") if has_control else b""
            except (ber.BerError, IndexError) as exc:
                raise PagingIncomplete(config.name, f"{doing}: the paged results control "
                                       f"cannot be read ({exc})") from exc
            next_id = ask(cookie) if cookie else None
            page = None
            try:
                values, entries, references = _decode_page(conn, config, doing, messages,
                                                           message_id, wanted, names)
                _check(config, doing, done, references, counter)
                if not has_control:
                    if first and not values and not entries:
                        # As search_pages: 389 DS pages a missing base into success, nothing.
                        check_base(conn, config, doing, base, {
                            "description": result_description(done.code),
                            "message": done.diagnostic})
                    raise missing_control_error(config, doing)
                if any(";range=" in name for _, entry in entries for name in entry):
                    if next_id is not None:  # the connection must be idle to read ranges
                        page = _receive_page(conn, config, doing, next_id)
                    entries = _complete(conn, config, entries)
                yield values, entries
            except BaseException:
                # An error, or the caller stopping early: the next page's answer must not be
                # left on the connection for whatever reads from it next.
                if next_id is not None and page is None:
                    _settle(conn, config, doing, next_id)
                raise
            if next_id is None:
                return
            if page is None:
                page = _receive_page(conn, config, doing, next_id)
            message_id, first = next_id, False


def _receive_page(conn: Connection, config: DirectoryConfig, doing: str,
                  message_id: int) -> tuple[list[bytes], ber.Done]:
    """The undecoded messages of one search up to its result, and the result."""
    messages: list[bytes] = []
    while True:
        batch = receive_raw(conn, config, doing)
        got, operation = _envelope(conn, config, doing, batch[-1])
        if got == message_id and operation == ber.SEARCH_RESULT_DONE:
            messages += batch[:-1]
            try:
                return messages, ber.result_done(batch[-1])
            except (ber.BerError, IndexError, ValueError) as exc:
                close_quietly(conn)
                raise _malformed(config, doing, exc) from exc
        messages += batch


def _settle(conn: Connection, config: DirectoryConfig, doing: str, message_id: int) -> None:
    """Read the answer to `message_id` and drop it; if that fails too, close the connection
    (the error already under way is the one to report)."""
    try:
        _receive_page(conn, config, doing, message_id)
    except LdapError:
        close_quietly(conn)


def _decode_page(conn: Connection, config: DirectoryConfig, doing: str, messages: list[bytes],
                 message_id: int, wanted: str, names: dict[bytes, str]
                 ) -> tuple[list[bytes], list[RawEntry], list[list[str]]]:
    entries: list[RawEntry] = []
    references: list[list[str]] = []
    try:
        values, rest = ber.first_values(messages, message_id, wanted)
        for message in rest:
            got, operation = ber.envelope(message)
            if got != message_id:
                close_quietly(conn)
                raise _unexpected(config, doing, got)
            if operation == ber.SEARCH_RESULT_ENTRY:
                entry = ber.search_entry(message, names)
                assert entry is not None
                entries.append((entry[1], entry[2]))
            elif operation == ber.SEARCH_RESULT_REFERENCE:
                references.append(ber.reference_uris(message))
            else:
                raise ber.BerError(f"operation 0x{operation:02x} before a search's result")
    except (ber.BerError, IndexError, ValueError) as exc:
        close_quietly(conn)
        raise _malformed(config, doing, exc) from exc
    return values, entries, references


def _request(message_id: int, base: str, search_filter: str, attributes: list[str]) -> bytes:
    try:
        return search_request(message_id, base, SCOPE_SUBTREE, encode_filter(search_filter),
                              attributes)
    except FilterNotEncodable:
        # An administrator's filter outside RFC 4515's strict grammar that ldap3 accepts
        # (spaces between parts, ...): ldap3 writes it, as it would have.
        return ldap3_search_request(message_id, base, True, search_filter, attributes)


def _filter(search_filter: str) -> bytes:
    """The filter's BER; for a filter requests.py does not parse, cut out of ldap3's request."""
    try:
        return encode_filter(search_filter)
    except FilterNotEncodable:
        request = ldap3_search_request(1, "", True, search_filter, [])
        return _filter_of(request)


def _filter_of(request: bytes) -> bytes:
    # LDAPMessage -> messageID, SearchRequest -> base, scope, deref, size, time, typesOnly,
    # then the filter as one element.
    at = 2 + (request[1] & 0x7F if request[1] >= 0x80 else 0)
    _, at = ber.span_of(request, at)
    start, _ = ber.span_of(request, at)
    at = start
    for _ in range(6):
        _, at = ber.span_of(request, at)
    _, end = ber.span_of(request, at)
    return request[at:end]


def _check(config: DirectoryConfig, doing: str, done: ber.Done | None,
           references: list[list[str]], counter: PageCounter | None) -> None:
    assert done is not None
    if done.code != SUCCESS:
        raise error_for_result(config.name, done.code, result_description(done.code),
                               done.diagnostic, doing)
    if references:
        if config.continuation_references != "ignore":
            raise references_error(config, doing, references[0])
        if counter is not None:
            counter.references_ignored += len(references)


def _complete(conn: Connection, config: DirectoryConfig,
              entries: list[RawEntry]) -> list[RawEntry]:
    for index, (dn, values) in enumerate(entries):
        if any(";range=" in name for name in values):
            entries[index] = (dn, complete_ranges(conn, config, dn, values))
    return entries


def _envelope(conn: Connection, config: DirectoryConfig, doing: str,
              message: bytes) -> tuple[int, int]:
    try:
        return ber.envelope(message)
    except (ber.BerError, IndexError) as exc:
        close_quietly(conn)
        raise _malformed(config, doing, exc) from exc


def _unexpected(config: DirectoryConfig, doing: str, message_id: int) -> ConnectionLost:
    if message_id == _NOTICE_OF_DISCONNECTION:
        return ConnectionLost(config.name, f"{doing}: the connection was lost: the server "
                              "sent a notice of disconnection")
    return ConnectionLost(config.name, f"{doing}: the connection was lost: an answer to "
                          f"message {message_id}, which was not asked")


def _malformed(config: DirectoryConfig, doing: str, exc: Exception) -> ConnectionLost:
    return ConnectionLost(config.name, f"{doing}: the connection was lost: malformed message "
                          f"from the server: {exc}")

"""dirsync.ldap.ber: cutting LDAP messages out of a stream and reading search result entries.

The encoder below is written from RFC 4511 / X.690 independently of the decoder; the live
path (connection.py's strategy against a real slapd) is covered by every test_ldap_* module.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dirsync.ldap.ber import (
    SEARCH_RESULT_DONE,
    SEARCH_RESULT_ENTRY,
    BerError,
    envelope,
    first_values,
    paged_cookie,
    reference_uris,
    result_done,
    search_entry,
    split_messages,
)


def tlv(tag: int, content: bytes, *, long_form: int = 0) -> bytes:
    """Tag, definite length, content. `long_form` forces that many length bytes."""
    n = len(content)
    if n < 0x80 and not long_form:
        return bytes([tag, n]) + content
    size = max(long_form, 1, (n.bit_length() + 7) // 8)
    return bytes([tag, 0x80 | size]) + n.to_bytes(size, "big") + content


def entry_message(message_id: int, dn: bytes, attributes: list[tuple[bytes, list[bytes]]],
                  *, long_form: int = 0) -> bytes:
    attrs = b"".join(
        tlv(0x30, tlv(0x04, name, long_form=long_form)
            + tlv(0x31, b"".join(tlv(0x04, v, long_form=long_form) for v in values),
                  long_form=long_form), long_form=long_form)
        for name, values in attributes)
    op = tlv(0x64, tlv(0x04, dn) + tlv(0x30, attrs, long_form=long_form), long_form=long_form)
    mid = message_id.to_bytes(max(1, (message_id.bit_length() + 8) // 8), "big", signed=True)
    return tlv(0x30, tlv(0x02, mid) + op, long_form=long_form)


def done_message(message_id: int) -> bytes:
    # SearchResultDone: success, empty matchedDN and message
    result = tlv(0x0A, b"\x00") + tlv(0x04, b"") + tlv(0x04, b"")
    return tlv(0x30, tlv(0x02, bytes([message_id])) + tlv(0x65, result))


def test_reads_an_entry_with_lower_cased_names_and_raw_values() -> None:
    message = entry_message(7, "uid=jörg,ou=people,dc=x".encode(), [
        (b"uid", [b"j\xc3\xb6rg"]), (b"memberOf", [b"cn=a,dc=x", b"cn=b,dc=x"]),
        (b"jpegPhoto", [bytes(range(256)) * 3]), (b"empty", []),
    ])
    names: dict[bytes, str] = {}
    assert search_entry(message, names) == (7, "uid=jörg,ou=people,dc=x", {
        "uid": [b"j\xc3\xb6rg"], "memberof": [b"cn=a,dc=x", b"cn=b,dc=x"],
        "jpegphoto": [bytes(range(256)) * 3], "empty": [],
    })
    assert names[b"memberOf"] == "memberof"


def test_long_form_lengths_everywhere() -> None:
    message = entry_message(300, b"cn=g,dc=x", [(b"member", [b"uid=a", b"uid=b"])],
                            long_form=3)
    assert search_entry(message, {}) == (300, "cn=g,dc=x", {"member": [b"uid=a", b"uid=b"]})


def test_other_messages_are_left_to_ldap3() -> None:
    assert search_entry(done_message(3), {}) is None


@pytest.mark.parametrize("cut", [1, 5, 12, 30])
def test_truncated_entries_are_refused(cut: int) -> None:
    message = entry_message(2, b"cn=g,dc=x", [(b"member", [b"uid=a", b"uid=b"])])
    with pytest.raises((BerError, IndexError)):
        search_entry(message[:-cut], {})


def test_a_value_overrunning_its_set_is_refused() -> None:
    message = bytearray(entry_message(2, b"cn=g,dc=x", [(b"member", [b"uid=a", b"uid=b"])]))
    message[-6] = 7  # the last value's length: two bytes past the end of its SET
    with pytest.raises(BerError, match="overrun"):
        search_entry(bytes(message), {})


def test_a_value_that_is_not_an_octet_string_is_refused() -> None:
    message = entry_message(2, b"cn=g,dc=x", [(b"member", [b"uid=a"])])
    at = message.rindex(b"uid=a") - 2
    broken = message[:at] + b"\x02" + message[at + 1:]
    with pytest.raises(BerError, match="not an OCTET STRING"):
        search_entry(broken, {})


def test_split_keeps_a_partial_message_for_later() -> None:
    one = entry_message(1, b"cn=a", [(b"cn", [b"a"])])
    two = entry_message(1, b"cn=b", [(b"cn", [b"b" * 1000])])  # long-form length
    stream = one + two + done_message(1)
    for cut in range(len(stream) + 1):
        first, used = split_messages(stream[:cut])
        rest, _ = split_messages(stream[used:])
        assert first + rest == [one, two, done_message(1)]


def test_split_refuses_what_is_not_a_message() -> None:
    with pytest.raises(BerError):
        split_messages(b"\x04\x01a")


values = st.binary(max_size=200)
attributes = st.lists(st.tuples(st.text("abcXYZ-;=0123", min_size=1, max_size=12)
                                .map(str.encode), st.lists(values, max_size=8)),
                      max_size=6, unique_by=lambda a: a[0].lower())


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**31 - 1), st.text(max_size=80), attributes,
       st.lists(st.integers(1, 700), min_size=1, max_size=10), st.integers(0, 4))
def test_any_entry_survives_any_chunking(message_id: int, dn: str,
                                         attrs: list[tuple[bytes, list[bytes]]],
                                         chunks: list[int], long_form: int) -> None:
    message = entry_message(message_id, dn.encode(), attrs, long_form=long_form)
    stream = message * 3 + done_message(5)
    pending = bytearray()
    got: list[bytes] = []
    at = 0
    for size in chunks * (len(stream) // sum(chunks) + 1):
        pending += stream[at:at + size]
        at += size
        messages, used = split_messages(pending)
        del pending[:used]
        got += messages
    assert got == [message] * 3 + [done_message(5)] and not pending
    expected = {name.decode().lower(): list(v) for name, v in attrs}
    assert search_entry(message, {}) == (message_id, dn, expected)


def result_message(message_id: int, code: int, matched: bytes, text: bytes, *,
                   referrals: list[bytes] = (), controls: list[bytes] = (),
                   long_form: int = 0) -> bytes:
    result = tlv(0x0A, bytes([code])) + tlv(0x04, matched) + tlv(0x04, text)
    if referrals:
        result += tlv(0xA3, b"".join(tlv(0x04, r) for r in referrals))
    body = tlv(0x02, bytes([message_id])) + tlv(0x65, result, long_form=long_form)
    if controls:
        body += tlv(0xA0, b"".join(controls))
    return tlv(0x30, body, long_form=long_form)


def paged_control(cookie: bytes, *, critical: bool = False) -> bytes:
    value = tlv(0x30, tlv(0x02, b"\x00") + tlv(0x04, cookie))
    return tlv(0x30, tlv(0x04, b"1.2.840.113556.1.4.319")
               + (b"\x01\x01\xff" if critical else b"") + tlv(0x04, value))


@pytest.mark.parametrize("long_form", [0, 2])
def test_a_result_with_referrals_and_controls(long_form: int) -> None:
    cookie = bytes(range(200))
    message = result_message(9, 10, b"dc=x", "süd".encode(),
                             referrals=[b"ldap://a/dc=x", b"ldap://b/dc=x"],
                             controls=[paged_control(cookie, critical=True),
                                       tlv(0x30, tlv(0x04, b"1.2.3"))], long_form=long_form)
    assert envelope(message) == (9, SEARCH_RESULT_DONE)
    done = result_done(message)
    assert (done.message_id, done.code, done.matched_dn, done.diagnostic) == (9, 10, "dc=x",
                                                                                "süd")
    assert done.referrals == ["ldap://a/dc=x", "ldap://b/dc=x"]
    assert done.controls == {"1.2.840.113556.1.4.319": tlv(0x30, tlv(0x02, b"\x00")
                                                             + tlv(0x04, cookie)),
                             "1.2.3": None}
    assert paged_cookie(done.controls["1.2.840.113556.1.4.319"] or b"") == cookie
    assert result_done(done_message(3)).controls == {}


def test_a_reference() -> None:
    message = tlv(0x30, tlv(0x02, b"\x04") + tlv(0x73, tlv(0x04, b"ldap://c/ou=x")
                                                   + tlv(0x04, b"ldap://d/ou=x")))
    assert envelope(message) == (4, 0x73)
    assert reference_uris(message) == ["ldap://c/ou=x", "ldap://d/ou=x"]


@pytest.mark.parametrize("cut", [1, 3, 8])
def test_truncated_results_are_refused(cut: int) -> None:
    message = result_message(9, 0, b"", b"", controls=[paged_control(b"abc")])
    with pytest.raises((BerError, IndexError)):
        paged_cookie(result_done(message[:-cut]).controls["1.2.840.113556.1.4.319"] or b"")


def test_first_values_reads_the_usual_entries_and_leaves_the_rest() -> None:
    usual = [entry_message(7, b"uid=a,dc=x", [(b"entryUUID", [b"id-a", b"second"])]),
             entry_message(7, b"uid=b" * 40, [(b"ENTRYUUID", [b"id-b" * 50])], long_form=2)]
    other = [
        entry_message(8, b"uid=c,dc=x", [(b"entryUUID", [b"other search"])]),
        entry_message(7, b"uid=d,dc=x", [(b"cn", [b"d"]), (b"entryUUID", [b"id-d"])]),
        entry_message(7, b"uid=e,dc=x", []),
        entry_message(7, b"uid=f,dc=x", [(b"entryUUID", [])]),
        entry_message(7, b"uid=g,dc=x", [(b"entryUUID;range=0-*", [b"id-g"])]),
        entry_message(7, b"uid=h,dc=x", [(b"entryUUIDx", [b"id-h"])]),
        done_message(7),
    ]
    values, rest = first_values([usual[0], *other[:3], usual[1], *other[3:]], 7, "entryuuid")
    assert values == [b"id-a", b"id-b" * 50]
    assert rest == other
    # what is left is what the general reader would read: every message of search 7 accounted
    for message in rest:
        if envelope(message) == (7, SEARCH_RESULT_ENTRY):
            assert search_entry(message, {}) is not None


def test_first_values_leaves_a_value_past_the_end_to_the_entry_reader() -> None:
    message = entry_message(7, b"uid=a,dc=x", [(b"entryUUID", [b"id-a"])])
    broken = message[:-5] + bytes([message[-5] + 40]) + message[-4:]
    assert first_values([broken], 7, "entryuuid") == ([], [broken])
    with pytest.raises(BerError):
        search_entry(broken, {})


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 2**31 - 1), st.text(max_size=80), st.lists(values, max_size=3),
       st.integers(0, 3), attributes)
def test_first_values_agrees_with_the_entry_reader(message_id: int, dn: str,
                                                   ids: list[bytes], long_form: int,
                                                   more: list[tuple[bytes, list[bytes]]]
                                                   ) -> None:
    message = entry_message(message_id, dn.encode(), [(b"entryUUID", ids), *more],
                            long_form=long_form)
    found, rest = first_values([message], message_id, "entryuuid")
    if found:
        assert found == [ids[0]] and not rest
    else:
        assert rest == [message] and not ids

"""Just enough BER to cut LDAP messages out of a byte stream and to read search result
entries, fast. Pure: bytes in, Python values out.

Why this exists: ldap3 decodes every message with a general BER decoder written in Python,
then makes a text copy of every value through its formatters. For a full read that is most
of the time (bench/LDAP.md: 100,000 users and a million member values spent ~10 s in it,
where the data arrives in under 2 s). A search result entry has one fixed shape (RFC 4511
section 4.5.2), so it is read here with a loop written for that shape, keeping the values as
the bytes dirsync's mappers want. Every other message (results, controls, referrals,
extended responses) is rare and still goes through ldap3 (connection.py), except in the
searches wire.py runs itself: for those, results, references and the paged results cookie
are read here too, and `first_values` takes one attribute's value out of each entry of the
id scan without building the entry.

Only definite lengths exist in LDAP (RFC 4511 section 5.1), so a length is one byte below
0x80, or 0x80 + n followed by n bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

SEQUENCE = 0x30
SET = 0x31
OCTET_STRING = 0x04
INTEGER = 0x02
SEARCH_RESULT_ENTRY = 0x64  # [APPLICATION 4], constructed
SEARCH_RESULT_DONE = 0x65  # [APPLICATION 5], constructed
SEARCH_RESULT_REFERENCE = 0x73  # [APPLICATION 19], constructed
_REFERRAL = 0xA3  # LDAPResult's referral [3]
_CONTROLS = 0xA0  # LDAPMessage's controls [0]

# (message id, DN, {lower-cased attribute description: [value bytes, ...]})
Entry = tuple[int, str, dict[str, list[bytes]]]


class BerError(ValueError):
    """Bytes that are not the LDAP message they should be."""


def split_messages(buffer: bytes | bytearray) -> tuple[list[bytes], int]:
    """The complete LDAP messages at the start of `buffer`, and how many bytes they took.
    A message that has not fully arrived is left for the next call."""
    messages = []
    size = len(buffer)
    at = 0
    while at + 2 <= size:
        if buffer[at] != SEQUENCE:
            raise BerError(f"an LDAP message starts with 0x{buffer[at]:02x}, not a SEQUENCE")
        first = buffer[at + 1]
        if first < 0x80:
            end = at + 2 + first
        else:
            count = first & 0x7F
            if not 0 < count <= 4:
                raise BerError(f"an LDAP message announces a {count}-byte length")
            if at + 2 + count > size:
                break
            end = at + 2 + count + int.from_bytes(buffer[at + 2:at + 2 + count], "big")
        if end > size:
            break
        messages.append(bytes(buffer[at:end]))
        at = end
    return messages, at


def search_entry(message: bytes, names: dict[bytes, str]) -> Entry | None:
    """Read one complete LDAPMessage if it is a SearchResultEntry, else None. `names`
    caches the lower-cased text of attribute descriptions across calls (a read sees the same
    few over and over)."""
    at = 1 + (message[1] & 0x7F if message[1] >= 0x80 else 0) + 1  # past the SEQUENCE header
    if message[at] != INTEGER:
        raise BerError("an LDAP message does not start with its message id")
    id_start, id_end = _span(message, at)
    if message[id_end] != SEARCH_RESULT_ENTRY:
        return None
    message_id = int.from_bytes(message[id_start:id_end], "big", signed=True)
    op_start, op_end = _span(message, id_end)
    if message[op_start] != OCTET_STRING:
        raise BerError("a search result entry does not start with its DN")
    dn_start, dn_end = _span(message, op_start)
    dn = message[dn_start:dn_end].decode("utf-8", "replace")
    if message[dn_end] != SEQUENCE:
        raise BerError("a search result entry has no attribute list")
    list_start, list_end = _span(message, dn_end)
    if list_end > op_end or op_end > len(message):
        raise BerError("a search result entry is longer than its message")
    attributes: dict[str, list[bytes]] = {}
    at = list_start
    while at < list_end:
        if message[at] != SEQUENCE:
            raise BerError("an attribute of a search result entry is not a SEQUENCE")
        attr_start, attr_end = _span(message, at)
        if message[attr_start] != OCTET_STRING:
            raise BerError("an attribute of a search result entry has no description")
        type_start, type_end = _span(message, attr_start)
        raw_name = message[type_start:type_end]
        name = names.get(raw_name)
        if name is None:
            name = names[raw_name] = raw_name.decode("utf-8", "replace").lower()
        if message[type_end] != SET:
            raise BerError(f"the values of {name!r} are not a SET")
        vals_start, vals_end = _span(message, type_end)
        values: list[bytes] = []
        append = values.append
        v = vals_start
        # The hot loop: a million member values in a large read. Lengths inlined on purpose.
        while v < vals_end:
            if message[v] != OCTET_STRING:
                raise BerError(f"a value of {name!r} is not an OCTET STRING")
            first = message[v + 1]
            if first < 0x80:
                start = v + 2
                v = start + first
            else:
                start = v + 2 + (first & 0x7F)
                v = start + int.from_bytes(message[v + 2:start], "big")
            append(message[start:v])
        if v != vals_end or vals_end != attr_end:
            raise BerError(f"the values of {name!r} overrun their SET")
        if name in attributes:
            attributes[name].extend(values)
        else:
            attributes[name] = values
        at = attr_end
    if at != list_end:
        raise BerError("the attributes of a search result entry overrun their list")
    return message_id, dn, attributes


def envelope(message: bytes) -> tuple[int, int]:
    """(message id, protocol operation tag) of one complete LDAPMessage."""
    at = 1 + (message[1] & 0x7F if message[1] >= 0x80 else 0) + 1
    if message[at] != INTEGER:
        raise BerError("an LDAP message does not start with its message id")
    id_start, id_end = _span(message, at)
    if id_end >= len(message):
        raise BerError("an LDAP message ends after its message id")
    return int.from_bytes(message[id_start:id_end], "big", signed=True), message[id_end]


@dataclass
class Done:
    """An LDAPResult (RFC 4511 section 4.1.9) ending an operation, with the controls sent
    along (OID -> value, None when the control has no value)."""

    message_id: int
    code: int
    matched_dn: str
    diagnostic: str
    referrals: list[str]
    controls: dict[str, bytes | None]


def result_done(message: bytes) -> Done:
    """Read an LDAPMessage whose operation is an LDAPResult (SearchResultDone and the like)."""
    message_id, _ = envelope(message)
    size = len(message)
    at = 1 + (message[1] & 0x7F if message[1] >= 0x80 else 0) + 1
    _, op_at = _inside(message, at, size)
    op_start, op_end = _inside(message, op_at, size)
    if message[op_start] != 0x0A:
        raise BerError("an LDAP result does not start with its result code")
    start, end = _inside(message, op_start, op_end)
    code = int.from_bytes(message[start:end], "big", signed=True)
    texts = []
    for _ in range(2):  # matchedDN, diagnosticMessage
        if end >= op_end or message[end] != OCTET_STRING:
            raise BerError("an LDAP result lacks its matched DN or diagnostic message")
        start, end = _inside(message, end, op_end)
        texts.append(message[start:end].decode("utf-8", "replace"))
    referrals = []
    if end < op_end and message[end] == _REFERRAL:
        start, end = _inside(message, end, op_end)
        referrals = _strings(message, start, end)
    controls: dict[str, bytes | None] = {}
    if op_end < size and message[op_end] == _CONTROLS:
        start, end = _inside(message, op_end, size)
        while start < end:
            c_start, c_end = _inside(message, start, end)
            parts = []
            at = c_start
            while at < c_end:
                p_start, p_end = _inside(message, at, c_end)
                parts.append((message[at], message[p_start:p_end]))
                at = p_end
            if not parts or parts[0][0] != OCTET_STRING:
                raise BerError("a control does not start with its OID")
            value = parts[-1][1] if len(parts) > 1 and parts[-1][0] == OCTET_STRING else None
            controls[parts[0][1].decode("ascii", "replace")] = value
            start = c_end
    return Done(message_id, code, texts[0], texts[1], referrals, controls)


def reference_uris(message: bytes) -> list[str]:
    """The URIs of a SearchResultReference."""
    at = 1 + (message[1] & 0x7F if message[1] >= 0x80 else 0) + 1
    _, op_at = _inside(message, at, len(message))
    start, end = _inside(message, op_at, len(message))
    return _strings(message, start, end)


def paged_cookie(value: bytes) -> bytes:
    """The cookie of a paged results control value (RFC 2696: SEQUENCE {size, cookie})."""
    if not value or value[0] != SEQUENCE:
        raise BerError("a paged results control value is not a SEQUENCE")
    start, end = _inside(value, 0, len(value))
    if value[start] != INTEGER:
        raise BerError("a paged results control value does not start with a size")
    _, at = _inside(value, start, end)
    if at >= end or value[at] != OCTET_STRING:
        raise BerError("a paged results control value has no cookie")
    start, end = _inside(value, at, end)
    return bytes(value[start:end])


def first_values(messages: list[bytes], message_id: int, name: str
                 ) -> tuple[list[bytes], list[bytes]]:
    """For the id scan: the first value of attribute `name` (lower-case) of every search
    result entry of `message_id` whose first attribute is `name`, read without building the
    entry; and the messages left for the general readers: results, references, entries of
    another shape, and anything this reader does not expect (they judge whether it is
    malformed)."""
    wanted_id = _int(message_id)
    wanted = name.encode("utf-8").lower()
    wanted_size = len(wanted)
    values: list[bytes] = []
    rest: list[bytes] = []
    for m in messages:
        # One entry, inlined on purpose: ~110,000 of them in a large directory's scan.
        # Lengths may come in long form anywhere (Active Directory writes 0x84 + 4 bytes).
        try:
            first = m[1]
            at = 2 if first < 0x80 else 2 + (first & 0x7F)
            if m[at] != INTEGER:
                rest.append(m)
                continue
            first = m[at + 1]  # the message id
            start = at + 2 if first < 0x80 else at + 2 + (first & 0x7F)
            at = start + (first if first < 0x80 else int.from_bytes(m[at + 2:start], "big"))
            if m[start:at] != wanted_id or m[at] != SEARCH_RESULT_ENTRY:
                rest.append(m)
                continue
            first = m[at + 1]
            at += 2 if first < 0x80 else 2 + (first & 0x7F)  # into the entry
            if m[at] != OCTET_STRING:
                rest.append(m)
                continue
            first = m[at + 1]  # the DN: skipped
            start = at + 2 if first < 0x80 else at + 2 + (first & 0x7F)
            at = start + (first if first < 0x80 else int.from_bytes(m[at + 2:start], "big"))
            if m[at] != SEQUENCE:
                rest.append(m)
                continue
            first = m[at + 1]  # into the attribute list, then into its first attribute
            at += 2 if first < 0x80 else 2 + (first & 0x7F)
            if m[at] != SEQUENCE:
                rest.append(m)
                continue
            first = m[at + 1]
            at += 2 if first < 0x80 else 2 + (first & 0x7F)
            if m[at] != OCTET_STRING:
                rest.append(m)
                continue
            first = m[at + 1]  # the attribute description
            start = at + 2 if first < 0x80 else at + 2 + (first & 0x7F)
            at = start + (first if first < 0x80 else int.from_bytes(m[at + 2:start], "big"))
            if at - start != wanted_size or m[start:at].lower() != wanted or m[at] != SET:
                rest.append(m)
                continue
            first = m[at + 1]
            at, set_end = (at + 2, at + 2 + first) if first < 0x80 else (
                at + 2 + (first & 0x7F),
                at + 2 + (first & 0x7F) + int.from_bytes(m[at + 2:at + 2 + (first & 0x7F)],
                                                         "big"))
            if m[at] != OCTET_STRING:
                rest.append(m)  # no value (then this is the next attribute), or not a string
                continue
            first = m[at + 1]
            start = at + 2 if first < 0x80 else at + 2 + (first & 0x7F)
            end = start + (first if first < 0x80 else int.from_bytes(m[at + 2:start], "big"))
            if end > set_end or set_end > len(m):
                rest.append(m)
                continue
            values.append(m[start:end])
        except IndexError:
            rest.append(m)
    return values, rest


def _int(value: int) -> bytes:
    return value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)


def _strings(data: bytes, start: int, end: int) -> list[str]:
    out = []
    while start < end:
        if data[start] != OCTET_STRING:
            raise BerError("a list of strings holds something else")
        s_start, s_end = _inside(data, start, end)
        out.append(data[s_start:s_end].decode("utf-8", "replace"))
        start = s_end
    return out


def _inside(data: bytes, tag_at: int, limit: int) -> tuple[int, int]:
    """`_span`, refusing an element that runs past `limit` (the end of what holds it)."""
    start, end = _span(data, tag_at)
    if end > limit or start > end:
        raise BerError("an element runs past the end of what holds it")
    return start, end


def span_of(data: bytes, tag_at: int) -> tuple[int, int]:
    """(content start, content end) of the element whose tag is at `tag_at`."""
    return _span(data, tag_at)


def _span(data: bytes, tag_at: int) -> tuple[int, int]:
    first = data[tag_at + 1]
    if first < 0x80:
        return tag_at + 2, tag_at + 2 + first
    start = tag_at + 2 + (first & 0x7F)
    return start, start + int.from_bytes(data[tag_at + 2:start], "big")

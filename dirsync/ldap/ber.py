"""Just enough BER to cut LDAP messages out of a byte stream and to read search result
entries, fast. Pure: bytes in, Python values out.

Why this exists: ldap3 decodes every message with a general BER decoder written in Python,
then makes a text copy of every value through its formatters. For a full read that is most
of the time (bench/LDAP.md: 100,000 users and a million member values spent ~10 s in it,
where the data arrives in under 2 s). A search result entry has one fixed shape (RFC 4511
section 4.5.2), so it is read here with a loop written for that shape, keeping the values as
the bytes dirsync's mappers want. Every other message (results, controls, referrals,
extended responses) is rare and still goes through ldap3 (connection.py).

Only definite lengths exist in LDAP (RFC 4511 section 5.1), so a length is one byte below
0x80, or 0x80 + n followed by n bytes.
"""

from __future__ import annotations

SEQUENCE = 0x30
SET = 0x31
OCTET_STRING = 0x04
INTEGER = 0x02
SEARCH_RESULT_ENTRY = 0x64  # [APPLICATION 4], constructed

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


def _span(data: bytes, tag_at: int) -> tuple[int, int]:
    """(content start, content end) of the element whose tag is at `tag_at`."""
    first = data[tag_at + 1]
    if first < 0x80:
        return tag_at + 2, tag_at + 2 + first
    start = tag_at + 2 + (first & 0x7F)
    return start, start + int.from_bytes(data[tag_at + 2:start], "big")

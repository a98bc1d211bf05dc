"""Search result entries -> model Users and Groups, as the configuration maps them. Pure.

An entry arrives as its DN and its raw values (bytes, as on the wire), keyed by lower-cased
attribute name. Decoding happens here, once, so the rules are in one place:

* text is UTF-8 (LDAP's string syntaxes are); undecodable bytes in a name skip the entry,
  elsewhere they are replaced;
* the unique id of objectGUID / msDS-ConsistencyGuid is binary and becomes the canonical
  UUID string (the form AD tools show); entryUUID and nsUniqueId are lower-cased text;
* a naming attribute with several values (cn: Jane, cn: Jane Roe) gives the value that is
  also in the entry's RDN, else the first;
* names that Crowd clients and the store cannot hold (empty, padded with spaces, control
  characters, over 255 characters) skip the entry with a reason, rather than being altered.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Mapping, Sequence

from dirsync.dn import parse_dn
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.presets import (
    DISABLED_AD_UAC,
    DISABLED_NONE,
    DISABLED_PRESENT,
    DISABLED_TRUE,
    MEMBER_OF,
    MEMBER_UID,
    UNIQUE_MEMBER,
)
from dirsync.model import Group, User
from dirsync.names import name_key

# What the store's columns hold (dirsync/store/tables.py: NAME and TEXT).
NAME_MAX = 255
TEXT_MAX = 1024
# Attributes whose values are binary GUIDs in Microsoft's little-endian layout.
BINARY_GUIDS = frozenset({"objectguid", "msds-consistencyguid"})
# Lower-cased UUID-like attributes whose values match case-insensitively.
TEXT_UUIDS = frozenset({"entryuuid", "nsuniqueid"})
# userAccountControl ACCOUNTDISABLE flag.
UF_ACCOUNTDISABLE = 0x2
_TEXT_CONTROLS_ALLOWED = frozenset("\t\n\r")

Values = Mapping[str, Sequence[bytes]]


class Skip(Exception):
    """An entry that cannot become a user or group; the message is the reason."""


class EntryMapper:
    """Turns raw entries of one directory into Users and Groups."""

    def __init__(self, config: DirectoryConfig) -> None:
        a = config.attributes
        self.config = config
        self.username = a.username.lower()
        self.first_name = a.first_name.lower()
        self.last_name = a.last_name.lower()
        self.display_name = a.display_name.lower()
        self.email = a.email.lower()
        self.unique_id = a.unique_id.lower()
        self.disabled = a.disabled.lower()
        self.group_name = a.group_name.lower()
        self.group_description = a.group_description.lower()
        self.disabled_method = config.disabled_method
        membership = config.membership
        # The attribute holding membership values, and on which side it is.
        self.member_attribute = (
            "uniquemember" if membership == UNIQUE_MEMBER
            else "memberuid" if membership == MEMBER_UID
            else "memberof" if membership == MEMBER_OF
            else "member"
        )
        self.member_of_mode = membership == MEMBER_OF

    # -- what to ask the server for ------------------------------------------------------
    def user_attributes(self) -> list[str]:
        a = self.config.attributes
        names = [a.username, a.first_name, a.last_name, a.display_name, a.email, a.unique_id]
        if self.disabled_method != DISABLED_NONE:
            names.append(a.disabled)
        if self.member_of_mode:
            names.append(self.config.membership)
        return _unique(names)

    def group_attributes(self) -> list[str]:
        a = self.config.attributes
        member = "memberOf" if self.member_of_mode else self.config.membership
        return _unique([a.group_name, a.group_description, a.unique_id, member])

    # -- decoding --------------------------------------------------------------------------
    def user(self, dn: str, values: Values) -> User:
        """The user in this entry; raises Skip with the reason when it cannot be one."""
        name = self._name(dn, values, self.username, "username")
        return User(
            name=name,
            first_name=self._text(values, self.first_name),
            last_name=self._text(values, self.last_name),
            display_name=self._text(values, self.display_name),
            email=self._text(values, self.email),
            active=not self.is_disabled(values),
            external_id=self.external_id(values),
            dn=dn,
        )

    def group(self, dn: str, values: Values) -> Group:
        name = self._name(dn, values, self.group_name, "group name")
        return Group(
            name=name,
            description=self._text(values, self.group_description),
            external_id=self.external_id(values),
            dn=dn,
        )

    def member_values(self, values: Values) -> Sequence[bytes]:
        """The membership values of an entry as the server sent them."""
        return values.get(self.member_attribute, ())

    def members(self, values: Values) -> list[str]:
        """The membership values of an entry (member DNs, memberUid names or memberOf DNs),
        as text. uniqueMember's optional `#'0101'B` suffix is left for members.py."""
        return [_decode(v) for v in values.get(self.member_attribute, ())]

    def external_id(self, values: Values) -> str:
        raw = values.get(self.unique_id, ())
        if not raw:
            raise Skip(f"it has no {self.config.attributes.unique_id} (the unique id attribute)")
        return self.id_of_value(raw[0])

    def external_ids(self, first_values: Sequence[bytes]) -> list[str]:
        """`external_id` of many entries at once, given each one's first unique id value (the
        id scan reads nothing else), leaving out those it would Skip. The usual ids are done
        in one pass; anything unusual goes through `id_of_value`."""
        if self.unique_id in BINARY_GUIDS:
            if all(len(v) == 16 for v in first_values):
                return [_guid_text(bytes(v)) for v in first_values]
        else:
            try:
                texts = [bytes(v).decode("utf-8").strip() for v in first_values]
            except UnicodeDecodeError:
                texts = None
            if texts is not None and all(0 < len(t) <= NAME_MAX for t in texts):
                return [t.lower() for t in texts] if self.unique_id in TEXT_UUIDS else texts
        ids = []
        for value in first_values:
            try:
                ids.append(self.id_of_value(value))
            except Skip:
                continue
        return ids

    def id_of_value(self, value: bytes) -> str:
        """The external id for a unique id value as the server sent it; Skip when unusable."""
        if self.unique_id in BINARY_GUIDS:
            if len(value) != 16:
                raise Skip(f"its {self.config.attributes.unique_id} is {len(value)} bytes long, "
                           "not the 16 bytes of a GUID")
            return str(uuid.UUID(bytes_le=bytes(value)))
        try:
            text = bytes(value).decode("utf-8").strip()
        except UnicodeDecodeError:
            text = bytes(value).hex()  # a binary id of another kind: hex is still stable
        if not text or len(text) > NAME_MAX:
            raise Skip(f"its {self.config.attributes.unique_id} is empty or too long")
        return text.lower() if self.unique_id in TEXT_UUIDS else text

    def is_disabled(self, values: Values) -> bool:
        if self.disabled_method == DISABLED_NONE:
            return False
        raw = values.get(self.disabled, ())
        if self.disabled_method == DISABLED_PRESENT:
            return bool(raw)
        if not raw:
            return False
        text = _decode(raw[0]).strip()
        if self.disabled_method == DISABLED_TRUE:
            return text.lower() == "true"
        if self.disabled_method == DISABLED_AD_UAC:
            try:
                return bool(int(text) & UF_ACCOUNTDISABLE)
            except ValueError:
                return False
        raise AssertionError(f"unknown disabled method {self.disabled_method!r}")

    # -- helpers ---------------------------------------------------------------------------
    def _name(self, dn: str, values: Values, attribute: str, what: str) -> str:
        raw = values.get(attribute, ())
        if not raw:
            raise Skip(f"it has no {attribute} (the {what} attribute)")
        try:
            texts = [bytes(v).decode("utf-8") for v in raw]
        except UnicodeDecodeError:
            raise Skip(f"its {attribute} is not UTF-8 text") from None
        name = texts[0]
        if len(texts) > 1:
            name = _value_in_rdn(dn, attribute, texts) or name
        problem = name_problem(name)
        if problem:
            raise Skip(f"its {what} {name!r} {problem}")
        return name

    def _text(self, values: Values, attribute: str) -> str:
        raw = values.get(attribute, ())
        if not raw:
            return ""
        text = _decode(raw[0])
        # Printable text (almost all of it) has no control characters to drop; checking that
        # in C first spares a per-character loop over every name and address.
        if not text.isprintable():
            text = "".join(c for c in text
                           if c in _TEXT_CONTROLS_ALLOWED or unicodedata.category(c) != "Cc")
        return text[:TEXT_MAX]


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a user or group name, or None."""
    if not name:
        return "is empty"
    if name != name.strip():
        return "has leading or trailing spaces"
    if not name.isprintable() and any(unicodedata.category(c) == "Cc" for c in name):
        return "contains a control character"
    if len(name) > NAME_MAX:
        return f"is longer than {NAME_MAX} characters"
    return None


def _value_in_rdn(dn: str, attribute: str, texts: list[str]) -> str | None:
    try:
        rdn = parse_dn(dn)[0]
    except (ValueError, IndexError):
        return None
    in_rdn = {name_key(value) for kind, value in rdn if kind.lower() == attribute}
    for text in texts:
        if name_key(text) in in_rdn:
            return text
    return None


def _guid_text(value: bytes) -> str:
    """str(uuid.UUID(bytes_le=value)) without building a UUID: ~110,000 ids per AD scan."""
    h = (value[3::-1] + value[5:3:-1] + value[7:5:-1] + value[8:]).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _decode(value: bytes) -> str:
    return bytes(value).decode("utf-8", "replace")


def _unique(names: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in names:
        if name and name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
    return out

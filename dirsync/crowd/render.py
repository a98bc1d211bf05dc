"""Crowd entities on the wire, XML and JSON. The only place wire names (first-name, ...) appear.

Shapes follow crowd-protocol §3. XML is written as strings rather than through a DOM: a full
sync serialises hundreds of thousands of entities, and string building keeps that fast and lets
lists stream. Everything interpolated goes through `_x` (escape + strip XML-invalid characters).

Rules the Java client depends on (§0, §10): `<active>` always present; every attribute has a
`<values>` wrapper; full groups carry `<type>GROUP</type>`; a user's `<key>` is stable.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, Protocol
from urllib.parse import quote_plus

from dirsync import events as ev

XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
# Characters XML 1.0 cannot carry at all; Crowd strips them from messages too.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NEEDS_ESCAPE = re.compile("[&<>\"\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
CHUNK = 64 * 1024

Attrs = dict[str, list[str]]


def _x(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None:
        return text
    text = _INVALID_XML.sub("", text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def xml_datetime(value: dt.datetime) -> str:
    """xsd:dateTime as JAXB prints it: milliseconds only when they are not zero."""
    value = _as_utc(value)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    millis = value.microsecond // 1000
    if millis:
        text += f".{millis:03d}"
    return text + "Z"


def epoch_millis(value: dt.datetime) -> int:
    # Integer arithmetic: float timestamps are off by a millisecond for some dates.
    return (_as_utc(value) - EPOCH) // dt.timedelta(milliseconds=1)


def user_key(row: Any) -> str:
    return f"{row.directory_id}:{row.external_id}"


def chunked(parts: Iterable[str], size: int = CHUNK) -> Iterator[bytes]:
    """Join small strings into write-sized UTF-8 chunks."""
    buf: list[str] = []
    n = 0
    for part in parts:
        buf.append(part)
        n += len(part)
        if n >= size:
            yield "".join(buf).encode("utf-8")
            buf, n = [], 0
    if buf:
        yield "".join(buf).encode("utf-8")


class Renderer(Protocol):
    content_type: str

    def user(self, row: Any, attrs: Attrs | None, full: bool) -> str: ...
    def users(self, items: Iterable[tuple[Any, Attrs | None]], full: bool) -> Iterator[str]: ...
    def group(self, row: Any, attrs: Attrs | None, full: bool) -> str: ...
    def groups(self, items: Iterable[tuple[Any, Attrs | None]], full: bool) -> Iterator[str]: ...
    def attributes(self, attrs: Attrs, owner_link: str) -> str: ...
    def memberships(self, items: Iterable[tuple[str, list[str], list[str]]]) -> Iterator[str]: ...
    def error(self, reason: str, message: str) -> str: ...
    def event_token(self, token: str) -> str: ...
    def event_feed(self, feed: Any) -> Iterator[str]: ...
    def cookie_config(self, name: str, secure: bool, domain: str | None) -> str: ...


class Links:
    """Self links. Clients ignore them; we emit them for fidelity with Crowd."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")

    def user(self, name: str) -> str:
        return f"{self.base}/user?username={quote_plus(name)}"

    def user_attributes(self, name: str) -> str:
        return f"{self.base}/user/attribute?username={quote_plus(name)}"

    def user_password(self, name: str) -> str:
        return f"{self.base}/user/password?username={quote_plus(name)}"

    def group(self, name: str) -> str:
        return f"{self.base}/group?groupname={quote_plus(name)}"

    def group_attributes(self, name: str) -> str:
        return f"{self.base}/group/attribute?groupname={quote_plus(name)}"


class XmlRenderer:
    content_type = "application/xml;charset=UTF-8"

    def __init__(self, base: str) -> None:
        self.links = Links(base)

    def _link(self, href: str, rel: str = "self") -> str:
        return f'<link href="{_x(href)}" rel="{rel}"/>'

    def attributes(self, attrs: Attrs, owner_link: str) -> str:
        parts = ["<attributes>"]
        for name in sorted(attrs):
            values = "".join(f"<value>{_x(v)}</value>" for v in attrs[name])
            parts.append(f'<attribute name="{_x(name)}"><values>{values}</values></attribute>')
        parts.append(self._link(owner_link))
        parts.append("</attributes>")
        return "".join(parts)

    def user(self, row: Any, attrs: Attrs | None, full: bool) -> str:
        name = row.name
        if not full:
            return f'<user name="{_x(name)}">{self._link(self.links.user(name))}</user>'
        return (
            f'<user expand="attributes" name="{_x(name)}">'
            f"{self._link(self.links.user(name))}"
            f"<first-name>{_x(row.first_name)}</first-name>"
            f"<last-name>{_x(row.last_name)}</last-name>"
            f"<display-name>{_x(row.display_name)}</display-name>"
            f"<email>{_x(row.email)}</email>"
            f"<password>{self._link(self.links.user_password(name), 'edit')}</password>"
            f"<key>{_x(user_key(row))}</key>"
            f"<created-date>{xml_datetime(row.created_at)}</created-date>"
            f"<updated-date>{xml_datetime(row.updated_at)}</updated-date>"
            f"<active>{'true' if row.active else 'false'}</active>"
            f"{self.attributes(attrs or {}, self.links.user_attributes(name))}"
            "</user>"
        )

    def users(self, items: Iterable[tuple[Any, Attrs | None]], full: bool) -> Iterator[str]:
        yield XML_DECL + '<users expand="user">'
        for row, attrs in items:
            yield self.user(row, attrs, full)
        yield "</users>"

    def group(self, row: Any, attrs: Attrs | None, full: bool) -> str:
        name = row.name
        if not full:
            return f'<group name="{_x(name)}">{self._link(self.links.group(name))}</group>'
        return (
            f'<group expand="attributes" name="{_x(name)}">'
            f"{self._link(self.links.group(name))}"
            f"<description>{_x(row.description)}</description>"
            "<type>GROUP</type>"
            f"<active>{'true' if row.active else 'false'}</active>"
            f"{self.attributes(attrs or {}, self.links.group_attributes(name))}"
            "</group>"
        )

    def groups(self, items: Iterable[tuple[Any, Attrs | None]], full: bool) -> Iterator[str]:
        yield XML_DECL + '<groups expand="group">'
        for row, attrs in items:
            yield self.group(row, attrs, full)
        yield "</groups>"

    def memberships(self, items: Iterable[tuple[str, list[str], list[str]]]) -> Iterator[str]:
        yield XML_DECL + "<memberships>"
        for group, user_names, child_names in items:
            members = "".join(f'<user name="{_x(n)}"/>' for n in user_names)
            children = "".join(f'<group name="{_x(n)}"/>' for n in child_names)
            yield (
                f'<membership group="{_x(group)}"><users>{members}</users>'
                f"<groups>{children}</groups></membership>"
            )
        yield "</memberships>"

    def event_token(self, token: str) -> str:
        return f'{XML_DECL}<events newEventToken="{_x(token)}" incrementalSynchronisationAvailable="true"/>'

    def _attribute_list(self, tag: str, attrs: Attrs) -> str:
        if not attrs:
            return ""
        items = "".join(
            f'<attribute name="{_x(n)}"><values>{"".join(f"<value>{_x(v)}</value>" for v in attrs[n])}'
            "</values></attribute>"
            for n in sorted(attrs)
        )
        return f"<{tag}>{items}</{tag}>"

    def _entity_event(self, event: ev.EntityEvent, feed: Any) -> str:
        user = event.kind == ev.USER
        tag = "userEvent" if user else "groupEvent"
        op = f"<operation>{event.operation.upper()}</operation>"
        if event.entity_id is None:  # deleted: the client deletes by name
            name = _x(event.name or "")
            return f'<{tag}>{op}<{event.kind} name="{name}"/></{tag}>'
        row = (feed.users if user else feed.groups)[event.entity_id]
        attrs = (feed.user_attributes if user else feed.group_attributes).get(event.entity_id, {})
        gone = {n: [] for n in event.removed_attributes if n not in attrs}
        entity = self.user(row, attrs, True) if user else self.group(row, attrs, True)
        return (
            f"<{tag}>{op}{self._attribute_list('storedAttributes', attrs)}"
            f"{self._attribute_list('deletedAttributes', gone)}{entity}</{tag}>"
        )

    def _membership_event(self, event: ev.MembershipEvent, feed: Any) -> str:
        op = f"<operation>{event.operation.upper()}</operation>"
        parents = "".join(f'<group name="{_x(feed.groups[p].name)}"/>' for p in event.parent_ids)
        if event.kind == ev.USER_MEMBERSHIP:
            child = _x(feed.users[event.child_id].name)
            return (
                f'<userMembershipEvent>{op}<childUser name="{child}"/>'
                f'<parentGroups expand="group">{parents}</parentGroups></userMembershipEvent>'
            )
        child = _x(feed.groups[event.child_id].name)
        return (
            f'<groupMembershipEvent>{op}<group name="{child}"/>'
            f"<parentGroups>{parents}</parentGroups><childGroups/></groupMembershipEvent>"
        )

    def event_feed(self, feed: Any) -> Iterator[str]:
        yield f'{XML_DECL}<events newEventToken="{_x(feed.token)}">'
        for event in feed.events:
            if isinstance(event, ev.EntityEvent):
                yield self._entity_event(event, feed)
            else:
                yield self._membership_event(event, feed)
        yield "</events>"

    def error(self, reason: str, message: str) -> str:
        return f"{XML_DECL}<error><reason>{reason}</reason><message>{_x(message)}</message></error>"

    def cookie_config(self, name: str, secure: bool, domain: str | None) -> str:
        domain_xml = f"<domain>{_x(domain)}</domain>" if domain else ""
        return (
            f"{XML_DECL}<cookie-config>{domain_xml}<secure>{'true' if secure else 'false'}"
            f"</secure><name>{_x(name)}</name></cookie-config>"
        )

    def document(self, fragment: str) -> str:
        return XML_DECL + fragment


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class JsonRenderer:
    content_type = "application/json;charset=UTF-8"

    def __init__(self, base: str) -> None:
        self.links = Links(base)

    @staticmethod
    def _link(href: str, rel: str = "self") -> dict[str, str]:
        return {"href": href, "rel": rel}

    def _attributes(self, attrs: Attrs, owner_link: str) -> dict[str, Any]:
        return {
            "attributes": [{"name": n, "values": list(attrs[n])} for n in sorted(attrs)],
            "link": self._link(owner_link),
        }

    def attributes(self, attrs: Attrs, owner_link: str) -> str:
        return _dumps(self._attributes(attrs, owner_link))

    def _user(self, row: Any, attrs: Attrs | None, full: bool) -> dict[str, Any]:
        name = row.name
        if not full:
            return {"link": self._link(self.links.user(name)), "name": name}
        return {
            "expand": "attributes",
            "link": self._link(self.links.user(name)),
            "name": name,
            "first-name": row.first_name,
            "last-name": row.last_name,
            "display-name": row.display_name,
            "email": row.email,
            "password": {"link": self._link(self.links.user_password(name), "edit")},
            "key": user_key(row),
            "created-date": epoch_millis(row.created_at),
            "updated-date": epoch_millis(row.updated_at),
            "active": bool(row.active),
            "attributes": self._attributes(attrs or {}, self.links.user_attributes(name)),
        }

    def user(self, row: Any, attrs: Attrs | None, full: bool) -> str:
        return _dumps(self._user(row, attrs, full))

    def _list(self, expand: str, key: str, parts: Iterator[str]) -> Iterator[str]:
        yield f'{{"expand":"{expand}","{key}":['
        first = True
        for part in parts:
            yield part if first else "," + part
            first = False
        yield "]}"

    def users(self, items: Iterable[tuple[Any, Attrs | None]], full: bool) -> Iterator[str]:
        return self._list("user", "users", (self.user(r, a, full) for r, a in items))

    def _group(self, row: Any, attrs: Attrs | None, full: bool) -> dict[str, Any]:
        name = row.name
        if not full:
            return {"link": self._link(self.links.group(name)), "name": name}
        return {
            "expand": "attributes",
            "link": self._link(self.links.group(name)),
            "name": name,
            "description": row.description,
            "type": "GROUP",
            "active": bool(row.active),
            "attributes": self._attributes(attrs or {}, self.links.group_attributes(name)),
        }

    def group(self, row: Any, attrs: Attrs | None, full: bool) -> str:
        return _dumps(self._group(row, attrs, full))

    def groups(self, items: Iterable[tuple[Any, Attrs | None]], full: bool) -> Iterator[str]:
        return self._list("group", "groups", (self.group(r, a, full) for r, a in items))

    def memberships(self, items: Iterable[tuple[str, list[str], list[str]]]) -> Iterator[str]:
        yield '{"memberships":['
        first = True
        for group, user_names, child_names in items:
            entry = _dumps(
                {
                    "group": group,
                    "users": [{"name": n} for n in user_names],
                    "groups": [{"name": n} for n in child_names],
                }
            )
            yield entry if first else "," + entry
            first = False
        yield "]}"

    def event_token(self, token: str) -> str:
        return _dumps({"newEventToken": token, "incrementalSynchronisationAvailable": True})

    @staticmethod
    def _attribute_list(attrs: Attrs) -> dict[str, Any]:
        return {"attributes": [{"name": n, "values": list(attrs[n])} for n in sorted(attrs)]}

    def _entity_event(self, event: ev.EntityEvent, feed: Any) -> dict[str, Any]:
        user = event.kind == ev.USER
        body: dict[str, Any] = {"operation": event.operation.upper()}
        if event.entity_id is None:
            body[event.kind] = {"name": event.name}
        else:
            row = (feed.users if user else feed.groups)[event.entity_id]
            attrs = (feed.user_attributes if user else feed.group_attributes).get(event.entity_id, {})
            gone = {n: [] for n in event.removed_attributes if n not in attrs}
            if attrs:
                body["storedAttributes"] = self._attribute_list(attrs)
            if gone:
                body["deletedAttributes"] = self._attribute_list(gone)
            body[event.kind] = self._user(row, attrs, True) if user else self._group(row, attrs, True)
        return {"userEvent" if user else "groupEvent": body}

    @staticmethod
    def _membership_event(event: ev.MembershipEvent, feed: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"operation": event.operation.upper()}
        parents = {"groups": [{"name": feed.groups[p].name} for p in event.parent_ids]}
        if event.kind == ev.USER_MEMBERSHIP:
            body["childUser"] = {"name": feed.users[event.child_id].name}
            body["parentGroups"] = {"expand": "group", **parents}
            return {"userMembershipEvent": body}
        body["group"] = {"name": feed.groups[event.child_id].name}
        body["parentGroups"] = parents
        body["childGroups"] = {"groups": []}
        return {"groupMembershipEvent": body}

    def event_feed(self, feed: Any) -> Iterator[str]:
        yield f'{{"newEventToken":{_dumps(feed.token)},"events":['
        for i, event in enumerate(feed.events):
            body = (self._entity_event(event, feed) if isinstance(event, ev.EntityEvent)
                    else self._membership_event(event, feed))
            yield ("," if i else "") + _dumps(body)
        yield "]}"

    def error(self, reason: str, message: str) -> str:
        # Crowd strips XML-invalid characters from the message itself, whatever the format.
        return _dumps({"reason": reason, "message": _INVALID_XML.sub("", message)})

    def cookie_config(self, name: str, secure: bool, domain: str | None) -> str:
        body: dict[str, Any] = {"secure": secure, "name": name}
        if domain:
            body["domain"] = domain
        return _dumps(body)

    def document(self, fragment: str) -> str:
        return fragment

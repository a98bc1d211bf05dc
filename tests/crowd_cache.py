"""A Crowd client's directory cache, driven over HTTP the way the Java client drives it.

`full_sync` follows crowd-protocol §4.2 (token, users, groups, membership dump, token);
`incremental` follows §4.3 and applies events as EventTokenChangedCacheRefresher does (§3.8),
but strictly: an event that does not fit the cache (deleting a user the client does not have,
adding a membership it already has, creating a name that is taken) fails the test instead of
being papered over. Users are identified by <key> (renames), groups by name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

NULL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><null-search-restriction/>'
XML = {"Accept": "application/xml", "Content-Type": "application/xml; charset=UTF-8"}


class Inconsistent(AssertionError):
    """An event the client's cache cannot apply: the feed is wrong."""


def fold(name: str) -> str:
    return name.casefold()


def _attrs(element: ET.Element | None) -> dict[str, tuple[str, ...]]:
    if element is None:
        return {}
    return {
        a.get("name", ""): tuple(v.text or "" for v in a.findall("values/value"))
        for a in element.findall("attribute")
    }


def _user(element: ET.Element) -> dict[str, Any]:
    return {
        "name": element.get("name"),
        "first": element.findtext("first-name"),
        "last": element.findtext("last-name"),
        "display": element.findtext("display-name"),
        "email": element.findtext("email"),
        "active": element.findtext("active") == "true",
        "key": element.findtext("key"),
    }


def _group(element: ET.Element) -> dict[str, Any]:
    assert element.findtext("type") == "GROUP"
    return {
        "name": element.get("name"),
        "description": element.findtext("description"),
        "active": element.findtext("active") == "true",
    }


@dataclass
class CrowdCache:
    base: str  # .../rest/usermanagement/1
    http: requests.Session
    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # by key
    user_attrs: dict[str, dict] = field(default_factory=dict)  # by key
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # by folded name
    group_attrs: dict[str, dict] = field(default_factory=dict)
    user_members: set[tuple[str, str]] = field(default_factory=set)  # (user key, folded group)
    group_members: set[tuple[str, str]] = field(default_factory=set)  # (folded child, folded parent)
    token: str | None = None
    full_syncs: int = 0
    incremental_syncs: int = 0

    def _get(self, path: str) -> requests.Response:
        return self.http.get(self.base + path, headers=XML, timeout=30)

    def _xml(self, response: requests.Response, root: str) -> ET.Element:
        assert response.status_code == 200, (response.status_code, response.text)
        element = ET.fromstring(response.content)
        assert element.tag == root, element.tag
        return element

    def current_token(self) -> str:
        events = self._xml(self._get("/event"), "events")
        assert events.get("incrementalSynchronisationAvailable") == "true"
        return events.get("newEventToken") or ""

    # --- §4.2 ---------------------------------------------------------------------------------

    def full_sync(self) -> None:
        self.current_token()
        users = self._xml(self.http.post(
            self.base + "/search?entity-type=user&start-index=0&max-results=-1&expand=user,attributes",
            data=NULL.encode(), headers=XML, timeout=30), "users")
        groups = self._xml(self.http.post(
            self.base + "/search?entity-type=group&start-index=0&max-results=-1&expand=group,attributes",
            data=NULL.encode(), headers=XML, timeout=30), "groups")
        dump = self._xml(self._get("/group/membership"), "memberships")
        self.token = self.current_token()
        self.users = {}
        self.user_attrs = {}
        key_of: dict[str, str] = {}
        for element in users.findall("user"):
            user = _user(element)
            assert user["key"] not in self.users, "two users with one key"
            self.users[user["key"]] = user
            self.user_attrs[user["key"]] = _attrs(element.find("attributes"))
            key_of[fold(user["name"])] = user["key"]
        self.groups = {}
        self.group_attrs = {}
        for element in groups.findall("group"):
            group = _group(element)
            self.groups[fold(group["name"])] = group
            self.group_attrs[fold(group["name"])] = _attrs(element.find("attributes"))
        self.user_members = set()
        self.group_members = set()
        for membership in dump.findall("membership"):
            parent = fold(membership.get("group", ""))
            self.user_members |= {(key_of[fold(u.get("name", ""))], parent)
                                  for u in membership.findall("users/user")}
            self.group_members |= {(fold(c.get("name", "")), parent)
                                   for c in membership.findall("groups/group")}
        self.full_syncs += 1

    # --- §4.3 ---------------------------------------------------------------------------------

    def incremental(self) -> bool:
        """One incremental round; falls back to a full sync on 410. True if incremental."""
        assert self.token is not None
        response = self._get("/event/" + quote(self.token, safe=""))
        if response.status_code == 410:
            assert ET.fromstring(response.content).findtext("reason") == "EVENT_TOKEN_EXPIRED"
            self.full_sync()
            return False
        events = self._xml(response, "events")
        for event in events:
            getattr(self, "_on_" + event.tag)(event)
        self.token = events.get("newEventToken")
        assert self.token
        self.incremental_syncs += 1
        return True

    def _user_key(self, name: str) -> str:
        keys = [k for k, u in self.users.items() if fold(u["name"]) == fold(name)]
        if len(keys) != 1:
            raise Inconsistent(f"user {name!r} matches {len(keys)} cached users")
        return keys[0]

    def _group_name(self, name: str) -> str:
        if fold(name) not in self.groups:
            raise Inconsistent(f"group {name!r} is not cached")
        return fold(name)

    @staticmethod
    def _apply_attributes(attrs: dict, event: ET.Element) -> dict:
        out = dict(attrs)
        out.update(_attrs(event.find("storedAttributes")))
        for gone in event.findall("deletedAttributes/attribute"):
            out.pop(gone.get("name"), None)
        return out

    def _on_userEvent(self, event: ET.Element) -> None:
        op = event.findtext("operation")
        element = event.find("user")
        assert element is not None and op in ("CREATED", "UPDATED", "DELETED")
        if op == "DELETED":
            key = self._user_key(element.get("name", ""))
            del self.users[key]
            self.user_attrs.pop(key, None)
            self.user_members = {m for m in self.user_members if m[0] != key}
            return
        user = _user(element)
        if user["active"] is None or user["key"] is None:
            raise Inconsistent("user event without a complete user")
        if (op == "CREATED") == (user["key"] in self.users):
            raise Inconsistent(f"{op} user {user['name']!r} but cached={user['key'] in self.users}")
        holders = [k for k, u in self.users.items() if fold(u["name"]) == fold(user["name"])]
        if op == "CREATED" and holders:
            raise Inconsistent(f"CREATED user {user['name']!r} whose name is taken")
        self.users[user["key"]] = user
        self.user_attrs[user["key"]] = self._apply_attributes(self.user_attrs.get(user["key"], {}), event)

    def _on_groupEvent(self, event: ET.Element) -> None:
        op = event.findtext("operation")
        element = event.find("group")
        assert element is not None
        name = fold(element.get("name", ""))
        if op == "DELETED":
            self._group_name(name)
            del self.groups[name]
            self.group_attrs.pop(name, None)
            self.user_members = {m for m in self.user_members if m[1] != name}
            self.group_members = {m for m in self.group_members if name not in m}
            return
        if (op == "CREATED") == (name in self.groups):
            raise Inconsistent(f"{op} group {name!r} but cached={name in self.groups}")
        self.groups[name] = _group(element)
        self.group_attrs[name] = self._apply_attributes(self.group_attrs.get(name, {}), event)

    def _parents(self, event: ET.Element) -> list[str]:
        parents = event.find("parentGroups")
        if parents is None:
            raise Inconsistent("membership event without parentGroups")
        return [self._group_name(g.get("name", "")) for g in parents.findall("group")]

    def _change(self, members: set, pairs: list, op: str | None) -> None:
        for pair in pairs:
            if op == "CREATED":
                if pair in members:
                    raise Inconsistent(f"membership {pair} created twice")
                members.add(pair)
            elif op == "DELETED":
                if pair not in members:
                    raise Inconsistent(f"membership {pair} deleted but not cached")
                members.remove(pair)
            else:
                raise Inconsistent(f"unexpected membership operation {op}")

    def _on_userMembershipEvent(self, event: ET.Element) -> None:
        child = event.find("childUser")
        if child is None:
            raise Inconsistent("userMembershipEvent without childUser")
        key = self._user_key(child.get("name", ""))
        self._change(self.user_members, [(key, p) for p in self._parents(event)],
                     event.findtext("operation"))

    def _on_groupMembershipEvent(self, event: ET.Element) -> None:
        child = event.find("group")
        if child is None or event.find("childGroups") is None:
            raise Inconsistent("groupMembershipEvent without group or childGroups")
        name = self._group_name(child.get("name", ""))
        self._change(self.group_members, [(name, p) for p in self._parents(event)],
                     event.findtext("operation"))

    # --- comparison ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything a full sync would give, by name, for comparison."""
        names = {k: u["name"] for k, u in self.users.items()}
        return {
            "users": {u["name"]: (u, self.user_attrs.get(k, {})) for k, u in self.users.items()},
            "groups": {g["name"]: (g, self.group_attrs.get(n, {})) for n, g in self.groups.items()},
            "user_members": {(names[k], self.groups[g]["name"]) for k, g in self.user_members},
            "group_members": {(self.groups[c]["name"], self.groups[p]["name"])
                              for c, p in self.group_members},
        }

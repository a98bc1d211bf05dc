"""Conformance of every entity dirsync puts on the wire with crowd-protocol §3, element by element.

XML is read with xml.etree and compared by element name, order and attributes, not by
substring. The JSON forms (§3.1-3.5) are compared by their exact key sets. The transport rules
that apply to every answer — the X-Embedded-Crowd-Version header whatever the status, and
`Cache-Control: no-cache, no-store` on reads — are checked across the statuses and endpoints
dirsync can produce. Pure formatting helpers of dirsync.crowd.render get table-driven tests.
"""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from factories import APP_NAME, APP_PASSWORD, Api, add_app, org, seed, start_api

from dirsync.app import create_app
from dirsync.crowd.render import epoch_millis, xml_datetime
from dirsync.settings import load_settings

DECL = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
XML = {"Accept": "application/xml"}
JSON = {"Accept": "application/json"}
XML_BODY = {"Content-Type": "application/xml; charset=UTF-8"}
NULL = b"<null-search-restriction/>"
ALICE_PASSWORD = b"<password><value>alice-pw-1</value></password>"

# §3.1 / §3.3: child elements in the order the server writes them.
USER_CHILDREN = ["link", "first-name", "last-name", "display-name", "email", "password", "key",
                 "created-date", "updated-date", "active", "attributes"]
GROUP_CHILDREN = ["link", "description", "type", "active", "attributes"]
# xsd:dateTime as JAXB prints a java.util.Date: milliseconds only when non-zero, UTC as Z.
XSD_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
VERSION_HEADER = re.compile(r"^[^/\s]+/\d+(\.\d+)*$")

FIXTURE_USERS = {u.name: u for u in org().users}
FIXTURE_GROUPS = {g.name: g for g in org().groups}


@pytest.fixture
def api(store, settings, live_app) -> Api:  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store)
    return start_api(live_app, store, settings)


def fetch(api: Api, method: str, path: str, params: dict[str, str] | None = None,
          body: bytes | None = None, accept: dict[str, str] = XML) -> requests.Response:
    headers = dict(accept)
    if body is not None:
        headers.update(XML_BODY)
    return api.session.request(method, api.base + path, params=params, data=body,
                               headers=headers)


def xml_of(response: requests.Response) -> ET.Element:
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/xml")
    assert response.content.startswith(DECL)
    return ET.fromstring(response.content)


def attributes_of(container: ET.Element, owner_href: str) -> dict[str, list[str]]:
    """§3.4: <attribute name> children, each with a <values> wrapper, then the owner's link."""
    children = list(container)
    assert children and children[-1].tag == "link", [c.tag for c in children]
    assert children[-1].attrib == {"href": owner_href, "rel": "self"}
    out: dict[str, list[str]] = {}
    for attribute in children[:-1]:
        assert attribute.tag == "attribute"
        assert set(attribute.attrib) == {"name"}
        values = attribute.find("values")
        assert values is not None, f"attribute {attribute.get('name')!r} without <values>"
        assert all(v.tag == "value" for v in values)
        out[attribute.get("name")] = [v.text or "" for v in values]
    assert list(out) == sorted(out), "the server sorts attribute names"
    return out


def check_full_user(user: ET.Element, base: str) -> dict[str, list[str]]:
    name = user.get("name")
    assert user.tag == "user"
    assert user.attrib == {"expand": "attributes", "name": name}
    assert [c.tag for c in user] == USER_CHILDREN
    assert user.find("link").attrib == {"href": f"{base}/user?username={quote_plus(name)}",
                                        "rel": "self"}
    password = user.find("password")
    assert [c.tag for c in password] == ["link"]  # never a <value> in a response
    assert password.find("link").attrib == {
        "href": f"{base}/user/password?username={quote_plus(name)}", "rel": "edit"}
    assert re.fullmatch(r"\d+:\S+", user.findtext("key"))
    for field in ("created-date", "updated-date"):
        assert XSD_DATETIME.match(user.findtext(field)), user.findtext(field)
    assert xml_millis(user.findtext("created-date")) <= xml_millis(user.findtext("updated-date"))
    expected = FIXTURE_USERS[name]
    assert user.findtext("active") == ("true" if expected.active else "false")
    assert user.findtext("first-name") == expected.first_name
    assert user.findtext("last-name") == expected.last_name
    assert user.findtext("display-name") == expected.display_name
    assert user.findtext("email") == expected.email
    return attributes_of(user.find("attributes"),
                         f"{base}/user/attribute?username={quote_plus(name)}")


def check_minimal(entity: ET.Element, base: str) -> None:
    name = entity.get("name")
    assert entity.attrib == {"name": name}  # no expand on minimal entities
    param = "username" if entity.tag == "user" else "groupname"
    assert [c.tag for c in entity] == ["link"]
    assert entity[0].attrib == {"href": f"{base}/{entity.tag}?{param}={quote_plus(name)}",
                                "rel": "self"}


def check_full_group(group: ET.Element, base: str) -> dict[str, list[str]]:
    name = group.get("name")
    assert group.tag == "group"
    assert group.attrib == {"expand": "attributes", "name": name}
    assert [c.tag for c in group] == GROUP_CHILDREN
    assert group.find("link").attrib == {"href": f"{base}/group?groupname={quote_plus(name)}",
                                         "rel": "self"}
    assert (group.findtext("description") or "") == FIXTURE_GROUPS[name].description
    assert group.findtext("type") == "GROUP"
    assert group.findtext("active") == "true"
    return attributes_of(group.find("attributes"),
                         f"{base}/group/attribute?groupname={quote_plus(name)}")


# --- users -------------------------------------------------------------------------------------

ALICE_ATTRS = {"department": ["Engineering"]}

# (method, path, params, body, where the users are, expected attributes of alice if listed)
FULL_USER_SOURCES = {
    "user-expanded": ("GET", "/user", {"username": "ALICE", "expand": "attributes"}, None,
                      ".", ALICE_ATTRS),
    "user-plain": ("GET", "/user", {"username": "alice"}, None, ".", {}),
    "inactive-user": ("GET", "/user", {"username": "carol"}, None, ".", None),
    "escaped-name": ("GET", "/user", {"username": "dave<&>\"'"}, None, ".", None),
    "authentication": ("POST", "/authentication", {"username": "alice"}, ALICE_PASSWORD, ".",
                       {}),
    "search-expand-user": ("POST", "/search",
                           {"entity-type": "user", "expand": "user", "max-results": "-1"},
                           NULL, "user", {}),
    "search-expand-attributes": ("POST", "/search", {"entity-type": "user",
                                 "expand": "user,attributes", "max-results": "-1"},
                                 NULL, "user", ALICE_ATTRS),
    "cql-expand-user": ("GET", "/search", {"entity-type": "user", "expand": "user",
                        "restriction": 'email = "alice@example.com"'}, None, "user", {}),
    "group-members-expand": ("GET", "/group/user/direct",
                             {"groupname": "backend", "expand": "user"}, None, "user", None),
    "nested-members-expand": ("GET", "/group/user/nested", {"groupname": "bitbucket-users",
                              "expand": ["user", "attributes"]}, None, "user", ALICE_ATTRS),
    "membership-check": ("GET", "/group/user/direct",
                         {"groupname": "cycle-c", "username": "Alice"}, None, ".", {}),
}


@pytest.mark.parametrize("source", FULL_USER_SOURCES)
def test_full_user_xml(api: Api, source: str) -> None:
    method, path, params, body, where, alice_attrs = FULL_USER_SOURCES[source]
    root = xml_of(fetch(api, method, path, params, body))
    users = [root] if where == "." else root.findall(where)
    assert users
    for user in users:
        attrs = check_full_user(user, api.base)
        if user.get("name") == "alice" and alice_attrs is not None:
            assert attrs == alice_attrs


@pytest.mark.parametrize(
    "path, params, body, expected",
    [
        ("/group/user/direct", {"groupname": "backend"}, None, ["Bob", "José.Müller"]),
        ("/group/user/nested", {"groupname": "engineering"}, None,
         ["Bob", "carol", "dave<&>\"'", "José.Müller"]),
        ("/search", {"entity-type": "user", "max-results": "-1"}, NULL,
         ["alice", "Bob", "carol", "dave<&>\"'", "José.Müller"]),
        ("/search", {"entity-type": "USER", "restriction": "name = c*"}, None, ["carol"]),
    ],
)
def test_users_list_of_minimal_users(api: Api, path: str, params: dict[str, str],
                                     body: bytes | None, expected: list[str]) -> None:
    root = xml_of(fetch(api, "POST" if body else "GET", path, params, body))
    assert root.tag == "users"
    assert root.attrib == {"expand": "user"}
    for user in root:
        assert user.tag == "user"
        check_minimal(user, api.base)
    assert [u.get("name") for u in root] == expected


@pytest.mark.parametrize(
    "method, path, params, body",
    [
        ("GET", "/group/user/direct", {"groupname": "empty"}, None),
        ("GET", "/group/user/nested", {"groupname": "empty", "expand": "user"}, None),
        ("POST", "/search", {"entity-type": "user", "max-results": "1", "expand": "user"},
         b"<property-search-restriction><property><name>name</name><type>STRING</type>"
         b"</property><match-mode>NULL</match-mode></property-search-restriction>"),
    ],
)
def test_empty_users_list(api: Api, method: str, path: str, params: dict[str, str],
                          body: bytes | None) -> None:
    # §3.2: <users expand="user"/> — no children, no text.
    root = xml_of(fetch(api, method, path, params, body))
    assert root.tag == "users" and root.attrib == {"expand": "user"}
    assert len(root) == 0 and not (root.text or "").strip()


def test_user_attributes_resource(api: Api) -> None:
    root = xml_of(fetch(api, "GET", "/user/attribute", {"username": "alice"}))
    assert root.tag == "attributes"
    assert attributes_of(root, f"{api.base}/user/attribute?username=alice") == ALICE_ATTRS


# --- groups ------------------------------------------------------------------------------------

ENGINEERING_ATTRS = {"cost-centre": ["42", "43"]}  # values keep their source order

FULL_GROUP_SOURCES = {
    "group-expanded": ("GET", "/group", {"groupname": "Engineering", "expand": "attributes"},
                       None, ".", ENGINEERING_ATTRS),
    "group-plain": ("GET", "/group", {"groupname": "engineering"}, None, ".", {}),
    "no-description": ("GET", "/group", {"groupname": "backend"}, None, ".", None),
    "search-expand-group": ("POST", "/search",
                            {"entity-type": "group", "expand": "group", "max-results": "-1"},
                            NULL, "group", {}),
    "search-expand-attributes": ("POST", "/search", {"entity-type": "group",
                                 "expand": "group,attributes", "max-results": "-1"},
                                 NULL, "group", ENGINEERING_ATTRS),
    "user-groups-expand": ("GET", "/user/group/nested", {"username": "dave<&>\"'",
                           "expand": "group,attributes"}, None, "group", ENGINEERING_ATTRS),
    "child-groups-expand": ("GET", "/group/child-group/direct",
                            {"groupname": "bitbucket-users", "expand": "group"}, None, "group",
                            {}),
    "parent-groups-expand": ("GET", "/group/parent-group/nested",
                             {"groupname": "frontend", "expand": "group"}, None, "group", {}),
    "membership-check": ("GET", "/user/group/direct",
                         {"username": "dave<&>\"'", "groupname": "ENGINEERING"}, None, ".", {}),
}


@pytest.mark.parametrize("source", FULL_GROUP_SOURCES)
def test_full_group_xml(api: Api, source: str) -> None:
    method, path, params, body, where, engineering_attrs = FULL_GROUP_SOURCES[source]
    root = xml_of(fetch(api, method, path, params, body))
    groups = [root] if where == "." else root.findall(where)
    assert groups
    if where != ".":
        assert root.tag == "groups" and root.attrib == {"expand": "group"}
    for group in groups:
        attrs = check_full_group(group, api.base)
        if group.get("name") == "engineering" and engineering_attrs is not None:
            assert attrs == engineering_attrs


@pytest.mark.parametrize(
    "path, params, expected",
    [
        ("/user/group/direct", {"username": "alice"}, ["bitbucket-administrators", "cycle-c"]),
        ("/group/child-group/nested", {"groupname": "cycle-a"}, ["cycle-b", "cycle-c"]),
        ("/group/parent-group/direct", {"groupname": "engineering"}, ["bitbucket-users"]),
        ("/search", {"entity-type": "group", "restriction": "name = cycle*"},
         ["cycle-a", "cycle-b", "cycle-c"]),
        ("/group/child-group/direct", {"groupname": "empty"}, []),
        ("/user/group/nested", {"username": "José.Müller", "expand": "group",
                                "start-index": "5"}, []),
    ],
)
def test_groups_list_of_minimal_groups(api: Api, path: str, params: dict[str, str],
                                       expected: list[str]) -> None:
    root = xml_of(fetch(api, "GET", path, params))
    assert root.tag == "groups" and root.attrib == {"expand": "group"}
    if not expected:
        assert len(root) == 0 and not (root.text or "").strip()
    for group in root:
        assert group.tag == "group"
        check_minimal(group, api.base)
    assert [g.get("name") for g in root] == expected


def test_memberships_shape(api: Api) -> None:
    root = xml_of(fetch(api, "GET", "/group/membership"))
    assert root.tag == "memberships" and root.attrib == {}
    assert len(root) == len(FIXTURE_GROUPS)
    for membership in root:
        assert membership.tag == "membership"
        assert set(membership.attrib) == {"group"}
        # python-crowd calls .find("users").findall(...): both wrappers always present.
        assert [c.tag for c in membership] == ["users", "groups"]
        users, groups = membership
        assert all(u.tag == "user" and set(u.attrib) == {"name"} for u in users)
        assert all(g.tag == "group" and set(g.attrib) == {"name"} for g in groups)
    engineering = root.find("membership[@group='engineering']")
    assert [u.get("name") for u in engineering.find("users")] == ["dave<&>\"'"]
    assert sorted(g.get("name") for g in engineering.find("groups")) == ["backend", "frontend"]


def test_cookie_config_shape(api: Api) -> None:
    root = xml_of(fetch(api, "GET", "/config/cookie"))
    assert root.tag == "cookie-config"
    assert [c.tag for c in root] == ["secure", "name"]  # <domain> first, and only when set
    assert (root.findtext("secure"), root.findtext("name")) == ("false", "crowd.token_key")
    assert fetch(api, "GET", "/config/cookie", accept=JSON).json() == {
        "secure": False, "name": "crowd.token_key"}


# --- errors ------------------------------------------------------------------------------------

# (method, path, params, body, status, reason, message; None = only "non-empty")
ERRORS = {
    "user-not-found": ("GET", "/user", {"username": "nobody"}, None, 404, "USER_NOT_FOUND",
                       "User <nobody> does not exist"),
    "markup-in-name": ("GET", "/user", {"username": "a&b<c>"}, None, 404, "USER_NOT_FOUND",
                       "User <a&b<c>> does not exist"),
    "invalid-xml-char": ("GET", "/group", {"groupname": "x\x01y"}, None, 404, "GROUP_NOT_FOUND",
                         "Group <xy> does not exist"),
    "membership": ("GET", "/group/user/direct", {"groupname": "backend", "username": "ALICE"},
                   None, 404, "MEMBERSHIP_NOT_FOUND",
                   "The child entity <alice> is not a member of the parent <backend>"),
    "bad-password": ("POST", "/authentication", {"username": "Alice"},
                     b"<password><value>nope</value></password>", 400,
                     "INVALID_USER_AUTHENTICATION",
                     "Account with name <alice> failed to authenticate"),
    "inactive": ("POST", "/authentication", {"username": "carol"},
                 b"<password><value>carol-pw-3</value></password>", 400, "INACTIVE_ACCOUNT",
                 "Account with name <carol> is inactive"),
    "missing-param": ("GET", "/group", {}, None, 400, "ILLEGAL_ARGUMENT",
                      "groupname query parameter required."),
    "unknown-entity-type": ("GET", "/search", {"entity-type": "role"}, None, 400,
                            "ILLEGAL_ARGUMENT", "Unknown type: role"),
    "read-only": ("DELETE", "/group", {"groupname": "backend"}, None, 403,
                  "APPLICATION_PERMISSION_DENIED", None),
    "no-route": ("GET", "/session", {}, None, 404, "UNSUPPORTED_OPERATION", None),
    "token-expired": ("GET", "/event/0:1", {}, None, 410, "EVENT_TOKEN_EXPIRED", None),
    "wrong-method": ("PATCH", "/user", {"username": "alice"}, None, 405,
                     "UNSUPPORTED_OPERATION", None),
}


@pytest.mark.parametrize("case", ERRORS)
def test_error_entity_xml(api: Api, case: str) -> None:
    method, path, params, body, status, reason, message = ERRORS[case]
    r = fetch(api, method, path, params, body)
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith("application/xml")
    assert r.content.startswith(DECL)
    root = ET.fromstring(r.content)
    assert root.tag == "error" and root.attrib == {}
    assert [c.tag for c in root] == ["reason", "message"]  # reason first (§3.5)
    assert root.findtext("reason") == reason
    if message is None:
        assert root.findtext("message")
    else:
        assert root.findtext("message") == message


# Crowd strips XML-invalid characters from the message itself, so JSON drops them too.
JSON_MESSAGES: dict[str, str] = {}


@pytest.mark.parametrize("case", ERRORS)
def test_error_entity_json(api: Api, case: str) -> None:
    method, path, params, body, status, reason, message = ERRORS[case]
    r = fetch(api, method, path, params, body, accept=JSON)
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith("application/json")
    error = r.json()
    assert set(error) == {"reason", "message"} and error["reason"] == reason
    assert error["message"]
    if message is not None:
        assert error["message"] == JSON_MESSAGES.get(case, message)


def test_error_message_markup_is_escaped_not_dropped(api: Api) -> None:
    r = fetch(api, "GET", "/user", {"username": "a&b<c>"})
    assert b"<message>User &lt;a&amp;b&lt;c&gt;&gt; does not exist</message>" in r.content


# --- JSON forms (§3.1-3.5) ---------------------------------------------------------------------

FULL_USER_KEYS = {"expand", "link", "name", "first-name", "last-name", "display-name", "email",
                  "password", "key", "created-date", "updated-date", "active", "attributes"}
FULL_GROUP_KEYS = {"expand", "link", "name", "description", "type", "active", "attributes"}


def xml_millis(text: str) -> int:
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(
        milliseconds=1)


def test_full_user_json(api: Api) -> None:
    params = {"username": "alice", "expand": "attributes"}
    user = fetch(api, "GET", "/user", params, accept=JSON).json()
    assert set(user) == FULL_USER_KEYS
    assert user["expand"] == "attributes"
    assert user["link"] == {"href": f"{api.base}/user?username=alice", "rel": "self"}
    assert user["password"] == {
        "link": {"href": f"{api.base}/user/password?username=alice", "rel": "edit"}}
    assert user["attributes"] == {
        "attributes": [{"name": "department", "values": ["Engineering"]}],
        "link": {"href": f"{api.base}/user/attribute?username=alice", "rel": "self"},
    }
    assert user["active"] is True
    # Same entity as the XML one, field for field; dates as epoch milliseconds (§3, [M]).
    xml_user = xml_of(fetch(api, "GET", "/user", params))
    for field in ("first-name", "last-name", "display-name", "email", "key"):
        assert user[field] == xml_user.findtext(field)
    for field in ("created-date", "updated-date"):
        assert isinstance(user[field], int) and not isinstance(user[field], bool)
        # Within 1 ms: see test_epoch_millis for the float-rounding off-by-one.
        assert abs(user[field] - xml_millis(xml_user.findtext(field))) <= 1


def test_user_and_group_lists_json(api: Api) -> None:
    minimal = fetch(api, "GET", "/group/user/direct", {"groupname": "backend"}, accept=JSON)
    assert minimal.json() == {"expand": "user", "users": [
        {"link": {"href": f"{api.base}/user?username=Bob", "rel": "self"}, "name": "Bob"},
        {"link": {"href": f"{api.base}/user?username={quote_plus('José.Müller')}",
                  "rel": "self"}, "name": "José.Müller"},
    ]}
    full = fetch(api, "GET", "/group/user/direct", {"groupname": "backend", "expand": "user"},
                 accept=JSON).json()
    assert set(full) == {"expand", "users"} and full["expand"] == "user"
    assert [set(u) for u in full["users"]] == [FULL_USER_KEYS, FULL_USER_KEYS]
    empty = fetch(api, "GET", "/group/user/direct", {"groupname": "empty"}, accept=JSON)
    assert empty.json() == {"expand": "user", "users": []}

    groups = fetch(api, "GET", "/user/group/direct", {"username": "alice"}, accept=JSON).json()
    assert groups == {"expand": "group", "groups": [
        {"link": {"href": f"{api.base}/group?groupname=bitbucket-administrators",
                  "rel": "self"}, "name": "bitbucket-administrators"},
        {"link": {"href": f"{api.base}/group?groupname=cycle-c", "rel": "self"},
         "name": "cycle-c"},
    ]}
    empty_groups = fetch(api, "GET", "/group/child-group/direct", {"groupname": "empty"},
                         accept=JSON).json()
    assert empty_groups == {"expand": "group", "groups": []}


def test_full_group_json(api: Api) -> None:
    group = fetch(api, "GET", "/group", {"groupname": "engineering", "expand": "attributes"},
                  accept=JSON).json()
    assert group == {
        "expand": "attributes",
        "link": {"href": f"{api.base}/group?groupname=engineering", "rel": "self"},
        "name": "engineering",
        "description": "Engineering",
        "type": "GROUP",
        "active": True,
        "attributes": {
            "attributes": [{"name": "cost-centre", "values": ["42", "43"]}],
            "link": {"href": f"{api.base}/group/attribute?groupname=engineering", "rel": "self"},
        },
    }
    listed = fetch(api, "POST", "/search", {"entity-type": "group", "expand": "group"}, NULL,
                   accept=JSON).json()
    assert listed["expand"] == "group"
    assert [set(g) for g in listed["groups"]] == [FULL_GROUP_KEYS] * len(FIXTURE_GROUPS)
    assert {g["type"] for g in listed["groups"]} == {"GROUP"}


# --- transport: version header and caching -----------------------------------------------------


def test_version_header_on_every_status(api: Api, store, settings) -> None:  # type: ignore[no-untyped-def]
    add_app(store, "elsewhere", "elsewhere-password-1", networks=("192.0.2.0/24",))
    anonymous = requests.Session()
    cases: dict[str, tuple[int, requests.Response]] = {
        "ok": (200, fetch(api, "GET", "/user", {"username": "alice"})),
        "options": (200, api.session.options(api.base + "/user")),
        "bad-request": (400, fetch(api, "GET", "/user")),
        "no-credentials": (401, anonymous.get(api.base + "/user?username=alice")),
        "wrong-password": (401, anonymous.get(api.base + "/user?username=alice",
                                              auth=(APP_NAME, "wrong"))),
        "read-only": (403, fetch(api, "POST", "/user", body=b'<user name="x"/>')),
        "address-denied": (403, anonymous.get(api.base + "/user?username=alice",
                                              auth=("elsewhere", "elsewhere-password-1"))),
        "not-found": (404, fetch(api, "GET", "/group", {"groupname": "nobody"})),
        "no-route": (404, fetch(api, "GET", "/session")),
        "token-expired": (410, fetch(api, "GET", "/event/0:1")),
        "outside-api": (404, api.session.get(api.url + "/rest/admin/1.0/server-info")),
        "method": (405, fetch(api, "PUT", "/search", {"entity-type": "user"}, NULL)),
        "too-large": (413, fetch(api, "POST", "/search", {"entity-type": "user"},
                                 b"<a>" + b"x" * (settings.server_max_body_bytes + 1) + b"</a>")),
    }
    for case, (status, response) in cases.items():
        assert response.status_code == status, (case, response.status_code, response.text)
        version = response.headers.get("X-Embedded-Crowd-Version")
        assert version == settings.server_version_header, case
    assert VERSION_HEADER.match(settings.server_version_header)


def test_version_header_on_throttled_429(store, database_url, live_app) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(environ={}, overrides={
        "database_url": database_url, "auth.failure_limit": 1, "auth.failure_window_seconds": 60,
        "server.version_header": "JIRA/9.12.4"})
    add_app(store)
    server = live_app(create_app(settings, store=store))
    url = server.url + "/rest/usermanagement/1/user?username=alice"
    assert requests.get(url, auth=(APP_NAME, "guess")).status_code == 401
    r = requests.get(url, auth=(APP_NAME, APP_PASSWORD), headers=XML)
    assert r.status_code == 429
    assert r.headers["X-Embedded-Crowd-Version"] == "JIRA/9.12.4"  # the configured value
    assert ET.fromstring(r.content).findtext("reason") == "APPLICATION_ACCESS_DENIED"


READS: list[tuple[str, str, dict[str, Any], bytes | None]] = [
    ("GET", "/user", {"username": "alice"}, None),
    ("GET", "/user", {"username": "alice", "expand": "attributes"}, None),
    ("GET", "/user/attribute", {"username": "alice"}, None),
    ("GET", "/user/group/direct", {"username": "alice"}, None),
    ("GET", "/user/group/nested", {"username": "alice"}, None),
    ("GET", "/group", {"groupname": "engineering"}, None),
    ("GET", "/group/attribute", {"groupname": "engineering"}, None),
    ("GET", "/group/user/direct", {"groupname": "backend"}, None),
    ("GET", "/group/user/direct", {"groupname": "backend", "username": "Bob"}, None),
    ("GET", "/group/user/nested", {"groupname": "engineering"}, None),
    ("GET", "/group/child-group/direct", {"groupname": "engineering"}, None),
    ("GET", "/group/child-group/nested", {"groupname": "engineering"}, None),
    ("GET", "/group/parent-group/direct", {"groupname": "backend"}, None),
    ("GET", "/group/parent-group/nested", {"groupname": "backend"}, None),
    ("GET", "/group/membership", {}, None),
    ("GET", "/search", {"entity-type": "user"}, None),
    ("POST", "/search", {"entity-type": "group", "max-results": "-1"}, NULL),
    ("GET", "/config/cookie", {}, None),
]


@pytest.mark.parametrize("accept", [XML, JSON], ids=["xml", "json"])
def test_reads_are_not_cacheable(api: Api, accept: dict[str, str]) -> None:
    # The Java client runs an HTTP cache (§1.1): nothing it reads may be served stale.
    # One server for the whole table: starting one per row would only add setup time.
    for method, path, params, body in READS:
        r = fetch(api, method, path, params, body, accept=accept)
        assert r.status_code == 200, (path, params, r.text)
        directives = {d.strip() for d in r.headers.get("Cache-Control", "").split(",")}
        assert {"no-cache", "no-store"} <= directives, (path, r.headers.get("Cache-Control"))


# --- pure formatting (dirsync.crowd.render) ----------------------------------------------------

UTC = dt.timezone.utc


@pytest.mark.parametrize(
    "value, text",
    [
        (dt.datetime(2016, 2, 7, 15, 57, 30, tzinfo=UTC), "2016-02-07T15:57:30Z"),
        (dt.datetime(2017, 5, 22, 16, 39, 44, 90_000, tzinfo=UTC), "2017-05-22T16:39:44.090Z"),
        (dt.datetime(2017, 5, 22, 16, 39, 44, 999_999, tzinfo=UTC), "2017-05-22T16:39:44.999Z"),
        (dt.datetime(2017, 5, 23, 2, 39, 44, tzinfo=dt.timezone(dt.timedelta(hours=10))),
         "2017-05-22T16:39:44Z"),
        (dt.datetime(2017, 5, 22, 16, 39, 44), "2017-05-22T16:39:44Z"),  # naive = UTC (SQLite)
        pytest.param(
            dt.datetime(2017, 5, 22, 16, 39, 44, 400, tzinfo=UTC), "2017-05-22T16:39:44Z",
            id="sub-millisecond",  # a zero millisecond fraction is omitted, as JAXB does
        ),
    ],
)
def test_xml_datetime(value: dt.datetime, text: str) -> None:
    assert xml_datetime(value) == text
    assert XSD_DATETIME.match(xml_datetime(value))


@pytest.mark.parametrize(
    "value, millis",
    [
        (dt.datetime(1970, 1, 1, tzinfo=UTC), 0),
        (dt.datetime(2017, 5, 22, 16, 39, 44, 90_000, tzinfo=UTC), 1495471184090),
        (dt.datetime(2017, 5, 22, 16, 39, 44, 90_999, tzinfo=UTC), 1495471184090),
        (dt.datetime(2017, 5, 22, 16, 39, 44, 90_000), 1495471184090),  # naive = UTC
        pytest.param(
            # 1091646106.133 * 1000 in floating point is ...132.9999: integer arithmetic only.
            dt.datetime(2004, 8, 4, 19, 1, 46, 133_000, tzinfo=UTC), 1091646106133,
            id="float-rounding",
        ),
    ],
)
def test_epoch_millis(value: dt.datetime, millis: int) -> None:
    assert epoch_millis(value) == millis

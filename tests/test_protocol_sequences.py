"""The Java client's request sequences (crowd-protocol §4), replayed byte for byte over a socket.

`JavaClient` sends what `RestCrowdClient`/`RestExecutor` 5.1.6 put on the wire: URLs built with
`String.format` from `URLEncoder`-encoded query arguments (space as `+`, `@` as `%40`, `*`
kept), preemptive Basic auth, `Accept: application/xml` + `X-Atlassian-Token: no-check` on
calls that read a body, NO Accept/X-Atlassian-Token on membership-existence checks
(`doesExist`), and JAXB bodies with the standalone declaration in `application/xml;
charset=UTF-8`. Responses are judged the way the client judges them (§1.2): the version header
first, then the status, then the XML entity of the expected type.

`crowd2=True` gives the Crowd 2.x client (commons-httpclient 3): no X-Atlassian-Token, and no
"ignore the error entity on 404" mechanism, so every 404 must carry a parseable `<error>`.

The directory is `org()` plus a user and a group whose names need encoding (space, `@`,
non-ASCII), so that the Java encoding is really exercised.
"""

from __future__ import annotations

import base64
import string
import xml.etree.ElementTree as ET
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests
from factories import APP_NAME, APP_PASSWORD, add_app, org, seed, start_api

from dirsync.model import Group, Snapshot, User
from dirsync.names import name_key

DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
NULL_RESTRICTION = "<null-search-restriction/>"
# §4.1: the "Test settings" probe body, exactly as JAXB marshals it.
NAME_IS_NULL = (
    "<property-search-restriction><property><name>name</name><type>STRING</type></property>"
    "<match-mode>NULL</match-mode></property-search-restriction>"
)
# The reasons the 5.1.6 client can unmarshal (§1.3); anything else degrades to a generic failure.
CLIENT_REASONS = frozenset(
    "APPLICATION_ACCESS_DENIED APPLICATION_PERMISSION_DENIED EXPIRED_CREDENTIAL GROUP_NOT_FOUND "
    "ILLEGAL_ARGUMENT INACTIVE_ACCOUNT INVALID_USER_AUTHENTICATION INVALID_CREDENTIAL "
    "INVALID_EMAIL INVALID_GROUP INVALID_SSO_TOKEN INVALID_USER MEMBERSHIP_NOT_FOUND "
    "MEMBERSHIP_ALREADY_EXISTS NESTED_GROUPS_NOT_SUPPORTED APPLICATION_NOT_FOUND "
    "UNSUPPORTED_OPERATION USER_NOT_FOUND OPERATION_FAILED EVENT_TOKEN_EXPIRED "
    "INCREMENTAL_SYNC_NOT_AVAILABLE WEBHOOK_NOT_FOUND PERMISSION_DENIED INVALID_MEMBERSHIP".split()
)

EVE = "Eve Smith@corp.example"
EVE_PASSWORD = 'pä&<ss wörd "1"'
TEAM = "Team Space"


# --- the Java client ---------------------------------------------------------------------------

_URLENCODER_SAFE = frozenset(string.ascii_letters + string.digits + ".-*_")


def java_query(value: str) -> str:
    """`java.net.URLEncoder.encode(value, "utf-8")`: space -> `+`, `.-*_` kept, rest %XX."""
    out = []
    for char in value:
        if char in _URLENCODER_SAFE:
            out.append(char)
        elif char == " ":
            out.append("+")
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def java_path(value: str) -> str:
    """Path arguments (event and session tokens): URLEncoder, then `+` -> `%20` (§1.1)."""
    return java_query(value).replace("+", "%20")


class PathArg(str):
    """An argument that goes into the URL path (event/session token), not the query."""


class JavaClient:
    """Requests shaped like RestExecutor's; records `METHOD path?query` of every call sent."""

    def __init__(self, base: str, app: str = APP_NAME, password: str = APP_PASSWORD,
                 *, crowd2: bool = False) -> None:
        self.base = base
        # HttpClient's BasicScheme encodes credentials as ISO-8859-1.
        token = base64.b64encode(f"{app}:{password}".encode("latin-1")).decode("ascii")
        self.authorization = f"Basic {token}"
        self.crowd2 = crowd2
        self.http = requests.Session()
        self.sent: list[str] = []

    def headers(self, *, receive: bool, body: bool) -> dict[str, str]:
        if self.crowd2:
            headers = {"User-Agent": "Jakarta Commons-HttpClient/3.1"}
        else:
            # Apache HttpClient 4 adds these two itself on every request.
            headers = {"User-Agent": "Apache-HttpClient/4.5.14 (Java/17.0.9)",
                       "Accept-Encoding": "gzip,deflate"}
        headers["Authorization"] = self.authorization  # preemptive, from the auth cache
        if receive:
            headers["Accept"] = "application/xml"
            if not self.crowd2:
                headers["X-Atlassian-Token"] = "no-check"
        if body:
            headers["Content-Type"] = "application/xml; charset=UTF-8"
        return headers

    def call(self, method: str, template: str, *args: Any, body: str | None = None,
             receive: bool = True) -> requests.Response:
        """`template % args` like String.format; string arguments encoded as RestExecutor does."""
        path = template % tuple(
            java_path(a) if isinstance(a, PathArg) else java_query(a) if isinstance(a, str) else a
            for a in args
        )
        data = None if body is None else (DECL + body).encode("utf-8")
        prepared = requests.Request(
            method, self.base + path, headers=self.headers(receive=receive, body=body is not None),
            data=data,
        ).prepare()
        prepared.url = self.base + path  # byte-exact: no re-quoting by requests
        if not receive:
            assert "Accept" not in prepared.headers and "X-Atlassian-Token" not in prepared.headers
        self.sent.append(f"{method} {path}")
        return self.http.send(prepared, allow_redirects=False, timeout=30)

    def exists(self, template: str, *args: Any) -> bool:
        """`doesExist`: 2xx -> true, 404 -> false, anything else is an error (§1.2 item 5)."""
        response = self.call("GET", template, *args, receive=False)
        assert response.headers.get("X-Embedded-Crowd-Version"), "no version header"
        if response.status_code == 404:
            error_entity(response)  # old clients need the body even here
            return False
        assert 200 <= response.status_code < 300, (response.status_code, response.text)
        return True


def receive(response: requests.Response, root_tag: str) -> ET.Element:
    """What `andReceive` accepts: version header, 2xx, a UTF-8 XML document of the type."""
    assert response.headers.get("X-Embedded-Crowd-Version"), "no X-Embedded-Crowd-Version header"
    assert 200 <= response.status_code < 300, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/xml")
    assert response.content.startswith(DECL.encode())
    root = ET.fromstring(response.content)
    assert root.tag == root_tag, root.tag
    return root


def error_entity(response: requests.Response) -> tuple[int, str, str]:
    """A non-2xx answer as the client unmarshals it: `<error><reason/><message/></error>`."""
    assert response.headers.get("X-Embedded-Crowd-Version"), "no X-Embedded-Crowd-Version header"
    assert response.status_code >= 300
    assert response.headers["Content-Type"].startswith("application/xml"), response.text
    root = ET.fromstring(response.content)
    assert root.tag == "error"
    assert [child.tag for child in root] == ["reason", "message"]
    reason = root.findtext("reason")
    assert reason in CLIENT_REASONS, reason
    return response.status_code, reason, root.findtext("message") or ""


def names(root: ET.Element, tag: str) -> list[str]:
    return [e.get("name") for e in root.findall(tag)]


# --- the directory -----------------------------------------------------------------------------


def directory() -> Snapshot:
    """org() plus names the Java encoding changes: a space, an `@`, non-ASCII in a password."""
    snap = org()
    snap.users.append(User(EVE, "Eve", "Smith", "Eve Smith", "eve@corp.example",
                           password=EVE_PASSWORD, attributes={"site": ("Zürich", "Basel")}))
    snap.groups.append(Group(TEAM, "A name with a space",
                             attributes={"wiki": ("https://wiki.example/?a=1&b=2",)}))
    snap.user_memberships |= {(name_key(TEAM), name_key(EVE)), (name_key(TEAM), name_key("alice"))}
    snap.group_memberships.add((name_key(TEAM), name_key("backend")))
    return snap


def direct_memberships(snap: Snapshot) -> dict[str, tuple[set[str], set[str]]]:
    """group name -> (direct user members, direct child groups), canonical names."""
    user_names = {name_key(u.name): u.name for u in snap.users}
    group_names = {name_key(g.name): g.name for g in snap.groups}
    out: dict[str, tuple[set[str], set[str]]] = {g.name: (set(), set()) for g in snap.groups}
    for group, user in snap.user_memberships:
        out[group_names[group]][0].add(user_names[user])
    for parent, child in snap.group_memberships:
        out[group_names[parent]][1].add(group_names[child])
    return out


def direct_groups_of(snap: Snapshot, user: str) -> set[str]:
    return {g for g, (members, _) in direct_memberships(snap).items() if user in members}


SNAP = directory()


@pytest.fixture
def crowd(store, settings, live_app) -> JavaClient:  # type: ignore[no-untyped-def]
    seed(store, directory())
    add_app(store)
    return JavaClient(start_api(live_app, store, settings).base)


@pytest.fixture
def crowd2(crowd: JavaClient) -> JavaClient:
    return JavaClient(crowd.base, crowd2=True)


def test_java_urlencoder_spelling() -> None:
    # The helper is the contract of every other test here; pin it to what Java produces.
    assert java_query(EVE) == "Eve+Smith%40corp.example"
    assert java_query("José.Müller") == "Jos%C3%A9.M%C3%BCller"
    assert java_query("dave<&>\"'") == "dave%3C%26%3E%22%27"
    assert java_query("a*b~c/d") == "a*b%7Ec%2Fd"
    assert java_path("8047511070899496297:12 x") == "8047511070899496297%3A12%20x"


# --- §4.1 Test settings ------------------------------------------------------------------------


def test_test_settings_probe(crowd: JavaClient) -> None:
    r = crowd.call("POST", "/search?entity-type=user&start-index=%d&max-results=%d&expand=user",
                   0, 1, body=NAME_IS_NULL)
    users = receive(r, "users")
    # "name is null" matches nothing; the client only needs a parseable <users>.
    assert users.findall("user") == []
    assert crowd.sent == [
        "POST /search?entity-type=user&start-index=0&max-results=1&expand=user"
    ]


# --- §4.2 full synchronisation -----------------------------------------------------------------


def event_token(response: requests.Response) -> str:
    """§3.8: the 5.x client needs incrementalSynchronisationAvailable="true", or it never
    synchronises incrementally; the token itself is opaque to it."""
    events = receive(response, "events")
    assert events.get("incrementalSynchronisationAvailable") == "true"
    assert list(events) == []
    token = events.get("newEventToken")
    assert token
    return token


def full_sync(crowd: JavaClient, attribute_sync: bool = False) -> dict[str, Any]:
    """§4.2 steps 1-5, in order, as the 5.x client runs them."""
    first_token = event_token(crowd.call("GET", "/event"))
    user_expand = "user,attributes" if attribute_sync else "user"
    group_expand = "group,attributes" if attribute_sync else "group"
    users = receive(crowd.call(
        "POST", "/search?entity-type=user&start-index=%d&max-results=%d&expand=" + user_expand,
        0, -1, body=NULL_RESTRICTION), "users")
    groups = receive(crowd.call(
        "POST", "/search?entity-type=group&start-index=%d&max-results=%d&expand=" + group_expand,
        0, -1, body=NULL_RESTRICTION), "groups")
    dump = receive(crowd.call("GET", "/group/membership"), "memberships")
    token = event_token(crowd.call("GET", "/event"))
    assert token == first_token  # nothing changed in between
    assert crowd.sent == [
        "GET /event",
        f"POST /search?entity-type=user&start-index=0&max-results=-1&expand={user_expand}",
        f"POST /search?entity-type=group&start-index=0&max-results=-1&expand={group_expand}",
        "GET /group/membership",
        "GET /event",
    ]
    return {"users": users, "groups": groups, "memberships": dump, "token": token}


def dump_as_dict(dump: ET.Element) -> dict[str, tuple[set[str], set[str]]]:
    out: dict[str, tuple[set[str], set[str]]] = {}
    for membership in dump.findall("membership"):
        group = membership.get("group")
        assert group not in out, f"group {group!r} listed twice in /group/membership"
        out[group] = (set(names(membership, "users/user")), set(names(membership, "groups/group")))
    return out


@pytest.mark.parametrize("attribute_sync", [False, True], ids=["default", "attribute-sync"])
def test_full_synchronisation(crowd: JavaClient, attribute_sync: bool) -> None:
    result = full_sync(crowd, attribute_sync)
    user_names = names(result["users"], "user")
    group_names = names(result["groups"], "group")

    # Everything in the directory, in its canonical case.
    assert sorted(user_names) == sorted(u.name for u in SNAP.users)
    assert sorted(group_names) == sorted(g.name for g in SNAP.groups)
    # Names unique ignoring case: the client drops colliding groups and mixes up users (§10.12).
    assert len({n.casefold() for n in user_names}) == len(user_names)
    assert len({n.casefold() for n in group_names}) == len(group_names)

    # Full entities: the fields the client copies into its cache, never missing.
    by_name = {u.name: u for u in SNAP.users}
    keys = set()
    for user in result["users"].findall("user"):
        expected = by_name[user.get("name")]
        assert user.findtext("active") == ("true" if expected.active else "false")
        assert user.findtext("email") == expected.email
        assert user.findtext("display-name") == expected.display_name
        keys.add(user.findtext("key"))
        for attribute in user.findall("attributes/attribute"):
            assert attribute.find("values") is not None  # §10.7
        got = {a.get("name"): tuple(v.text for v in a.findall("values/value"))
               for a in user.findall("attributes/attribute")}
        assert got == (dict(expected.attributes) if attribute_sync else {})
    assert len(keys) == len(user_names) and None not in keys
    for group in result["groups"].findall("group"):
        assert group.findtext("type") == "GROUP"  # §10.8
        assert group.findtext("active") == "true"

    # The membership dump, checked as DbCachingRemoteDirectory uses it.
    dump = dump_as_dict(result["memberships"])
    assert set(dump) == set(group_names)  # every searched group listed, nothing unexpected
    for group, (members, children) in dump.items():
        assert members <= set(user_names), (group, members - set(user_names))
        assert children <= set(group_names), (group, children - set(group_names))
    assert dump == direct_memberships(SNAP)


def test_fallback_membership_path_matches_the_dump(crowd: JavaClient) -> None:
    # §4.2 step 4 when /group/membership is 404 (and nested groups on), with §10.2's expand=group.
    dump = dump_as_dict(receive(crowd.call("GET", "/group/membership"), "memberships"))
    crowd.sent.clear()
    groups = receive(crowd.call(
        "POST", "/search?entity-type=group&start-index=%d&max-results=%d&expand=group",
        0, -1, body=NULL_RESTRICTION), "groups")
    fallback: dict[str, tuple[set[str], set[str]]] = {}
    for name in names(groups, "group"):
        users = receive(crowd.call(
            "GET", "/group/user/direct?groupname=%s&start-index=%d&max-results=%d", name, 0, -1),
            "users")
        children = receive(crowd.call(
            "GET", "/group/child-group/direct?groupname=%s&start-index=%d&max-results=%d",
            name, 0, -1), "groups")
        # Without expand the lists are minimal: a name and a self link, nothing else.
        for entity in [*users, *children]:
            assert [c.tag for c in entity] == ["link"]
        fallback[name] = (set(names(users, "user")), set(names(children, "group")))
    assert fallback == dump
    assert fallback[TEAM] == ({EVE, "alice"}, {"backend"})
    assert "GET /group/user/direct?groupname=Team+Space&start-index=0&max-results=-1" in crowd.sent


def test_fallback_tolerates_a_group_deleted_mid_sync(crowd: JavaClient) -> None:
    # A group gone between the search and its member fetch is GROUP_NOT_FOUND, which the
    # client turns into an empty membership; any other failure would abort the sync.
    r = crowd.call("GET", "/group/user/direct?groupname=%s&start-index=%d&max-results=%d",
                   "deleted meanwhile", 0, -1)
    assert error_entity(r)[:2] == (404, "GROUP_NOT_FOUND")


# --- §4.4 login --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed, password, canonical",
    [
        ("ALICE", "alice-pw-1", "alice"),
        ("bob", "bob-pw-2", "Bob"),
        ("eve smith@CORP.example", EVE_PASSWORD, EVE),
    ],
)
def test_login_sequence(crowd: JavaClient, typed: str, password: str, canonical: str) -> None:
    body = f"<password><value>{escape(password)}</value></password>"
    user = receive(crowd.call("POST", "/authentication?username=%s", typed, body=body), "user")
    assert user.get("name") == canonical
    assert user.findtext("active") == "true"
    # §10.3: the groups are fetched for the name the server returned, not the typed one.
    name = user.get("name")
    groups = receive(crowd.call(
        "GET", "/user/group/direct?username=%s&start-index=%d&max-results=%d", name, 0, -1),
        "groups")
    group_names = names(groups, "group")
    assert set(group_names) == direct_groups_of(SNAP, canonical)
    assert all([c.tag for c in g] == ["link"] for g in groups)  # names only, no expand
    by_name = {g.name: g for g in SNAP.groups}
    for group_name in group_names:  # the client fetches groups not yet in its cache
        group = receive(crowd.call("GET", "/group?groupname=%s&expand=attributes", group_name),
                        "group")
        assert group.get("name") == group_name
        assert group.findtext("type") == "GROUP"
        assert group.findtext("description") == by_name[group_name].description
        got = {a.get("name"): tuple(v.text for v in a.findall("values/value"))
               for a in group.findall("attributes/attribute")}
        assert got == dict(by_name[group_name].attributes)
    assert crowd.sent[:2] == [
        f"POST /authentication?username={java_query(typed)}",
        f"GET /user/group/direct?username={java_query(canonical)}&start-index=0&max-results=-1",
    ]


def test_login_wire_format_for_a_name_with_space_and_at(crowd: JavaClient) -> None:
    # The literal URLs of the sequence above, so the Java spelling is visible in one place.
    body = f"<password><value>{escape(EVE_PASSWORD)}</value></password>"
    user = receive(crowd.call("POST", "/authentication?username=%s", EVE, body=body), "user")
    receive(crowd.call("GET", "/user/group/direct?username=%s&start-index=%d&max-results=%d",
                       user.get("name"), 0, -1), "groups")
    team = receive(crowd.call("GET", "/group?groupname=%s&expand=attributes", TEAM), "group")
    assert crowd.sent == [
        "POST /authentication?username=Eve+Smith%40corp.example",
        "GET /user/group/direct?username=Eve+Smith%40corp.example&start-index=0&max-results=-1",
        "GET /group?groupname=Team+Space&expand=attributes",
    ]
    assert [v.text for v in team.findall("attributes/attribute/values/value")] == [
        "https://wiki.example/?a=1&b=2"
    ]


@pytest.mark.parametrize(
    "username, password, reason",
    [
        ("eve smith@corp.example", "pä&<ss wörd", "INVALID_USER_AUTHENTICATION"),
        ("no such user@corp.example", "pw-42", "USER_NOT_FOUND"),  # app tries its next directory
        ("carol", "carol-pw-3", "INACTIVE_ACCOUNT"),
    ],
)
def test_login_failures_are_told_apart_by_reason(crowd: JavaClient, username: str,
                                                 password: str, reason: str) -> None:
    body = f"<password><value>{escape(password)}</value></password>"
    _, got, message = error_entity(
        crowd.call("POST", "/authentication?username=%s", username, body=body))
    assert got == reason
    assert password not in message


# --- doesExist ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template, args, expected",
    [
        ("/group/user/direct?groupname=%s&username=%s", ("backend", "josé.müller"), True),
        ("/group/user/direct?groupname=%s&username=%s", ("team space", EVE), True),
        ("/group/user/direct?groupname=%s&username=%s", ("engineering", "DAVE<&>\"'"), True),
        ("/group/user/direct?groupname=%s&username=%s", ("bitbucket-users", "Bob"), False),
        ("/group/user/direct?groupname=%s&username=%s", ("backend", "nobody"), False),
        ("/group/user/nested?groupname=%s&username=%s", ("bitbucket-users", "Bob"), True),
        ("/group/user/nested?groupname=%s&username=%s", (TEAM, "José.Müller"), True),
        ("/group/user/nested?groupname=%s&username=%s", ("empty", "alice"), False),
        ("/group/child-group/direct?groupname=%s&child-groupname=%s", (TEAM, "BACKEND"), True),
        ("/group/child-group/direct?groupname=%s&child-groupname=%s", ("cycle-a", "cycle-c"),
         False),
        ("/group/child-group/direct?groupname=%s&child-groupname=%s", ("no group", "backend"),
         False),
    ],
)
def test_membership_existence_checks(crowd: JavaClient, template: str, args: tuple[str, ...],
                                     expected: bool) -> None:
    assert crowd.exists(template, *args) is expected


# --- the Crowd 2.x client ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, template, args, body, reason",
    [
        ("GET", "/user?username=%s", ("nobody@corp.example",), None, "USER_NOT_FOUND"),
        ("GET", "/user?username=%s&expand=attributes", ("no body",), None, "USER_NOT_FOUND"),
        ("GET", "/group?groupname=%s&expand=attributes", ("no such group",), None,
         "GROUP_NOT_FOUND"),
        ("GET", "/user/group/direct?username=%s&start-index=%d&max-results=%d",
         ("nobody", 0, -1), None, "USER_NOT_FOUND"),
        ("GET", "/group/user/direct?groupname=%s&start-index=%d&max-results=%d",
         ("gone", 0, -1), None, "GROUP_NOT_FOUND"),
        ("GET", "/group/child-group/direct?groupname=%s&start-index=%d&max-results=%d",
         ("gone", 0, -1), None, "GROUP_NOT_FOUND"),
        ("GET", "/group/user/direct?groupname=%s&username=%s", ("backend", "alice"), None,
         "MEMBERSHIP_NOT_FOUND"),
        ("POST", "/authentication/notify?username=%s", ("alice",), "<password/>",
         "UNSUPPORTED_OPERATION"),
        ("GET", "/session/%s", (PathArg("token with space"),), None, "UNSUPPORTED_OPERATION"),
        ("GET", "/no/such/resource", (), None, "UNSUPPORTED_OPERATION"),
    ],
)
def test_every_404_has_an_error_body_for_old_clients(
    crowd2: JavaClient, method: str, template: str, args: tuple[Any, ...], body: str | None,
    reason: str,
) -> None:
    r = crowd2.call(method, template, *args, body=body)
    assert error_entity(r)[:2] == (404, reason)
    assert r.content.startswith(DECL.encode())


def test_old_client_full_sync_and_login(crowd2: JavaClient) -> None:
    # Same calls without X-Atlassian-Token: nothing in dirsync may depend on that header.
    users = receive(crowd2.call(
        "POST", "/search?entity-type=user&start-index=%d&max-results=%d&expand=user", 0, -1,
        body=NULL_RESTRICTION), "users")
    assert len(users) == len(SNAP.users)
    dump = dump_as_dict(receive(crowd2.call("GET", "/group/membership"), "memberships"))
    assert dump == direct_memberships(SNAP)
    user = receive(crowd2.call("POST", "/authentication?username=%s", "Bob",
                               body="<password><value>bob-pw-2</value></password>"), "user")
    assert user.get("name") == "Bob"


# --- application authentication as the client sees it ------------------------------------------

def test_probe_with_wrong_application_password_is_a_clean_401(crowd: JavaClient) -> None:
    # §4.1 failure message: the client shows the 401 body text; it never parses it as XML.
    wrong = JavaClient(crowd.base, password="not-the-password")
    r = wrong.call("POST", "/search?entity-type=user&start-index=%d&max-results=%d&expand=user",
                   0, 1, body=NAME_IS_NULL)
    assert r.status_code == 401
    assert r.headers["X-Embedded-Crowd-Version"]
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Crowd REST Service"'
    assert r.text == "Application failed to authenticate"

"""The Crowd API over a real socket, on SQLite and PostgreSQL: entities, nesting, errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from factories import Api, add_app, org, seed, snapshot, start_api

from dirsync.model import Group, User
from sqlalchemy import text

XML = {"Accept": "application/xml"}
JSON = {"Accept": "application/json"}


@pytest.fixture
def api(store, settings, live_app) -> Api:  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store)
    return start_api(live_app, store, settings)


def names(response, tag: str) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    return [e.get("name") for e in ET.fromstring(response.content).findall(tag)]


def error_of(response) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    root = ET.fromstring(response.content)
    assert root.tag == "error"
    return response.status_code, root.findtext("reason"), root.findtext("message")


def test_full_user_in_xml_has_every_field_the_java_client_reads(api: Api) -> None:
    r = api.get("/user", params={"username": "ALICE", "expand": "attributes"}, headers=XML)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/xml")
    assert r.headers["X-Embedded-Crowd-Version"]
    assert "no-store" in r.headers["Cache-Control"]
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>')
    user = ET.fromstring(r.content)
    assert user.tag == "user" and user.get("name") == "alice"  # stored case, not the query's
    assert user.findtext("first-name") == "Alice"
    assert user.findtext("last-name") == "Anderson"
    assert user.findtext("display-name") == "Alice Anderson"
    assert user.findtext("email") == "alice@example.com"
    assert user.findtext("active") == "true"
    assert user.findtext("key").startswith("1:")
    assert user.findtext("created-date").endswith("Z")
    attribute = user.find("attributes/attribute")
    assert attribute.get("name") == "department"
    assert [v.text for v in attribute.findall("values/value")] == ["Engineering"]


def test_user_key_is_stable_and_unique(api: Api) -> None:
    keys = {
        name: ET.fromstring(api.get("/user", params={"username": name}).content).findtext("key")
        for name in ("alice", "Bob", "carol")
    }
    assert len(set(keys.values())) == 3
    again = ET.fromstring(api.get("/user", params={"username": "alice"}).content).findtext("key")
    assert again == keys["alice"]
    by_key = api.get("/user", params={"key": keys["alice"]})
    assert ET.fromstring(by_key.content).get("name") == "alice"


def test_user_without_expand_still_sends_empty_attributes_and_active(api: Api) -> None:
    user = ET.fromstring(api.get("/user", params={"username": "carol"}).content)
    assert user.findtext("active") == "false"
    assert user.find("attributes") is not None
    assert user.find("attributes/attribute") is None


def test_names_needing_escapes_round_trip(api: Api) -> None:
    r = api.get("/user", params={"username": "DAVE<&>\"'"})
    assert ET.fromstring(r.content).get("name") == "dave<&>\"'"
    r = api.get("/user", params={"username": "josé.müller"}, headers=JSON)
    assert r.json()["name"] == "José.Müller"


def test_json_user_shape(api: Api) -> None:
    body = api.get("/user", params={"username": "alice", "expand": "attributes"}, headers=JSON).json()
    assert body["name"] == "alice"
    assert body["first-name"] == "Alice"
    assert body["active"] is True
    assert body["attributes"]["attributes"] == [{"name": "department", "values": ["Engineering"]}]
    assert isinstance(body["created-date"], int)


@pytest.mark.parametrize("accept", [None, "*/*", "application/xml", "text/html, */*"])
def test_xml_is_the_default(api: Api, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    r = api.session.get(api.base + "/group", params={"groupname": "backend"}, headers=headers)
    if accept is None:
        r = api.session.get(
            api.base + "/group", params={"groupname": "backend"}, headers={"Accept": None}
        )
    assert r.headers["Content-Type"].startswith("application/xml")
    assert ET.fromstring(r.content).findtext("type") == "GROUP"


def test_latest_alias(api: Api) -> None:
    r = api.session.get(f"{api.url}/rest/usermanagement/latest/group", params={"groupname": "empty"})
    assert r.status_code == 200
    assert ET.fromstring(r.content).get("name") == "empty"


@pytest.mark.parametrize(
    "path, params, status, reason",
    [
        ("/user", {"username": "nobody"}, 404, "USER_NOT_FOUND"),
        ("/user", {}, 400, "ILLEGAL_ARGUMENT"),
        ("/group", {"groupname": "nobody"}, 404, "GROUP_NOT_FOUND"),
        ("/user/group/direct", {"username": "nobody"}, 404, "USER_NOT_FOUND"),
        ("/group/user/direct", {"groupname": "backend", "username": "alice"}, 404,
         "MEMBERSHIP_NOT_FOUND"),
        ("/group/user/direct", {"groupname": "backend", "max-results": "x"}, 400,
         "ILLEGAL_ARGUMENT"),
        ("/nothing/here", {}, 404, "UNSUPPORTED_OPERATION"),
    ],
)
def test_errors_carry_crowd_error_entity(api: Api, path, params, status, reason) -> None:  # type: ignore[no-untyped-def]
    r = api.get(path, params=params)
    assert r.headers["X-Embedded-Crowd-Version"]
    code, got_reason, message = error_of(r)
    assert (code, got_reason) == (status, reason)
    assert message


def test_error_in_json_when_asked(api: Api) -> None:
    r = api.get("/user", params={"username": "nobody"}, headers=JSON)
    assert r.status_code == 404
    assert r.json() == {"reason": "USER_NOT_FOUND", "message": "User <nobody> does not exist"}


def test_nested_groups_of_a_user_through_a_cycle(api: Api) -> None:
    r = api.get("/user/group/nested", params={"username": "alice", "max-results": "-1"})
    assert names(r, "group") == [
        "bitbucket-administrators", "bitbucket-users", "cycle-a", "cycle-b", "cycle-c",
    ]
    direct = api.get("/user/group/direct", params={"username": "alice"})
    assert names(direct, "group") == ["bitbucket-administrators", "cycle-c"]


def test_nested_users_of_a_group(api: Api) -> None:
    r = api.get("/group/user/nested", params={"groupname": "bitbucket-users", "expand": "user"})
    assert names(r, "user") == ["alice", "Bob", "carol", "dave<&>\"'", "José.Müller"]
    assert ET.fromstring(r.content).find("user/active") is not None


def test_child_and_parent_groups(api: Api) -> None:
    assert names(api.get("/group/child-group/direct", params={"groupname": "engineering"}),
                 "group") == ["backend", "frontend"]
    assert names(api.get("/group/child-group/nested", params={"groupname": "bitbucket-users"}),
                 "group") == ["backend", "bitbucket-administrators", "engineering", "frontend"]
    assert names(api.get("/group/child-group/nested", params={"groupname": "cycle-a"}),
                 "group") == ["cycle-b", "cycle-c"]
    assert names(api.get("/group/parent-group/nested", params={"groupname": "backend"}),
                 "group") == ["bitbucket-users", "engineering"]
    assert names(api.get("/group/parent-group/direct", params={"groupname": "backend"}),
                 "group") == ["engineering"]


@pytest.mark.parametrize(
    "path, params, expected",
    [
        ("/group/user/nested", {"groupname": "bitbucket-users", "username": "BOB"}, 200),
        ("/group/user/direct", {"groupname": "bitbucket-users", "username": "bob"}, 404),
        ("/user/group/nested", {"username": "bob", "groupname": "bitbucket-users"}, 200),
        ("/group/child-group/direct", {"groupname": "engineering", "child-groupname": "backend"}, 200),
        ("/group/child-group/nested", {"groupname": "bitbucket-users", "child-groupname": "backend"}, 200),
        ("/group/child-group/direct", {"groupname": "bitbucket-users", "child-groupname": "backend"}, 404),
        ("/group/parent-group/direct", {"groupname": "backend", "parent-groupname": "engineering"}, 200),
    ],
)
def test_membership_existence_checks_without_accept(api: Api, path, params, expected) -> None:  # type: ignore[no-untyped-def]
    # The Java client's doesExist sends no Accept header at all.
    r = api.session.get(api.base + path, params=params, headers={"Accept": None})
    assert r.status_code == expected
    assert r.headers["Content-Type"].startswith("application/xml")


def test_membership_dump_lists_every_group_with_direct_members(api: Api) -> None:
    r = api.get("/group/membership")
    assert r.status_code == 200
    dump = {
        m.get("group"): (
            sorted(u.get("name") for u in m.findall("users/user")),
            sorted(g.get("name") for g in m.findall("groups/group")),
        )
        for m in ET.fromstring(r.content).findall("membership")
    }
    assert dump["empty"] == ([], [])
    assert dump["backend"] == (["Bob", "José.Müller"], [])
    assert dump["bitbucket-users"] == ([], ["bitbucket-administrators", "engineering"])
    assert len(dump) == 9


def test_membership_dump_in_json(api: Api) -> None:
    body = api.get("/group/membership", headers=JSON).json()
    backend = next(m for m in body["memberships"] if m["group"] == "backend")
    assert sorted(u["name"] for u in backend["users"]) == ["Bob", "José.Müller"]


def test_paging_is_a_stable_total_order(store, settings, live_app) -> None:  # type: ignore[no-untyped-def]
    group_names = [f"team-{i:04d}" for i in range(1000)]
    seed(store, snapshot(users=[User("busy")], groups=[Group(n) for n in group_names],
                         members={n: ["busy"] for n in group_names}))
    add_app(store)
    api = start_api(live_app, store, settings)
    seen: list[str] = []
    for start in range(0, 1000, 100):
        page = api.get("/user/group/direct",
                       params={"username": "busy", "start-index": start, "max-results": 100})
        seen += names(page, "group")
    assert sorted(seen) == sorted(group_names) and len(seen) == 1000
    default = api.get("/user/group/nested", params={"username": "busy"})
    assert len(names(default, "group")) == 1000  # default max-results is 1000
    everything = api.post("/search", params={"entity-type": "group", "max-results": "-1"},
                          data=b"<null-search-restriction/>",
                          headers={"Content-Type": "application/xml"})
    assert len(names(everything, "group")) == 1000


# --- user authentication ---------------------------------------------------------------------


def authenticate(api: Api, username: str, password: str):  # type: ignore[no-untyped-def]
    body = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><password><value>{password}</value></password>'
    return api.post("/authentication", params={"username": username}, data=body.encode(),
                     headers={"Content-Type": "application/xml; charset=UTF-8", **XML})


def test_authentication_success_returns_the_canonical_user(api: Api) -> None:
    r = authenticate(api, "BOB", "bob-pw-2")
    assert r.status_code == 200
    assert ET.fromstring(r.content).get("name") == "Bob"


@pytest.mark.parametrize(
    "username, password, reason",
    [
        ("alice", "wrong", "INVALID_USER_AUTHENTICATION"),
        ("alice", "", "INVALID_USER_AUTHENTICATION"),
        ("carol", "carol-pw-3", "INACTIVE_ACCOUNT"),
        ("carol", "wrong", "INVALID_USER_AUTHENTICATION"),
        ("nobody", "x", "USER_NOT_FOUND"),
        ("José.Müller", "anything", "INVALID_USER_AUTHENTICATION"),  # no password at all
    ],
)
def test_authentication_failures(api: Api, username: str, password: str, reason: str) -> None:
    r = authenticate(api, username, password)
    assert error_of(r)[:2] == (400, reason)


def test_authentication_json_body(api: Api) -> None:
    r = api.post("/authentication", params={"username": "alice"}, json={"value": "alice-pw-1"},
                 headers=JSON)
    assert r.status_code == 200 and r.json()["name"] == "alice"


@pytest.mark.parametrize(
    "body",
    [
        b"<password><value>x</value>",  # not well-formed
        b'<!DOCTYPE p [<!ENTITY e "x">]><password><value>&e;</value></password>',
        b'<!DOCTYPE p [<!ENTITY e SYSTEM "file:///etc/passwd">]><password><value>&e;</value></password>',
        b"",
        b"<other/>",
    ],
)
def test_malformed_or_dangerous_bodies_are_400(api: Api, body: bytes) -> None:
    r = api.post("/authentication", params={"username": "alice"}, data=body,
                 headers={"Content-Type": "application/xml"})
    assert error_of(r)[:2] == (400, "ILLEGAL_ARGUMENT")


def test_oversized_body_is_refused(api: Api) -> None:
    r = api.post("/search", params={"entity-type": "user"}, data=b"<a>" + b"x" * 2_000_000 + b"</a>",
                 headers={"Content-Type": "application/xml"})
    assert error_of(r)[0] == 413


# --- read-only -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, params",
    [
        ("POST", "/user", {}),
        ("PUT", "/user", {"username": "alice"}),
        ("DELETE", "/user", {"username": "alice"}),
        ("POST", "/user/rename", {"username": "alice"}),
        ("PUT", "/user/password", {"username": "alice"}),
        ("POST", "/group", {}),
        ("DELETE", "/group", {"groupname": "backend"}),
        ("POST", "/group/user/direct", {"groupname": "backend"}),
        ("DELETE", "/group/user/direct", {"groupname": "backend", "username": "Bob"}),
        ("POST", "/group/child-group/direct", {"groupname": "engineering"}),
        ("DELETE", "/group/child-group/direct", {"groupname": "engineering", "child-groupname": "backend"}),
        ("POST", "/user/attribute", {"username": "alice"}),
        ("DELETE", "/group/attribute", {"groupname": "engineering", "attributename": "x"}),
    ],
)
def test_writes_are_refused_and_change_nothing(api: Api, method, path, params) -> None:  # type: ignore[no-untyped-def]
    before = api.get("/group/membership").content
    r = api.session.request(method, api.base + path, params=params,
                            data=b'<user name="x"><active>false</active></user>',
                            headers={"Content-Type": "application/xml"})
    code, reason, message = error_of(r)
    assert (code, reason) == (403, "APPLICATION_PERMISSION_DENIED")
    assert "read-only" in message
    assert api.get("/group/membership").content == before
    assert api.get("/user", params={"username": "alice"}).status_code == 200


def test_store_failure_is_a_500_with_error_entity_and_version_header(api: Api) -> None:
    with api.store.write() as conn:
        conn.execute(text("ALTER TABLE users RENAME TO users_gone"))
    r = api.get("/user", params={"username": "alice"})
    code, reason, message = error_of(r)
    assert (code, reason) == (500, "OPERATION_FAILED")
    assert "Traceback" not in r.text
    assert r.headers["X-Embedded-Crowd-Version"]


def test_config_cookie(api: Api) -> None:
    root = ET.fromstring(api.get("/config/cookie").content)
    assert root.tag == "cookie-config" and root.findtext("name") == "crowd.token_key"


def test_org_fixture_is_consistent() -> None:
    snap = org()
    assert len(snap.users) == 5 and len(snap.groups) == 9

"""Real Crowd clients from PyPI against a live dirsync serving `org()`.

* python-crowd 3.x (`crowd.CrowdServer`) speaks JSON on /rest/usermanagement/1 (XML only for
  `get_memberships` and the body of `search`). Every method is exercised: reads must return the
  fixture's values; SSO session calls, which dirsync does not serve, must come back as the
  library's clean failure value (None), not an exception; writes must fail the library's way
  (False / None / an error message) and change nothing.
* atlassian-python-api (`atlassian.Crowd`) speaks JSON on /rest/usermanagement/latest. Every
  usermanagement read is exercised against fixture values. Its failures surface as
  `requests.HTTPError` (the library's `raise_for_status`); we assert the status and, where the
  body is Crowd's error entity, the reason. Many of its methods call Crowd *server* APIs that
  are not part of the usermanagement REST API a directory client uses — /rest/admin/1.0,
  /rest/appmanagement/1, /rest/account/1, /rest/directorymanagement/1, and plugin endpoints
  (/rest/troubleshooting, /rest/supportHealthCheck, /rest/plugins). dirsync answers those with a
  clean 404 (after application authentication, with the version header and an error body).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import crowd
import pytest
import requests
from atlassian import Crowd
from factories import APP_NAME, APP_PASSWORD, Api, add_app, org, seed, start_api

from dirsync.names import name_key

ALL_USERS = ["alice", "Bob", "carol", "dave<&>\"'", "José.Müller"]
ALL_GROUPS = ["backend", "bitbucket-administrators", "bitbucket-users", "cycle-a", "cycle-b",
              "cycle-c", "empty", "engineering", "frontend"]
ALICE_NESTED = ["bitbucket-administrators", "bitbucket-users", "cycle-a", "cycle-b", "cycle-c"]


def casefold_sorted(names: Any) -> list[str]:
    return sorted(names, key=str.casefold)


def fixture_memberships() -> dict[str, tuple[list[str], list[str]]]:
    snap = org()
    users = {name_key(u.name): u.name for u in snap.users}
    groups = {name_key(g.name): g.name for g in snap.groups}
    out: dict[str, tuple[list[str], list[str]]] = {g.name: ([], []) for g in snap.groups}
    for group, user in snap.user_memberships:
        out[groups[group]][0].append(users[user])
    for parent, child in snap.group_memberships:
        out[groups[parent]][1].append(groups[child])
    return {g: (casefold_sorted(u), casefold_sorted(c)) for g, (u, c) in out.items()}


@pytest.fixture
def api(store, settings, live_app) -> Api:  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store)
    return start_api(live_app, store, settings)


def state(api: Api) -> tuple[bytes, bytes, bytes]:
    """Everything a write could change, as the server renders it."""
    everything = {"max-results": "-1"}
    return (
        api.get("/group/membership").content,
        api.post("/search", params={"entity-type": "user", "expand": "user,attributes",
                                    **everything}, data=b"<null-search-restriction/>",
                 headers={"Content-Type": "application/xml"}).content,
        api.post("/search", params={"entity-type": "group", "expand": "group,attributes",
                                    **everything}, data=b"<null-search-restriction/>",
                 headers={"Content-Type": "application/xml"}).content,
    )


# --- python-crowd ------------------------------------------------------------------------------


@pytest.fixture
def pycrowd(api: Api) -> crowd.CrowdServer:
    return crowd.CrowdServer(api.url, APP_NAME, APP_PASSWORD, timeout=30)


def test_python_crowd_auth_ping(api: Api, pycrowd: crowd.CrowdServer) -> None:
    # auth_ping GETs a path that does not exist and reads 404 as "the application is known".
    assert pycrowd.auth_ping() is True
    assert crowd.CrowdServer(api.url, APP_NAME, "wrong-password").auth_ping() is False
    assert crowd.CrowdServer(api.url, "no-such-app", APP_PASSWORD).auth_ping() is False


@pytest.mark.parametrize(
    "username, password, expected",
    [
        ("alice", "alice-pw-1", "alice"),
        ("BOB", "bob-pw-2", "Bob"),
        ("alice", "bob-pw-2", None),
        ("carol", "carol-pw-3", None),  # inactive
        ("José.Müller", "", None),  # no password in the fixture
        ("nobody", "x", None),
    ],
)
def test_python_crowd_auth_user(pycrowd: crowd.CrowdServer, username: str, password: str,
                                expected: str | None) -> None:
    user = pycrowd.auth_user(username, password)
    if expected is None:
        assert user is None
    else:
        assert user["name"] == expected and user["active"] is True
        assert user["email"] == f"{expected.lower()}@example.com"


def test_python_crowd_get_user_and_user_exists(pycrowd: crowd.CrowdServer) -> None:
    alice = pycrowd.get_user("ALICE")
    assert alice["name"] == "alice"
    assert alice["display-name"] == "Alice Anderson"
    assert alice["attributes"]["attributes"] == [{"name": "department", "values": ["Engineering"]}]
    assert pycrowd.get_user("carol")["active"] is False
    assert pycrowd.get_user("dave<&>\"'")["display-name"] == "Dave <&>"
    assert pycrowd.get_user("nobody") is None
    assert pycrowd.user_exists("josé.müller") is True
    assert pycrowd.user_exists("nobody") is None  # the library's "no" is None


def test_python_crowd_group_reads(pycrowd: crowd.CrowdServer) -> None:
    assert sorted(pycrowd.get_groups("alice")) == ["bitbucket-administrators", "cycle-c"]
    assert pycrowd.get_groups("carol") == ["frontend"]
    assert pycrowd.get_groups("nobody") is None
    assert sorted(pycrowd.get_nested_groups("alice")) == ALICE_NESTED
    assert sorted(pycrowd.get_nested_groups("Bob")) == ["backend", "bitbucket-users",
                                                        "engineering"]
    assert pycrowd.get_nested_groups("nobody") is None
    assert casefold_sorted(pycrowd.get_nested_group_users("bitbucket-users")) == ALL_USERS
    assert casefold_sorted(pycrowd.get_nested_group_users("cycle-b")) == ["alice"]
    assert pycrowd.get_nested_group_users("empty") == []
    assert pycrowd.get_nested_group_users("nobody") is None


def test_python_crowd_get_memberships(pycrowd: crowd.CrowdServer) -> None:
    memberships = pycrowd.get_memberships()  # XML, parsed with lxml
    got = {group: (casefold_sorted(m["users"]), casefold_sorted(m["groups"]))
           for group, m in memberships.items()}
    assert got == fixture_memberships()
    assert got["engineering"] == (["dave<&>\"'"], ["backend", "frontend"])


@pytest.mark.parametrize(
    "entity, prop, text, expected",
    [
        ("user", "email", "example.com", ALL_USERS),
        ("user", "name", "O", ["Bob", "carol", "José.Müller"]),  # CONTAINS, ignoring case
        ("user", "displayName", "<&>", ["dave<&>\"'"]),
        ("user", "department", "engineer", ["alice"]),  # a custom attribute
        ("user", "email", "nobody", []),
        ("group", "name", "cycle", ["cycle-a", "cycle-b", "cycle-c"]),
        ("group", "description", "admins", ["bitbucket-administrators"]),
    ],
)
def test_python_crowd_search(pycrowd: crowd.CrowdServer, entity: str, prop: str, text: str,
                             expected: list[str]) -> None:
    # XML property restriction in, JSON out, expand=<entity>.
    result = pycrowd.search(entity, prop, text)
    assert result["expand"] == entity
    found = result[entity + "s"]
    assert casefold_sorted(e["name"] for e in found) == expected
    assert all("active" in e for e in found)  # full entities


def test_python_crowd_cookie_config(pycrowd: crowd.CrowdServer) -> None:
    assert pycrowd.get_cookie_conf() == {"secure": False, "name": "crowd.token_key"}


def test_python_crowd_sso_calls_fail_cleanly(pycrowd: crowd.CrowdServer) -> None:
    # dirsync does no SSO (/session is not served): the library's failure value, no exception.
    assert pycrowd.get_session("alice", "alice-pw-1") is None
    assert pycrowd.get_session("alice", "alice-pw-1", proxy="192.0.2.1") is None
    assert pycrowd.validate_session("some-token") is None
    assert pycrowd.terminate_session("some-token") is None


PYCROWD_WRITES: list[tuple[str, Callable[[crowd.CrowdServer], Any], Any]] = [
    ("add_user", lambda c: c.add_user("mallory", password="pw", email="m@example.com"), False),
    ("set_active-off", lambda c: c.set_active("alice", False), None),
    ("set_user_attribute", lambda c: c.set_user_attribute("alice", "department", "Sales"),
     False),
    ("change_password", lambda c: c.change_password("alice", "new-pw"), False),
    ("send_password_reset_link", lambda c: c.send_password_reset_link("alice"), False),
    ("remove_user_from_group", lambda c: c.remove_user_from_group("Bob", "backend"), False),
    ("add_user_to_group", lambda c: c.add_user_to_group("alice", "backend"), False),
]
READ_ONLY_MESSAGE = "This directory is read-only"
PYCROWD_GROUP_WRITES: list[tuple[str, Callable[[crowd.CrowdServer], Any]]] = [
    ("create_group", lambda c: c.create_group("new-group", "d")),
    ("remove_group", lambda c: c.remove_group("backend")),
    ("update_group", lambda c: c.update_group("backend", {"description": "x", "active": True})),
    ("add_child_group", lambda c: c.add_child_group("frontend", "backend")),
    ("remove_child_group", lambda c: c.remove_child_group("backend", "engineering")),
]


def test_python_crowd_writes_fail_cleanly_and_change_nothing(
    api: Api, pycrowd: crowd.CrowdServer,
) -> None:
    before = state(api)
    for name, call, failure in PYCROWD_WRITES:
        assert call(pycrowd) == failure, name
    # Group writes return the server's error message (None would mean success).
    for name, call in PYCROWD_GROUP_WRITES:
        message = call(pycrowd)
        assert isinstance(message, str) and message.startswith(READ_ONLY_MESSAGE), (name, message)
    # set_active to the state a user already has does not write at all.
    assert pycrowd.set_active("carol", False) is True
    assert state(api) == before
    assert pycrowd.get_user("alice")["active"] is True


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.add_user("mallory", raise_on_error=True, password="pw", email="m@x.example"),
        lambda c: c.set_user_attribute("alice", "a", "b", raise_on_error=True),
        lambda c: c.change_password("alice", "new-pw", raise_on_error=True),
        lambda c: c.remove_user_from_group("Bob", "backend", raise_on_error=True),
        lambda c: c.create_group("new-group", raise_on_error=True),
        lambda c: c.remove_child_group("backend", "engineering", raise_on_error=True),
    ],
    ids=["add_user", "set_user_attribute", "change_password", "remove_user_from_group",
         "create_group", "remove_child_group"],
)
def test_python_crowd_raise_on_error_carries_the_read_only_message(
    pycrowd: crowd.CrowdServer, call: Callable[[crowd.CrowdServer], Any],
) -> None:
    with pytest.raises(RuntimeError, match=READ_ONLY_MESSAGE):
        call(pycrowd)


def test_python_crowd_add_user_to_group_is_refused_as_read_only(
    pycrowd: crowd.CrowdServer,
) -> None:
    with pytest.raises(RuntimeError, match=READ_ONLY_MESSAGE):
        pycrowd.add_user_to_group("alice", "backend", raise_on_error=True)


# --- atlassian-python-api ----------------------------------------------------------------------


@pytest.fixture
def atl(api: Api) -> Crowd:
    client = Crowd(url=api.url, username=APP_NAME, password=APP_PASSWORD, timeout=30)
    assert client.api_version == "latest"  # so these calls also cover the /latest alias
    return client


ATL_READS: list[tuple[str, Callable[[Crowd], Any], Any]] = [
    ("user", lambda c: c.user("ALICE")["name"], "alice"),
    ("user-fields", lambda c: {k: c.user("Bob")[k] for k in ("email", "active", "last-name")},
     {"email": "bob@example.com", "active": True, "last-name": "Builder"}),
    ("user_groups", lambda c: sorted(c.user_groups("alice")),
     ["bitbucket-administrators", "cycle-c"]),
    ("user_groups-nested", lambda c: sorted(c.user_groups("alice", kind="nested")),
     ALICE_NESTED),
    ("group_members", lambda c: casefold_sorted(c.group_members("backend")),
     ["Bob", "José.Müller"]),
    ("group_members-nested",
     lambda c: casefold_sorted(c.group_members("bitbucket-users", kind="nested")), ALL_USERS),
    ("group_members-empty", lambda c: c.group_members("empty"), []),
    ("is_user_in_group", lambda c: c.is_user_in_group("alice", "bitbucket-administrators"),
     True),
    ("is_user_in_group-no", lambda c: c.is_user_in_group("alice", "backend"), False),
    ("is_user_in_group-nested", lambda c: c.is_user_in_group("bob", "Bitbucket-Users",
                                                             kind="nested"), True),
    ("is_user_in_group-only-nested", lambda c: c.is_user_in_group("bob", "bitbucket-users"),
     False),
    ("is_user_in_group-unknown-user", lambda c: c.is_user_in_group("nobody", "backend"), False),
    ("user_attributes", lambda c: c.user_attributes("alice")["attributes"],
     [{"name": "department", "values": ["Engineering"]}]),
    ("group", lambda c: {k: c.group("Engineering")[k] for k in ("name", "description", "type")},
     {"name": "engineering", "description": "Engineering", "type": "GROUP"}),
    ("group_attributes", lambda c: c.group_attributes("engineering")["attributes"],
     [{"name": "cost-centre", "values": ["42", "43"]}]),
    ("nested_group_members", lambda c: casefold_sorted(c.nested_group_members("engineering")),
     ["Bob", "carol", "dave<&>\"'", "José.Müller"]),
    ("nested_user_groups", lambda c: sorted(c.nested_user_groups("alice")), ALICE_NESTED),
    ("group_child_groups", lambda c: c.group_child_groups("engineering"),
     ["backend", "frontend"]),
    # With child_groupname the server answers the single <group> (200); the library then
    # applies `groups[*].name` to it and gets None. A missing child would raise (404).
    ("group_child_groups-one", lambda c: c.group_child_groups("engineering", "backend"), None),
    ("nested_group_child_groups", lambda c: sorted(c.nested_group_child_groups(
        "bitbucket-users")), ["backend", "bitbucket-administrators", "engineering", "frontend"]),
    ("nested_group_child_groups-cycle", lambda c: c.nested_group_child_groups("cycle-a"),
     ["cycle-b", "cycle-c"]),
    ("group_parent_groups", lambda c: c.group_parent_groups("backend"), ["engineering"]),
    # The library sends `child-groupname` here; the parent-group resource ignores it (Crowd's
    # parameter is `parent-groupname`), so the full list comes back.
    ("group_parent_groups-child-param",
     lambda c: c.group_parent_groups("backend", child_groupname="x"), ["engineering"]),
    ("nested_group_parent_groups", lambda c: c.nested_group_parent_groups("backend"),
     ["bitbucket-users", "engineering"]),
    ("nested_group_parent_groups-one",
     lambda c: c.nested_group_parent_groups("backend", parent_groupname="bitbucket-users"), None),
    ("search_cql", lambda c: [u["name"] for u in c.search_cql(
        "user", 'email = "bob@example.com"')["users"]], ["Bob"]),
    ("search_cql-groups", lambda c: [g["name"] for g in c.search_cql("group")["groups"]],
     ALL_GROUPS),
    ("search_cql-paged", lambda c: [u["name"] for u in c.search_cql(
        "user", "active = true", start_index=1, max_results=2)["users"]], ["Bob", "dave<&>\"'"]),
    ("search-json-restriction", lambda c: [u["name"] for u in c.search("user", {
        "restriction-type": "property-search-restriction",
        "property": {"name": "name", "type": "STRING"},
        "match-mode": "STARTS_WITH", "value": "C"})["users"]], ["carol"]),
    ("search-boolean-restriction", lambda c: [g["name"] for g in c.search("group", {
        "restriction-type": "boolean-search-restriction", "boolean-logic": "or",
        "restrictions": [
            {"restriction-type": "property-search-restriction",
             "property": {"name": "name", "type": "STRING"},
             "match-mode": "EXACTLY_MATCHES", "value": "EMPTY"},
            {"restriction-type": "property-search-restriction",
             "property": {"name": "description", "type": "STRING"},
             "match-mode": "CONTAINS", "value": "bitbucket"}]})["groups"]],
     ["bitbucket-users", "empty"]),
    ("user_authenticate", lambda c: c.user_authenticate("bob", "bob-pw-2")["name"], "Bob"),
    ("get_cookie_config", lambda c: c.get_cookie_config(),
     {"secure": False, "name": "crowd.token_key"}),
    ("memberships", lambda c: {g: casefold_sorted(u) for g, u in c.memberships.items()},
     {g: users for g, (users, _) in fixture_memberships().items()}),
]


@pytest.mark.parametrize("call, expected", [(c, e) for _, c, e in ATL_READS],
                         ids=[n for n, _, _ in ATL_READS])
def test_atlassian_reads(atl: Crowd, call: Callable[[Crowd], Any], expected: Any) -> None:
    assert call(atl) == expected


def error_status(call: Callable[[], Any]) -> tuple[int, requests.Response]:
    with pytest.raises(requests.HTTPError) as info:
        call()
    response = info.value.response
    assert response is not None
    assert response.headers["X-Embedded-Crowd-Version"]
    return response.status_code, response


# Usermanagement reads that fail: (call, status, reason).
ATL_READ_FAILURES: list[tuple[str, Callable[[Crowd], Any], int, str]] = [
    ("user-unknown", lambda c: c.user("nobody"), 404, "USER_NOT_FOUND"),
    ("group-unknown", lambda c: c.group("nobody"), 404, "GROUP_NOT_FOUND"),
    ("user_groups-unknown", lambda c: c.user_groups("nobody"), 404, "USER_NOT_FOUND"),
    ("group_child_groups-not-a-child", lambda c: c.group_child_groups("engineering", "empty"),
     404, "MEMBERSHIP_NOT_FOUND"),
    ("user_authenticate-wrong", lambda c: c.user_authenticate("alice", "wrong"), 400,
     "INVALID_USER_AUTHENTICATION"),
    ("user_authenticate-inactive", lambda c: c.user_authenticate("carol", "carol-pw-3"), 400,
     "INACTIVE_ACCOUNT"),
    # The library's search() sends `{}` when given no restriction; that names no
    # restriction-type, so it is a 400, not "everything".
    ("search-empty-body", lambda c: c.search("group"), 400, "ILLEGAL_ARGUMENT"),
    ("search_cql-bad", lambda c: c.search_cql("user", 'name = "unterminated'), 400,
     "ILLEGAL_ARGUMENT"),
    # Crowd APIs in the usermanagement tree that dirsync does not serve (no SSO, no avatars).
    ("user_avatar", lambda c: c.user_avatar("alice"), 404, "UNSUPPORTED_OPERATION"),
    ("user_authentication_notify", lambda c: c.user_authentication_notify("alice"), 404,
     "UNSUPPORTED_OPERATION"),
    ("session_create", lambda c: c.session_create("alice", "alice-pw-1"), 404,
     "UNSUPPORTED_OPERATION"),
    ("session_validate", lambda c: c.session_validate("tok"), 404, "UNSUPPORTED_OPERATION"),
    ("session_get", lambda c: c.session_get("tok"), 404, "UNSUPPORTED_OPERATION"),
    ("session_delete", lambda c: c.session_delete("tok"), 404, "UNSUPPORTED_OPERATION"),
    ("session_delete_user_tokens", lambda c: c.session_delete_user_tokens("alice"), 404,
     "UNSUPPORTED_OPERATION"),
]


@pytest.mark.parametrize("call, status, reason", [(c, s, r) for _, c, s, r in ATL_READ_FAILURES],
                         ids=[n for n, _, _, _ in ATL_READ_FAILURES])
def test_atlassian_read_failures_are_clean(atl: Crowd, call: Callable[[Crowd], Any], status: int,
                                           reason: str) -> None:
    got, response = error_status(lambda: call(atl))
    assert got == status
    assert response.json()["reason"] == reason


# Not the usermanagement API: Crowd's admin, application-management, account and directory
# management REST APIs, and plugin endpoints (Troubleshooting & Support Tools, UPM). A
# directory server has none of them; each must be a clean 404, never a 5xx or a hang.
ATL_NOT_USERMANAGEMENT: list[tuple[str, Callable[[Crowd], Any]]] = [
    ("health_check", lambda c: c.health_check()),  # /rest/troubleshooting/1.0/check/
    ("get_plugins_info", lambda c: c.get_plugins_info()),
    ("get_plugin_info", lambda c: c.get_plugin_info("com.example.plugin")),
    ("get_plugin_license_info", lambda c: c.get_plugin_license_info("com.example.plugin")),
    ("check_plugin_manager_status", lambda c: c.check_plugin_manager_status()),
    ("get_server_info", lambda c: c.get_server_info()),
    ("get_admin_applications", lambda c: c.get_admin_applications()),
    ("get_admin_application", lambda c: c.get_admin_application("1")),
    ("get_directory_mappings", lambda c: c.get_directory_mappings("1")),
    ("get_detailed_directories", lambda c: c.get_detailed_directories()),
    ("get_managed_directories", lambda c: c.get_managed_directories()),
    ("search_directory_groups", lambda c: c.search_directory_groups("1", "eng")),
    ("get_admin_group_details", lambda c: c.get_admin_group_details("1")),
    ("get_admin_group_members", lambda c: c.get_admin_group_members("1")),
    ("search_admin_users", lambda c: c.search_admin_users()),
    ("get_application_sessions", lambda c: c.get_application_sessions()),
    ("get_user_sessions", lambda c: c.get_user_sessions()),
    ("get_licensing_summary", lambda c: c.get_licensing_summary("1")),
    ("get_backup_summary", lambda c: c.get_backup_summary()),
    ("get_audit_log_configuration", lambda c: c.get_audit_log_configuration()),
    ("get_look_and_feel_config", lambda c: c.get_look_and_feel_config()),
    ("get_remember_me_config", lambda c: c.get_remember_me_config()),
    ("get_saml_config", lambda c: c.get_saml_config()),
    ("get_dynamic_ldap_pool_statistics", lambda c: c.get_dynamic_ldap_pool_statistics()),
    ("get_applications", lambda c: c.get_applications()),  # /rest/appmanagement/1
    ("get_application", lambda c: c.get_application("1")),
    ("get_remote_addresses", lambda c: c.get_remote_addresses("1")),
    ("user_aliases", lambda c: c.user_aliases("alice")),
    ("get_alias", lambda c: c.get_alias("1", "alice")),
    ("get_username_for_alias", lambda c: c.get_username_for_alias("1", "al")),
    ("account_forgotten_password", lambda c: c.account_forgotten_password("alice")),  # /account/1
    ("directory_test_crowd", lambda c: c.directory_test_crowd({})),  # /directorymanagement/1
]


@pytest.mark.parametrize("call", [c for _, c in ATL_NOT_USERMANAGEMENT],
                         ids=[n for n, _ in ATL_NOT_USERMANAGEMENT])
def test_atlassian_calls_outside_usermanagement_fail_cleanly(
    atl: Crowd, call: Callable[[Crowd], Any],
) -> None:
    status, response = error_status(lambda: call(atl))
    assert status == 404
    # An authenticated application is told "no such resource" with Crowd's error entity.
    body = response.json() if "json" in response.headers["Content-Type"] else None
    assert body is None or body["reason"] == "UNSUPPORTED_OPERATION"
    if body is None:
        assert b"<reason>UNSUPPORTED_OPERATION</reason>" in response.content


def test_atlassian_with_wrong_application_password(api: Api) -> None:
    client = Crowd(url=api.url, username=APP_NAME, password="wrong", timeout=30)
    status, response = error_status(lambda: client.user("alice"))
    assert status == 401 and response.text == "Application failed to authenticate"
    # Outside usermanagement too: application authentication comes before routing.
    assert error_status(lambda: client.get_server_info())[0] == 401


# (call, status). 403 = the read-only refusal. 405 = a method Crowd itself does not have on that
# resource (the library PUTs attributes; Crowd stores them with POST).
ATL_WRITES = [
    pytest.param(lambda c: c.user_create("mallory", True, "M", "W", "M W", "m@x.example", "pw"),
                 403, id="user_create"),
    pytest.param(lambda c: c.user_activate("carol"), 403, id="user_activate"),
    pytest.param(lambda c: c.user_deactivate("alice"), 403, id="user_deactivate"),
    pytest.param(lambda c: c.user_delete("alice"), 403, id="user_delete"),
    pytest.param(lambda c: c.user_update("alice", {"name": "alice", "active": False}), 403,
                 id="user_update"),
    pytest.param(lambda c: c.user_update_password("alice", "new-pw"), 403,
                 id="user_update_password"),
    pytest.param(lambda c: c.user_delete_password("alice"), 403, id="user_delete_password"),
    pytest.param(lambda c: c.user_store_attributes("alice", {"attributes": []}), 405,
                 id="user_store_attributes"),
    pytest.param(lambda c: c.user_remove_attribute("alice", "department"), 403,
                 id="user_remove_attribute"),
    pytest.param(lambda c: c.user_rename("alice", "alicia"), 403, id="user_rename"),
    pytest.param(lambda c: c.user_expire_all_passwords(), 403, id="user_expire_all_passwords"),
    pytest.param(lambda c: c.user_request_password_reset("alice"), 403,
                 id="user_request_password_reset"),
    pytest.param(lambda c: c.user_request_usernames_reminder("alice@example.com"), 403,
                 id="user_request_usernames_reminder"),
    pytest.param(lambda c: c.group_create("new-group", "d"), 403, id="group_create"),
    pytest.param(lambda c: c.group_update("backend", {"description": "x"}), 403,
                 id="group_update"),
    pytest.param(lambda c: c.group_delete("backend"), 403, id="group_delete"),
    pytest.param(lambda c: c.group_store_attributes("backend", {"attributes": []}), 405,
                 id="group_store_attributes"),
    pytest.param(lambda c: c.group_remove_attribute("engineering", "cost-centre"), 403,
                 id="group_remove_attribute"),
    pytest.param(lambda c: c.group_add_child_group("backend", "frontend"), 403,
                 id="group_add_child_group"),
    pytest.param(lambda c: c.group_remove_child_group("engineering", "backend"), 403,
                 id="group_remove_child_group"),
    pytest.param(lambda c: c.group_add_parent_group("empty", "backend"), 403,
                 id="group_add_parent_group"),
    pytest.param(lambda c: c.group_add_user("alice", "backend"), 403, id="group_add_user"),
    pytest.param(lambda c: c.group_remove_user("Bob", "backend"), 403, id="group_remove_user"),
]


@pytest.mark.parametrize("call, status", ATL_WRITES)
def test_atlassian_writes_fail_cleanly_and_change_nothing(
    api: Api, atl: Crowd, call: Callable[[Crowd], Any], status: int,
) -> None:
    before = state(api)
    got, response = error_status(lambda: call(atl))
    assert got == status
    expected_reason = "APPLICATION_PERMISSION_DENIED" if status == 403 else "UNSUPPORTED_OPERATION"
    assert response.json()["reason"] == expected_reason
    assert state(api) == before

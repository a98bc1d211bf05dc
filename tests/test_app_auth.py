"""Application authentication over a real socket: Basic auth, allow-lists, proxies, throttling."""

from __future__ import annotations

import logging

import pytest
import requests
from factories import APP_NAME, APP_PASSWORD, add_app, seed, start_api

from dirsync.app import create_app
from dirsync.settings import load_settings
from dirsync.store import apps as store_apps
from servers import ipv6_available

USER = "/rest/usermanagement/1/user?username=alice"


@pytest.fixture
def server(store, settings, live_app):  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store)
    return live_app(create_app(settings, store=store))


def test_right_credentials(server) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD))
    assert r.status_code == 200


@pytest.mark.parametrize(
    "auth, headers",
    [
        (None, {}),
        ((APP_NAME, "wrong-password"), {}),
        (("unknown-app", APP_PASSWORD), {}),
        ((APP_NAME, ""), {}),
        (None, {"Authorization": "Basic !!!not-base64"}),
        (None, {"Authorization": "Bearer abc"}),
    ],
)
def test_failed_application_login_is_401_with_crowd_challenge(server, auth, headers, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.WARNING, logger="dirsync"):
        r = requests.get(server.url + USER, auth=auth, headers=headers)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Crowd REST Service"'
    assert r.text == "Application failed to authenticate"
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.headers["X-Embedded-Crowd-Version"]
    if auth is not None or headers:
        assert "application authentication failed" in caplog.text
    assert APP_PASSWORD not in caplog.text and "wrong-password" not in caplog.text


def test_address_outside_allow_list_is_403_naming_app_and_address(store, settings, live_app) -> None:  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store, networks=("10.0.0.0/8",))
    server = live_app(create_app(settings, store=store))
    r = requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD))
    assert r.status_code == 403
    assert APP_NAME in r.text and "127.0.0.1" in r.text
    assert r.headers["X-Embedded-Crowd-Version"]
    # A wrong password from a disallowed address is still just a failed login.
    r = requests.get(server.url + USER, auth=(APP_NAME, "wrong"))
    assert r.status_code == 401


def test_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(store, settings, live_app) -> None:  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store, networks=("203.0.113.5/32",))
    server = live_app(create_app(settings, store=store))
    r = requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD),
                     headers={"X-Forwarded-For": "203.0.113.5"})
    assert r.status_code == 403
    assert "127.0.0.1" in r.text


def test_forwarded_for_from_a_trusted_proxy_is_honoured(store, database_url, live_app) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(environ={}, overrides={
        "database_url": database_url, "server.trusted_proxies": ["127.0.0.1", "10.9.0.0/16"]})
    seed(store)
    add_app(store, networks=("203.0.113.5/32",))
    server = live_app(create_app(settings, store=store))
    ok = requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD),
                      headers={"X-Forwarded-For": "198.51.100.1, 203.0.113.5, 10.9.1.1"})
    assert ok.status_code == 200
    # The right-most untrusted hop decides; the client cannot prepend its way in.
    denied = requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD),
                          headers={"X-Forwarded-For": "203.0.113.5, 198.51.100.1"})
    assert denied.status_code == 403 and "198.51.100.1" in denied.text


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback on this host")
def test_ipv6_client(store, settings, live_app) -> None:  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store, networks=("::1/128",))
    server = live_app(create_app(settings, store=store), host="::1")
    assert requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD)).status_code == 200
    with store.write() as conn:
        store_apps.deny_networks(conn, APP_NAME, ["::1/128"])
        store_apps.allow_networks(conn, APP_NAME, ["127.0.0.1/32"])
    assert requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD)).status_code == 403


def test_password_change_drops_cached_verification(server, store) -> None:  # type: ignore[no-untyped-def]
    from dirsync import passwords

    assert requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD)).status_code == 200
    with store.write() as conn:
        store_apps.set_password_hash(conn, APP_NAME, passwords.hash_app_password("new-password-123"))
    assert requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD)).status_code == 401
    assert requests.get(server.url + USER, auth=(APP_NAME, "new-password-123")).status_code == 200
    with store.write() as conn:
        store_apps.remove_application(conn, APP_NAME)
    assert requests.get(server.url + USER, auth=(APP_NAME, "new-password-123")).status_code == 401


def test_burst_of_wrong_passwords_is_throttled(store, database_url, live_app, caplog) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(environ={}, overrides={
        "database_url": database_url, "auth.failure_limit": 3, "auth.failure_window_seconds": 60})
    seed(store)
    add_app(store)
    server = live_app(create_app(settings, store=store))
    with caplog.at_level(logging.WARNING, logger="dirsync"):
        codes = [requests.get(server.url + USER, auth=(APP_NAME, f"guess-{i}")).status_code
                 for i in range(5)]
    assert codes == [401, 401, 401, 429, 429]
    assert "too many failed application logins from 127.0.0.1" in caplog.text
    # Even the right password waits out the window: the address is refused, not the guess.
    r = requests.get(server.url + USER, auth=(APP_NAME, APP_PASSWORD))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_every_route_but_health_requires_an_application(store, settings) -> None:  # type: ignore[no-untyped-def]
    """The route table itself: no endpoint may be reached without application credentials."""
    app = create_app(settings, store=store)
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        path = rule.rule.replace("<any('1', 'latest'):api_version>", "1")
        path = path.replace("<path:filename>", "x")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            r = client.open(path, method=method)
            if rule.endpoint == "health":
                assert r.status_code != 401
            elif rule.endpoint == "static":
                continue
            else:
                assert r.status_code == 401, (method, path, r.status_code)
                checked += 1
    assert checked > 30
    # Unknown paths are answered only after authentication, too.
    assert client.get("/rest/usermanagement/1/no/such/thing").status_code == 401
    assert client.get("/rest/usermanagement/1//user").status_code == 401


def test_health_needs_no_credentials(server) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(server.url + "/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_start_api_helper_authenticates(store, settings, live_app) -> None:  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store)
    api = start_api(live_app, store, settings)
    assert api.get("/user", params={"username": "alice"}).status_code == 200

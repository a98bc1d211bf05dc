"""The event feed over real HTTP, on SQLite and PostgreSQL: tokens, shapes, renames, limits,
restarts, trimming, several server processes, and transactions committing concurrently."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests
from crowd_cache import CrowdCache
from factories import APP_NAME, APP_PASSWORD, add_app, org, seed, start_api
from servers import DirsyncProcess

from dirsync import feed, scheduler
from dirsync.model import Group, User
from dirsync.names import name_key
from dirsync.settings import load_settings
from dirsync.store.db import Store
from dirsync.sync.apply import apply_snapshot
from dirsync.store.writes import ensure_directory

JSON = {"Accept": "application/json"}


@pytest.fixture
def api(store, settings, live_app):  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store)
    return start_api(live_app, store, settings)


def token_of(api: Any) -> str:
    r = api.get("/event")
    assert r.status_code == 200, r.text
    return r.text.split('newEventToken="')[1].split('"')[0]


def events_since(api: Any, token: str, **kwargs: Any) -> requests.Response:
    return api.get("/event/" + requests.utils.quote(token, safe=""), **kwargs)


def expired(response: requests.Response) -> bool:
    return response.status_code == 410 and b"<reason>EVENT_TOKEN_EXPIRED</reason>" in response.content


def rename_user(snap: Any, old: str, new: str) -> None:
    snap.users = [replace(u, name=new) if u.name == old else u for u in snap.users]
    snap.user_memberships = {(g, name_key(new) if u == name_key(old) else u)
                             for g, u in snap.user_memberships}


# --- tokens ----------------------------------------------------------------------------------


def test_token_is_stable_until_something_changes(api) -> None:  # type: ignore[no-untyped-def]
    first = token_of(api)
    assert token_of(api) == first
    r = events_since(api, first)
    assert r.status_code == 200
    assert r.text.endswith(f'<events newEventToken="{first}"></events>')
    seed(api.store)  # the same fixture again: nothing changes, nothing is journalled
    assert token_of(api) == first


@pytest.mark.parametrize("token", [
    "garbage", "", "123", "1:2:3", "-1:5", "12:-5", "%00", "9" * 400,
])
def test_unusable_tokens_expire_cleanly(api, token: str) -> None:  # type: ignore[no-untyped-def]
    r = api.get("/event/" + requests.utils.quote(token, safe="")) if token else api.get("/event/")
    if not token:
        assert r.status_code == 404  # no token is another route, not an event feed
        return
    assert expired(r), (r.status_code, r.text)
    assert r.headers["X-Embedded-Crowd-Version"]


def test_token_of_another_store_expires(api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = Store(f"sqlite:///{tmp_path}/other.db")
    other.init_schema()
    try:
        foreign = feed.current_token(other)
    finally:
        other.dispose()
    assert foreign.split(":")[0] != token_of(api).split(":")[0]
    r = events_since(api, foreign)
    assert expired(r) and "another store" in r.text


def test_token_from_the_future_expires(api) -> None:  # type: ignore[no-untyped-def]
    epoch, seq = token_of(api).split(":")
    assert expired(events_since(api, f"{epoch}:{int(seq) + 1000}"))


# --- shapes ----------------------------------------------------------------------------------


def test_renamed_user_keeps_its_key(api) -> None:  # type: ignore[no-untyped-def]
    snap = org()
    snap.users[0] = replace(snap.users[0], external_id="alice-id")
    seed(api.store, snap)
    before = api.get("/user", params={"username": "alice"}).text
    key = before.split("<key>")[1].split("</key>")[0]
    token = token_of(api)
    rename_user(snap, "alice", "alice.liddell")
    seed(api.store, snap)
    r = events_since(api, token)
    assert r.status_code == 200
    body = r.text
    assert body.count("<userEvent>") == 1
    assert "<operation>UPDATED</operation>" in body
    assert 'name="alice.liddell"' in body and f"<key>{key}</key>" in body
    assert "DELETED" not in body  # a rename is not a delete plus a create


def test_renamed_group_is_recreated_with_its_memberships(api) -> None:  # type: ignore[no-untyped-def]
    snap = org()
    snap.groups[3] = replace(snap.groups[3], external_id="backend-id")  # backend: Bob, José
    seed(api.store, snap)
    client = CrowdCache(api.base, api.session)
    client.full_sync()
    snap.groups[3] = replace(snap.groups[3], name="backend-team")
    snap.user_memberships = {(("backend-team" if g == "backend" else g), u) for g, u in snap.user_memberships}
    snap.group_memberships = {(p, ("backend-team" if c == "backend" else c)) for p, c in snap.group_memberships}
    seed(api.store, snap)
    body = events_since(api, client.token or "").text
    # Groups have no key on the wire, so the client must drop the old name and learn the new.
    assert body.index('<groupEvent><operation>DELETED</operation><group name="backend"/>') < \
        body.index('<operation>CREATED</operation><group expand="attributes" name="backend-team">')
    assert '<childUser name="Bob"/><parentGroups expand="group"><group name="backend-team"/>' in body
    assert '<group name="backend-team"/><parentGroups><group name="engineering"/></parentGroups><childGroups/>' in body
    assert client.incremental()
    fresh = CrowdCache(api.base, api.session)
    fresh.full_sync()
    assert client.state() == fresh.state()


def test_user_event_carries_the_complete_user_in_xml_and_json(api) -> None:  # type: ignore[no-untyped-def]
    token = token_of(api)
    snap = org()
    snap.users[2] = replace(snap.users[2], active=True, attributes={"shell": ("zsh",)})  # carol
    snap.users[0] = replace(snap.users[0], attributes={})  # alice loses "department"
    seed(api.store, snap)
    xml = events_since(api, token).text
    carol = xml[xml.index('<user expand="attributes" name="carol">'):]
    for element in ("<first-name>Carol</first-name>", "<last-name>Clark</last-name>",
                    "<display-name>Carol Clark</display-name>", "<email>carol@example.com</email>",
                    "<active>true</active>", "<key>", "<created-date>", "<updated-date>"):
        assert element in carol, element
    assert ('<storedAttributes><attribute name="shell"><values><value>zsh</value></values>'
            "</attribute></storedAttributes>") in xml
    assert ('<deletedAttributes><attribute name="department"><values></values></attribute>'
            "</deletedAttributes>") in xml

    body = events_since(api, token, headers=JSON).json()
    assert body["newEventToken"] == token_of(api)
    by_name = {e["userEvent"]["user"]["name"]: e["userEvent"] for e in body["events"]}
    assert set(by_name) == {"alice", "carol"}
    carol_json = by_name["carol"]
    assert carol_json["operation"] == "UPDATED"
    assert carol_json["user"]["active"] is True and carol_json["user"]["email"] == "carol@example.com"
    assert carol_json["storedAttributes"] == {"attributes": [{"name": "shell", "values": ["zsh"]}]}
    assert by_name["alice"]["deletedAttributes"] == {"attributes": [{"name": "department", "values": []}]}


def test_membership_events_in_json(api) -> None:  # type: ignore[no-untyped-def]
    token = token_of(api)
    snap = org()
    snap.user_memberships.add((name_key("frontend"), name_key("alice")))
    snap.group_memberships.discard((name_key("cycle-c"), name_key("cycle-a")))
    seed(api.store, snap)
    events = events_since(api, token, headers=JSON).json()["events"]
    assert {"groupMembershipEvent": {
        "operation": "DELETED", "group": {"name": "cycle-a"},
        "parentGroups": {"groups": [{"name": "cycle-c"}]}, "childGroups": {"groups": []},
    }} in events
    assert {"userMembershipEvent": {
        "operation": "CREATED", "childUser": {"name": "alice"},
        "parentGroups": {"expand": "group", "groups": [{"name": "frontend"}]},
    }} in events


def test_only_what_a_client_sees_is_announced(api) -> None:  # type: ignore[no-untyped-def]
    token = token_of(api)
    snap = org()
    snap.users[0] = replace(snap.users[0], password="a-new-password-9", dn="uid=alice,ou=x")
    seed(api.store, snap)
    assert token_of(api) == token  # a password or DN change is stored, not announced


# --- limits ----------------------------------------------------------------------------------


def test_a_token_too_far_behind_expires_instead_of_an_unbounded_answer(store, live_app, tmp_path) -> None:  # type: ignore[no-untyped-def]
    seed(store)
    add_app(store)
    narrow = load_settings(environ={}, overrides={
        "database_url": store.url, "events.max_events": 3, "events.max_journal_rows": 20})
    api = start_api(live_app, store, narrow)
    token = token_of(api)
    snap = org()
    snap.users += [User(f"new{i}") for i in range(2)]
    seed(store, snap)
    assert events_since(api, token).status_code == 200  # 2 events
    snap.users += [User(f"more{i}") for i in range(2)]
    seed(store, snap)
    r = events_since(api, token)
    assert expired(r) and "More than 3 events" in r.text
    snap.users += [User(f"bulk{i}") for i in range(30)]
    seed(store, snap)
    r = events_since(api, token)
    assert expired(r) and "More than 20 changes" in r.text


def test_events_coalesce_to_their_net_effect(api) -> None:  # type: ignore[no-untyped-def]
    token = token_of(api)
    snap = org()
    for i in range(20):  # twenty edits of one user, a user created and deleted again
        snap.users[1] = replace(snap.users[1], display_name=f"Bob {i}")
        seed(api.store, snap)
    snap.users.append(User("temp"))
    seed(api.store, snap)
    snap.users.pop()
    seed(api.store, snap)
    body = events_since(api, token).text
    assert body.count("<userEvent>") == 1 and "Bob 19" in body and "temp" not in body


# --- durability, trimming, processes ---------------------------------------------------------


def test_token_survives_a_restart(database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(database_url)
    store.init_schema()
    seed(store)
    add_app(store)
    store.dispose()
    first = DirsyncProcess(database_url, tmp_path / "first.log")
    try:
        client = CrowdCache(first.url + "/rest/usermanagement/1", requests.Session())
        client.http.auth = (APP_NAME, APP_PASSWORD)
        client.full_sync()
    finally:
        first.stop()
    store = Store(database_url)
    snap = org()
    snap.users.append(User("after-restart", email="a@example.com"))
    seed(store, snap)
    store.dispose()
    second = DirsyncProcess(database_url, tmp_path / "second.log")
    try:
        client.base = second.url + "/rest/usermanagement/1"
        assert client.incremental()
        assert "after-restart" in client.state()["users"]
        # What an operator reads to see that a client is synchronising incrementally.
        assert "synchronised incrementally" in second.log()
        assert f"application '{APP_NAME}' took event token" in first.log()
    finally:
        second.stop()


def test_trim_expires_tokens_outside_the_window_only(api) -> None:  # type: ignore[no-untyped-def]
    old = token_of(api)
    snap = org()
    snap.users.append(User("one"))
    seed(api.store, snap)
    middle = token_of(api)
    snap.users.append(User("two"))
    seed(api.store, snap)
    newest = token_of(api)
    # Keep one entry, whatever its age: `middle` still has every entry after it.
    result = feed.trim(api.store, days=0, keep=1)
    assert result.deleted > 0
    assert expired(events_since(api, old))
    r = events_since(api, middle)
    assert r.status_code == 200 and 'name="two"' in r.text
    assert events_since(api, newest).status_code == 200
    # Entries younger than the retention stay even beyond the count.
    snap.users.append(User("three"))
    seed(api.store, snap)
    assert feed.trim(api.store, days=7, keep=1).deleted == 0
    assert events_since(api, middle).status_code == 200


def test_scheduled_job_trims_the_journal(api, settings) -> None:  # type: ignore[no-untyped-def]
    old = token_of(api)
    snap = org()
    snap.users.append(User("one"))
    seed(api.store, snap)
    snap.users.append(User("two"))
    seed(api.store, snap)
    tight = replace(settings, events_retention_days=0, events_retention_count=1)
    jobs = scheduler.start(tight, api.store, first_run_in=0.1)
    try:
        deadline = time.monotonic() + 15
        while not expired(events_since(api, old)):
            assert time.monotonic() < deadline, "the scheduled trim did not run"
            time.sleep(0.1)
    finally:
        jobs.shutdown(wait=True)
    assert feed.status(api.store).entries == 1


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_server_processes_on_one_postgres_serve_one_client(database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(database_url)
    store.init_schema()
    seed(store)
    add_app(store)
    servers = [DirsyncProcess(database_url, tmp_path / f"server{i}.log") for i in range(2)]
    try:
        session = requests.Session()
        session.auth = (APP_NAME, APP_PASSWORD)
        client = CrowdCache(servers[0].url + "/rest/usermanagement/1", session)
        client.full_sync()
        snap = org()
        for round_ in range(6):
            snap.users.append(User(f"user{round_}", email=f"u{round_}@example.com"))
            snap.user_memberships.add((name_key("backend"), name_key(f"user{round_}")))
            if round_ % 2:
                snap.users[0] = replace(snap.users[0], display_name=f"Alice {round_}")
            seed(store, snap)
            client.base = servers[round_ % 2].url + "/rest/usermanagement/1"
            assert client.incremental(), f"round {round_}: token from the other process refused"
        fresh = CrowdCache(servers[1].url + "/rest/usermanagement/1", session)
        fresh.full_sync()
        assert client.state() == fresh.state()
        assert client.full_syncs == 1 and client.incremental_syncs == 6
    finally:
        for server in servers:
            server.stop()
        store.dispose()


def test_a_transaction_in_flight_is_never_skipped(api) -> None:  # type: ignore[no-untyped-def]
    """Two writers overlap. The first holds its transaction open after writing; the second must
    not commit (and so not become visible with later sequence numbers) before the first does,
    or a client could take a token past the first's entries and miss them for good."""
    client = CrowdCache(api.base, api.session)
    client.full_sync()
    store = api.store
    first_wrote = threading.Event()
    release_first = threading.Event()
    second_done = threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with store.write() as conn:
                directory = ensure_directory(conn, "fixtures", "fixtures")
                snap = org()
                snap.users.append(User("slow"))
                apply_snapshot(conn, directory, snap)
                first_wrote.set()
                assert release_first.wait(30)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def second() -> None:
        try:
            first_wrote.wait(30)
            snap = org()
            snap.users += [User("slow"), User("fast")]
            seed(store, snap)
            second_done.set()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    assert first_wrote.wait(30)
    time.sleep(0.5)
    # While the first is open: the second waits for it, and the feed shows neither.
    assert not second_done.is_set(), "a second writer committed while the first was in flight"
    assert client.incremental()
    assert "slow" not in client.state()["users"] and "fast" not in client.state()["users"]
    release_first.set()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    assert client.incremental()
    users = client.state()["users"]
    assert "slow" in users and "fast" in users
    fresh = CrowdCache(api.base, api.session)
    fresh.full_sync()
    assert client.state() == fresh.state()


def test_events_cli_status_and_trim(api, settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from dirsync.cli import main

    env = {"DIRSYNC_DATABASE_URL": settings.database_url, "DIRSYNC_CONFIG": "",
           "DIRSYNC_EVENTS_RETENTION_DAYS": "0", "DIRSYNC_EVENTS_RETENTION_COUNT": "1"}
    runner = CliRunner()
    status = runner.invoke(main, ["events", "status"], env=env)
    assert status.exit_code == 0, status.output
    assert f"current token:   {token_of(api)}" in status.output
    trimmed = runner.invoke(main, ["events", "trim"], env=env)
    assert trimmed.exit_code == 0, trimmed.output
    assert "removed" in trimmed.output
    assert "journal entries: 1" in runner.invoke(main, ["events", "status"], env=env).output


def test_a_bulk_change_is_one_reset_that_expires_older_tokens(store, live_app) -> None:  # type: ignore[no-untyped-def]
    from dirsync.sync.fixtures import apply_fixtures

    seed(store)
    add_app(store)
    narrow = load_settings(environ={}, overrides={"database_url": store.url,
                                                  "events.max_journal_rows": 50})
    api = start_api(live_app, store, narrow)
    client = CrowdCache(api.base, api.session)
    client.full_sync()
    before = feed.status(store).entries
    snap = org()
    snap.users += [User(f"bulk{i}") for i in range(60)]
    apply_fixtures(store, "fixtures", snap, narrow.events_max_journal_rows)
    assert feed.status(store).entries == before + 1  # one reset row, not sixty
    assert not client.incremental(), "a token from before the bulk change must expire"
    assert client.full_syncs == 2 and "bulk59" in client.state()["users"]
    snap.users.append(User("after"))
    apply_fixtures(store, "fixtures", snap, narrow.events_max_journal_rows)
    assert client.incremental()  # the token taken after the reset works
    assert "after" in client.state()["users"]
    assert feed.trim(store, days=0, keep=1).deleted >= before  # rows under the mark go too

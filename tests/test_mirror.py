"""Mirroring a real slapd into the store (SQLite and PostgreSQL): full sync, identity across
renames and moves, faults that must leave the store alone, the mass-deletion guard, names in
two directories, one sync at a time, login by bind over HTTP, and the commands."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from crowd_cache import CrowdCache
from factories import add_app, start_api
from slapd import LIMITED_DN, LIMITED_PASSWORD, SYNC_DN, SYNC_PASSWORD

from dirsync import scheduler
from dirsync.cli import main
from dirsync.settings import load_settings
from dirsync.store import reads, runs
from dirsync.store.locks import directory_lock
from dirsync.sync.mirror import directory_status, sync_directory

XML = {"Accept": "application/xml"}


def names(store: Any, kind: str = "users") -> set[str]:
    from sqlalchemy import select

    from dirsync.store.tables import groups, users

    table = users if kind == "users" else groups
    with store.read() as conn:
        return {r.name for r in conn.execute(select(table.c.name))}


def external_ids(store: Any) -> dict[str, str]:
    from sqlalchemy import select

    from dirsync.store.tables import users

    with store.read() as conn:
        return {r.name: r.external_id for r in conn.execute(select(users.c.name, users.c.external_id))}


def login(api: Any, user: str, password: str) -> requests.Response:
    body = f"<password><value>{password}</value></password>"
    return api.post("/authentication", params={"username": user}, data=body.encode(),
                    headers={**XML, "Content-Type": "application/xml"})


def reason(response: requests.Response) -> str:
    return response.text.split("<reason>")[1].split("</reason>")[0]


# --- full sync ---------------------------------------------------------------------------------


def test_full_sync_of_the_seed(store, directory_config) -> None:  # type: ignore[no-untyped-def]
    config = directory_config()
    result = sync_directory(store, config)
    assert result.status == "ok", result.summary()
    assert {"alice", "bob", "carol", "erin", "dave"} <= names(store)
    assert "stranger" not in names(store)  # outside the configured base
    ids = external_ids(store)
    assert all(len(ids[n]) == 36 for n in ("alice", "bob"))  # entryUUIDs
    again = sync_directory(store, config)
    assert again.status == "ok" and again.counts is not None and again.counts.total == 0
    status = directory_status(store, "corp").describe()
    assert status.startswith("corp: up to date as of"), status


def test_rename_and_move_keep_the_user(store, directory_config, ldap_tree) -> None:  # type: ignore[no-untyped-def]
    tree = ldap_tree
    alice = tree.add_user("alice2")
    tree.add_user("bob2")
    tree.add_group("team", [alice])
    config = directory_config(user_base_dn=tree.base, group_base_dn=tree.groups)
    assert sync_directory(store, config).status == "ok"
    before = external_ids(store)["alice2"]
    sub = tree.add_ou("moved", tree.people)
    tree.server.modrdn(alice, "uid=alice.renamed", new_superior=sub)  # rename and move at once
    tree.server.modrdn(f"cn=team,{tree.groups}", "cn=team-renamed")
    result = sync_directory(store, config)
    assert result.status == "ok", result.summary()
    ids = external_ids(store)
    assert "alice2" not in ids and ids["alice.renamed"] == before
    with store.read() as conn:
        group = reads.find_group(conn, "team-renamed")
        user = reads.find_user(conn, "alice.renamed")
        assert group is not None and user is not None
        assert reads.is_user_member(conn, user.id, group.id, nested=False)


def nested_groups_of(store: Any, user: str) -> set[str]:
    with store.read() as conn:
        row = reads.find_user(conn, user)
        return {g.name for g in reads.groups_of_user(conn, row.id, nested=True, start=0, limit=None)}


def test_nesting_cycle_diamond_and_chain(store, directory_config) -> None:  # type: ignore[no-untyped-def]
    assert sync_directory(store, directory_config()).status == "ok"
    with store.read() as conn:
        children = {group: set(child_groups) for group, _, child_groups in reads.iter_memberships(conn)}
    assert children["cycle-a"] == {"cycle-b"} and children["cycle-c"] == {"cycle-a"}
    assert children["diamond-top"] == {"diamond-left", "diamond-right"}
    assert children["chain-01"] == {"chain-02"} and children["chain-11"] == {"chain-12"}
    alice = nested_groups_of(store, "alice")
    assert {"diamond-bottom", "diamond-left", "diamond-right", "diamond-top"} <= alice
    carol = nested_groups_of(store, "carol")
    assert {f"chain-{i:02d}" for i in range(1, 13)} <= carol  # 12 deep
    assert {"cycle-a", "cycle-b", "cycle-c"} <= carol  # through the cycle, which terminates


# --- faults ------------------------------------------------------------------------------------


def test_server_stopped_mid_sync_leaves_the_store_alone(store, directory_config, private_slapd) -> None:  # type: ignore[no-untyped-def]
    config = directory_config(private_slapd)
    assert sync_directory(store, config).status == "ok"
    before = names(store)
    private_slapd.modify(f"dn: uid=alice,ou=people,dc=example,dc=com\nchangetype: delete\n")

    def stop_when_groups_start(phase: str, _count: int) -> None:
        if phase == "groups":
            private_slapd.kill()

    result = sync_directory(store, config, progress=stop_when_groups_start)
    assert result.status == "failed"
    assert names(store) == before  # alice is still served: nothing was applied
    status = directory_status(store, "corp").describe()
    assert status.startswith("corp: stale since ") and ", because " in status, status


def test_partial_read_is_refused(store, directory_config) -> None:  # type: ignore[no-untyped-def]
    assert sync_directory(store, directory_config()).status == "ok"
    before = names(store)
    limited = directory_config(bind_dn=LIMITED_DN, password=LIMITED_PASSWORD)
    result = sync_directory(store, limited)
    assert result.status == "failed", result.summary()
    assert "limit" in (result.error or "").lower()
    assert names(store) == before


def test_mass_deletion_guard(store, directory_config, ldap_tree) -> None:  # type: ignore[no-untyped-def]
    tree = ldap_tree
    dns = [tree.add_user(f"u{i:02d}") for i in range(40)]
    config = directory_config(user_base_dn=tree.people, group_base_dn=tree.groups)
    assert sync_directory(store, config).status == "ok"
    for dn in dns[:12]:  # 30 %, above the 5 % default and the floor of 10
        tree.server.delete(dn)
    result = sync_directory(store, config)
    assert result.status == "refused", result.summary()
    assert "12 of 40 users" in (result.error or "") and "--allow-mass-delete" in (result.error or "")
    assert len(names(store)) == 40
    assert "because refused" in directory_status(store, "corp").describe()
    forced = sync_directory(store, config, allow_mass_delete=True)
    assert forced.status == "ok" and forced.counts is not None and forced.counts.users_removed == 12


def test_one_sync_per_directory_at_a_time(store, directory_config) -> None:  # type: ignore[no-untyped-def]
    config = directory_config()
    with directory_lock(store, "corp") as held:
        assert held
        result = sync_directory(store, config)
    assert result.status == "busy"
    assert sync_directory(store, config).status == "ok"


def test_a_name_in_two_directories_goes_to_the_first(store, directory_config, ldap_tree) -> None:  # type: ignore[no-untyped-def]
    tree = ldap_tree
    second_people = tree.add_ou("people2")
    tree.add_user("shared")
    tree.add_user("shared", ou=second_people)
    tree.add_user("only-second", ou=second_people)
    first = directory_config(name="first", user_base_dn=tree.people, group_base_dn=tree.groups)
    second = directory_config(name="second", user_base_dn=second_people, group_base_dn=tree.groups)
    order = ["first", "second"]
    # The second directory syncs first and takes the name; the first then claims it.
    assert sync_directory(store, second, order).status == "ok"
    result = sync_directory(store, first, order)
    assert result.status == "ok"
    assert any("comes first and takes it" in n for n in result.notes)
    result = sync_directory(store, second, order)
    assert any("which comes first; ignored here" in n for n in result.notes)
    with store.read() as conn:
        assert reads.find_user_with_password(conn, "shared").directory == "first"
        assert reads.find_user_with_password(conn, "only-second").directory == "second"
    with store.read() as conn:
        assert "ignored here" in (runs.history(conn, "second", limit=1)[0].notes or "")


# --- login by bind, events, over HTTP ----------------------------------------------------------


@pytest.fixture
def ldap_api(store, directory_config, live_app):  # type: ignore[no-untyped-def]
    config = directory_config()
    assert sync_directory(store, config).status == "ok"
    add_app(store)
    settings = load_settings(environ={}, overrides={"database_url": store.url})
    settings = type(settings)(**{**settings.__dict__, "directories": (config,)})
    return start_api(live_app, store, settings)


def test_login_by_bind(ldap_api) -> None:  # type: ignore[no-untyped-def]
    ok = login(ldap_api, "alice", "alice-password")
    assert ok.status_code == 200 and 'name="alice"' in ok.text
    wrong = login(ldap_api, "alice", "not-her-password")
    assert wrong.status_code == 400 and reason(wrong) == "INVALID_USER_AUTHENTICATION"
    empty = login(ldap_api, "alice", "")
    assert empty.status_code == 400 and reason(empty) == "INVALID_USER_AUTHENTICATION"
    locked = login(ldap_api, "dave", "dave-password")  # ppolicy-locked in the directory
    assert locked.status_code == 400 and reason(locked) == "INACTIVE_ACCOUNT"
    unknown = login(ldap_api, "nobody", "x")
    assert reason(unknown) == "USER_NOT_FOUND"


def test_login_when_the_directory_is_down_is_not_a_wrong_password(store, directory_config, private_slapd, live_app) -> None:  # type: ignore[no-untyped-def]
    config = directory_config(private_slapd)
    assert sync_directory(store, config).status == "ok"
    add_app(store)
    settings = load_settings(environ={}, overrides={"database_url": store.url})
    api = start_api(live_app, store, type(settings)(**{**settings.__dict__, "directories": (config,)}))
    private_slapd.stop()
    r = login(api, "alice", "alice-password")
    assert r.status_code == 500 and reason(r) == "OPERATION_FAILED"
    assert "could not be reached" in r.text


def test_ldap_changes_reach_clients_as_events(store, directory_config, ldap_tree, live_app) -> None:  # type: ignore[no-untyped-def]
    tree = ldap_tree
    alice = tree.add_user("eva")
    tree.add_group("crew", [alice])
    config = directory_config(user_base_dn=tree.people, group_base_dn=tree.groups)
    assert sync_directory(store, config).status == "ok"
    add_app(store)
    api = start_api(live_app, store, load_settings(environ={}, overrides={"database_url": store.url}))
    client = CrowdCache(api.base, api.session)
    client.full_sync()
    tree.server.modrdn(alice, "uid=eva.renamed")
    tree.add_user("newbie")
    assert sync_directory(store, config).status == "ok"
    assert client.incremental()
    fresh = CrowdCache(api.base, api.session)
    fresh.full_sync()
    assert client.state() == fresh.state()
    assert "eva.renamed" in client.state()["users"]


# --- scheduler and commands ----------------------------------------------------------------------


def test_scheduler_syncs_each_directory(store, directory_config, settings) -> None:  # type: ignore[no-untyped-def]
    config = directory_config()
    jobs = scheduler.start(type(settings)(**{**settings.__dict__, "directories": (config,)}),
                           store, first_run_in=0.1)
    try:
        done = threading.Event()
        for _ in range(150):
            if directory_status(store, "corp").last is not None:
                done.set()
                break
            done.wait(0.1)
        assert done.is_set(), "the scheduled sync did not run"
    finally:
        jobs.shutdown(wait=True)
    assert directory_status(store, "corp").last.status == "ok"


def test_commands(store, slapd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "dirsync.toml"
    config.write_text(f'''
database_url = "{store.url}"

[[directories]]
name = "corp"
preset = "openldap"
urls = ["{slapd.url}"]
bind_dn = "{SYNC_DN}"
bind_password_env = "CORP_LDAP_PASSWORD"
user_base_dn = "ou=people,dc=example,dc=com"
group_base_dn = "ou=groups,dc=example,dc=com"
''')
    env = {"DIRSYNC_CONFIG": str(config), "CORP_LDAP_PASSWORD": SYNC_PASSWORD,
           "DIRSYNC_DATABASE_URL": store.url}
    runner = CliRunner()
    tested = runner.invoke(main, ["directory", "test", "corp"], env=env)
    assert tested.exit_code == 0, tested.output
    assert "OK      bind" in tested.output
    synced = runner.invoke(main, ["sync", "corp"], env=env)
    assert synced.exit_code == 0, synced.output
    assert "corp: full sync ok, users +" in synced.output
    assert SYNC_PASSWORD not in synced.output
    status = runner.invoke(main, ["status"], env=env)
    assert status.exit_code == 0 and "corp: up to date as of" in status.output
    assert "corp" in status.output and " ok " in status.output
    wrong = runner.invoke(main, ["directory", "test", "corp"],
                          env={**env, "CORP_LDAP_PASSWORD": "wrong"})
    assert wrong.exit_code == 1 and "FAILED  bind" in wrong.output
    missing = runner.invoke(main, ["sync", "nope"], env=env)
    assert missing.exit_code == 2 and "no directory named 'nope'" in missing.output

"""The `dirsync` command: init, fixtures, applications, serve — as operators' scripts use it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import func, select

from dirsync.cli import main
from dirsync.store.db import Store
from dirsync.store.tables import group_memberships, groups, user_memberships, users
from servers import free_port

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(database_url):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(main, list(args), input=input,
                               env={"DIRSYNC_DATABASE_URL": database_url, "DIRSYNC_CONFIG": ""})
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("init")
    return invoke


def counts(database_url: str) -> tuple[int, int, int, int]:
    store = Store(database_url)
    with store.read() as conn:
        out = tuple(conn.execute(select(func.count()).select_from(t)).scalar_one()
                    for t in (users, groups, user_memberships, group_memberships))
    store.dispose()
    return out  # type: ignore[return-value]


def test_init_is_repeatable(run) -> None:  # type: ignore[no-untyped-def]
    assert "up to date" in run("init").output


def test_commands_refuse_an_uninitialised_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["app", "list"], env={
        "DIRSYNC_DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db", "DIRSYNC_CONFIG": ""})
    assert result.exit_code == 2
    assert "run `dirsync init` first" in result.output


def test_bad_configuration_stops_with_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[server]\nport = 'x'\n")
    result = CliRunner().invoke(main, ["--config", str(config), "init"])
    assert result.exit_code == 2
    assert "server.port" in result.output and "Traceback" not in result.output


FIXTURE_V1 = """
users:
  - {username: alice, first_name: Alice, password: alice-pw-1}
  - {username: bob, first_name: Bob}
  - {username: carol}
groups:
  - {name: devs, users: [alice, bob], groups: [ops]}
  - {name: ops, users: [carol]}
"""

FIXTURE_V2 = """
users:
  - {username: alice, first_name: Alicia, password: alice-pw-1}
  - {username: bob, first_name: Bob}
  - {username: dave}
groups:
  - {name: devs, users: [alice, dave]}
  - {name: ops, users: [bob]}
"""


def test_fixture_load_is_idempotent_and_applies_only_the_difference(run, database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "org.yaml"
    path.write_text(FIXTURE_V1)
    assert "applied: users +3" in run("fixtures", "load", str(path)).output
    assert counts(database_url) == (3, 2, 3, 1)
    assert "no changes" in run("fixtures", "load", str(path)).output
    path.write_text(FIXTURE_V2)
    out = run("fixtures", "load", str(path)).output
    # alice renamed her first name; carol left, dave came; memberships moved; nesting removed.
    assert "users +1 ~1 -1" in out
    assert counts(database_url) == (3, 2, 3, 0)
    assert "no changes" in run("fixtures", "load", str(path)).output


def test_bad_fixture_changes_nothing(run, database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "org.yaml"
    good.write_text(FIXTURE_V1)
    run("fixtures", "load", str(good))
    bad = tmp_path / "bad.yaml"
    bad.write_text("users:\n  - {username: alice}\n  - {username: ALICE}\n")
    result = run("fixtures", "load", str(bad), ok=False)
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "Traceback" not in result.output
    assert counts(database_url) == (3, 2, 3, 1)


def test_shipped_fixtures_load(run, database_url) -> None:  # type: ignore[no-untyped-def]
    paths = sorted(str(p) for p in (REPO / "fixtures").glob("*") if p.suffix in (".ldif", ".yaml"))
    assert any(p.endswith("demo.ldif") for p in paths)
    for path in paths:
        run("fixtures", "load", path)
        assert "no changes" in run("fixtures", "load", path).output


def test_application_lifecycle(run) -> None:  # type: ignore[no-untyped-def]
    out = run("app", "add", "bitbucket", "--allow", "10.0.0.0/8", "--allow", "::1").output
    assert "password (shown once): " in out
    password = out.rsplit("password (shown once): ", 1)[1].strip()
    assert len(password) >= 24
    listed = run("app", "list").output
    assert "bitbucket\t10.0.0.0/8, ::1/128" in listed and password not in listed
    assert run("app", "add", "bitbucket", "--allow", "10.0.0.0/8", ok=False).exit_code == 2
    run("app", "allow", "bitbucket", "192.0.2.0/24")
    assert "192.0.2.0/24" in run("app", "list").output
    run("app", "deny", "bitbucket", "10.0.0.0/8")
    assert "10.0.0.0/8" not in run("app", "list").output
    out = run("app", "passwd", "bitbucket", "--password-stdin", input="a-chosen-password\n").output
    assert "a-chosen-password" not in out
    run("app", "remove", "bitbucket")
    assert "no applications" in run("app", "list").output
    assert run("app", "remove", "bitbucket", ok=False).exit_code == 2


@pytest.mark.parametrize("allow, fragment", [
    ("10.1.2.3/8", "did you mean 10.0.0.0/8"),
    ("example.com", "example.com"),
])
def test_bad_allow_list_entries_are_refused(run, allow, fragment) -> None:  # type: ignore[no-untyped-def]
    result = run("app", "add", "x", "--allow", allow, ok=False)
    assert result.exit_code == 2 and fragment in result.output


def test_short_password_from_stdin_is_refused(run) -> None:  # type: ignore[no-untyped-def]
    result = run("app", "add", "x", "--allow", "::1", "--password-stdin", input="short\n", ok=False)
    assert result.exit_code == 2 and "at least 12" in result.output


def test_serve_runs_gunicorn_over_a_real_socket(run, database_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "org.yaml"
    path.write_text(FIXTURE_V1)
    run("fixtures", "load", str(path))
    run("app", "add", "bb", "--allow", "127.0.0.1", "--password-stdin", input="bb-password-123\n")
    port = free_port()
    env = {**os.environ, "DIRSYNC_DATABASE_URL": database_url, "DIRSYNC_CONFIG": "",
           "DIRSYNC_SERVER_WORKERS": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "dirsync", "serve", "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                # refused before gunicorn binds; a read timeout while its first worker boots
                pass
            assert time.monotonic() < deadline, "dirsync serve did not come up"
            assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
            time.sleep(0.2)
        r = requests.get(url + "/rest/usermanagement/1/user/group/nested",
                         params={"username": "CAROL"}, auth=("bb", "bb-password-123"))
        assert r.status_code == 200
        assert b'name="devs"' in r.content and b'name="ops"' in r.content
        assert r.headers["X-Embedded-Crowd-Version"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()  # type: ignore[union-attr]

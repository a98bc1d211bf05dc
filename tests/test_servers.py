"""Tests of the test infrastructure itself: the servers really start, isolate and restart.

If these fail, every other failure in the run is suspect, so they check the properties the
rest of the suite relies on: PostgreSQL is reachable on 127.0.0.1 only, databases are
isolated, data survives a crash-restart on the same URL, the LiveServer answers over a real
socket, and a missing server skips locally but fails under CI=true.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Callable, Iterable

import psycopg
import pytest
import requests
from sqlalchemy import func, select

from dirsync.store.db import Store, StoreError, utcnow
from dirsync.store.tables import directories
from servers import (
    LiveServer,
    MissingServer,
    PostgresServer,
    find_postgres_bin_dir,
    ipv6_available,
    skip_or_fail,
)


def _db_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


# -- PostgreSQL ----------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_accepts_connections_on_loopback_only(postgres_server: PostgresServer) -> None:
    with postgres_server.connect() as conn:
        version = conn.execute("SHOW server_version").fetchone()
        listen = conn.execute("SHOW listen_addresses").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
        encoding = conn.execute("SHOW server_encoding").fetchone()
    assert version and int(version[0].split(".")[0]) >= 13  # DROP DATABASE ... WITH (FORCE)
    assert listen == ("127.0.0.1",)
    assert fsync == ("off",)
    assert encoding == ("UTF8",)
    port = postgres_server.port
    assert postgres_server.url("x") == f"postgresql+psycopg://postgres@127.0.0.1:{port}/x"


@pytest.mark.postgres
def test_postgres_databases_are_isolated(postgres_server: PostgresServer) -> None:
    first, second = (_db_name(postgres_server.create_database()) for _ in range(2))
    try:
        assert first != second
        with postgres_server.connect(first) as conn:
            conn.execute("CREATE TABLE only_here (x int)")
            conn.execute("INSERT INTO only_here VALUES (1)")
        with postgres_server.connect(second) as conn:
            found = conn.execute("SELECT to_regclass('only_here')").fetchone()
        assert found == (None,)
    finally:
        postgres_server.drop_database(first)
        postgres_server.drop_database(second)
    with postgres_server.connect() as conn:
        left = conn.execute("SELECT count(*) FROM pg_database WHERE datname IN (%s, %s)",
                            (first, second)).fetchone()
    assert left == (0,)


@pytest.mark.postgres
def test_postgres_crash_and_restart_keeps_committed_data_and_url(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.create_database()
    store = Store(url)
    try:
        store.init_schema()
        with store.write() as conn:
            conn.execute(directories.insert().values(name="survivor", kind="fixtures",
                                                     created_at=utcnow()))
        port = postgres_server.port
        # Immediately after the commit: an async commit would be lost here (see PostgresServer).
        postgres_server.stop()
        try:
            with pytest.raises(psycopg.OperationalError):
                postgres_server.connect(connect_timeout=2).close()
            # What fault-injection tests will see through the store.
            with pytest.raises(StoreError):
                with store.read() as conn:
                    conn.execute(select(1))
        finally:
            postgres_server.start()
        assert postgres_server.port == port
        with store.read() as conn:
            names = conn.execute(select(directories.c.name)).scalars().all()
        assert names == ["survivor"]
    finally:
        store.dispose()
        postgres_server.ensure_running()
        postgres_server.drop_database(_db_name(url))


@pytest.mark.postgres
def test_postgres_server_close_removes_its_files_and_frees_its_port() -> None:
    # A second, private cluster: the session one must keep running for other tests.
    try:
        server = PostgresServer()
    except MissingServer as exc:
        skip_or_fail(str(exc))
    with server:
        base, port = server.base_dir, server.port
        assert base is not None and (base / "data" / "PG_VERSION").is_file()
        if os.geteuid() == 0:
            # PostgreSQL refuses root; the cluster must belong to the postgres user.
            assert (base / "data").stat().st_uid != 0
    assert not base.exists()
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))


def _fake_install(root: Path, dirs: Iterable[str]) -> None:
    for rel in dirs:
        bin_dir = root / rel
        bin_dir.mkdir(parents=True)
        for name in ("initdb", "pg_ctl"):
            (bin_dir / name).write_text("#!/bin/sh\n")
            (bin_dir / name).chmod(0o755)


def test_find_postgres_prefers_path_then_highest_version(tmp_path: Path) -> None:
    _fake_install(tmp_path / "lib", ["9.6/bin", "15/bin", "16/bin", "10/bin"])
    pattern = str(tmp_path / "lib" / "*" / "bin")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_postgres_bin_dir(path=str(empty), globs=(pattern,)) == tmp_path / "lib/16/bin"

    _fake_install(tmp_path, ["onpath"])
    found = find_postgres_bin_dir(path=str(tmp_path / "onpath"), globs=(pattern,))
    assert found == tmp_path / "onpath"

    with pytest.raises(MissingServer, match="apt-get install postgresql"):
        find_postgres_bin_dir(path=str(empty), globs=(str(empty / "*" / "bin"),))


@pytest.mark.parametrize(
    ("ci", "outcome"),
    [("true", pytest.fail.Exception), ("", pytest.skip.Exception),
     ("false", pytest.skip.Exception)],
)
def test_missing_server_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="slapd is not installed"):
        skip_or_fail("slapd is not installed")


# -- LiveServer ----------------------------------------------------------------------------


def _echo_app(environ: dict, start_response: Callable) -> list[bytes]:  # type: ignore[type-arg]
    body = f"{environ['REMOTE_ADDR']} {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_live_server_answers_over_a_real_socket(live_app: Callable[..., LiveServer]) -> None:
    server = live_app(_echo_app)
    assert server.url == f"http://127.0.0.1:{server.port}"
    response = requests.get(f"{server.url}/ping", timeout=5)
    assert response.status_code == 200
    # REMOTE_ADDR comes from the TCP peer, so this went through the network stack.
    assert response.text == "127.0.0.1 /ping"


def test_live_server_stop_closes_the_port() -> None:
    with LiveServer(_echo_app) as server:
        url = server.url
        with requests.Session() as session:
            assert session.get(url, timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)


def test_live_server_serves_concurrent_requests(live_app: Callable[..., LiveServer]) -> None:
    server = live_app(_echo_app)
    # A held-open keep-alive connection must not block another client (threaded=True).
    with requests.Session() as held, requests.Session() as other:
        assert held.get(f"{server.url}/a", timeout=5).text.endswith("/a")
        assert other.get(f"{server.url}/b", timeout=5).text.endswith("/b")


@pytest.mark.skipif(not ipv6_available(), reason="this host has no IPv6 loopback")
def test_live_server_on_ipv6_loopback(live_app: Callable[..., LiveServer]) -> None:
    server = live_app(_echo_app, host="::1")
    assert server.url == f"http://[::1]:{server.port}"
    response = requests.get(f"{server.url}/six", timeout=5)
    assert response.text == "::1 /six"


# -- store fixture on both databases -------------------------------------------------------


def _add_directory(store: Store, name: str) -> None:
    with store.write() as conn:
        conn.execute(directories.insert().values(name=name, kind="fixtures", created_at=utcnow()))


def test_store_fixture_round_trips_a_row(store: Store, database_url: str) -> None:
    assert store.engine.dialect.name == ("sqlite" if database_url.startswith("sqlite")
                                         else "postgresql")
    # The same name as the next test: a store shared between tests would hit the unique key.
    _add_directory(store, "isolation-probe")
    with store.read() as conn:
        rows = conn.execute(select(directories.c.name, directories.c.kind)).all()
    assert [tuple(r) for r in rows] == [("isolation-probe", "fixtures")]


def test_store_fixture_is_fresh_for_each_test(store: Store) -> None:
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(directories)).scalar() == 0
    _add_directory(store, "isolation-probe")

"""Shared fixtures: real servers and a fresh store per test. Server logic lives in servers.py.

Fixtures
* `postgres_server` (session) — one PostgresServer for the run; started on first use only.
* `database_url` — parametrised: `sqlite` (a file in tmp_path) and `postgres` (a fresh
  database per test, dropped afterwards; marked `postgres`, so `-m "not postgres"` skips it).
* `store` — a `Store` on `database_url` with the schema created; disposed after the test.
* `settings` — `Settings` pointing at `database_url`, ignoring the developer's DIRSYNC_* env.
* `live_app` — factory: `live_app(app, host="127.0.0.1") -> LiveServer`, stopped at teardown.

A missing PostgreSQL skips the postgres tests locally and fails them under CI=true.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

import pytest

from dirsync.settings import Settings, load_settings
from dirsync.store.db import Store
# tests/ has no __init__.py, so pytest puts tests/ itself on sys.path (rootdir-relative
# `tests.servers` would need `pythonpath = .`); keep one spelling so there is one module.
from servers import LiveServer, MissingServer, PostgresServer, skip_or_fail

# slapd fixtures (`slapd`, `ldap_tree`, `private_slapd`, `directory_config`) for every module.
pytest_plugins = ["ldap_fixtures"]

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    try:
        server = PostgresServer()
    except MissingServer as exc:
        skip_or_fail(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    # Looked up lazily so a sqlite-only selection never starts PostgreSQL.
    server: PostgresServer = request.getfixturevalue("postgres_server")
    server.ensure_running()  # a fault test may have left it stopped
    url = server.create_database()
    yield url
    server.ensure_running()
    server.drop_database(url.rsplit("/", 1)[1])


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    store.init_schema()
    yield store
    store.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    # environ={} so a developer's DIRSYNC_* variables cannot change what the tests see.
    return load_settings(environ={}, overrides={"database_url": database_url})


@pytest.fixture
def live_app() -> Iterator[Callable[..., LiveServer]]:
    started: list[LiveServer] = []

    def serve(app: WSGIApplication, host: str = "127.0.0.1") -> LiveServer:
        server = LiveServer(app, host=host).start()
        started.append(server)
        return server

    yield serve
    for server in reversed(started):
        server.stop()

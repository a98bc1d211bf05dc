"""Control of the real servers the test suite runs against. The only place tests start servers.

* `PostgresServer` — a throwaway PostgreSQL cluster (`initdb` + `pg_ctl`) in a temp dir,
  listening on 127.0.0.1 on a free port; stopped and restarted for real by fault tests.
* `LiveServer` — a WSGI app served over a real socket by werkzeug in a background thread.
* `skip_or_fail` — what a missing server binary means: a skip on a developer's machine, a
  failure under `CI=true` (CI installs every server, so a missing one is a broken CI image).

This module must not import dirsync: it controls servers, it does not test the product.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Self

import psycopg
import pytest
from psycopg import sql
from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

# initdb and postgres refuse to run as root; as root we run them as this user.
POSTGRES_OS_USER = "postgres"
# The cluster's superuser name, whoever runs it, so URLs are the same as root and not.
POSTGRES_ROLE = "postgres"
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian/Ubuntu keep these off PATH
# A unix socket path must fit in sockaddr_un.sun_path (108 bytes on Linux, 104 on macOS).
_MAX_SOCKET_PATH = 100


class MissingServer(Exception):
    """A server binary (or the user to run it as) is not installed on this machine.

    Only this exception means "skip locally"; any other failure to start a server is a real
    error and is reported as one.
    """


class ServerError(Exception):
    """A server is installed but did not start or stop; the message carries its log."""


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test because a server is missing — or fail it when running in CI.

    CI is expected to install every server the suite uses, so under `CI=true` a missing one
    means the CI script is broken and must not turn into a quietly green run.
    """
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: CI must install every server the tests use)",
                    pytrace=False)
    pytest.skip(reason)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now.

    The port is released before it is used, so another process can take it in between;
    `PostgresServer.start` retries with a new port when that happens.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ipv6_available() -> bool:
    """True when this host can listen on ::1 (containers often run without IPv6)."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def _version_key(path: Path) -> tuple[int, ...]:
    # /usr/lib/postgresql/9.6/bin < /usr/lib/postgresql/15/bin: compare numbers, not strings.
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (-1,)


def find_postgres_bin_dir(
    path: str | None = None, globs: tuple[str, ...] | None = None
) -> Path:
    """The directory holding `initdb` and `pg_ctl`: PATH first, then the newest Debian install.

    Both must come from the same directory: `pg_ctl` runs the `postgres` next to itself, and
    a data directory made by one major version will not start under another.
    """
    globs = (POSTGRES_BIN_GLOB,) if globs is None else globs
    initdb = shutil.which("initdb", path=path)
    if initdb:
        # Follow symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb).
        bin_dir = Path(initdb).resolve().parent
        if (bin_dir / "pg_ctl").is_file():
            return bin_dir
    candidates = [
        Path(found)
        for pattern in globs
        for found in glob.glob(pattern)
        if (Path(found) / "initdb").is_file() and (Path(found) / "pg_ctl").is_file()
    ]
    if not candidates:
        raise MissingServer(
            "PostgreSQL is not installed: no initdb/pg_ctl on PATH or in "
            f"{', '.join(globs)}; install it (Debian: apt-get install postgresql)"
        )
    return max(candidates, key=_version_key)


class ManagedServer:
    """The lifecycle every server the tests start shares: `start()` (subclasses), `restart`,
    `ensure_running` after a test that stopped it, `close()` (stop hard and delete the
    instance's files; safe to call more than once) and use as a context manager."""

    base_dir: Path | None = None
    running: bool

    def start(self) -> Any:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _halt(self) -> None:
        """Stop the way close() wants: at once, no clean shutdown needed."""
        raise NotImplementedError

    def restart(self) -> None:
        self.stop()
        self.start()

    def ensure_running(self) -> None:
        """Start the server again if a test stopped it and did not bring it back."""
        if not self.running:
            self.start()

    def close(self) -> None:
        atexit.unregister(self.close)
        try:
            self._halt()
        finally:
            if self.base_dir is not None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
                self.base_dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class PostgresServer(ManagedServer):
    """A private PostgreSQL cluster for one test run.

    `start()` runs initdb the first time and then starts the cluster; `stop()` kills it the
    way a crash would (`pg_ctl stop -m immediate`); a later `start()` brings the same data
    directory back on the same port, so URLs handed out earlier stay valid. `close()` stops
    it and removes the temp dir. Usable as a context manager.

    Durability: fsync, full_page_writes are off for speed — safe because we only ever
    simulate a crash of PostgreSQL, never of the OS, so written files survive in the page
    cache. synchronous_commit stays on deliberately: with fsync off it costs one write() per
    commit, and with it off a commit could still sit in shared memory when `stop()` kills
    the server, which would make "data survives a restart" tests flaky.
    """

    def __init__(self, *, bin_dir: Path | None = None, startup_timeout: float = 30.0) -> None:
        self.bin_dir = bin_dir or find_postgres_bin_dir()
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.running = False
        self._run_as = self._postgres_os_user()
        self.base_dir: Path | None = None

    @staticmethod
    def _postgres_os_user() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(POSTGRES_OS_USER)
        except KeyError:
            raise MissingServer(
                f"running as root, but there is no {POSTGRES_OS_USER!r} user to run PostgreSQL "
                "as (it refuses to run as root); install the postgresql package, which "
                "creates it, or run the tests as an ordinary user"
            ) from None

    # -- paths --------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self._base / "data"

    @property
    def socket_dir(self) -> Path:
        return self._base / "sockets"

    @property
    def log_path(self) -> Path:
        return self._base / "postgres.log"

    @property
    def _base(self) -> Path:
        if self.base_dir is None:
            raise ServerError("the PostgreSQL cluster has not been started yet")
        return self.base_dir

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Create the cluster on first use, then start it and wait until it takes connections."""
        if self.running:
            return
        if self.base_dir is None:
            self._init_cluster()
            # Only the first start may move to another port: nobody holds a URL yet.
            for attempt in range(3):
                try:
                    self._start_once()
                    break
                except ServerError:
                    if attempt == 2 or not self._port_was_taken():
                        raise
                    self.port = free_port(self.host)
                    self._append_conf(f"port = {self.port}\n")
        else:
            self._start_once()
        self._wait_ready()
        self.running = True

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server. "immediate" (default) is a crash; "fast" shuts down cleanly."""
        if not self.running:
            return
        self.running = False  # even if pg_ctl fails, do not pretend it is still fine
        self._run([self._bin("pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode, "-w",
                   "-t", str(int(self.startup_timeout))], what=f"pg_ctl stop -m {mode}")

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def _halt(self) -> None:
        self.stop()

    # -- databases ----------------------------------------------------------------------
    def url(self, dbname: str = "postgres") -> str:
        """A SQLAlchemy URL for `dbname` (trust auth, so no password)."""
        return f"postgresql+psycopg://{POSTGRES_ROLE}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", *, connect_timeout: int = 5) -> psycopg.Connection:
        """A raw autocommit psycopg connection; use it as a context manager so it closes."""
        return psycopg.connect(
            host=self.host, port=self.port, user=POSTGRES_ROLE, dbname=dbname,
            connect_timeout=connect_timeout, autocommit=True,
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default name t_<uuid>) and return its SQLAlchemy URL."""
        name = name or f"t_{uuid.uuid4().hex}"
        with self.connect() as conn:
            # template0 is never connected to, so CREATE cannot fail with "source database
            # is being accessed by other users", and it has nothing a test left behind.
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, cutting off any connection a test left open (PostgreSQL 13+)."""
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, ServerError):
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ----------------------------------------------------------------------
    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _init_cluster(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="dirsync-pg-"))
        self.base_dir = base
        atexit.register(self.close)  # no orphaned postmaster if the run dies before teardown
        if len(str(base / "sockets" / ".s.PGSQL.65535")) > _MAX_SOCKET_PATH:
            raise ServerError(
                f"the temp dir {base} is too deep for a unix socket path; set TMPDIR to a "
                "shorter directory such as /tmp"
            )
        self.socket_dir.mkdir()
        if self._run_as is not None:
            for path in (base, self.socket_dir):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
            # mkdtemp honours TMPDIR; the postgres user must be able to reach it.
            probe = subprocess.run(["runuser", "-u", POSTGRES_OS_USER, "--", "test", "-w",
                                    str(base)], cwd="/", capture_output=True)
            if probe.returncode != 0:
                raise ServerError(
                    f"the {POSTGRES_OS_USER!r} user cannot write to {base}; set TMPDIR to a "
                    "directory every user can reach, such as /tmp"
                )
        self._run(
            [self._bin("initdb"), "-D", str(self.data_dir), "-U", POSTGRES_ROLE,
             "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"],
            what="initdb",
        )
        self.port = free_port(self.host)
        self._append_conf(
            "\n# dirsync test cluster: local only, fast, throwaway\n"
            f"listen_addresses = '{self.host}'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.socket_dir}'\n"
            "fsync = off\n"
            "full_page_writes = off\n"
            "synchronous_commit = on\n"  # see the class docstring
            "max_connections = 200\n"
        )
        # Trust, but only over the unix socket in our private dir and TCP from 127.0.0.1.
        # Writing the existing file keeps its owner (postgres) intact.
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            "host  all all 127.0.0.1/32 trust\n"
        )

    def _append_conf(self, text: str) -> None:
        # Later lines win in postgresql.conf, so a retry can simply append a new port.
        with (self.data_dir / "postgresql.conf").open("a") as fh:
            fh.write(text)

    def _start_once(self) -> None:
        # pg_ctl -w waits until the postmaster reports ready, and notices when it dies.
        self._run(
            [self._bin("pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_path),
             "-w", "-t", str(int(self.startup_timeout))],
            what="pg_ctl start",
        )

    def _port_was_taken(self) -> bool:
        return "could not bind" in self.log_tail(20) or "in use" in self.log_tail(20)

    def _wait_ready(self) -> None:
        """Poll until a real TCP connection to 127.0.0.1 succeeds — what the tests will do."""
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with self.connect(connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        raise ServerError(
            f"PostgreSQL on {self.host}:{self.port} did not accept connections within "
            f"{self.startup_timeout:.0f}s: {last}\n--- server log ---\n{self.log_tail()}"
        )

    def _run(self, argv: list[str], *, what: str) -> None:
        if self._run_as is not None:
            argv = ["runuser", "-u", POSTGRES_OS_USER, "--", *argv]
        # cwd=/: as root our cwd may be /root, which the postgres user cannot enter.
        # PG* variables in the caller's environment must not redirect the cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        proc = subprocess.run(argv, cwd="/", env=env, capture_output=True, text=True,
                              timeout=self.startup_timeout + 30)
        if proc.returncode != 0:
            output = proc.stderr.strip() or proc.stdout.strip()
            raise ServerError(
                f"{what} failed (exit {proc.returncode}): {output}"
                f"\n--- server log ---\n{self.log_tail()}"
            )


class LiveServer:
    """A WSGI app served over a real socket by werkzeug in a background thread.

    `host` is 127.0.0.1 by default; pass "::1" for IPv6 (the test is skipped when the host
    has no IPv6). Use as a context manager or call `start()` / `stop()`.
    """

    def __init__(self, app: WSGIApplication, host: str = "127.0.0.1") -> None:
        self.app = app
        self.host = host
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> LiveServer:
        if self._server is not None:
            return self
        if ":" in self.host and not ipv6_available():
            pytest.skip(f"this host cannot listen on {self.host} (no IPv6)")
        self._server = make_server(self.host, 0, self.app, threaded=True)
        # A short poll interval makes stop() return in ~50 ms instead of the default 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"LiveServer {self.url}", daemon=True,
        )
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._server is None:
            raise ServerError("the LiveServer has not been started")
        return int(self._server.port)

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. http://127.0.0.1:41234 or http://[::1]:41234."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join(timeout=10)
        server.server_close()
        self._server = self._thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class DirsyncProcess:
    """`python -m dirsync serve` in its own process (gunicorn and all), on a free port.

    Its combined output is written to a file, so tests can read the log lines operators see."""

    def __init__(self, database_url: str, log_path: Path, workers: int = 1,
                 env: dict[str, str] | None = None) -> None:
        import sys

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        environ = {**os.environ, "DIRSYNC_DATABASE_URL": database_url, "DIRSYNC_CONFIG": "",
                   "DIRSYNC_SERVER_WORKERS": str(workers), **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dirsync", "serve", "--port", str(self.port)],
            env=environ, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        import requests

        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                # refused before gunicorn binds; a read timeout while its first worker boots
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"dirsync serve did not come up:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

"""Shared bench helpers: the bench application, a `dirsync serve` subprocess, RSS sampling.

Bench only; nothing in dirsync imports this. The server always listens on 127.0.0.1 on a free
port, and is stopped (SIGTERM to the gunicorn master we started, SIGKILL after a grace period)
when the block that started it ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import requests

try:  # psutil is optional: /proc is read directly when it is missing.
    import psutil
except ImportError:  # pragma: no cover - depends on the machine
    psutil = None

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
APP_NAME = "bench"
APP_PASSWORD = "bench-password-not-secret"
API = "/rest/usermanagement/1"


def dirsync_defaults() -> tuple[int, int]:
    """(server.workers, server.threads) as dirsync defaults them, so the bench follows them."""
    from dirsync.settings import KEYS

    defaults = {k.name: k.default for k in KEYS}
    return int(defaults["server.workers"]), int(defaults["server.threads"])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_application(url: str, name: str = APP_NAME, password: str = APP_PASSWORD) -> None:
    """Create the bench application (or reset its password) allowed from 127.0.0.1."""
    from dirsync.passwords import hash_app_password
    from dirsync.store import apps
    from dirsync.store.db import Store

    store = Store(url)
    store.check_schema()
    with store.write() as conn:
        if apps.find_application(conn, name) is None:
            apps.add_application(conn, name, hash_app_password(password), ["127.0.0.1/32"])
        else:
            apps.set_password_hash(conn, name, hash_app_password(password))
            if "127.0.0.1/32" not in apps.get_application(conn, name).networks:
                apps.allow_networks(conn, name, ["127.0.0.1/32"])
    store.dispose()


def store_counts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from dirsync.store.db import Store
    from dirsync.store.tables import group_memberships, groups, user_memberships, users

    store = Store(url)
    with store.read() as conn:
        counts = {
            name: int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
            for name, table in (("users", users), ("groups", groups),
                                ("user_memberships", user_memberships),
                                ("group_memberships", group_memberships))
        }
    store.dispose()
    return counts


def _dirsync_command() -> list[str]:
    script = Path(sys.executable).with_name("dirsync")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from dirsync.cli import main; sys.exit(main())"]


# --- process memory --------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    if psutil is not None:
        try:
            return [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared (copy-on-write) pages split between the processes."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class MemorySample:
    rss_kib: int
    pss_kib: int
    per_process_rss_kib: dict[int, int]


@dataclass
class RssSampler:
    """Samples RSS and PSS of a process and all its descendants every `interval` seconds."""

    pid: int
    interval: float = 0.1
    peak_rss_kib: int = 0
    peak_pss_kib: int = 0
    peak_process_rss_kib: dict[int, int] = field(default_factory=dict)
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> MemorySample:
        pids = [self.pid, *_children(self.pid)]
        per = {p: _rss_kib(p) for p in pids}
        return MemorySample(sum(per.values()), sum(_pss_kib(p) for p in pids), per)

    def _run(self) -> None:
        while not self._stop.is_set():
            s = self.sample()
            self.samples += 1
            self.peak_rss_kib = max(self.peak_rss_kib, s.rss_kib)
            self.peak_pss_kib = max(self.peak_pss_kib, s.pss_kib)
            for p, kib in s.per_process_rss_kib.items():
                self.peak_process_rss_kib[p] = max(self.peak_process_rss_kib.get(p, 0), kib)
            self._stop.wait(self.interval)

    def reset(self) -> None:
        self.peak_rss_kib = self.peak_pss_kib = self.samples = 0
        self.peak_process_rss_kib = {}

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def cpu_seconds(self) -> float:
        """CPU time (user+system) used so far by the server's processes."""
        return sum(cpu_seconds(p) for p in [self.pid, *_children(self.pid)])


# --- the server ------------------------------------------------------------------------------


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    workers: int
    threads: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return self.base + API

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def running_server(url: str, *, workers: int, threads: int, port: int | None = None,
                   log_level: str = "WARNING", startup_timeout: float = 60.0,
                   command: list[str] | None = None) -> Iterator[Server]:
    """`dirsync serve` on 127.0.0.1:<free port> against `url`, ready when /health answers.
    `command` replaces the `dirsync` command (bench experiments); "serve" is appended."""
    port = port or free_port()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log_path = OUT_DIR / f"server-{port}.log"
    env = dict(os.environ)
    env.update(
        DIRSYNC_DATABASE_URL=url,
        DIRSYNC_SERVER_HOST="127.0.0.1",
        DIRSYNC_SERVER_PORT=str(port),
        DIRSYNC_SERVER_WORKERS=str(workers),
        DIRSYNC_SERVER_THREADS=str(threads),
        DIRSYNC_LOG_LEVEL=log_level,
    )
    env.pop("DIRSYNC_CONFIG", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen((command or _dirsync_command()) + ["serve"], env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(process, port, workers, threads, log_path)
    try:
        _wait_ready(server, startup_timeout)
        yield server
    finally:
        _stop(process)


def _wait_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"dirsync serve exited with {server.process.returncode}; "
                               f"log:\n{server.log_path.read_text(errors='replace')[-3000:]}")
        try:
            if requests.get(server.base + "/health", timeout=2).status_code == 200:
                # /health hits one worker; give the others a moment to finish booting too.
                deadline_workers = time.monotonic() + 10
                while (len(_children(server.pid)) < server.workers
                       and time.monotonic() < deadline_workers):
                    time.sleep(0.1)
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"dirsync serve did not answer /health within {timeout:.0f} s; "
                       f"see {server.log_path}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # gunicorn master: graceful stop of its workers
    try:
        process.wait(timeout=35)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def system_busy_seconds() -> float:
    """CPU seconds all processes of the machine spent busy so far (/proc/stat, all CPUs)."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit_cores: float = 0.15, max_wait: float = 180.0) -> float:
    """Wait (bounded) until the machine is idle, so other jobs do not skew a run. The machine
    may be shared (test suites of other work running); returns the busy cores last seen."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = system_busy_seconds(), time.monotonic()
        time.sleep(1.0)
        cores = (system_busy_seconds() - b0) / (time.monotonic() - t0)
        if cores <= limit_cores or time.monotonic() > deadline:
            return cores


def code_version() -> str:
    """The dirsync commit being measured (read-only git calls), '+changes' if dirsync/ differs."""
    root = BENCH_DIR.parent
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, env=env,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "dirsync"], cwd=root,
                               env=env, capture_output=True, timeout=10).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (commit or "unknown") + (" +uncommitted changes in dirsync/" if dirty else "")


def machine_summary() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    import sqlite3

    return (f"{os.cpu_count()} CPUs ({cpu}), {mem} RAM, Python {sys.version.split()[0]}, "
            f"SQLite {sqlite3.sqlite_version}; dirsync {code_version()}")

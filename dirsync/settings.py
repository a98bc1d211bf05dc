"""Configuration: a TOML file plus DIRSYNC_* environment overrides, validated once.

This is the only module that reads configuration. Every key is listed in KEYS with its type,
default and environment variable; the README's configuration table mirrors it. A bad value
fails at start with a ConfigError naming the key and the fix.

Environment variables win over the file. Their names are DIRSYNC_ + the dotted key upper-cased
with dots as underscores (server.port -> DIRSYNC_SERVER_PORT). Lists in the environment are
comma-separated.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from dirsync import netacl
from dirsync.errors import ConfigError
from dirsync.ldap.config import DirectoryConfig, parse_directories

DEFAULT_DATABASE_URL = "sqlite:///dirsync.db"
DIRECTORIES = "directories"
# Also the size above which one change is journalled as a reset (dirsync/store/journal.py).
MAX_JOURNAL_ROWS = 200_000
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _env_name(key: str) -> str:
    return "DIRSYNC_" + key.replace(".", "_").upper()


def _as_str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(key, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _as_int(low: int, high: int) -> Callable[[str, Any], int]:
    def convert(key: str, value: Any) -> int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ConfigError(key, f"expected a whole number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"expected a whole number, got {value!r}")
        if not low <= value <= high:
            raise ConfigError(key, f"must be between {low} and {high}, got {value}")
        return value

    return convert


def _as_networks(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if not isinstance(value, list):
        raise ConfigError(key, f"expected a list of addresses or CIDR ranges, got {value!r}")
    out = []
    for item in value:
        try:
            out.append(str(netacl.parse_network(str(item))))
        except ValueError as exc:
            raise ConfigError(key, f"{exc} (write an address or a CIDR range, e.g. 10.0.0.0/8 or ::1)") from None
    return tuple(out)


def _as_database_url(key: str, value: Any) -> str:
    url = _as_str(key, value)
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            key,
            f"unsupported database {scheme!r}; use sqlite:///path/to/file.db or "
            "postgresql://user:password@host/dbname",
        )
    return url


def _as_log_level(key: str, value: Any) -> str:
    level = _as_str(key, value).upper()
    if level not in LOG_LEVELS:
        raise ConfigError(key, f"must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return level


@dataclass(frozen=True)
class Key:
    name: str
    default: Any
    convert: Callable[[str, Any], Any]
    doc: str


KEYS: tuple[Key, ...] = (
    Key("database_url", DEFAULT_DATABASE_URL, _as_database_url,
        "SQLAlchemy URL of the store: a SQLite file or a PostgreSQL database."),
    Key("server.host", "127.0.0.1", _as_str, "Address `dirsync serve` listens on."),
    Key("server.port", 8095, _as_int(1, 65535), "Port `dirsync serve` listens on."),
    Key("server.workers", 4, _as_int(1, 64),
        "Worker processes of the WSGI server (about two per core; see bench/README.md)."),
    Key("server.threads", 1, _as_int(1, 256),
        "Threads per worker; more than 1 keeps connections alive but lengthens tail latency."),
    Key("server.trusted_proxies", (), _as_networks,
        "Addresses/CIDR ranges of reverse proxies whose X-Forwarded-For is believed."),
    Key("server.max_body_bytes", 1_048_576, _as_int(1024, 64 * 1_048_576),
        "Largest request body accepted; larger ones get 413."),
    Key("server.version_header", "Crowd/5.1.6", _as_str,
        "Value of X-Embedded-Crowd-Version; Atlassian clients require the header."),
    Key("auth.cache_seconds", 60, _as_int(0, 3600),
        "How long a verified application password is remembered (0 = verify every request)."),
    Key("auth.failure_limit", 10, _as_int(1, 100_000),
        "Failed application logins allowed per client address within auth.failure_window_seconds."),
    Key("auth.failure_window_seconds", 60, _as_int(1, 86_400),
        "Window for auth.failure_limit; further attempts from that address are refused (429)."),
    Key("events.retention_days", 7, _as_int(0, 3650),
        "Journal entries younger than this are kept for the event feed (incremental sync)."),
    Key("events.retention_count", 100_000, _as_int(1, 1_000_000_000),
        "The newest this many journal entries are kept too, however old."),
    Key("events.trim_interval_seconds", 3600, _as_int(10, 86_400),
        "How often the scheduled job trims the journal to the retention above."),
    Key("events.max_journal_rows", MAX_JOURNAL_ROWS, _as_int(1, 100_000_000),
        "A token more journal entries behind than this gets EVENT_TOKEN_EXPIRED (full sync)."),
    Key("events.max_events", 20_000, _as_int(1, 10_000_000),
        "Largest event feed answered; a longer one gets EVENT_TOKEN_EXPIRED (full sync)."),
    Key("log.level", "INFO", _as_log_level, "Log level: DEBUG, INFO, WARNING or ERROR."),
)


@dataclass(frozen=True)
class Settings:
    database_url: str
    server_host: str
    server_port: int
    server_workers: int
    server_threads: int
    server_trusted_proxies: tuple[str, ...]
    server_max_body_bytes: int
    server_version_header: str
    auth_cache_seconds: int
    auth_failure_limit: int
    auth_failure_window_seconds: int
    events_retention_days: int
    events_retention_count: int
    events_trim_interval_seconds: int
    events_max_journal_rows: int
    events_max_events: int
    log_level: str
    # [[directories]]: the LDAP directories to mirror, in order (the first to claim a name wins)
    directories: tuple[DirectoryConfig, ...] = ()
    source: str = "defaults"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if key == DIRECTORIES:
            out[key] = value  # an array of tables, validated as a whole by parse_directories
        elif isinstance(value, dict):
            out.update(_flatten(value, key + "."))
        else:
            out[key] = value
    return out


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Read the config file (if any), then the environment, then explicit overrides."""
    environ = os.environ if environ is None else environ
    path = config_path or environ.get("DIRSYNC_CONFIG")
    raw: dict[str, Any] = {}
    source = "defaults"
    if path:
        try:
            with Path(path).open("rb") as fh:
                raw = _flatten(tomllib.load(fh))
        except FileNotFoundError:
            raise ConfigError("--config", f"file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("--config", f"{path} is not valid TOML: {exc}") from None
        source = str(path)
    directories = parse_directories(raw.pop(DIRECTORIES, None), environ)
    known = {k.name for k in KEYS}
    for name in raw:
        if name not in known:
            raise ConfigError(
                name, f"unknown key in {path}; known keys: {', '.join(sorted(known | {DIRECTORIES}))}"
            )
    values: dict[str, Any] = {}
    for key in KEYS:
        value = raw.get(key.name, key.default)
        env = environ.get(_env_name(key.name))
        if env is not None:
            value = env
        if overrides and overrides.get(key.name) is not None:
            value = overrides[key.name]
        where = _env_name(key.name) if env is not None else key.name
        values[key.name.replace(".", "_")] = (
            key.convert(where, value) if value is not key.default else value
        )
    return Settings(**values, directories=directories, source=source)

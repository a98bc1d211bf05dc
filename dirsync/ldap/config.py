"""The `[[directories]]` configuration: parsed and validated once into DirectoryConfig. Pure.

No ldap3 and no network here. The only I/O is what validation needs at start-up: reading
`bind_password_file` and checking that `ca_file` exists, so that a typo fails when dirsync
starts rather than at 3 a.m. in the first sync.

Each `[[directories]]` table names a preset (`openldap`, `389ds`, `active_directory`) that
supplies conventional defaults; every other key overrides one of them. Unknown keys are
errors (a misspelt `user_filter` silently ignored would read the wrong users). The bind
password is never written in the file: it comes from an environment variable
(`bind_password_env`) or a file (`bind_password_file`), and it is left out of the repr.

`DIRECTORY_KEYS` lists every key with its default and meaning, for the README.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from dirsync.cron import crontab_fields
from dirsync.dn import parse_dn
from dirsync.errors import ConfigError
from dirsync.ldap.filters import filter_syntax_problem
from dirsync.ldap.presets import (
    DISABLED_METHODS,
    DISABLED_NONE,
    GROUP_CLASS_FOR_MEMBERSHIP,
    MEMBERSHIP_TYPES,
    PRESET_NAMES,
    PRESETS,
    REFERENCE_HANDLING,
)
from dirsync.names import name_key

DEFAULT_PORTS = {"ldap": 389, "ldaps": 636}
# How long an OpenLDAP incremental read keeps re-reading changes while refint may still be
# rewriting member values after them (dirsync.ldap.changes, dirsync.ldap.watermark).
DEFAULT_SETTLE_SECONDS = 600.0
MAX_SETTLE_SECONDS = 86_400
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# An attribute description without options: a name (descr) or a numeric OID.
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+")

ATTRIBUTE_FIELDS = (
    "username", "first_name", "last_name", "display_name", "email", "unique_id", "disabled",
    "group_name", "group_description",
)

# (key, default, description). Keys under `attributes.` live in the `attributes` sub-table.
DIRECTORY_KEYS: tuple[tuple[str, str, str], ...] = (
    ("name", "(required)",
     "Unique name of the directory (letters, digits, `_.-`); `dirsync directory test NAME` uses it."),
    ("preset", "(required)",
     "`openldap`, `389ds` or `active_directory`: supplies the defaults marked *preset* below."),
    ("urls", "(required)",
     "One URL or a list (`ldap://host:389`, `ldaps://host:636`); tried in order, first that answers wins."),
    ("start_tls", "false", "Upgrade `ldap://` connections with StartTLS (not with `ldaps://`)."),
    ("ca_file", "system CAs", "PEM file of the CA(s) that signed the server certificate."),
    ("verify", "true",
     "Verify the server certificate and host name. Turn off only for a test directory."),
    ("bind_dn", "anonymous", "DN of the (read-only) account dirsync reads the directory as."),
    ("bind_password_env", "(none)", "Name of the environment variable holding the bind password."),
    ("bind_password_file", "(none)", "File holding the bind password (one trailing newline is ignored)."),
    ("base_dn", "(none)", "Default for user_base_dn and group_base_dn."),
    ("user_base_dn", "base_dn", "Subtree searched for users."),
    ("group_base_dn", "base_dn", "Subtree searched for groups."),
    ("user_object_class", "preset",
     "Object class of users (inetOrgPerson; AD: user)."),
    ("user_filter", "preset",
     "Extra filter ANDed with the user object class (AD: `(objectCategory=person)`)."),
    ("group_object_class", "preset",
     "Object class of groups (groupOfNames; groupOfUniqueNames / posixGroup for those membership "
     "types; AD: group)."),
    ("group_filter", "preset", "Extra filter ANDed with the group object class."),
    ("membership", "preset (`member`)",
     "`member`, `uniqueMember` (group attributes holding DNs), `memberUid` (usernames, no "
     "nesting) or `memberOf` (read from users and groups; 389 DS stores it transitively, so "
     "users become direct members of every ancestor group: prefer `member` there)."),
    ("disabled_method", "preset",
     "How attributes.disabled marks a disabled user: `present` (any value, OpenLDAP ppolicy "
     "pwdAccountLockedTime), `true_value` (389 nsAccountLock), `ad_user_account_control` "
     "(bit 2 of userAccountControl) or `none`."),
    ("attributes.username", "preset", "Username attribute (uid; AD: sAMAccountName)."),
    ("attributes.first_name", "givenName", "First name attribute."),
    ("attributes.last_name", "sn", "Last name attribute."),
    ("attributes.display_name", "displayName", "Display name attribute."),
    ("attributes.email", "mail", "E-mail attribute."),
    ("attributes.unique_id", "preset",
     "Stable identity, kept across renames and moves (entryUUID; 389: nsUniqueId; AD: objectGUID)."),
    ("attributes.disabled", "preset",
     "Attribute read by disabled_method (pwdAccountLockedTime; nsAccountLock; userAccountControl)."),
    ("attributes.group_name", "cn", "Group name attribute."),
    ("attributes.group_description", "description", "Group description attribute."),
    ("continuation_references", "preset (`fail`; AD: `ignore`)",
     "A subtree search that meets a reference to another server: `fail` aborts the read, "
     "`ignore` skips that part (AD's DNS and configuration partitions under the domain root)."),
    ("page_size", "1000", "Entries per page of a paged search (RFC 2696)."),
    ("connect_timeout", "5", "Seconds to wait for a TCP (and TLS) connection per URL."),
    ("operation_timeout", "60", "Seconds to wait for any one answer from the server."),
    ("sync_interval_seconds", "300", "Seconds between scheduled syncs."),
    ("incremental", "true", "Sync only what changed between full syncs, where the server allows."),
    ("full_sync_every", "12", "Run a full sync every N scheduled syncs (1 = always full)."),
    ("full_sync_cron", "(none)",
     "Also run a full sync at these times: a five-field crontab expression in UTC, e.g. "
     "\"30 2 * * *\" (02:30 every day) or \"0 3 * * 0\" (Sundays 03:00; 0 and 7 are Sunday, as in "
     "cron). Restrict the day of month or the day of week, not both."),
    ("settle_seconds", "600",
     "OpenLDAP incremental sync: seconds during which changes are read again, because the "
     "refint overlay rewrites member values after a rename or delete in the background, "
     "silently. Raise it when refint needs longer on a large directory; 0 only without refint. "
     "Not used for 389 DS and Active Directory, whose rewrites are ordinary, visible changes."),
    ("mass_delete_threshold", "0.05",
     "Refuse a sync that would delete or deactivate more than this share of the directory's "
     "users or groups, unless forced."),
)
_TOP_KEYS = frozenset(k for k, _, _ in DIRECTORY_KEYS if not k.startswith("attributes.")) | {
    "attributes"
}


@dataclass(frozen=True, order=True)
class LdapUrl:
    scheme: str  # "ldap" or "ldaps"
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "ldaps"

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class AttributeMap:
    """LDAP attribute names for the fields of a User and a Group."""

    username: str
    first_name: str
    last_name: str
    display_name: str
    email: str
    unique_id: str
    disabled: str
    group_name: str
    group_description: str


@dataclass(frozen=True)
class DirectoryConfig:
    """One directory to mirror, fully resolved (preset defaults applied, password read)."""

    name: str
    preset: str
    urls: tuple[LdapUrl, ...]
    user_base_dn: str
    group_base_dn: str
    user_object_class: str
    user_filter: str | None
    group_object_class: str
    group_filter: str | None
    membership: str
    disabled_method: str
    attributes: AttributeMap
    continuation_references: str = "fail"
    start_tls: bool = False
    ca_file: str | None = None
    verify: bool = True
    bind_dn: str | None = None
    # Kept out of repr (and so out of logs and tracebacks that print the config).
    bind_password: str | None = field(default=None, repr=False)
    page_size: int = 1000
    connect_timeout: float = 5.0
    operation_timeout: float = 60.0
    sync_interval_seconds: int = 300
    incremental: bool = True
    full_sync_every: int = 12
    full_sync_cron: str | None = None  # validated by dirsync.cron
    mass_delete_threshold: float = 0.05
    settle_seconds: float = DEFAULT_SETTLE_SECONDS

    @property
    def uses_tls(self) -> bool:
        return self.start_tls or any(url.tls for url in self.urls)


def parse_directories(
    raw: Sequence[Mapping[str, Any]] | None, environ: Mapping[str, str] | None = None
) -> tuple[DirectoryConfig, ...]:
    """Validate the `[[directories]]` array of tables, in order. `environ` supplies the
    variables named by bind_password_env (default: os.environ)."""
    environ = os.environ if environ is None else environ
    if raw is None:
        return ()
    if not isinstance(raw, (list, tuple)):
        raise ConfigError("directories", "expected an array of tables: write each directory as "
                          "a [[directories]] section")
    configs: list[DirectoryConfig] = []
    seen: dict[str, str] = {}
    for index, table in enumerate(raw):
        where = f"directories[{index}]"
        if not isinstance(table, Mapping):
            raise ConfigError(where, "expected a table: write each directory as a "
                              "[[directories]] section")
        config = _parse_one(where, table, environ)
        key = name_key(config.name)
        if key in seen:
            raise ConfigError(f"{where}.name", f"{config.name!r} is already the name of "
                              f"{seen[key]}; every directory needs its own name")
        seen[key] = where
        configs.append(config)
    return tuple(configs)


class _Table:
    """Typed access to one [[directories]] table; every error names the full key."""

    def __init__(self, where: str, table: Mapping[str, Any]) -> None:
        self.where = where
        self.table = table

    def key(self, name: str) -> str:
        return f"{self.where}.{name}"

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.key(name), message)

    def has(self, name: str) -> bool:
        return name in self.table

    def text(self, name: str, default: str | None = None, *, required: str = "") -> str | None:
        if name not in self.table:
            if default is None and required:
                raise self.error(name, f"is required: {required}")
            return default
        value = self.table[name]
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def boolean(self, name: str, default: bool) -> bool:
        value = self.table.get(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"expected true or false, got {value!r}")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"expected a whole number, got {value!r}")
        if not low <= value <= high:
            raise self.error(name, f"must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, low: float, high: float, *,
               low_inclusive: bool = False) -> float:
        value = self.table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(name, f"expected a number, got {value!r}")
        too_low = value < low if low_inclusive else value <= low
        if too_low or value > high:
            bound = f"at least {low}" if low_inclusive else f"more than {low}"
            raise self.error(name, f"must be {bound} and at most {high}, got {value}")
        return float(value)

    def crontab(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None:
            try:
                crontab_fields(value)
            except ValueError as exc:
                raise self.error(name, f"is not a crontab expression: {exc}") from None
        return value

    def choice(self, name: str, default: str | None, choices: Sequence[str]) -> str:
        value = self.text(name, default, required=f"one of {', '.join(choices)}")
        assert value is not None
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise self.error(name, f"must be one of {', '.join(choices)}, got {value!r}")

    def dn(self, name: str, default: str | None = None, *, required: str = "") -> str | None:
        if name not in self.table:
            if default is None and required:
                raise self.error(name, f"is required: {required}")
            return default
        value = self.text(name)
        assert value is not None
        try:
            if not parse_dn(value):
                raise ValueError("the empty DN (the root) cannot be used here")
        except ValueError as exc:
            raise self.error(name, f"is not a valid DN: {exc}") from None
        return value

    def attribute(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or not _ATTRIBUTE.fullmatch(value.strip()):
            raise self.error(name, f"expected an LDAP attribute name such as 'uid' or 'cn', "
                             f"got {value!r}")
        return value.strip()

    def search_filter(self, name: str, default: str | None) -> str | None:
        if name not in self.table:
            return default
        value = self.table[name]
        if not isinstance(value, str):
            raise self.error(name, f"expected a filter string such as '(department=IT)', got "
                             f"{value!r}")
        value = value.strip()
        if not value:
            return None  # "" switches off the preset's filter
        problem = filter_syntax_problem(value)
        if problem:
            raise self.error(name, f"{problem} (got {value!r})")
        return value


def _parse_one(where: str, table: Mapping[str, Any], environ: Mapping[str, str]) -> DirectoryConfig:
    t = _Table(where, table)
    if "bind_password" in table or "password" in table:
        wrong = "bind_password" if "bind_password" in table else "password"
        raise t.error(wrong, "passwords are not accepted in the configuration file; put the "
                      "password in an environment variable and set bind_password_env to its "
                      "name, or in a file readable only by dirsync and set bind_password_file")
    for name in table:
        if name not in _TOP_KEYS:
            raise t.error(name, f"unknown key; known keys: {', '.join(sorted(_TOP_KEYS))}")

    name = t.text("name", required="give the directory a short name such as 'corp'")
    assert name is not None
    if not _NAME.fullmatch(name):
        raise t.error("name", f"{name!r} must be 1-64 letters, digits, '_', '.' or '-', "
                      "starting with a letter or digit")
    preset_name = t.choice("preset", None, PRESET_NAMES)
    preset = PRESETS[preset_name]

    urls = _urls(t)
    start_tls = t.boolean("start_tls", False)
    if start_tls and any(url.tls for url in urls):
        raise t.error("start_tls", "cannot be combined with ldaps:// URLs (they are encrypted "
                      "from the start); use ldap:// URLs with start_tls, or drop start_tls")
    ca_file = t.text("ca_file")
    if ca_file is not None and not os.path.isfile(ca_file):
        raise t.error("ca_file", f"{ca_file} is not a file; give the path of the PEM file "
                      "holding the CA certificate(s) of the directory server")
    verify = t.boolean("verify", True)

    bind_dn = t.dn("bind_dn")
    password = _bind_password(t, environ)
    if bind_dn is None and password is not None:
        raise t.error("bind_dn", "a bind password is configured but no bind_dn; set the DN of "
                      "the account dirsync should bind as")
    if bind_dn is not None and password is None:
        # An empty password would make an *unauthenticated* bind, which servers accept with
        # anonymous rights: a sync would then read a partial directory without any error.
        raise t.error("bind_dn", "needs a password: set bind_password_env (the name of an "
                      "environment variable) or bind_password_file")

    base_dn = t.dn("base_dn")
    user_base_dn = t.dn("user_base_dn", base_dn, required="set user_base_dn (or base_dn) "
                        "to the subtree holding the users, e.g. 'ou=people,dc=example,dc=com'")
    group_base_dn = t.dn("group_base_dn", base_dn, required="set group_base_dn (or base_dn) "
                         "to the subtree holding the groups, e.g. 'ou=groups,dc=example,dc=com'")
    assert user_base_dn is not None and group_base_dn is not None

    membership = t.choice("membership", preset.membership, MEMBERSHIP_TYPES)
    group_class_default = preset.group_object_class
    if preset_name != "active_directory":
        group_class_default = GROUP_CLASS_FOR_MEMBERSHIP.get(membership, group_class_default)
    user_object_class = t.attribute("user_object_class",
                                    table.get("user_object_class", preset.user_object_class))
    group_object_class = t.attribute("group_object_class",
                                     table.get("group_object_class", group_class_default))
    disabled_method = t.choice("disabled_method", preset.disabled_method, DISABLED_METHODS)
    attributes = _attributes(t, preset.attributes)
    if disabled_method != DISABLED_NONE and not attributes.disabled:
        raise t.error("attributes.disabled", f"disabled_method {disabled_method!r} needs the "
                      "attribute to read; set attributes.disabled or disabled_method = 'none'")

    return DirectoryConfig(
        name=name,
        preset=preset_name,
        urls=urls,
        start_tls=start_tls,
        ca_file=ca_file,
        verify=verify,
        bind_dn=bind_dn,
        bind_password=password,
        user_base_dn=user_base_dn,
        group_base_dn=group_base_dn,
        user_object_class=user_object_class,
        user_filter=t.search_filter("user_filter", preset.user_filter),
        group_object_class=group_object_class,
        group_filter=t.search_filter("group_filter", preset.group_filter),
        membership=membership,
        disabled_method=disabled_method,
        attributes=attributes,
        continuation_references=t.choice("continuation_references",
                                         preset.continuation_references, REFERENCE_HANDLING),
        page_size=t.integer("page_size", 1000, 1, 100_000),
        connect_timeout=t.number("connect_timeout", 5.0, 0, 600),
        operation_timeout=t.number("operation_timeout", 60.0, 0, 3600),
        sync_interval_seconds=t.integer("sync_interval_seconds", 300, 10, 7 * 86_400),
        incremental=t.boolean("incremental", True),
        full_sync_every=t.integer("full_sync_every", 12, 1, 100_000),
        full_sync_cron=t.crontab("full_sync_cron"),
        mass_delete_threshold=t.number("mass_delete_threshold", 0.05, 0, 1, low_inclusive=True),
        settle_seconds=t.number("settle_seconds", DEFAULT_SETTLE_SECONDS, 0, MAX_SETTLE_SECONDS,
                                low_inclusive=True),
    )


def _urls(t: _Table) -> tuple[LdapUrl, ...]:
    value = t.table.get("urls")
    if value is None:
        raise t.error("urls", "is required: list the server URLs, e.g. "
                      "urls = [\"ldaps://ldap1.example.com\", \"ldaps://ldap2.example.com\"]")
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise t.error("urls", f"expected a URL or a non-empty list of URLs, got {value!r}")
    return tuple(_url(t, f"urls[{i}]" if not isinstance(value, str) else "urls", item)
                 for i, item in enumerate(items))


def _url(t: _Table, key: str, value: Any) -> LdapUrl:
    hint = "write it as ldap://host[:port] or ldaps://host[:port]"
    if not isinstance(value, str) or not value.strip():
        raise t.error(key, f"expected a URL string, got {value!r}; {hint}")
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError as exc:
        raise t.error(key, f"{value!r} is not a valid URL ({exc}); {hint}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise t.error(key, f"{value!r} has scheme {parts.scheme or '(none)'!r}; {hint}")
    if not parts.hostname:
        raise t.error(key, f"{value!r} has no host name; {hint}")
    if parts.username or parts.password:
        raise t.error(key, f"{value!r} contains credentials; use bind_dn and "
                      "bind_password_env instead")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise t.error(key, f"{value!r} has a path or query; base DNs and filters have their own "
                      f"keys (user_base_dn, user_filter); {hint}")
    return LdapUrl(scheme, parts.hostname, port or DEFAULT_PORTS[scheme])


def _bind_password(t: _Table, environ: Mapping[str, str]) -> str | None:
    env_name = t.text("bind_password_env")
    file_name = t.text("bind_password_file")
    if env_name and file_name:
        raise t.error("bind_password_env", "set either bind_password_env or bind_password_file, "
                      "not both")
    if env_name:
        password = environ.get(env_name)
        if not password:
            raise t.error("bind_password_env", f"the environment variable {env_name} is not set "
                          "or empty; export it with the bind password before starting dirsync")
        return password
    if file_name:
        try:
            with open(file_name, encoding="utf-8") as fh:
                password = fh.read()
        except OSError as exc:
            raise t.error("bind_password_file", f"cannot read {file_name}: {exc.strerror}; "
                          "create it with the bind password, readable by dirsync") from None
        except UnicodeDecodeError:
            raise t.error("bind_password_file", f"{file_name} is not UTF-8 text") from None
        # Editors add a final newline; a password never ends with one.
        password = password[:-2] if password.endswith("\r\n") else password.removesuffix("\n")
        if not password:
            raise t.error("bind_password_file", f"{file_name} is empty; write the bind "
                          "password into it")
        return password
    return None


def _attributes(t: _Table, defaults: Mapping[str, str]) -> AttributeMap:
    raw = t.table.get("attributes", {})
    if not isinstance(raw, Mapping):
        raise t.error("attributes", "expected a table, e.g. attributes = { username = \"uid\" }")
    values = dict(defaults)
    for name, value in raw.items():
        if name not in ATTRIBUTE_FIELDS:
            raise t.error(f"attributes.{name}", "unknown attribute mapping; known: "
                          f"{', '.join(ATTRIBUTE_FIELDS)}")
        if name == "disabled" and value == "":
            values[name] = ""  # no disabled attribute; disabled_method must be "none"
            continue
        values[name] = t.attribute(f"attributes.{name}", value)
    return AttributeMap(**{name: values.get(name, "") for name in ATTRIBUTE_FIELDS})

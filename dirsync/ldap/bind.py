"""Login by bind: is this the password of that directory user? Reuses connections; thread-safe.

`check_user_password(config, user_dn, password)` answers with a BindOutcome:

* OK          — the directory accepted the password and the account is not disabled;
* INVALID     — wrong password, or no such entry (also: an empty password, refused before
                any bind, because an empty-password simple bind is an *unauthenticated* bind
                that servers accept — RFC 4513 section 5.1.2);
* INACTIVE    — the account is disabled or locked in the directory (AD userAccountControl,
                bind sub-codes 533/701/775; 389 nsAccountLock; OpenLDAP ppolicy
                pwdAccountLockedTime; in general: the configured disabled flag);
* UNAVAILABLE — the directory could not be asked (unreachable, TLS failure, timeout, busy).
                Never reported as INVALID: a user must not be told their password is wrong
                because a server is down.

How: a DN outside user_base_dn is INVALID without any bind (the login path must not become
a way to try passwords of service or admin accounts). Otherwise bind as the user on a pooled
connection, then read the entry with the service account (another pooled connection), with
the configured user filter: an entry that is not (or no longer) one of the directory's users
is INVALID, a disabled one INACTIVE. The read happens after a refused bind too, because a
locked OpenLDAP or 389 account is refused with the same invalidCredentials as a wrong
password: the flag is the only way to tell, and a locked account's password cannot be
checked at all, so INACTIVE is answered whatever the password was. If the entry is gone and
the caller passes the user's unique id, it is looked up by that id and the bind retried once
at its new DN (a rename or move since the last sync).

Passwords are passed to ldap3 for the one bind and then dropped from the connection object;
they are never stored, cached or logged.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
import uuid
from typing import Callable

from dirsync.dn import dn_key
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.connection import SIMPLE, Connection, close_quietly, lx, open_connection, translate
from dirsync.ldap.entries import BINARY_GUIDS, EntryMapper
from dirsync.ldap.errors import LdapError
from dirsync.ldap.filters import all_of, entry_filter, equality
from dirsync.ldap.paging import RawEntry, read_entry, search_pages
from dirsync.ldap.presets import DISABLED_NONE
from dirsync.ldap.results import BUSY, INVALID_CREDENTIALS, UNAVAILABLE

log = logging.getLogger(__name__)

# AD puts the reason for a refused bind into the diagnostic message: "..., data 533, ...".
_AD_SUBCODE = re.compile(r"\bdata ([0-9a-f]{3,8})\b", re.IGNORECASE)
# 530 logon time restriction, 531 workstation restriction, 533 disabled, 701 expired,
# 775 locked out: the account may not log in, whatever the password.
AD_INACTIVE_SUBCODES = frozenset({"530", "531", "533", "701", "775"})
# Idle pooled connections older than this are closed rather than reused: servers drop idle
# clients (OpenLDAP olcIdleTimeout, AD MaxConnIdleTime 900 s) and a dead socket costs a retry.
MAX_IDLE_SECONDS = 120.0
MAX_IDLE_CONNECTIONS = 8


def ad_bind_subcode(message: str) -> str | None:
    """The sub-code Active Directory puts in a refused bind's message ("... data 533, ...")."""
    match = _AD_SUBCODE.search(message)
    return match.group(1).lower() if match else None


class BindOutcome(enum.Enum):
    OK = "ok"
    INVALID = "invalid"
    INACTIVE = "inactive"
    UNAVAILABLE = "unavailable"


class _Pool:
    """Idle connections of one kind, handed to one thread at a time."""

    def __init__(self, opener: Callable[[], Connection]) -> None:
        self._opener = opener
        self._idle: list[tuple[float, Connection]] = []
        self._lock = threading.Lock()
        self.opened = 0  # connections opened so far (tests check reuse with it)

    def take(self) -> tuple[Connection, bool]:
        """A connection and whether it came from the pool (and so may be stale)."""
        now = time.monotonic()
        stale: list[Connection] = []
        conn = None
        with self._lock:
            while self._idle:
                since, candidate = self._idle.pop()
                if now - since <= MAX_IDLE_SECONDS:
                    conn = candidate
                    break
                stale.append(candidate)
        for old in stale:
            close_quietly(old)
        if conn is not None:
            return conn, True
        conn = self._opener()
        with self._lock:
            self.opened += 1
        return conn, False

    def give_back(self, conn: Connection) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append((time.monotonic(), conn))
                return
        close_quietly(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, conn in idle:
            close_quietly(conn)


class _Unavailable(Exception):
    def __init__(self, error: LdapError) -> None:
        super().__init__(str(error))
        self.error = error


class PasswordChecker:
    """Checks passwords of one directory's users. Share one per directory between threads."""

    def __init__(self, config: DirectoryConfig) -> None:
        self.config = config
        self._mapper = EntryMapper(config)
        self._base_key = dn_key(config.user_base_dn)
        self._user_filter = entry_filter(config.user_object_class, config.user_filter)
        self._users = _Pool(lambda: open_connection(
            config, bind=False, doing="connecting to check a password"))
        self._service = _Pool(lambda: open_connection(
            config, config.bind_dn, config.bind_password,
            doing="connecting to look up a user's account state"))

    @property
    def connections_opened(self) -> int:
        return self._users.opened + self._service.opened

    def check(self, user_dn: str, password: str, *, external_id: str | None = None
              ) -> BindOutcome:
        """Bind as `user_dn` with `password`; see the module docstring for the outcomes.
        `external_id` (the user's unique id as read by the sync) lets a renamed user in."""
        if not password or not user_dn or not user_dn.strip():
            return BindOutcome.INVALID  # before any network: see the module docstring
        try:
            key = dn_key(user_dn)
        except ValueError:
            return BindOutcome.INVALID
        if key != self._base_key and not key.endswith("," + self._base_key):
            log.info("directory %r: refusing a password check for %s, which is not under "
                     "user_base_dn", self.config.name, user_dn)
            return BindOutcome.INVALID
        try:
            return self._check(user_dn, password, external_id)
        except _Unavailable as exc:
            log.warning("directory %r: cannot check the password of %s: %s", self.config.name,
                        user_dn, exc.error.reason)
            return BindOutcome.UNAVAILABLE

    def close(self) -> None:
        self._users.close()
        self._service.close()

    # -- steps -----------------------------------------------------------------------------
    def _check(self, user_dn: str, password: str, external_id: str | None) -> BindOutcome:
        accepted, subcode = self._bind(user_dn, password)
        if subcode in AD_INACTIVE_SUBCODES:
            return BindOutcome.INACTIVE
        entry = self._read_account(user_dn)
        if entry is None and external_id:
            entry = self._find_by_id(external_id)
            if entry is not None and dn_key(entry[0]) != dn_key(user_dn):
                log.info("directory %r: %s is now %s; binding there", self.config.name,
                         user_dn, entry[0])
                accepted, subcode = self._bind(entry[0], password)
                if subcode in AD_INACTIVE_SUBCODES:
                    return BindOutcome.INACTIVE
        if entry is None:
            if accepted:
                log.info("directory %r: %s accepted the password but is not one of the "
                         "directory's users (filter or base)", self.config.name, user_dn)
            return BindOutcome.INVALID
        if self._mapper.is_disabled(entry[1]):
            return BindOutcome.INACTIVE
        return BindOutcome.OK if accepted else BindOutcome.INVALID

    def _bind(self, user_dn: str, password: str) -> tuple[bool, str | None]:
        """(accepted, AD sub-code of a refusal). A pooled connection that turns out to be
        dead is replaced once; a second failure means the directory is unavailable."""
        for attempt in (1, 2):
            conn, pooled = self._take(self._users)
            try:
                conn.authentication = SIMPLE
                conn.user = user_dn
                conn.password = password
                conn.bind(read_server_info=False)
                accepted, subcode = True, None
            except lx.LDAPOperationResult as exc:
                if exc.result in (BUSY, UNAVAILABLE):
                    close_quietly(conn)
                    raise _Unavailable(translate(exc, self.config, "binding as a user")) from exc
                if exc.result != INVALID_CREDENTIALS:
                    # unwillingToPerform (389: "Account inactivated"), inappropriateAuth, ...:
                    # the password was not accepted; the account state decides the rest.
                    log.info("directory %r: bind as %s refused: %s %s", self.config.name,
                             user_dn, exc.result, exc.description)
                accepted, subcode = False, ad_bind_subcode(exc.message or "")
            except lx.LDAPException as exc:
                close_quietly(conn)
                if pooled and attempt == 1:
                    continue  # the server may have closed an idle connection: try a new one
                raise _Unavailable(translate(exc, self.config, "binding as a user")) from exc
            finally:
                # Not kept beyond this one bind: ldap3 also keeps the last request, password
                # included, in conn.request.
                conn.password = None
                conn.request = None
            self._users.give_back(conn)
            return accepted, subcode
        raise AssertionError("unreachable")

    def _read_account(self, user_dn: str) -> RawEntry | None:
        attributes = [self.config.attributes.unique_id]
        if self.config.disabled_method != DISABLED_NONE:
            attributes.append(self.config.attributes.disabled)
        return self._with_service(lambda conn: read_entry(
            conn, self.config, user_dn, attributes, what="the user's entry",
            search_filter=self._user_filter))

    def _find_by_id(self, external_id: str) -> RawEntry | None:
        attribute = self.config.attributes.unique_id
        value: str | bytes = external_id
        if attribute.lower() in BINARY_GUIDS:
            try:
                value = uuid.UUID(external_id).bytes_le
            except ValueError:
                return None
        search_filter = all_of(self._user_filter, equality(attribute, value))
        attributes = [attribute]
        if self.config.disabled_method != DISABLED_NONE:
            attributes.append(self.config.attributes.disabled)

        def find(conn: Connection) -> RawEntry | None:
            for page in search_pages(conn, self.config, self.config.user_base_dn, search_filter,
                                     attributes, what="the user by unique id"):
                if page:
                    return page[0]
            return None

        return self._with_service(find)

    def _with_service(self, action: Callable[[Connection], RawEntry | None]) -> RawEntry | None:
        for attempt in (1, 2):
            conn, pooled = self._take(self._service)
            try:
                found = action(conn)
            except LdapError as exc:
                close_quietly(conn)
                if pooled and attempt == 1 and isinstance(exc.__cause__, lx.LDAPCommunicationError):
                    continue
                raise _Unavailable(exc) from exc
            self._service.give_back(conn)
            return found
        raise AssertionError("unreachable")

    def _take(self, pool: _Pool) -> tuple[Connection, bool]:
        try:
            return pool.take()
        except LdapError as exc:
            raise _Unavailable(exc) from exc


_checkers: dict[DirectoryConfig, PasswordChecker] = {}
_checkers_lock = threading.Lock()


def checker_for(config: DirectoryConfig) -> PasswordChecker:
    """The shared PasswordChecker of a directory configuration (one per process)."""
    with _checkers_lock:
        checker = _checkers.get(config)
        if checker is None:
            checker = _checkers[config] = PasswordChecker(config)
        return checker


def check_user_password(config: DirectoryConfig, user_dn: str, password: str, *,
                        external_id: str | None = None) -> BindOutcome:
    """Check a user's password by binding to the directory as `user_dn`. Thread-safe."""
    return checker_for(config).check(user_dn, password, external_id=external_id)


def close_checkers() -> None:
    """Close every pooled connection (at shutdown, or when the configuration changes)."""
    with _checkers_lock:
        checkers = list(_checkers.values())
        _checkers.clear()
    for checker in checkers:
        checker.close()

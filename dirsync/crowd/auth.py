"""Application authentication: HTTP Basic (application name + password) and the allow-list.

Decisions, in order:
1. Too many recent failures from this client address -> 429 (before any hashing work).
2. Missing/garbled Basic header, unknown application, wrong password -> 401 with Crowd's
   challenge. The password is checked before the address, so an address that is allowed never
   skips the password check and an unauthenticated caller learns nothing about allow-lists.
3. Right password from an address outside the allow-list -> 403 naming the application and the
   address seen, so an admin can fix the allow-list from the error alone.

Verifying a PBKDF2 hash costs tens of milliseconds; doing it on every request would cap
throughput. A successful verification is remembered for `auth.cache_seconds`, keyed by an HMAC
(with a per-process random key) of the presented name and password, and bound to the
application's `updated_at`, so any change to the application (password, allow-list, removal)
drops it. Clear passwords are never stored, logged or used as dictionary keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from dirsync import netacl
from dirsync.passwords import verify_app_password
from dirsync.settings import Settings
from dirsync.store.apps import Application, find_application
from dirsync.store.db import Store
from dirsync.throttle import FailureThrottle

log = logging.getLogger(__name__)

REALM = "Crowd REST Service"
FAILED = "Application failed to authenticate"
MAX_CACHED = 10_000


class AuthFailure(Exception):
    """401: the caller did not prove it is a known application."""


class AddressDenied(Exception):
    """403: a known application, authenticated, calling from an address it may not use."""


class Throttled(Exception):
    def __init__(self, address: str, retry_after: float) -> None:
        super().__init__(address)
        self.address = address
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class _Verified:
    app_id: int
    updated_at: Any
    expires: float


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Apache HttpClient encodes credentials as ISO-8859-1 by default.
        text = raw.decode("latin-1")
    name, sep, password = text.partition(":")
    if not sep or not name:
        return None
    return name, password


class ApplicationAuthenticator:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.cache_seconds = settings.auth_cache_seconds
        self.trusted = [netacl.parse_network(n) for n in settings.server_trusted_proxies]
        self.throttle = FailureThrottle(
            settings.auth_failure_limit, settings.auth_failure_window_seconds
        )
        self._key = secrets.token_bytes(32)
        self._cache: dict[bytes, _Verified] = {}
        self._lock = threading.Lock()

    def client_address(self, remote_addr: str | None, forwarded_for: list[str]) -> str:
        try:
            return str(netacl.client_address(remote_addr or "", forwarded_for, self.trusted))
        except ValueError:
            return remote_addr or "unknown"

    def authenticate(self, authorization: str | None, address: str) -> Application:
        wait = self.throttle.retry_after(address)
        if wait > 0:
            raise Throttled(address, wait)
        if not authorization:
            # Not a guess: non-preemptive clients ask first and answer the challenge.
            log.info("request from %s without application credentials", address)
            raise AuthFailure("no credentials")
        creds = parse_basic(authorization)
        if creds is None:
            self._fail(address, None, "malformed Basic credentials")
        assert creds is not None
        name, password = creds
        with self.store.read() as conn:
            app = find_application(conn, name)
        if not self._password_ok(app, name, password):
            self._fail(address, name, "unknown application" if app is None else "wrong password")
        assert app is not None
        self.throttle.reset(address)
        try:
            allowed = netacl.is_allowed(
                netacl.parse_address(address), [netacl.parse_network(n) for n in app.networks]
            )
        except ValueError:
            allowed = False
        if not allowed:
            log.warning(
                "application %r denied: address %s is not in its allow-list (%s)",
                app.name, address, ", ".join(app.networks) or "empty",
            )
            raise AddressDenied(
                f"Client with address \"{address}\" is forbidden from making requests to the "
                f"application, {app.name}. Allow it with: dirsync app allow {app.name} {address}"
            )
        return app

    def _password_ok(self, app: Application | None, name: str, password: str) -> bool:
        if app is None:
            verify_app_password(password, None)  # same cost as a real check
            return False
        digest = hmac.new(
            self._key, name.encode() + b"\0" + password.encode("utf-8", "surrogatepass"),
            hashlib.sha256,
        ).digest()
        now = time.monotonic()
        hit = self._cache.get(digest)
        if hit is not None and hit.app_id == app.id and hit.updated_at == app.updated_at:
            if hit.expires > now:
                return True
        if not password or not verify_app_password(password, app.password_hash):
            return False
        if self.cache_seconds:
            with self._lock:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[digest] = _Verified(app.id, app.updated_at, now + self.cache_seconds)
        return True

    def _fail(self, address: str, name: str | None, why: str) -> None:
        crossed = self.throttle.record_failure(address)
        log.warning("application authentication failed from %s (application %r): %s",
                    address, name, why)
        if crossed:
            log.warning(
                "too many failed application logins from %s; refusing it for a while", address
            )
        raise AuthFailure(why)

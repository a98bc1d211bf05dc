"""User authentication (`POST /authentication`): is this the user's password?

Fixture users carry a password hash and are checked with passlib. Users mirrored from LDAP
carry none: their password is checked by binding to their directory as them (dirsync.ldap.bind),
and never stored or cached. An empty password is refused before anything else: for LDAP an
empty-password bind is an unauthenticated bind, which succeeds.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dirsync.errors import (
    InactiveAccount,
    InvalidUserAuthentication,
    OperationFailed,
    UnknownUserAtLogin,
)
from dirsync.ldap.bind import BindOutcome, check_user_password
from dirsync.ldap.config import DirectoryConfig
from dirsync.names import name_key
from dirsync.passwords import verify_user_password
from dirsync.store import reads
from dirsync.store.db import Store

log = logging.getLogger(__name__)


def authenticate_user(store: Store, name: str, password: str,
                      directories: Mapping[str, DirectoryConfig] | None = None) -> Any:
    """The user's row when `password` is right; raises a CrowdError otherwise.

    `directories` maps the name keys of configured LDAP directories to their configuration.
    For stored hashes the password is checked before the account state, so a wrong password
    never reveals whether an account is inactive."""
    with store.read() as conn:
        row = reads.find_user_with_password(conn, name)
    if row is None:
        raise UnknownUserAtLogin(name)
    if not password:
        raise InvalidUserAuthentication(row.name)
    if row.directory_kind == "ldap":
        _bind(row, password, directories or {})
    elif not verify_user_password(password, row.password_hash):
        raise InvalidUserAuthentication(row.name)
    if not row.active:
        raise InactiveAccount(row.name)
    return row


def _bind(row: Any, password: str, directories: Mapping[str, DirectoryConfig]) -> None:
    config = directories.get(name_key(row.directory))
    if config is None or not row.dn:
        # The directory was removed from the configuration; its users stay until cleaned up.
        log.warning("login of %r refused: directory %r is not configured", row.name, row.directory)
        raise OperationFailed(f"The directory of user <{row.name}> is not configured")
    outcome = check_user_password(config, row.dn, password, external_id=row.external_id)
    if outcome is BindOutcome.INVALID:
        raise InvalidUserAuthentication(row.name)
    if outcome is BindOutcome.INACTIVE:
        raise InactiveAccount(row.name)
    if outcome is BindOutcome.UNAVAILABLE:
        # Never a wrong password: the client would tell the user their password is wrong.
        raise OperationFailed(f"The directory {row.directory} could not be reached to check "
                              f"the password of <{row.name}>; try again")

"""User authentication (`POST /authentication`): is this the user's password?

Fixture users carry a password hash and are checked with passlib. Users mirrored from LDAP
carry none; their password is checked by binding to the directory (the LDAP mirror plugs in
here). An empty password is refused before anything else: for LDAP an empty-password bind is
an unauthenticated bind, which succeeds.
"""

from __future__ import annotations

from typing import Any

from dirsync.errors import InactiveAccount, InvalidUserAuthentication, UnknownUserAtLogin
from dirsync.passwords import verify_user_password
from dirsync.store import reads
from dirsync.store.db import Store


def authenticate_user(store: Store, name: str, password: str) -> Any:
    """The user's row when `password` is right; raises a CrowdError otherwise.

    The password is checked before the account state, so a wrong password never reveals
    whether an account is inactive."""
    with store.read() as conn:
        row = reads.find_user_with_password(conn, name)
    if row is None:
        raise UnknownUserAtLogin(name)
    if not password or not verify_user_password(password, row.password_hash):
        raise InvalidUserAuthentication(row.name)
    if not row.active:
        raise InactiveAccount(row.name)
    return row

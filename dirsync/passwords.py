"""Password hashing: the only place passlib (libpass) is used.

Two contexts:
* application passwords: hashed by us with PBKDF2-SHA256 (stdlib-backed, no C extension).
* directory user passwords from fixtures: the LDAP hash schemes real directories export
  ({SSHA}, {SSHA512}, {CRYPT}, {PBKDF2-SHA256}, ...). Clear text in a fixture is hashed on load
  with {PBKDF2-SHA256} so no clear password is ever stored.
"""

from __future__ import annotations

import secrets

from passlib.context import CryptContext
from passlib.exc import MissingBackendError, UnknownHashError

_APPS = CryptContext(schemes=["pbkdf2_sha256"], pbkdf2_sha256__default_rounds=100_000)

# ldap_plaintext is deliberately absent: a stored value must be a hash.
_LDAP_SCHEMES = [
    "ldap_pbkdf2_sha256",
    "ldap_pbkdf2_sha512",
    "ldap_pbkdf2_sha1",
    "ldap_salted_sha512",
    "ldap_salted_sha256",
    "ldap_salted_sha1",
    "ldap_salted_md5",
    "ldap_sha1",
    "ldap_md5",
    "ldap_bcrypt",
    "ldap_sha512_crypt",
    "ldap_sha256_crypt",
    "ldap_md5_crypt",
    "ldap_bsdi_crypt",
    "ldap_des_crypt",
]
_USERS = CryptContext(schemes=_LDAP_SCHEMES, default="ldap_pbkdf2_sha256")

# A hash that no password verifies against, for timing-equal failures on unknown names.
_DUMMY_APP_HASH = _APPS.hash(secrets.token_urlsafe(16))


class UnknownHashScheme(ValueError):
    """The value looks like `{SCHEME}...` but we cannot verify that scheme."""


def generate_password() -> str:
    """A strong random application password (about 190 bits)."""
    return secrets.token_urlsafe(24)


def hash_app_password(password: str) -> str:
    return _APPS.hash(password)


def verify_app_password(password: str, password_hash: str | None) -> bool:
    """Constant-time check; runs a full verification even when the application is unknown."""
    if password_hash is None:
        _APPS.verify(password, _DUMMY_APP_HASH)
        return False
    try:
        return _APPS.verify(password, password_hash)
    except (ValueError, TypeError):
        return False


def looks_like_ldap_hash(value: str) -> bool:
    return value.startswith("{") and "}" in value[1:24]


def _canonical(value: str) -> str:
    """OpenLDAP accepts `{ssha}` as well as `{SSHA}`; passlib knows only the upper case."""
    end = value.index("}")
    return "{" + value[1:end].upper() + value[end:]


def _is_cleartext(value: str) -> bool:
    return looks_like_ldap_hash(value) and value[1 : value.index("}")].upper() == "CLEARTEXT"


def check_user_password(value: str) -> None:
    """Raise UnknownHashScheme unless `value` is clear text or a well-formed hash we can check."""
    if not looks_like_ldap_hash(value) or _is_cleartext(value):
        return
    scheme = value[1 : value.index("}")]
    canonical = _canonical(value)
    if _USERS.identify(canonical) is None:
        raise UnknownHashScheme(f"unknown password hash scheme {{{scheme}}}")
    try:
        # Verifying a probe parses the whole hash: a truncated or corrupt one fails here,
        # at load, instead of locking its user out silently.
        _USERS.verify("probe", canonical)
    except MissingBackendError:
        raise UnknownHashScheme(
            f"password hash scheme {{{scheme}}} ({_USERS.identify(canonical)}) needs a backend "
            "that is not installed"
        ) from None
    except (ValueError, TypeError):
        raise UnknownHashScheme(f"malformed {{{scheme}}} password hash") from None


def hash_user_password(value: str) -> str:
    """What to store for a source's password value: its hash as given, or a hash of clear text."""
    check_user_password(value)
    if _is_cleartext(value):
        value = value[value.index("}") + 1 :]
    elif looks_like_ldap_hash(value):
        return _canonical(value)
    return _USERS.hash(value)


def same_user_password(value: str, stored_hash: str | None) -> bool:
    """Does a source's password value describe the password behind `stored_hash`? Clear text
    is hashed with a fresh salt on every load, so reloads compare by verifying, not by string."""
    if stored_hash is None:
        return False
    if _is_cleartext(value):
        value = value[value.index("}") + 1 :]
    elif looks_like_ldap_hash(value):
        return _canonical(value) == stored_hash
    return verify_user_password(value, stored_hash)


def verify_user_password(password: str, password_hash: str | None) -> bool:
    if not password or not password_hash:
        return False
    try:
        return _USERS.verify(password, password_hash)
    except (UnknownHashError, MissingBackendError, ValueError, TypeError):
        return False

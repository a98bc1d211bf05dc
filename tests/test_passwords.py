"""Directory user passwords from fixtures: which values load, what is stored, what verifies."""

from __future__ import annotations

import pytest
from passlib.hash import ldap_salted_sha1

from dirsync import passwords

SSHA = ldap_salted_sha1.hash("secret-1")


@pytest.mark.parametrize("value", ["secret-1", "{CLEARTEXT}secret-1", SSHA, "{ssha}" + SSHA[6:]])
def test_accepted_values_verify(value: str) -> None:
    stored = passwords.hash_user_password(value)
    assert stored.startswith("{")
    assert passwords.verify_user_password("secret-1", stored)
    assert not passwords.verify_user_password("secret-2", stored)
    assert passwords.same_user_password(value, stored)  # a reload changes nothing


@pytest.mark.parametrize("value, fragment", [
    ("{FOO}abc", "unknown password hash scheme {FOO}"),
    ("{SSHA}xyz", "malformed {SSHA}"),
    ("{SSHA}", "malformed {SSHA}"),
    ("{CRYPT}$6$rounds=5000$short", "malformed {CRYPT}"),
])
def test_refused_values(value: str, fragment: str) -> None:
    with pytest.raises(passwords.UnknownHashScheme, match=fragment.replace("$", r"\$").replace("{", r"\{").replace("}", r"\}")):
        passwords.check_user_password(value)


def test_clear_text_is_never_stored() -> None:
    assert "secret-1" not in passwords.hash_user_password("secret-1")


def test_empty_password_never_verifies() -> None:
    assert not passwords.verify_user_password("", passwords.hash_user_password("x"))


def test_app_passwords() -> None:
    hashed = passwords.hash_app_password("an-app-password")
    assert passwords.verify_app_password("an-app-password", hashed)
    assert not passwords.verify_app_password("other", hashed)
    assert not passwords.verify_app_password("an-app-password", None)
    assert len(passwords.generate_password()) >= 24

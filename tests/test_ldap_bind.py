"""Login by bind against a real slapd: OK, INVALID, INACTIVE, UNAVAILABLE; connection reuse
across threads and server restarts; renamed users; no password kept anywhere."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Iterator

import pytest

from dirsync.ldap.bind import BindOutcome, PasswordChecker, check_user_password
from dirsync.ldap.config import DirectoryConfig
from ldap_fixtures import *  # noqa: F403 - until conftest lists ldap_fixtures in pytest_plugins
from ldap_fixtures import PEOPLE, LdapTree
from servers import free_port
from slapd import LOCKED_FOREVER, SYNC_DN, SYNC_PASSWORD, SlapdServer

MakeConfig = Callable[..., DirectoryConfig]
ALICE = f"uid=alice,{PEOPLE}"
DAVE = f"uid=dave,{PEOPLE}"  # locked with ppolicy (fixtures/ldap/disabled.ldif)


@pytest.fixture
def checker(directory_config: MakeConfig) -> Iterator[PasswordChecker]:
    checker = PasswordChecker(directory_config())
    yield checker
    checker.close()


@pytest.mark.parametrize(("dn", "password", "outcome"), [
    (ALICE, "alice-password", BindOutcome.OK),
    (ALICE, "Alice-password", BindOutcome.INVALID),
    (ALICE, "", BindOutcome.INVALID),
    (f"uid=nobody,{PEOPLE}", "whatever", BindOutcome.INVALID),
    ("not a DN", "whatever", BindOutcome.INVALID),
    ("", "alice-password", BindOutcome.INVALID),
    (DAVE, "dave-password", BindOutcome.INACTIVE),  # the right password of a locked account
    (DAVE, "wrong", BindOutcome.INACTIVE),  # a locked account's password cannot be checked
    # Escaped DNs, spelled as the server returns them or as they were added.
    (f"cn=Doe\\2C John,{PEOPLE}", "jdoe-password", BindOutcome.OK),
    (f"cn=Doe\\, John,{PEOPLE}", "jdoe-password", BindOutcome.OK),
    (f"uid=star*(paren),{PEOPLE}", "star-password", BindOutcome.OK),
    (f"uid=jörg,{PEOPLE}", "jörg-password", BindOutcome.OK),
    (f"cn=\\20Leading Space,{PEOPLE}", "lspace-password", BindOutcome.OK),
])
def test_outcomes(checker: PasswordChecker, dn: str, password: str,
                  outcome: BindOutcome) -> None:
    assert checker.check(dn, password) is outcome


def test_only_users_of_the_directory_may_log_in(directory_config: MakeConfig) -> None:
    # The service account is outside user_base_dn: refused before any bind, whatever the
    # password, so the login path cannot be used to try passwords of such accounts.
    config = directory_config()
    assert check_user_password(config, SYNC_DN, SYNC_PASSWORD) is BindOutcome.INVALID
    # Under the base but excluded by the user filter: the password is right, the user is not
    # one of the directory's users.
    filtered = directory_config(user_filter="(!(uid=alice))")
    assert check_user_password(filtered, ALICE, "alice-password") is BindOutcome.INVALID
    assert check_user_password(filtered, f"uid=bob,{PEOPLE}", "bob-password") is BindOutcome.OK


def test_an_empty_password_is_refused_without_asking_the_server(
        directory_config: MakeConfig) -> None:
    # Nothing listens there: an answer other than INVALID would mean a bind was attempted.
    config = directory_config(urls=[f"ldap://127.0.0.1:{free_port()}"])
    assert check_user_password(config, ALICE, "") is BindOutcome.INVALID
    assert check_user_password(config, ALICE, "x") is BindOutcome.UNAVAILABLE


def test_unreachable_is_never_a_wrong_password(private_slapd: SlapdServer,
                                               directory_config: MakeConfig) -> None:
    checker = PasswordChecker(directory_config(private_slapd))
    try:
        assert checker.check(ALICE, "alice-password") is BindOutcome.OK
        private_slapd.kill()
        assert checker.check(ALICE, "alice-password") is BindOutcome.UNAVAILABLE
        assert checker.check(ALICE, "wrong") is BindOutcome.UNAVAILABLE
        private_slapd.start()
        assert checker.check(ALICE, "alice-password") is BindOutcome.OK
    finally:
        checker.close()


def test_connections_are_reused_and_survive_a_restart(private_slapd: SlapdServer,
                                                      directory_config: MakeConfig) -> None:
    checker = PasswordChecker(directory_config(private_slapd))
    try:
        for _ in range(5):
            assert checker.check(ALICE, "alice-password") is BindOutcome.OK
            assert checker.check(ALICE, "wrong") is BindOutcome.INVALID
        assert checker.connections_opened == 2  # one for user binds, one for account reads
        private_slapd.restart()  # every pooled connection is now dead
        assert checker.check(ALICE, "alice-password") is BindOutcome.OK
        assert checker.connections_opened == 4
    finally:
        checker.close()


def test_many_threads_share_one_checker(checker: PasswordChecker) -> None:
    cases = [(ALICE, "alice-password", BindOutcome.OK), (ALICE, "nope", BindOutcome.INVALID),
             (DAVE, "dave-password", BindOutcome.INACTIVE)]
    wrong: list[tuple[str, str, BindOutcome]] = []

    def work(offset: int) -> None:
        for i in range(12):
            dn, password, expected = cases[(i + offset) % len(cases)]
            got = checker.check(dn, password)
            if got is not expected:
                wrong.append((dn, password, got))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []
    assert checker.connections_opened <= 16


def test_locking_and_unlocking_an_account(ldap_tree: LdapTree,
                                          directory_config: MakeConfig) -> None:
    dn = ldap_tree.add_user("kim")
    checker = PasswordChecker(directory_config(user_base_dn=ldap_tree.base))
    try:
        assert checker.check(dn, "kim-password") is BindOutcome.OK
        ldap_tree.server.modify(f"dn: {dn}\nchangetype: modify\nadd: pwdAccountLockedTime\n"
                                f"pwdAccountLockedTime: {LOCKED_FOREVER}\n")
        assert checker.check(dn, "kim-password") is BindOutcome.INACTIVE
        ldap_tree.server.modify(f"dn: {dn}\nchangetype: modify\n"
                                "delete: pwdAccountLockedTime\n")
        assert checker.check(dn, "kim-password") is BindOutcome.OK
    finally:
        checker.close()


def test_a_disabled_flag_the_server_does_not_enforce(ldap_tree: LdapTree,
                                                     directory_config: MakeConfig) -> None:
    # employeeType: TRUE means nothing to slapd, so the bind succeeds; the configured flag
    # still makes the account inactive.
    dn = ldap_tree.add_user("lee", extra="employeeType: TRUE\n")
    config = directory_config(user_base_dn=ldap_tree.base, disabled_method="true_value",
                              attributes={"disabled": "employeeType"})
    assert check_user_password(config, dn, "lee-password") is BindOutcome.INACTIVE


def test_a_renamed_user_is_found_by_unique_id(ldap_tree: LdapTree,
                                              directory_config: MakeConfig) -> None:
    old_dn = ldap_tree.add_user("max")
    uuid = ldap_tree.entry_uuid(old_dn)
    ldap_tree.server.modrdn(old_dn, "uid=maximilian")
    checker = PasswordChecker(directory_config(user_base_dn=ldap_tree.base))
    try:
        assert checker.check(old_dn, "max-password") is BindOutcome.INVALID
        assert checker.check(old_dn, "max-password", external_id=uuid) is BindOutcome.OK
        assert checker.check(old_dn, "wrong", external_id=uuid) is BindOutcome.INVALID
    finally:
        checker.close()


def test_no_password_is_kept_or_logged(checker: PasswordChecker,
                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    assert checker.check(ALICE, "alice-password") is BindOutcome.OK
    assert checker.check(ALICE, "a-wrong-secret") is BindOutcome.INVALID
    assert "alice-password" not in caplog.text and "a-wrong-secret" not in caplog.text
    pooled = [conn for _, conn in checker._users._idle]  # noqa: SLF001 - looking, not using
    assert pooled
    for conn in pooled:
        kept = repr(vars(conn)) + repr(vars(conn.strategy))
        assert "alice-password" not in kept and "a-wrong-secret" not in kept

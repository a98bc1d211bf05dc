"""`dirsync directory test NAME` against a real slapd: one result per check, one clear
sentence per failure, later checks skipped when an earlier one makes them pointless."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from dirsync.ldap import probe
from dirsync.ldap.config import DirectoryConfig
from ldap_fixtures import *  # noqa: F403 - until conftest lists ldap_fixtures in pytest_plugins
from servers import free_port
from slapd import LIMITED_DN, LIMITED_PASSWORD, SUFFIX, SlapdServer, make_ca

MakeConfig = Callable[..., DirectoryConfig]


def summary(results: list[probe.CheckResult]) -> list[tuple[str, str]]:
    return [(r.check, r.status) for r in results]


def test_a_good_configuration(slapd: SlapdServer, directory_config: MakeConfig) -> None:
    results = probe.test_directory(directory_config(urls=[slapd.ldaps_url],
                                                    ca_file=str(slapd.ca_file)))
    assert summary(results) == [("tls", "ok"), ("bind", "ok"), ("user base", "ok"),
                                ("group base", "ok"), ("user filter", "ok"),
                                ("group filter", "ok")]
    assert "certificate verified" in results[0].message
    assert results[4].count == 16 and "16 users" in results[4].message
    assert results[5].count and results[5].count >= 24


def test_wrong_password(directory_config: MakeConfig) -> None:
    results = probe.test_directory(directory_config(password="wrong"))
    assert summary(results) == [("connection", "ok"), ("bind", "failed")]
    assert "bind DN or password was refused" in results[1].message


def test_unreachable_and_failover(slapd: SlapdServer, directory_config: MakeConfig) -> None:
    dead = f"ldap://127.0.0.1:{free_port()}"
    results = probe.test_directory(directory_config(urls=[dead]))
    assert summary(results) == [("connection", "failed"), ("bind", "skipped")]
    assert dead in results[0].message and "refused" in results[0].message.lower()
    results = probe.test_directory(directory_config(urls=[dead, slapd.url]))
    assert summary(results)[:3] == [("connection", "failed"), ("connection", "ok"),
                                    ("bind", "ok")]


def test_tls_failure(slapd: SlapdServer, directory_config: MakeConfig, tmp_path: Path) -> None:
    other_ca = make_ca(tmp_path, "other CA").cert_file
    results = probe.test_directory(directory_config(start_tls=True, ca_file=str(other_ca)))
    assert summary(results) == [("tls", "failed"), ("bind", "skipped")]
    assert "certificate verify failed" in results[0].message


def test_missing_base_and_a_filter_that_matches_nothing(directory_config: MakeConfig) -> None:
    results = probe.test_directory(directory_config(user_base_dn=f"ou=nope,{SUFFIX}",
                                                    group_filter="(cn=no-such-group)"))
    assert summary(results) == [("connection", "ok"), ("bind", "ok"), ("user base", "failed"),
                                ("group base", "ok"), ("user filter", "skipped"),
                                ("group filter", "failed")]
    assert "ou=nope" in results[2].message and "does not exist" in results[2].message
    assert "matches nothing" in results[5].message


def test_limits_show_up_in_the_counts(directory_config: MakeConfig) -> None:
    results = probe.test_directory(directory_config(bind_dn=LIMITED_DN,
                                                    password=LIMITED_PASSWORD))
    user_filter = next(r for r in results if r.check == "user filter")
    assert user_filter.status == "failed" and "size limit" in user_filter.message

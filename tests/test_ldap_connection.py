"""Connections to a real slapd: TLS (LDAPS and StartTLS, verification on by default),
failover in order, timeouts, and a clear error for each way connecting can fail."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from dirsync.ldap import errors
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.connection import bound, close_quietly, open_connection, service_connection
from dirsync.ldap.read import read_directory
from ldap_fixtures import *  # noqa: F403 - until conftest lists ldap_fixtures in pytest_plugins
from servers import free_port
from slapd import SYNC_PASSWORD, SlapdServer, make_ca

MakeConfig = Callable[..., DirectoryConfig]


def dead_url() -> str:
    return f"ldap://127.0.0.1:{free_port()}"


def connect(config: DirectoryConfig) -> None:
    close_quietly(service_connection(config))


def test_ldaps_with_the_ca_file(slapd: SlapdServer, directory_config: MakeConfig) -> None:
    config = directory_config(urls=[slapd.ldaps_url], ca_file=str(slapd.ca_file))
    assert read_directory(config).snapshot.users


def test_start_tls_with_the_ca_file(slapd: SlapdServer, directory_config: MakeConfig) -> None:
    config = directory_config(start_tls=True, ca_file=str(slapd.ca_file))
    conn = service_connection(config)
    try:
        assert conn.tls_started
    finally:
        close_quietly(conn)


def test_localhost_matches_the_certificate_too(slapd: SlapdServer,
                                               directory_config: MakeConfig) -> None:
    url = slapd.ldaps_url.replace("127.0.0.1", "localhost")
    connect(directory_config(urls=[url], ca_file=str(slapd.ca_file)))


@pytest.mark.parametrize("how", ["ldaps", "start_tls"])
def test_an_untrusted_certificate_is_refused(slapd: SlapdServer, directory_config: MakeConfig,
                                             tmp_path: Path, how: str) -> None:
    other_ca = make_ca(tmp_path, "some other CA").cert_file
    for ca_file in (None, str(other_ca)):  # system CAs, a CA that did not sign it
        keys = ({"urls": [slapd.ldaps_url]} if how == "ldaps" else {"start_tls": True})
        config = directory_config(ca_file=ca_file, **keys)
        with pytest.raises(errors.TlsFailure) as info:
            connect(config)
        assert "certificate verify failed" in str(info.value)
        assert "ca_file" in str(info.value)  # names the fix


def test_verification_can_be_switched_off(slapd: SlapdServer, directory_config: MakeConfig,
                                          tmp_path: Path) -> None:
    other_ca = make_ca(tmp_path, "some other CA").cert_file
    connect(directory_config(urls=[slapd.ldaps_url], ca_file=str(other_ca), verify=False))


def test_a_certificate_for_another_host_is_refused(directory_config: MakeConfig) -> None:
    with SlapdServer(cert_names=("ldap.example.com",)) as server:
        config = directory_config(server, urls=[server.ldaps_url], ca_file=str(server.ca_file))
        with pytest.raises(errors.TlsFailure, match="IP address mismatch|hostname"):
            connect(config)


def test_start_tls_refused_by_a_server_without_tls(directory_config: MakeConfig) -> None:
    with SlapdServer(tls=False) as server:
        config = directory_config(server, start_tls=True)
        with pytest.raises(errors.TlsFailure, match="refused StartTLS"):
            connect(config)


def test_wrong_bind_password(directory_config: MakeConfig, caplog: pytest.LogCaptureFixture
                             ) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.BindRejected) as info:
        read_directory(directory_config(password="not-the-password"))
    assert info.value.result_code == 49
    assert "bind DN or password was refused" in str(info.value)
    assert "not-the-password" not in str(info.value) + caplog.text


def test_unreachable_lists_every_url(directory_config: MakeConfig) -> None:
    urls = [dead_url(), dead_url()]
    with pytest.raises(errors.DirectoryUnreachable) as info:
        read_directory(directory_config(urls=urls))
    message = str(info.value)
    assert all(url in message for url in urls)
    assert "refused" in message.lower()


def test_failover_uses_the_first_server_that_answers(slapd: SlapdServer,
                                                     directory_config: MakeConfig,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    dead = dead_url()
    caplog.set_level(logging.WARNING, logger="dirsync.ldap")
    conn = service_connection(directory_config(urls=[dead, slapd.url]))
    try:
        assert conn.server.port == slapd.port
    finally:
        close_quietly(conn)
    assert dead in caplog.text  # the skipped server is reported, with its reason


def test_a_refused_bind_ends_the_failover(slapd: SlapdServer,
                                          directory_config: MakeConfig) -> None:
    # Trying more servers with a wrong password would only risk locking the account.
    with pytest.raises(errors.BindRejected):
        connect(directory_config(urls=[slapd.url, dead_url()], password="wrong"))


def test_tls_failures_on_every_server_are_a_tls_failure(slapd: SlapdServer,
                                                        directory_config: MakeConfig) -> None:
    with pytest.raises(errors.TlsFailure, match="every server"):
        connect(directory_config(urls=[slapd.ldaps_url, slapd.ldaps_url]))
    with pytest.raises(errors.DirectoryUnreachable) as info:
        connect(directory_config(urls=[slapd.ldaps_url, dead_url()]))
    assert "certificate" in str(info.value) and "refused" in str(info.value).lower()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"ldap://127.0.0.1:{sock.getsockname()[1]}"


def test_a_server_that_never_answers_times_out(directory_config: MakeConfig,
                                               silent_server: str) -> None:
    config = directory_config(urls=[silent_server], operation_timeout=1)
    started = time.monotonic()
    with pytest.raises(errors.DirectoryUnreachable, match="timed out|timeout"):
        connect(config)
    assert time.monotonic() - started < 5


def test_anonymous_bind(slapd: SlapdServer, directory_config: MakeConfig) -> None:
    conn = open_connection(directory_config(), None, None)
    try:
        assert conn.bound
    finally:
        close_quietly(conn)
    assert SYNC_PASSWORD  # the fixture's account is not needed for this one


def test_entries_are_read_by_dirsync_not_by_ldap3(directory_config: MakeConfig) -> None:
    """connection.py replaces ldap3 2.9.1's receiving and entry decoding (setup.cfg pins the
    version). Were a change in ldap3 to route around the replacement, entries would come back
    in ldap3's shape (an `attributes` copy, names spelled as the server sent them)."""
    config = directory_config()
    with bound(config) as conn:
        conn.search(config.user_base_dn, "(objectClass=*)",
                    attributes=["objectClass", "entryUUID"])
        entries = [r for r in conn.response if r["type"] == "searchResEntry"]
    assert len(entries) > 3
    assert all(set(r) == {"type", "dn", "raw_attributes"} for r in entries)
    assert all(set(r["raw_attributes"]) <= {"objectclass", "entryuuid"} for r in entries)
    assert all(isinstance(v, bytes) for r in entries for v in r["raw_attributes"]["objectclass"])

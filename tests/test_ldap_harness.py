"""Tests of the slapd harness itself (tests/slapd.py): if these fail, every LDAP test is
suspect. They check, with the OpenLDAP command line tools rather than our code, what the
other tests rely on: loopback only, accounts and ACLs, the limited account's cap, overlays,
data surviving a restart on the same URL, and the LDIF reader used to inspect results."""

from __future__ import annotations

import socket

import pytest

from ldap_fixtures import *  # noqa: F403 - until conftest lists ldap_fixtures in pytest_plugins
from ldap_fixtures import PEOPLE, LdapTree
from ldap_server import parse_ldif
from servers import MissingServer, ServerError
from slapd import (
    CONFIG_DN,
    CONFIG_PASSWORD,
    LIMITED_DN,
    LIMITED_PASSWORD,
    LIMITED_SIZE,
    SUFFIX,
    SYNC_DN,
    SYNC_PASSWORD,
    SlapdServer,
    find_openldap,
)


def test_listens_on_loopback_only(slapd: SlapdServer) -> None:
    assert slapd.url.startswith("ldap://127.0.0.1:")
    assert slapd.ldaps_url.startswith("ldaps://127.0.0.1:")
    for port in (slapd.port, slapd.ldaps_port):
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


def test_sync_account_reads_everything_but_passwords(slapd: SlapdServer) -> None:
    people = slapd.search(PEOPLE, "(uid=alice)", ["*", "+"], bind_dn=SYNC_DN,
                          password=SYNC_PASSWORD)
    [(_, attrs)] = people
    assert "userpassword" not in attrs and "entryuuid" in attrs
    [(_, dave)] = slapd.search(PEOPLE, "(uid=dave)", ["pwdAccountLockedTime"],
                               bind_dn=SYNC_DN, password=SYNC_PASSWORD)
    assert dave["pwdaccountlockedtime"] == ["000001010000Z"]


def test_anonymous_sees_nothing(slapd: SlapdServer) -> None:
    with pytest.raises(ServerError, match=r"exit 32"):
        slapd.search(PEOPLE, bind_dn=None)


def test_limited_account_is_capped_even_when_paging(slapd: SlapdServer) -> None:
    with pytest.raises(ServerError, match=r"exit 4\b"):
        slapd.search(PEOPLE, "(uid=*)", ["uid"], bind_dn=LIMITED_DN, password=LIMITED_PASSWORD,
                     page_size=2)
    found = slapd.search(PEOPLE, "(uid=alice)", ["uid"], bind_dn=LIMITED_DN,
                         password=LIMITED_PASSWORD)
    assert len(found) == 1 <= LIMITED_SIZE


def test_memberof_and_refint_overlays(ldap_tree: LdapTree) -> None:
    user = ldap_tree.add_user("ola")
    group = ldap_tree.add_group("g", [user])
    [(_, attrs)] = ldap_tree.server.search(user, attributes=["memberOf"], scope="base")
    assert attrs["memberof"] == [group]
    ldap_tree.server.modrdn(user, "uid=ola2")
    [(_, attrs)] = ldap_tree.server.search(group, attributes=["member"], scope="base")
    assert attrs["member"] == [f"uid=ola2,{ldap_tree.people}"]


def test_data_survives_stop_kill_and_start_on_the_same_url(private_slapd: SlapdServer) -> None:
    url = private_slapd.url
    private_slapd.load_ldif(f"dn: uid=new,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\n"
                            "uid: new\ncn: New\nsn: New\n")
    private_slapd.stop()
    assert not private_slapd.running
    private_slapd.start()
    private_slapd.kill()
    private_slapd.start()
    assert private_slapd.url == url
    assert private_slapd.search(f"uid=new,ou=people,{SUFFIX}", scope="base")


def test_ldif_reader() -> None:
    text = ("dn: uid=a,dc=x\nuid: a\ncn: long\n  folded\n\n"
            "dn:: dWlkPWrDtnJnLGRjPXg=\nuid:: asO2cmc=\n")
    assert parse_ldif(text) == [("uid=a,dc=x", {"uid": ["a"], "cn": ["long folded"]}),
                                ("uid=jörg,dc=x", {"uid": ["jörg"]})]


def test_cn_config_can_be_changed_online(private_slapd: SlapdServer) -> None:
    # What incremental-sync tests will need: overlays and databases added while running.
    private_slapd.modify_config(
        "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nreplace: olcSizeLimit\n"
        "olcSizeLimit: 1000\n")
    found = private_slapd.search("olcDatabase={1}mdb,cn=config", attributes=["olcSizeLimit"],
                                 scope="base", bind_dn=CONFIG_DN, password=CONFIG_PASSWORD)
    assert found[0][1]["olcsizelimit"] == ["1000"]


def test_a_missing_binary_is_a_missing_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # MissingServer is what the fixtures turn into a skip (or a failure under CI=true).
    monkeypatch.setattr("slapd.CLIENT_TOOLS", ("ldap-no-such-tool",))
    with pytest.raises(MissingServer, match="apt-get install slapd ldap-utils"):
        find_openldap()

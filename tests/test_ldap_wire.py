"""dirsync.ldap.wire against a real slapd: pipelined lookups and the id scan give exactly what
paging.search_pages gives one search at a time, and fail exactly as it does (size limits, a
missing base, a server that goes away in the middle), leaving the connection usable after an
error the server reported."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from dirsync.ldap import errors, wire
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.connection import bound
from dirsync.ldap.entries import EntryMapper, Skip
from dirsync.ldap.filters import all_of, entry_filter, equality
from dirsync.ldap.paging import RawEntry, search_pages
from dirsync.ldap.wire import scan_first_values, search_each
from ldap_fixtures import *  # noqa: F403 - until conftest lists ldap_fixtures in pytest_plugins
from ldap_fixtures import GROUPS, PEOPLE, LdapTree
from slapd import LIMITED_DN, LIMITED_PASSWORD, LIMITED_SIZE, SlapdServer

MakeConfig = Callable[..., DirectoryConfig]
GROUP_FILTER = "(objectClass=groupOfNames)"


def one_by_one(config: DirectoryConfig, conn: Any, base: str, filters: list[str],
               attributes: list[str]) -> list[list[RawEntry]]:
    return [[e for page in search_pages(conn, config, base, f, attributes, what="groups")
             for e in page] for f in filters]


def ordered(results: list[list[RawEntry]]) -> list[list[RawEntry]]:
    return [sorted(entries) for entries in results]


def member_values(config: DirectoryConfig, conn: Any) -> list[str]:
    """Every member value of the seed's groups, as the groups write them."""
    return sorted({bytes(v).decode() for page in search_pages(
        conn, config, GROUPS, GROUP_FILTER, ["member"], what="groups")
        for _, values in page for v in values.get("member", ())})


# Members of the seed's "Sales, EMEA", written neither as the group nor as slapd writes them.
SALES_PEOPLE_WRITTEN_ELSEWISE = (
    "cn=Doe\\, John,ou=people,dc=example,dc=com",
    "CN=doe\\2c john,OU=People,DC=example,DC=com",
    "uid=star*(paren),OU=people,dc=example,dc=com",
    "cn=\\ Leading Space,ou=people,dc=example,dc=com",
    "uid=back\\\\slash,ou=people,dc=example,dc=com",
    "uid=plus\\+sign,ou=people,dc=example,dc=com",
    "uid=upper, ou=people, dc=example, dc=com",
    "uid=multi+cn=Multi,ou=people,dc=example,dc=com",
    "uid=jörg,ou=people,dc=example,dc=com",
)


@pytest.mark.parametrize("window", [1, 3, wire.WINDOW])
def test_lookups_equal_one_search_at_a_time(directory_config: MakeConfig, window: int) -> None:
    # The seed's "Sales, EMEA" lists its people in other escapings and cases than their own
    # DNs: looked up by their own DN and by every written form, each must find the same groups.
    config = directory_config()
    with bound(config) as conn:
        people = [dn for page in search_pages(conn, config, PEOPLE, "(objectClass=person)",
                                              ["1.1"], what="users") for dn, _ in page]
        dns = people + member_values(config, conn) + list(SALES_PEOPLE_WRITTEN_ELSEWISE)
        filters = [all_of(GROUP_FILTER, equality("member", dn)) for dn in dns]
        attributes = ["entryUUID", "cn"]
        pipelined = search_each(conn, config, GROUPS, filters, attributes, what="groups",
                                window=window)
        assert ordered(pipelined) == ordered(one_by_one(config, conn, GROUPS, filters,
                                                        attributes))
    found = {dn: {e[1]["cn"][0] for e in entries} for dn, entries in zip(dns, pipelined)}
    for dn in SALES_PEOPLE_WRITTEN_ELSEWISE:
        assert b"Sales, EMEA" in found[dn], dn
    assert sum(map(len, pipelined)) > len(dns)  # most people are in some group


def test_a_filter_ldap3_accepts_beyond_rfc_4515(directory_config: MakeConfig) -> None:
    # Spaces between the parts of a configured filter: requests.py leaves it to ldap3.
    config = directory_config()
    with bound(config) as conn:
        filters = [f"(& {GROUP_FILTER} (member=uid=alice,ou=people,dc=example,dc=com))"]
        got = search_each(conn, config, GROUPS, filters, ["cn"], what="groups")
        assert got == one_by_one(config, conn, GROUPS, filters, ["cn"])
        assert {dn.split(",")[0] for dn, _ in got[0]} == {"cn=staff", "cn=admins",
                                                           "cn=diamond-bottom"}


def test_a_size_limit_raises_and_the_connection_stays_usable(
        ldap_tree: LdapTree, directory_config: MakeConfig) -> None:
    popular = ldap_tree.add_user("popular")
    for n in range(LIMITED_SIZE + 1):
        ldap_tree.add_group(f"g{n}", [popular])
    config = directory_config(bind_dn=LIMITED_DN, password=LIMITED_PASSWORD)
    filters = [all_of(GROUP_FILTER, equality("member", dn))
               for dn in ("uid=nobody,dc=example,dc=com", popular)]
    with bound(config) as conn:
        with pytest.raises(errors.LimitExceeded) as pipelined:
            search_each(conn, config, ldap_tree.groups, filters, ["entryUUID"], what="groups")
        with pytest.raises(errors.LimitExceeded) as sequential:
            one_by_one(config, conn, ldap_tree.groups, filters, ["entryUUID"])
        assert str(pipelined.value) == str(sequential.value)
        # Every answer was read before raising: the connection goes on as if nothing happened.
        assert search_each(conn, config, ldap_tree.groups, filters[:1], ["entryUUID"],
                           what="groups") == [[]]


def test_a_missing_base_raises_as_search_pages_does(directory_config: MakeConfig) -> None:
    config = directory_config()
    missing = "ou=missing,dc=example,dc=com"
    with bound(config) as conn:
        with pytest.raises(errors.BaseDnMissing) as pipelined:
            search_each(conn, config, missing, [GROUP_FILTER], ["cn"], what="groups")
        with pytest.raises(errors.BaseDnMissing) as sequential:
            one_by_one(config, conn, missing, [GROUP_FILTER], ["cn"])
        assert str(pipelined.value) == str(sequential.value)
        with pytest.raises(errors.BaseDnMissing) as scan:
            list(scan_first_values(conn, config, missing, GROUP_FILTER, "entryUUID",
                                   what="groups"))
        assert str(scan.value) == str(sequential.value)


def stop_after(server: SlapdServer, calls: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Really stop slapd once wire.py has read `calls` batches of answers from it."""
    receive = wire.receive_raw
    seen = []

    def spy(*args: Any) -> list[bytes]:
        seen.append(1)
        if len(seen) == calls + 1:
            server.stop()
        return receive(*args)

    monkeypatch.setattr(wire, "receive_raw", spy)


def test_a_server_stopped_mid_pipeline(private_slapd: SlapdServer,
                                       directory_config: MakeConfig,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config = directory_config(private_slapd)
    filters = [all_of(GROUP_FILTER, equality("member", f"uid=u{n},{PEOPLE}"))
               for n in range(200)]
    with bound(config) as conn:
        stop_after(private_slapd, 1, monkeypatch)
        with pytest.raises(errors.ConnectionLost):
            search_each(conn, config, GROUPS, filters, ["entryUUID"], what="groups", window=4)


# -- the id scan --------------------------------------------------------------------------------


def scanned(config: DirectoryConfig, conn: Any, base: str, search_filter: str) -> list[str]:
    mapper = EntryMapper(config)
    ids: list[str] = []
    for values, entries in scan_first_values(conn, config, base, search_filter,
                                             config.attributes.unique_id, what="ids"):
        ids += mapper.external_ids(values)
        for _, entry in entries:
            try:
                ids.append(mapper.external_id(entry))
            except Skip:
                pass
    return sorted(ids)


def read_whole(config: DirectoryConfig, conn: Any, base: str, search_filter: str) -> list[str]:
    mapper = EntryMapper(config)
    ids = []
    for page in search_pages(conn, config, base, search_filter,
                             [config.attributes.unique_id], what="ids"):
        for _, values in page:
            try:
                ids.append(mapper.external_id(values))
            except Skip:
                pass
    return sorted(ids)


@pytest.mark.parametrize("page_size", [1, 2, 1000])
def test_the_scan_equals_reading_whole_entries(directory_config: MakeConfig,
                                               page_size: int) -> None:
    config = directory_config(page_size=page_size)
    users = entry_filter(config.user_object_class, config.user_filter)
    with bound(config) as conn:
        for base, search_filter in ((PEOPLE, users), (GROUPS, GROUP_FILTER)):
            ids = scanned(config, conn, base, search_filter)
            assert ids == read_whole(config, conn, base, search_filter)
            assert len(ids) > 3 and all(len(i) == 36 for i in ids)


def test_unusual_ids_come_out_as_external_id_gives_them(ldap_tree: LdapTree,
                                                        directory_config: MakeConfig) -> None:
    # jpegPhoto holds any bytes: ids that are padded, not UTF-8, several, too long or absent.
    photos = {"padded": [" Padded "], "binary": ["\xff\xfe\x00"], "two": ["first", "second"],
              "long": ["x" * 300], "empty": [" "], "none": []}
    for uid, values in photos.items():
        extra = "".join(f"jpegPhoto:: {_b64(v)}\n" for v in values)
        ldap_tree.add_user(uid, extra=extra)
    config = directory_config(user_base_dn=ldap_tree.people, page_size=2,
                              attributes={"unique_id": "jpegPhoto"})
    users = entry_filter(config.user_object_class, config.user_filter)
    with bound(config) as conn:
        ids = scanned(config, conn, ldap_tree.people, users)
        assert ids == read_whole(config, conn, ldap_tree.people, users)
    assert ids == sorted(["Padded", "fffe00", "first"])


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode("latin-1")).decode()


def test_the_scan_under_a_size_limit_raises(directory_config: MakeConfig) -> None:
    config = directory_config(bind_dn=LIMITED_DN, password=LIMITED_PASSWORD, page_size=2)
    with bound(config) as conn:
        with pytest.raises(errors.LimitExceeded):
            scanned(config, conn, PEOPLE, "(objectClass=person)")


def test_a_scan_stopped_early_leaves_the_connection_usable(directory_config: MakeConfig
                                                           ) -> None:
    # The next page is asked for before a page is handed over; closing the generator there
    # must read its answer, or the next search would get it.
    config = directory_config(page_size=2)
    with bound(config) as conn:
        pages = scan_first_values(conn, config, PEOPLE, "(objectClass=person)", "entryUUID",
                                  what="ids")
        first, _ = next(pages)
        assert len(first) == 2
        pages.close()
        assert scanned(config, conn, PEOPLE, "(objectClass=person)") == read_whole(
            config, conn, PEOPLE, "(objectClass=person)")


def test_a_server_stopped_mid_scan(private_slapd: SlapdServer, directory_config: MakeConfig,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    config = directory_config(private_slapd, page_size=1)
    with bound(config) as conn:
        stop_after(private_slapd, 2, monkeypatch)
        with pytest.raises(errors.ConnectionLost):
            scanned(config, conn, PEOPLE, "(objectClass=person)")


def test_over_tls(slapd: SlapdServer, directory_config: MakeConfig) -> None:
    # The requests go through the TLS socket ldap3 wrapped, the answers through its buffer.
    plain = directory_config(page_size=2)
    secure = directory_config(urls=[slapd.ldaps_url], ca_file=str(slapd.ca_file), page_size=2)
    filters = [all_of(GROUP_FILTER, equality("member", dn)) for dn in SALES_PEOPLE_WRITTEN_ELSEWISE]
    results = []
    for config in (plain, secure):
        with bound(config) as conn:
            results.append((ordered(search_each(conn, config, GROUPS, filters, ["cn"],
                                                what="groups", window=3)),
                            scanned(config, conn, PEOPLE, "(objectClass=person)")))
    assert results[0] == results[1] and all(results[0][0])


@pytest.mark.parametrize("unique_id", ["entryUUID", "nsUniqueId", "objectGUID",
                                       "employeeNumber"])
def test_external_ids_give_what_external_id_gives(directory_config: MakeConfig,
                                                  unique_id: str) -> None:
    # Pure: the batch path of the id scan against the one-entry path, on ids of every shape.
    import os

    mapper = EntryMapper(directory_config(attributes={"unique_id": unique_id}))
    usual = [os.urandom(16) for _ in range(50)] + [
        b"6F9619FF-8B86-D011-B42D-00C04FC964FF", b"c8a3e1a2-5a2b11ee-8000-9e1f2a3b4c5d"]
    odd = [b" Padded ", b"\xff\xfe", b"", b"  ", b"x" * 300, bytes(15), "Jörg".encode()]
    for values in (usual, usual + odd, odd, []):
        expected = []
        for value in values:
            try:
                expected.append(mapper.external_id({unique_id.lower(): [value]}))
            except Skip:
                pass
        assert mapper.external_ids(values) == expected

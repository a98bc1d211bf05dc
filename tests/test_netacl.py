"""Table-driven tests for dirsync.netacl: parsing, allow-lists and the client address."""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest

from dirsync.netacl import (
    AllowList,
    client_address,
    is_allowed,
    parse_address,
    parse_network,
)

# --- parse_address -------------------------------------------------------------------------------

ADDRESSES = [
    ("127.0.0.1", "127.0.0.1"),
    ("  10.0.0.7\t", "10.0.0.7"),
    ("::1", "::1"),
    ("[::1]", "::1"),
    (" [2001:db8::1] ", "2001:db8::1"),
    ("2001:DB8:0:0::1", "2001:db8::1"),
    ("::ffff:127.0.0.1", "127.0.0.1"),
    ("::FFFF:7f00:1", "127.0.0.1"),
    ("[::ffff:192.0.2.7]", "192.0.2.7"),
    # IPv4-compatible (deprecated) and NAT64 addresses are real IPv6 addresses, not mapped ones.
    ("::192.0.2.7", "::c000:207"),
    ("64:ff9b::192.0.2.7", "64:ff9b::c000:207"),
    ("0.0.0.0", "0.0.0.0"),
    ("255.255.255.255", "255.255.255.255"),
]


@pytest.mark.parametrize(("text", "expected"), ADDRESSES)
def test_parse_address(text: str, expected: str) -> None:
    assert parse_address(text) == ip_address(expected)


def test_parse_address_mapped_becomes_ipv4_type() -> None:
    assert type(parse_address("::ffff:10.0.0.1")) is IPv4Address
    assert type(parse_address("::1")) is IPv6Address


BAD_ADDRESSES = [
    ("", "empty"),
    ("   ", "empty"),
    ("localhost", "not an IP address"),
    ("unknown", "not an IP address"),
    ("256.0.0.1", "not an IP address"),
    ("10.0.0", "not an IP address"),
    ("010.0.0.1", "not an IP address"),  # leading zeros: octal to some parsers, refused
    ("10.0.0.1/32", "not an IP address"),
    ("::1/128", "not an IP address"),
    ("10.0.0.1:8080", "includes a port"),
    ("[::1]:8080", "includes a port"),
    ("[10.0.0.1]", "brackets may only enclose an IPv6 address"),
    ("[::1", "not an IP address"),
    ("::1]", "not an IP address"),
    ("fe80::1%eth0", "zone id (%eth0)"),
    ("[fe80::1%25eth0]", "zone id"),
    ("1.2.3.4 5.6.7.8", "not an IP address"),
    ("１２７.0.0.1", "not an IP address"),  # full-width digits
    ("2001:db8::1::2", "not an IP address"),
]


@pytest.mark.parametrize(("text", "message"), BAD_ADDRESSES)
def test_parse_address_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_address(text)


# --- parse_network -------------------------------------------------------------------------------

NETWORKS = [
    ("10.0.0.0/8", "10.0.0.0/8"),
    (" 192.168.0.0/16\n", "192.168.0.0/16"),
    ("192.0.2.7", "192.0.2.7/32"),
    ("192.0.2.7/32", "192.0.2.7/32"),
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("::1", "::1/128"),
    ("[::1]", "::1/128"),
    ("::/0", "::/0"),
    ("2001:db8::/32", "2001:db8::/32"),
    ("2001:DB8::/32", "2001:db8::/32"),
    ("fe80::/10", "fe80::/10"),
    # IPv4-mapped networks fold to IPv4, addresses and CIDRs alike.
    ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
    ("::ffff:192.0.2.7", "192.0.2.7/32"),
    ("::ffff:192.0.2.7/128", "192.0.2.7/32"),
    ("::ffff:0:0/96", "0.0.0.0/0"),
]


@pytest.mark.parametrize(("text", "expected"), NETWORKS)
def test_parse_network(text: str, expected: str) -> None:
    assert parse_network(text) == ip_network(expected)


BAD_NETWORKS = [
    ("", "empty string is not an IP address or CIDR network"),
    ("example.org", "is not an IP address or CIDR network"),
    ("10.1.2.3/8", "has host bits set; did you mean 10.0.0.0/8?"),
    ("192.168.1.1/24", "did you mean 192.168.1.0/24?"),
    ("2001:db8::1/32", "did you mean 2001:db8::/32?"),
    ("::ffff:10.1.2.3/104", "did you mean 10.0.0.0/8?"),
    ("10.0.0.0/33", "between 0 and 32"),
    ("::/129", "between 0 and 128"),
    ("10.0.0.0/", "prefix length"),
    ("10.0.0.0/-1", "prefix length"),
    ("10.0.0.0/255.0.0.0", "netmasks are not accepted"),
    ("0.0.0.0/0.0.0.0", "netmasks are not accepted"),
    ("10.0.0.0/8/8", "prefix length"),
    ("300.0.0.0/8", "is not a CIDR network"),
    ("fe80::1%eth0", "zone id"),
    ("fe80::%eth0/64", "zone id"),
    ("10.0.0.1:80", "includes a port"),
]


@pytest.mark.parametrize(("text", "message"), BAD_NETWORKS)
def test_parse_network_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_network(text)


# --- is_allowed ----------------------------------------------------------------------------------

ALLOWED = [
    ("10.1.2.3", ["10.0.0.0/8"], True),
    ("10.255.255.255", ["10.0.0.0/8"], True),
    ("11.0.0.0", ["10.0.0.0/8"], False),
    ("9.255.255.255", ["10.0.0.0/8"], False),
    ("192.0.2.7", ["192.0.2.7"], True),
    ("192.0.2.8", ["192.0.2.7"], False),
    ("192.0.2.7", ["10.0.0.0/8", "192.0.2.0/29"], True),  # last of the /29
    ("192.0.2.8", ["10.0.0.0/8", "192.0.2.0/29"], False),  # first past it
    ("192.0.2.8", ["192.0.2.8/29"], True),
    ("192.0.2.0", ["192.0.2.0/31"], True),
    ("192.0.2.1", ["192.0.2.0/31"], True),
    ("203.0.113.9", ["0.0.0.0/0"], True),
    ("2001:db8::5", ["2001:db8::/32"], True),
    ("2001:db9::5", ["2001:db8::/32"], False),
    ("::1", ["::1"], True),
    # Versions never cross: ::/0 does not cover IPv4 clients, 0.0.0.0/0 no IPv6 client.
    ("127.0.0.1", ["::/0"], False),
    ("::1", ["0.0.0.0/0"], False),
    ("::ffff:127.0.0.1", ["::/0"], False),
    # ... except through the mapped form, folded on both sides.
    ("::ffff:127.0.0.1", ["127.0.0.0/8"], True),
    ("127.0.0.1", ["::ffff:127.0.0.0/104"], True),
    ("127.0.0.1", [], False),
]


@pytest.mark.parametrize(("address", "entries", "expected"), ALLOWED)
def test_is_allowed(address: str, entries: list[str], expected: bool) -> None:
    networks = [parse_network(entry) for entry in entries]
    assert is_allowed(parse_address(address), networks) is expected
    assert AllowList.parse(entries).allows(parse_address(address)) is expected


def test_is_allowed_folds_a_raw_mapped_address() -> None:
    # A caller holding an ipaddress value it did not get from parse_address.
    assert is_allowed(ip_address("::ffff:10.0.0.1"), [parse_network("10.0.0.0/8")])


# --- AllowList -----------------------------------------------------------------------------------


def test_allow_list_str_is_canonical_and_ordered() -> None:
    allow = AllowList.parse([" ::1 ", "10.0.0.0/8", "::ffff:192.0.2.7", "2001:DB8::/32"])
    assert str(allow) == "::1/128, 10.0.0.0/8, 192.0.2.7/32, 2001:db8::/32"
    assert len(allow) == 4
    assert list(allow) == list(allow.networks)


def test_empty_allow_list_allows_nobody() -> None:
    allow = AllowList.parse([])
    assert str(allow) == "(empty)"
    assert not allow.allows(parse_address("127.0.0.1"))


def test_allow_list_reports_every_bad_entry() -> None:
    with pytest.raises(ValueError) as caught:
        AllowList.parse(["10.0.0.0/8", "10.1.2.3/8", "::1", "nonsense"])
    message = str(caught.value)
    assert "entry 2: '10.1.2.3/8' has host bits set; did you mean 10.0.0.0/8?" in message
    assert "entry 4: 'nonsense' is not an IP address or CIDR network" in message


def test_allow_list_refuses_a_single_string() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        AllowList.parse("10.0.0.0/8")


def test_allow_list_is_immutable_and_hashable() -> None:
    allow = AllowList.parse(["10.0.0.0/8"])
    with pytest.raises(AttributeError):
        allow.networks = ()  # type: ignore[misc]
    assert allow == AllowList.parse(["10.0.0.0/8"])
    assert hash(allow) == hash(AllowList.parse(["10.0.0.0/8"]))


# --- client_address ------------------------------------------------------------------------------

# Proxies in these tables: a load balancer in 10.0.0.0/8 and an IPv6 ingress at 2001:db8:1::/48,
# plus the loopback. 203.0.113.0/24 and 198.51.100.0/24 are "the internet" (RFC 5737).
TRUSTED = [parse_network(entry) for entry in ("10.0.0.0/8", "2001:db8:1::/48", "127.0.0.1")]

CLIENTS = [
    # (id, remote_addr, X-Forwarded-For header values, expected client)
    ("direct client, no header", "203.0.113.5", [], "203.0.113.5"),
    ("spoofed header from untrusted peer ignored", "203.0.113.5", ["10.0.0.1"], "203.0.113.5"),
    ("spoofed chain from untrusted peer ignored", "203.0.113.5",
     ["198.51.100.1, 127.0.0.1"], "203.0.113.5"),
    ("garbage from untrusted peer ignored", "203.0.113.5", ["garbage"], "203.0.113.5"),
    ("mapped untrusted peer", "::ffff:203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
    ("one trusted hop", "10.0.0.2", ["203.0.113.5"], "203.0.113.5"),
    ("one trusted hop, IPv6 client", "10.0.0.2", ["2001:db8:ffff::9"], "2001:db8:ffff::9"),
    ("trusted peer without header is the client", "10.0.0.2", [], "10.0.0.2"),
    ("trusted peer with empty header", "10.0.0.2", [""], "10.0.0.2"),
    ("mapped trusted peer", "::ffff:10.0.0.2", ["203.0.113.5"], "203.0.113.5"),
    ("client-written entries left of the real client are ignored", "10.0.0.2",
     ["127.0.0.1, 198.51.100.66, 203.0.113.5"], "203.0.113.5"),
    ("multi-hop trusted chain", "10.0.0.2",
     ["203.0.113.5, 2001:db8:1::7, 10.9.9.9"], "203.0.113.5"),
    ("multi-hop chain with spoofed prefix", "127.0.0.1",
     ["10.0.0.99, 198.51.100.66, 10.0.0.3, 10.0.0.4"], "198.51.100.66"),
    ("all trusted: the leftmost", "10.0.0.2", ["10.0.0.5, 10.0.0.4, 10.0.0.3"], "10.0.0.5"),
    ("all trusted, one entry", "127.0.0.1", ["127.0.0.1"], "127.0.0.1"),
    ("IPv6 trusted peer", "2001:db8:1::1", ["203.0.113.5"], "203.0.113.5"),
    ("bracketed IPv6 peer", "[2001:db8:1::1]", ["[2001:db8:ffff::9]"], "2001:db8:ffff::9"),
    ("mapped entries fold", "10.0.0.2", ["::ffff:203.0.113.5, ::ffff:10.0.0.3"], "203.0.113.5"),
    ("whitespace around entries", "10.0.0.2", ["  203.0.113.5 ,\t10.0.0.3  "], "203.0.113.5"),
    ("empty list elements skipped", "10.0.0.2", [",203.0.113.5,, ,10.0.0.3,"], "203.0.113.5"),
    # Several X-Forwarded-For headers are one list, in the order received.
    ("multiple headers joined", "10.0.0.2",
     ["198.51.100.66", "203.0.113.5, 10.0.0.3"], "203.0.113.5"),
    ("multiple headers, client in the first", "10.0.0.2",
     ["203.0.113.5", "10.0.0.4", "10.0.0.3"], "203.0.113.5"),
    ("multiple headers, all trusted", "10.0.0.2", ["10.0.0.5", "10.0.0.4"], "10.0.0.5"),
    # Garbage stops the walk at the trusted proxy that handed it over.
    ("garbage right after the peer", "10.0.0.2", ["203.0.113.5, garbage"], "10.0.0.2"),
    ("garbage deeper in the chain", "10.0.0.2",
     ["203.0.113.5, unknown, 10.0.0.3"], "10.0.0.3"),
    ("a port is garbage", "10.0.0.2", ["203.0.113.5:4711"], "10.0.0.2"),
    ("a zone id is garbage", "10.0.0.2", ["203.0.113.5, fe80::1%eth0"], "10.0.0.2"),
    ("a CIDR is garbage", "10.0.0.2", ["203.0.113.0/24"], "10.0.0.2"),
    ("garbage left of the client never reached", "10.0.0.2",
     ["garbage, 203.0.113.5"], "203.0.113.5"),
    ("garbage in a separate header", "10.0.0.2", ["203.0.113.5", "???", "10.0.0.3"], "10.0.0.3"),
]


@pytest.mark.parametrize(
    ("remote_addr", "forwarded_for", "expected"),
    [case[1:] for case in CLIENTS],
    ids=[case[0] for case in CLIENTS],
)
def test_client_address(remote_addr: str, forwarded_for: list[str], expected: str) -> None:
    assert client_address(remote_addr, forwarded_for, TRUSTED) == ip_address(expected)


def test_client_address_without_trusted_proxies_ignores_header() -> None:
    assert client_address("127.0.0.1", ["203.0.113.5"], []) == ip_address("127.0.0.1")


@pytest.mark.parametrize("remote_addr", ["", "unix:/run/dirsync.sock", "10.0.0.2:5555"])
def test_client_address_refuses_unusable_peer(remote_addr: str) -> None:
    # A peer we cannot identify must not fall through to the header (or to "allowed").
    with pytest.raises(ValueError):
        client_address(remote_addr, ["203.0.113.5"], TRUSTED)

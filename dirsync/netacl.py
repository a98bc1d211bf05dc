"""Allow-lists of networks, and the client address of a request. Pure: no Flask, no I/O.

Each client application may only call us from the addresses on its allow-list (Crowd's
`ClientValidationManager`; a miss is a 403). Two questions are answered here:

* **What does an admin's allow-list entry mean?** `parse_network` turns "10.0.0.0/8", "::1" or
  "192.0.2.7" into a network, and refuses anything it would have to guess about: host bits set
  ("10.1.2.3/8" is more likely a typo than a wish for 10.0.0.0/8), dotted netmasks, zone ids.
* **Who is the client?** `client_address` believes X-Forwarded-For only as far as a chain of
  trusted proxies vouches for it, walking from the right (the entry our own proxy appended) to
  the left (entries anyone could have written).

IPv4-mapped IPv6 (`::ffff:192.0.2.7`) is always folded to plain IPv4, for addresses and networks
alike: a dual-stack socket reports IPv4 peers that way, and an allow-list written in IPv4 must
still match them. Apart from that, an IPv4 address never matches an IPv6 network (`::/0` does
not cover IPv4 clients) and vice versa.

Errors are `ValueError` with a sentence naming the bad text; `settings` turns them into a
`ConfigError` naming the key. This module must not import anything from the rest of dirsync.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# The IPv4-mapped block ::ffff:0:0/96; its last 32 bits are an IPv4 address (RFC 4291 §2.5.5.2).
_MAPPED_PREFIX = 96


def parse_address(text: str) -> Address:
    """Parse one IP address, as found in REMOTE_ADDR or an X-Forwarded-For entry.

    Surrounding whitespace and the brackets of an IPv6 literal (`[::1]`) are removed, and an
    IPv4-mapped IPv6 address becomes the IPv4 address. Anything else — a port, a zone id, a
    network, a host name — raises ValueError: this is a security check, so we do not guess.
    """
    return _parse_address(text, "an IP address")


def _parse_address(text: str, expected: str) -> Address:
    # `expected` lets parse_network say "address or CIDR network" in its own messages.
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"an empty string is not {expected}")
    inner = stripped
    if stripped.startswith("["):
        if stripped.endswith("]"):
            inner = stripped[1:-1]
            # Brackets exist only to set an IPv6 literal apart from a port (RFC 3986 §3.2.2).
            if ":" not in inner:
                raise ValueError(f"{text!r}: brackets may only enclose an IPv6 address")
        elif "]:" in stripped:
            raise ValueError(f"{text!r} includes a port; give the address only")
    _reject_zone_id(text, inner)
    if inner.count(":") == 1 and "." in inner:
        # "192.0.2.7:8080": the only way a single colon appears next to dots.
        raise ValueError(f"{text!r} includes a port; give the address only")
    try:
        address = ip_address(inner)
    except ValueError:
        raise ValueError(f"{text!r} is not {expected}") from None
    return _unmap_address(address)


def parse_network(text: str) -> Network:
    """Parse one allow-list entry: an address ("192.0.2.7", "::1") or a CIDR ("10.0.0.0/8").

    A bare address becomes a /32 or /128 network. The prefix must be a decimal length: dotted
    netmasks are refused because "0.0.0.0" reads as both /0 and /32 (netmask vs hostmask) and we
    would rather ask than open an allow-list to the world. A CIDR with host bits set is refused
    with the network it probably meant, since silently masking hides typos. IPv4-mapped IPv6
    networks of prefix /96 or longer become the IPv4 network (`::ffff:10.0.0.0/104` ->
    `10.0.0.0/8`).
    """
    stripped = text.strip()
    if "/" not in stripped:
        return ip_network(_parse_address(text, "an IP address or CIDR network"))
    address_part, _, prefix = stripped.partition("/")
    _reject_zone_id(text, address_part)
    if not (prefix.isascii() and prefix.isdigit()):
        raise ValueError(
            f"{text!r}: after '/' comes a prefix length such as /8 or /64 (netmasks are "
            "not accepted)"
        )
    longest = 128 if ":" in address_part else 32
    if int(prefix) > longest:
        raise ValueError(f"{text!r}: the prefix length must be between 0 and {longest}")
    try:
        network = ip_network(stripped, strict=True)
    except ValueError:
        try:
            masked = ip_network(stripped, strict=False)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a CIDR network; expected e.g. 10.0.0.0/8 or 2001:db8::/32"
            ) from None
        raise ValueError(
            f"{text!r} has host bits set; did you mean {_unmap_network(masked)}?"
        ) from None
    return _unmap_network(network)


def client_address(
    remote_addr: str,
    forwarded_for: Sequence[str],
    trusted_proxies: Sequence[Network],
) -> Address:
    """The address of the client, believing X-Forwarded-For only from trusted proxies.

    `remote_addr` is the direct peer (WSGI REMOTE_ADDR); `forwarded_for` is every
    X-Forwarded-For header value in order received (they are one comma-separated list, RFC 9110
    §5.3); `trusted_proxies` are networks from `parse_network`.

    * The peer is not a trusted proxy: X-Forwarded-For is ignored entirely, because the client
      wrote it and could name any address it liked. The peer is the client.
    * Otherwise the list is walked from right to left. Each trusted proxy appends the address
      it received the request from, so every entry is as trustworthy as the proxy to its right.
      The first entry that is not itself a trusted proxy is the client.
    * Every entry is a trusted proxy (or there are none): the leftmost one is the client, e.g.
      a health check sent by the proxy itself.
    * An entry that is not a plain address (garbage, a port, "unknown") stops the walk and the
      trusted proxy that handed it over — the last address we could verify — is the client.
      Guessing past it could let a client choose its own address; refusing the request would
      let one misbehaving proxy take the service down.

    Empty list elements ("a,,b", an empty header) are skipped, as RFC 9110 §5.6.1 asks of
    recipients. Raises ValueError only when `remote_addr` itself is not an IP address (e.g. a
    Unix-socket peer); callers should refuse such a request rather than guess.
    """
    verified = parse_address(remote_addr)
    if not is_allowed(verified, trusted_proxies):
        return verified
    entries = [entry.strip() for header in forwarded_for for entry in header.split(",")]
    for entry in reversed(entries):
        if not entry:
            continue
        try:
            candidate = parse_address(entry)
        except ValueError:
            return verified
        if not is_allowed(candidate, trusted_proxies):
            return candidate
        verified = candidate
    return verified


def is_allowed(address: Address, networks: Iterable[Network]) -> bool:
    """True when `address` lies in one of `networks`.

    A mapped address is folded to IPv4 first, so callers holding a raw `ipaddress` value still
    get the same answer as `parse_address` would give. Networks are taken as they are; build them
    with `parse_network` so that mapped networks are folded too.
    """
    address = _unmap_address(address)
    # ipaddress answers False (not an error) when the versions differ, which is what we want.
    return any(address in network for network in networks)


@dataclass(frozen=True)
class AllowList:
    """An immutable list of networks, in the order the admin wrote them.

    An empty AllowList allows nobody: whether "no list configured" means "anyone may call" is
    the caller's policy, not something to fall into by accident here.
    """

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        """Parse every entry; one ValueError lists all bad ones, so an admin fixes them at once."""
        if isinstance(entries, str):
            # A lone string would be iterated character by character into nonsense errors.
            raise TypeError("AllowList.parse takes a list of entries, not a single string")
        networks: list[Network] = []
        problems: list[str] = []
        for position, entry in enumerate(entries, start=1):
            try:
                networks.append(parse_network(entry))
            except ValueError as exc:
                problems.append(f"entry {position}: {exc}")
        if problems:
            raise ValueError("invalid allow-list: " + "; ".join(problems))
        return cls(tuple(networks))

    def allows(self, address: Address) -> bool:
        """True when `address` lies in one of the networks."""
        return is_allowed(address, self.networks)

    def __iter__(self) -> Iterator[Network]:
        return iter(self.networks)

    def __len__(self) -> int:
        return len(self.networks)

    def __str__(self) -> str:
        # The canonical form, suitable for a log line or an error message.
        return ", ".join(str(network) for network in self.networks) or "(empty)"


def _reject_zone_id(text: str, address_part: str) -> None:
    # Python accepts "fe80::1%eth0" since 3.9, but a zone id names an interface of one host: it
    # means nothing in a config file shared between hosts, nor in a header from another host.
    if "%" in address_part:
        zone = address_part[address_part.index("%"):]
        raise ValueError(
            f"{text!r} has a zone id ({zone}); zone ids are local to one host, "
            "remove it"
        )


def _unmap_address(address: Address) -> Address:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmap_network(network: Network) -> Network:
    if (
        isinstance(network, IPv6Network)
        and network.prefixlen >= _MAPPED_PREFIX
        and network.network_address.ipv4_mapped is not None
    ):
        return IPv4Network(
            (network.network_address.ipv4_mapped, network.prefixlen - _MAPPED_PREFIX)
        )
    return network

"""Reading the USN marks of 389 Directory Server and Active Directory (for changes.py).

* `read_389_marks` — the root DSE's `lastusn` values (one per backend, `lastusn;userroot`, or
  one global counter with `nsslapd-entryusn-global`) and, through `nsBackendSuffix`, which
  backend holds each base DN.
* `read_ad_marks` — the DC's `highestCommittedUSN` and `dsServiceName` from the root DSE, and
  the `invocationId` of that NTDS Settings object (`watermark.AdHighWater`).

Each returns the marks, or a sentence saying why this server cannot be read incrementally
(which becomes a `none` token or a FullSyncRequired). Errors of the directory itself (down,
refused) are LdapErrors and go up. ldap3 is not imported here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from dirsync.dn import dn_key
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.connection import Connection
from dirsync.ldap.delta import within
from dirsync.ldap.paging import read_entry
from dirsync.ldap.watermark import AdHighWater, guid_text, parse_usn


@dataclass(frozen=True)
class BackendMarks:
    """lastusn per backend (lower-cased name; "" for a global counter), and the backend
    holding each base DN (by dn_key), or None for a base whose backend cannot be told (then
    every backend's window applies to it)."""

    lastusn: Mapping[str, int]
    backend_of: Mapping[str, str | None]


def read_389_marks(conn: Connection, config: DirectoryConfig) -> BackendMarks | str:
    root = read_entry(conn, config, "", ["lastusn", "nsBackendSuffix"], what="the root DSE")
    values = root[1] if root else {}
    counters: dict[str, int] = {}
    for name, raw in values.items():
        if name != "lastusn" and not name.startswith("lastusn;"):
            continue
        backend = name.partition(";")[2].lower()
        if backend == "global":
            backend = ""
        try:
            counters[backend] = parse_usn(bytes(raw[0]).decode("ascii"), f"the root DSE's {name}")
        except (ValueError, UnicodeDecodeError, IndexError) as exc:
            return f"the root DSE's {name} is not understood ({exc})"
    if not counters:
        return ("the root DSE shows no lastusn, so changes cannot be read incrementally; enable "
                "389 DS's USN plugin (dsconf INSTANCE plugin usn enable, then restart) and let "
                "the bind account read entryUSN")
    suffixes: dict[str, str] = {}  # suffix key -> backend
    for raw in values.get("nsbackendsuffix", ()):
        backend, _, suffix = bytes(raw).decode("utf-8", "replace").partition(":")
        try:
            suffixes[dn_key(suffix)] = backend.strip().lower()
        except ValueError:
            continue
    backend_of: dict[str, str | None] = {}
    for base in (config.user_base_dn, config.group_base_dn):
        key = dn_key(base)
        if len(counters) == 1:
            backend_of[key] = next(iter(counters))
            continue
        holders = [s for s in suffixes if within(key, s)]
        backend = suffixes[max(holders, key=len)] if holders else None
        backend_of[key] = backend if backend in counters else None
    # Only the backends that hold a base matter; with one that cannot be told, all of them.
    wanted = set(backend_of.values())
    kept = counters if None in wanted else {b: counters[b] for b in wanted if b is not None}
    return BackendMarks(kept, backend_of)


def read_ad_marks(conn: Connection, config: DirectoryConfig) -> AdHighWater | str:
    root = read_entry(conn, config, "", ["highestCommittedUSN", "dsServiceName"],
                      what="the root DSE")
    values = root[1] if root else {}
    usn_raw = values.get("highestcommittedusn") or ()
    service_raw = values.get("dsservicename") or ()
    if not usn_raw or not service_raw:
        return ("the root DSE shows no highestCommittedUSN or dsServiceName, so this does not "
                "look like an Active Directory domain controller; check the preset")
    service = bytes(service_raw[0]).decode("utf-8", "replace")
    try:
        usn = parse_usn(bytes(usn_raw[0]).decode("ascii"), "highestCommittedUSN")
    except (ValueError, UnicodeDecodeError) as exc:
        return f"the root DSE's highestCommittedUSN is not understood ({exc})"
    ntds = read_entry(conn, config, service, ["invocationId"],
                      what="the domain controller's NTDS Settings")
    raw = (ntds[1].get("invocationid") or ()) if ntds else ()
    if not raw:
        return (f"the invocationID of the domain controller ({service}) cannot be read by the "
                "bind account; without it a DC restored from backup would go unnoticed, so "
                "every sync is a full one")
    try:
        invocation = guid_text(bytes(raw[0]))
    except ValueError as exc:
        return f"the invocationID of {service} is not understood ({exc})"
    return AdHighWater(service, invocation, usn)


__all__ = ["BackendMarks", "read_389_marks", "read_ad_marks"]

"""High-water marks of incremental sync: the token, OpenLDAP CSNs, 389 DS and AD USNs. Pure.

A token is what one read (full or incremental) hands to the next incremental read: which
method, which server, which configuration, and how far the directory had got. It is opaque to
its holder (JSON text, stored with the sync result) and is checked here before any change is
read, so that a mark can never be applied to a directory it does not describe:

* **method** — `openldap-contextcsn` (syncprov's contextCSN; entryCSN on every entry),
  `389ds-entryusn` (the USN plugin's entryUSN on every entry, `lastusn` per backend in the root
  DSE; see `UsnMarks`), `ad-usn` (uSNChanged with the invocationID guard; see `AdHighWater`) or
  `none` (this directory cannot be read incrementally; `reason` says why, and every
  incremental read is refused with it).
* **server** — the URL the marks were read from. CSNs and USNs describe one server's database;
  a token from another URL (failover to a replica, a changed `urls`) means a full sync.
* **config** — a fingerprint of everything that decides *which* entries are users and groups
  and how they are mapped (bases, classes, filters, membership, attribute map): after such a
  change the mirror no longer matches what an incremental read would assume.
* **suffixes** — (OpenLDAP) per database suffix holding a base DN: the contextCSN values seen
  (one per server id, `sid`), and `pending`, a CSN from which the next read must look again.
* **usn** — (389 DS) per backend: the `lastusn` seen, and the `floor` the next read starts
  above (see `plan_usn_round`).
* **ad** — (Active Directory) the DC's NTDS Settings DN, invocationID and highestCommittedUSN.

Why `pending`: OpenLDAP's refint overlay rewrites member values *after* the rename or delete
that caused them has been answered, in a background task, and without a new entryCSN or an
accesslog record (memberof's updates are just as silent). A read that comes a few
milliseconds after a rename may see the user's new DN but a group that still lists the old
one; nothing would ever make a later read look at that group again. So every read re-reads the
last `settle_seconds` before the newest change once more, until that window has been read by
a round that started `settle_seconds` after the change was first seen. Re-reading is harmless:
changed entries are reported with their full current state.

389 DS needs no settle window: its referential integrity and memberOf plugins rewrite entries
with ordinary internal writes that get an entryUSN of their own (tests/test_ldap_389ds.py
shows it), so a rewrite is read as a change whenever it happens. What it needs instead is one
round of overlap: `lastusn` is the plugin's counter, which a write takes *before* its
transaction commits, so a read may see `lastusn` = k while the entry with USN k is not yet
visible. Each round therefore reads from the marks the *previous* round started with, not from
the ones it ended with (re-reading is harmless, as above). Active Directory needs neither:
highestCommittedUSN counts committed writes only, and linked values (member) never go stale.

Nothing here does I/O; `changes.py` reads the values and the clock and calls these functions.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Mapping

from dirsync.dn import dn_key
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.errors import FullSyncRequired

TOKEN_VERSION = 1
METHOD_CONTEXTCSN = "openldap-contextcsn"
METHOD_ENTRYUSN = "389ds-entryusn"
METHOD_AD_USN = "ad-usn"
METHOD_NONE = "none"
METHODS = (METHOD_CONTEXTCSN, METHOD_ENTRYUSN, METHOD_AD_USN, METHOD_NONE)

# OpenLDAP 2.3+ CSN: generalized time with microseconds, change count, server id, modifier.
_CSN = re.compile(
    r"(?P<time>\d{14})\.(?P<micro>\d{6})Z#(?P<count>[0-9a-fA-F]{6})#(?P<sid>[0-9a-fA-F]{3})"
    r"#(?P<mod>[0-9a-fA-F]{6})"
)
_TIME_FORMAT = "%Y%m%d%H%M%S"


# -- CSNs -------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Csn:
    """One change sequence number. Ordered as OpenLDAP orders them (time, count, sid, mod),
    which for well-formed CSNs is also the order of their text."""

    text: str
    at: datetime = field(compare=False)
    sid: str = field(compare=False)


def parse_csn(text: str) -> Csn:
    """A CSN from its text; ValueError naming the value when it is not one."""
    match = _CSN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not an OpenLDAP CSN (YYYYmmddHHMMSS.uuuuuuZ#count#sid#mod)")
    at = datetime.strptime(match["time"], _TIME_FORMAT).replace(
        microsecond=int(match["micro"]), tzinfo=timezone.utc)
    return Csn(match.group(0), at, match["sid"].lower())


def csn_at(moment: datetime) -> str:
    """The lowest CSN at `moment` (count, sid and modifier zero): `entryCSN>=` it selects
    every change made at that instant or later, whichever server made it."""
    moment = moment.astimezone(timezone.utc)
    return f"{moment.strftime(_TIME_FORMAT)}.{moment.microsecond:06d}Z#000000#000#000000"


def context_marks(values: Iterable[str]) -> dict[str, str]:
    """contextCSN values -> {server id: CSN}. A database replicated between providers has one
    value per server id; a server id listed twice keeps its highest CSN."""
    marks: dict[str, Csn] = {}
    for value in values:
        csn = parse_csn(value)
        if csn.sid not in marks or marks[csn.sid] < csn:
            marks[csn.sid] = csn
    return {sid: csn.text for sid, csn in marks.items()}


# -- the configuration fingerprint ----------------------------------------------------------


def config_fingerprint(config: DirectoryConfig) -> str:
    """A short hash of the settings that decide which entries are read and how they map.
    Connection settings (URLs, TLS, timeouts, page size, schedule) are left out: changing them
    does not change what the mirror should contain."""
    a = config.attributes
    material = {
        "user_base_dn": _key(config.user_base_dn),
        "group_base_dn": _key(config.group_base_dn),
        "user_object_class": config.user_object_class.lower(),
        "user_filter": config.user_filter,
        "group_object_class": config.group_object_class.lower(),
        "group_filter": config.group_filter,
        "membership": config.membership,
        "disabled_method": config.disabled_method,
        "attributes": {name: getattr(a, name).lower() for name in sorted(vars(a))},
        "continuation_references": config.continuation_references,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _key(dn: str) -> str:
    try:
        return dn_key(dn)
    except ValueError:
        return dn


# -- Active Directory -------------------------------------------------------------------------


@dataclass(frozen=True)
class AdHighWater:
    """Where an Active Directory domain controller had got, as Microsoft's polling recipe
    says to record it: the DC (its NTDS Settings DN, `dsServiceName`), the DC's database
    identity (`invocationID`, a new one after a restore from backup) and `highestCommittedUSN`.
    USNs are per DC and per database incarnation: compared across either, they mean nothing."""

    server: str
    invocation_id: str
    usn: int


def ad_guard(previous: AdHighWater, current: AdHighWater) -> str | None:
    """Why `previous` cannot be continued on the DC described by `current`, or None."""
    if dn_key(previous.server) != dn_key(current.server):
        return (f"the token was taken from domain controller {previous.server}, this read "
                f"reached {current.server}; USNs of different controllers cannot be compared")
    if previous.invocation_id.lower() != current.invocation_id.lower():
        return (f"the domain controller's invocationID changed from {previous.invocation_id} "
                f"to {current.invocation_id} (restored from backup?); its USNs started over")
    if current.usn < previous.usn:
        return (f"the domain controller's highestCommittedUSN went back from {previous.usn} "
                f"to {current.usn}")
    return None


def ad_changed_filter(previous: AdHighWater) -> str:
    """The filter part selecting entries changed after `previous` (AD's ordering on
    uSNChanged is `>=`, so one more than the last USN seen)."""
    return f"(uSNChanged>={previous.usn + 1})"


def parse_usn(text: str, what: str) -> int:
    """A USN (lastusn, entryUSN, highestCommittedUSN, uSNChanged) from its text; ValueError
    naming `what` when it is not a whole number. 389 shows -1 for a backend never written."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{what} is {text!r}, not a whole number") from None
    if value < -1:
        raise ValueError(f"{what} is {value}, below -1")
    return value


def guid_text(raw: bytes) -> str:
    """A binary GUID as AD writes it (objectGUID, invocationID: little-endian fields)."""
    if len(raw) != 16:
        raise ValueError(f"a GUID has 16 bytes, not {len(raw)}")
    return str(uuid.UUID(bytes_le=bytes(raw)))


# -- 389 Directory Server -----------------------------------------------------------------------


@dataclass(frozen=True)
class UsnMarks:
    """Where a 389 DS had got, per backend (lower-cased backend name, or "" for a global
    counter): `seen`, the lastusn values read when the token was made, and `floor`, the marks
    the next read starts *above* (the previous round's `seen`; see the module docstring)."""

    seen: Mapping[str, int]
    floor: Mapping[str, int]


@dataclass(frozen=True)
class UsnPlan:
    """One 389 DS round: per backend, the lowest entryUSN to read (None: nothing there)."""

    lower: Mapping[str, int | None]
    next_marks: UsnMarks

    @property
    def nothing_to_read(self) -> bool:
        return all(v is None for v in self.lower.values())


def first_usn_marks(current: Mapping[str, int]) -> UsnMarks:
    return UsnMarks(dict(current), dict(current))


def plan_usn_round(directory: str, previous: UsnMarks, current: Mapping[str, int]) -> UsnPlan:
    """Compare the token's marks with the lastusn values just read and decide where to read
    from. Raises FullSyncRequired when they cannot be continued: other backends, or a
    counter that went back (a backend restored from a backup or re-imported from LDIF)."""
    if set(previous.seen) != set(current):
        raise FullSyncRequired(directory, "the base DNs now lie in other 389 DS backends than "
                               "when the token was taken ("
                               f"{', '.join(sorted(previous.seen)) or 'none'} then, "
                               f"{', '.join(sorted(current)) or 'none'} now)")
    lower: dict[str, int | None] = {}
    for backend, usn in sorted(current.items()):
        seen = previous.seen[backend]
        floor = min(previous.floor.get(backend, seen), seen)
        if usn < seen:
            label = f"backend {backend}" if backend else "the server"
            raise FullSyncRequired(directory, f"the lastusn of {label} went back from {seen} to "
                                   f"{usn} (restored from a backup, re-imported, or another "
                                   "server under the same URL)")
        lower[backend] = floor + 1 if usn != floor else None
    return UsnPlan(lower, UsnMarks(dict(current), dict(previous.seen)))


# -- the token --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuffixMarks:
    """The contextCSN of one database suffix, and what is still to be read again."""

    suffix: str  # the suffix DN as found
    seen: Mapping[str, str]  # server id -> CSN, as read
    pending: str | None = None  # re-read from this CSN (changes not yet settled), or None

    @property
    def key(self) -> str:
        return _key(self.suffix)


@dataclass(frozen=True)
class Token:
    method: str
    server: str = ""
    fingerprint: str = ""
    suffixes: tuple[SuffixMarks, ...] = ()
    pending_since: datetime | None = None  # client clock, UTC: when the pending window opened
    reason: str = ""  # METHOD_NONE: why this directory cannot be read incrementally
    ad: AdHighWater | None = None
    usn: UsnMarks | None = None
    # OpenLDAP: entry id -> CSN of the entries whose groups must be looked up again while that
    # CSN is in the window (renamed, moved or added; see changes.py); None: not known.
    lookups: Mapping[str, str] | None = None


def format_token(token: Token) -> str:
    data: dict[str, Any] = {"v": TOKEN_VERSION, "method": token.method}
    if token.method == METHOD_NONE:
        data["reason"] = token.reason
    else:
        data["server"] = token.server
        data["config"] = token.fingerprint
    if token.suffixes:
        data["suffixes"] = [
            {"dn": s.suffix, "seen": dict(sorted(s.seen.items())), "pending": s.pending}
            for s in token.suffixes
        ]
    if token.pending_since is not None:
        data["pending_since"] = token.pending_since.astimezone(timezone.utc).isoformat()
    if token.ad is not None:
        data["ad"] = {"server": token.ad.server, "invocation_id": token.ad.invocation_id,
                      "usn": token.ad.usn}
    if token.usn is not None:
        data["usn"] = {"seen": dict(sorted(token.usn.seen.items())),
                       "floor": dict(sorted(token.usn.floor.items()))}
    if token.lookups is not None:
        data["lookups"] = dict(sorted(token.lookups.items()))
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_token(directory: str, text: str) -> Token:
    """The token in `text`; FullSyncRequired when it is not one this version understands
    (including an empty one, which is what a directory that was never synced has)."""
    def refuse(why: str) -> FullSyncRequired:
        return FullSyncRequired(directory, f"the incremental sync token cannot be used: {why}")

    if not text or not text.strip():
        raise refuse("there is none (no full sync has stored one yet)")
    try:
        data = json.loads(text)
    except ValueError:
        raise refuse("it is not valid JSON") from None
    if not isinstance(data, dict) or data.get("v") != TOKEN_VERSION:
        raise refuse(f"it is not a version {TOKEN_VERSION} token")
    method = data.get("method")
    if method not in METHODS:
        raise refuse(f"unknown method {method!r}")
    try:
        if method == METHOD_NONE:
            return Token(METHOD_NONE, reason=str(data.get("reason") or "not supported"))
        suffixes = tuple(
            SuffixMarks(str(s["dn"]), {str(k): parse_csn(v).text for k, v in s["seen"].items()},
                        parse_csn(s["pending"]).text if s.get("pending") else None)
            for s in data.get("suffixes", ())
        )
        since = data.get("pending_since")
        ad = data.get("ad")
        usn = data.get("usn")
        lookups = data.get("lookups")
        return Token(
            method=method,
            server=str(data["server"]),
            fingerprint=str(data["config"]),
            suffixes=suffixes,
            pending_since=datetime.fromisoformat(since) if since else None,
            ad=AdHighWater(str(ad["server"]), str(ad["invocation_id"]), int(ad["usn"]))
            if ad else None,
            usn=UsnMarks(_usn_map(usn["seen"]), _usn_map(usn["floor"])) if usn else None,
            lookups=None if lookups is None else {str(k): parse_csn(v).text
                                                  for k, v in lookups.items()},
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise refuse(f"it is damaged ({exc})") from None


def _usn_map(raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise TypeError("USN marks must be an object")
    return {str(k): parse_usn(str(v), f"the mark of {k!r}") for k, v in raw.items()}


def unsupported_token(reason: str) -> str:
    return format_token(Token(METHOD_NONE, reason=reason))


# -- planning one round -----------------------------------------------------------------------


@dataclass(frozen=True)
class RoundPlan:
    """What one incremental read must search, and the token for the next one."""

    # suffix key -> the CSN to read from (entryCSN>=), or None: nothing to read there
    lower: Mapping[str, str | None]
    next_token: Token

    @property
    def nothing_to_read(self) -> bool:
        return all(v is None for v in self.lower.values())


def first_marks(current: Iterable[tuple[str, Mapping[str, str]]], now: datetime,
                settle_seconds: float) -> tuple[tuple[SuffixMarks, ...], datetime | None]:
    """Marks for a token read before a full read: the newest changes are left pending, since
    the full read may come before refint has finished with them."""
    suffixes = tuple(
        SuffixMarks(suffix, dict(seen), _settle_from(seen, settle_seconds))
        for suffix, seen in current
    )
    pending = any(s.pending for s in suffixes)
    return suffixes, (now if pending else None)


def plan_round(directory: str, token: Token, current: Mapping[str, tuple[str, Mapping[str, str]]],
               now: datetime, settle_seconds: float) -> RoundPlan:
    """Compare the token's marks with the contextCSNs just read (`current`: suffix key ->
    (suffix DN, {sid: CSN})) and decide where to read from. Raises FullSyncRequired when the
    marks cannot be continued: another set of suffixes, a server id that appeared or vanished,
    a CSN that went backwards (a database restored from backup)."""
    def refuse(why: str) -> FullSyncRequired:
        return FullSyncRequired(directory, why)

    previous = {s.key: s for s in token.suffixes}
    if set(previous) != set(current):
        raise refuse("the base DNs now lie in other databases than when the token was taken ("
                     f"{', '.join(sorted(previous)) or 'none'} then, "
                     f"{', '.join(sorted(current)) or 'none'} now)")
    settled = (token.pending_since is None
               or (now - token.pending_since).total_seconds() >= settle_seconds)
    lower: dict[str, str | None] = {}
    suffixes: list[SuffixMarks] = []
    changed_any = False
    for key, (suffix, seen) in sorted(current.items()):
        old = previous[key]
        appeared = sorted(set(seen) - set(old.seen))
        vanished = sorted(set(old.seen) - set(seen))
        if appeared:
            raise refuse(f"server id(s) {', '.join(appeared)} wrote to {suffix} since the token "
                         "was taken (a new provider?); changes it made earlier cannot be told "
                         "apart from old ones")
        if vanished:
            raise refuse(f"the contextCSN of {suffix} no longer lists server id(s) "
                         f"{', '.join(vanished)}; the database was replaced or reloaded")
        changed = []
        for sid, csn in seen.items():
            before = old.seen[sid]
            if parse_csn(csn) < parse_csn(before):
                raise refuse(f"the contextCSN of {suffix} went back from {before} to {csn} "
                             "(restored from a backup, or another server under the same URL)")
            if csn != before:
                changed.append(before)
        lows = changed + ([old.pending] if old.pending else [])
        lower[key] = min(lows, key=parse_csn) if lows else None
        if changed:
            changed_any = True
            # This round reads from `lower` (at or before the old pending mark) at a moment the
            # server's clock has passed its newest CSN; everything older than that CSN minus
            # the settle window is therefore read after it settled. Only the newer part stays
            # pending: keeping the old mark instead would re-read every change since the last
            # quiet spell on every round (bench/INCREMENTAL.md).
            pending = _settle_from(seen, settle_seconds)
        else:
            pending = old.pending if (old.pending and not settled) else None
        suffixes.append(SuffixMarks(suffix, dict(seen), pending))
    since: datetime | None = None
    if any(s.pending for s in suffixes):
        since = now if changed_any else token.pending_since
    next_token = Token(token.method, token.server, token.fingerprint, tuple(suffixes), since)
    return RoundPlan(lower, next_token)


def _settle_from(seen: Mapping[str, str], settle_seconds: float) -> str | None:
    if settle_seconds <= 0 or not seen:
        return None
    newest = max((parse_csn(v) for v in seen.values()))
    return csn_at(newest.at - timedelta(seconds=settle_seconds))

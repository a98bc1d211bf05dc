"""The rules of an incremental read, without the reading. Pure.

`changes.py` searches; this module decides what the answers mean:

* `MemberRefs` / `member_refs` — a group's member values, parsed exactly as the full read
  parses them (`members.member_dn_key`, `members.member_name_key`), for the store to resolve.
* `within`, `bases_of`, `ancestors` — scope tests on normalised DNs.
* `LogRecord`, `parse_log_record`, `LogVerdict`, `judge_log` — what an OpenLDAP accesslog
  window says about deletions, and whether it can be trusted for them at all.
* `MemberDelta`, `member_delta` — the member values a window's log records added to and
  removed from one group, when they say so unambiguously (then the group's member list need
  not be read again).
* `or_chunks` — long OR filters split into searches of bounded size.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Collection, Iterable, Iterator, Mapping, Sequence

from dirsync.dn import escape_rdn_value, parse_dn
from dirsync.ldap.filters import any_of
from dirsync.ldap.members import member_dn_key, member_name_key
from dirsync.ldap.presets import MEMBER_UID, UNIQUE_MEMBER

_UID_SUFFIX = re.compile(r"#'[01]*'B\Z")  # uniqueMember's optional UID (RFC 4517 3.3.21)

# Values per OR filter: small enough for any server's filter limits, large enough that 100
# changes cost one or two searches.
OR_CHUNK = 100


@dataclass(frozen=True)
class MemberRefs:
    """The direct members one group lists, as comparison keys.

    `dn_keys` for member / uniqueMember (normalised DNs, `dirsync.dn.dn_key`), `name_keys` for
    memberUid (usernames, `dirsync.names.name_key`). `unparsable` counts values that are
    neither (the full read reports them as unresolvable and ignores them)."""

    dn_keys: frozenset[str] = frozenset()
    name_keys: frozenset[str] = frozenset()
    unparsable: int = 0

    def keys(self, by_name: bool) -> frozenset[str]:
        """The name keys (memberUid) or the DN keys."""
        return self.name_keys if by_name else self.dn_keys


def member_refs(values: Sequence[str], membership: str) -> MemberRefs:
    if membership == MEMBER_UID:
        names = {member_name_key(v) for v in values}
        names.discard("")
        return MemberRefs(name_keys=frozenset(names))
    keys: set[str] = set()
    bad = 0
    for value in values:
        key = member_dn_key(value, membership)
        if key is None:
            bad += 1
        else:
            keys.add(key)
    return MemberRefs(dn_keys=frozenset(keys), unparsable=bad)


# -- scope ------------------------------------------------------------------------------------


def within(key: str, base_key: str) -> bool:
    """Whether the entry with dn_key `key` is `base_key` or below it (subtree scope)."""
    return key == base_key or key.endswith("," + base_key)


def bases_of(key: str, base_keys: Iterable[str]) -> frozenset[str]:
    return frozenset(b for b in base_keys if within(key, b))


def ancestors(dn: str) -> list[str]:
    """`dn` and every entry above it, nearest first, as DN strings (re-escaped from the
    parsed form, so an escaped comma in a value stays one value). The root is not included."""
    rdns = parse_dn(dn)
    written = ["+".join(f"{kind}={value if value.startswith('#') else escape_rdn_value(value)}"
                        for kind, value in rdn) for rdn in rdns]
    return [",".join(written[i:]) for i in range(len(written))]


def outermost(keys: Iterable[str]) -> list[str]:
    """The keys that are not below another key of the set (re-reading a subtree covers every
    subtree inside it)."""
    ordered = sorted(set(keys), key=lambda k: (k.count(","), k))
    kept: list[str] = []
    for key in ordered:
        if not any(within(key, outer) for outer in kept):
            kept.append(key)
    return kept


def or_chunks(parts: Sequence[str], size: int = OR_CHUNK) -> Iterator[str]:
    """`(|part...)` filters of at most `size` parts each, in order."""
    for start in range(0, len(parts), size):
        yield any_of(*parts[start:start + size])


# -- the accesslog ----------------------------------------------------------------------------

ADD, DELETE, MODIFY, MODRDN = "add", "delete", "modify", "modrdn"


@dataclass(frozen=True)
class LogRecord:
    """One successful write in OpenLDAP's accesslog (objectClass auditWriteObject)."""

    kind: str  # add, delete, modify, modrdn
    dn: str  # reqDN: the entry's DN before the operation
    entry_id: str  # reqEntryUUID (or the id logged in reqOld), lower-cased
    csn: str  # the log entry's entryCSN, which is the CSN of the write it records
    # reqMod of a modify: one "attribute:<op> value" line per value (op + add, - delete,
    # = replace, # increment; no value after - deletes the attribute).
    mods: tuple[bytes, ...] = ()


def parse_log_record(values: Mapping[str, Sequence[bytes]], dn: str,
                     id_attribute: str) -> LogRecord | str:
    """A LogRecord from a log entry's raw values, or a sentence saying why it cannot be one.
    `id_attribute` is the directory's unique id attribute (lower-case): reqEntryUUID holds the
    entryUUID; any other id must have been logged as an old value (`logoldattr`)."""
    def text(name: str) -> str:
        raw = values.get(name) or ()
        return bytes(raw[0]).decode("utf-8", "replace").strip() if raw else ""

    kind = text("reqtype").lower()
    if kind not in (ADD, DELETE, MODIFY, MODRDN):
        return f"log entry {dn} records a {kind or 'missing'} operation"
    entry_id = ""
    if id_attribute == "entryuuid":
        entry_id = text("reqentryuuid")
    if not entry_id:
        prefix = f"{id_attribute}:"
        for raw in values.get("reqold") or ():
            line = bytes(raw).decode("utf-8", "replace")
            if line.lower().startswith(prefix):
                entry_id = line[len(prefix):].strip()
                break
    if not entry_id and kind != ADD:
        return (f"log entry {dn} ({kind} of {text('reqdn')}) carries no {id_attribute}: add "
                f"it to the accesslog's olcAccessLogOldAttr (logoldattr) and olcAccessLogOld")
    csn = text("entrycsn")
    if not csn:
        return f"log entry {dn} has no entryCSN"
    # Only a modify's are kept: an add's hold every attribute of the new entry, passwords too.
    mods = tuple(bytes(v) for v in values.get("reqmod") or ()) if kind == MODIFY else ()
    return LogRecord(kind, text("reqdn"), entry_id.lower(), csn, mods)


@dataclass(frozen=True)
class MemberDelta:
    """What a group's logged writes did to its member values: the keys now listed that a
    write added, and those now absent that a write removed (as MemberRefs, keyed like the
    full read). `unsure` holds the values written more than once in the window, as
    (key, value as logged): the log cannot tell which write came last, the server can
    (`settled`)."""

    added: MemberRefs
    removed: MemberRefs
    unsure: tuple[tuple[str, str], ...] = ()

    def settled(self, listed: Collection[str], membership: str) -> MemberDelta:
        """The delta once each unsure key is known to be listed now (`listed`) or not."""
        now = {k for k, _ in self.unsure if k in listed}
        gone = {k for k, _ in self.unsure} - now
        by_name = membership == MEMBER_UID
        return _delta(self.added.keys(by_name) | now, self.removed.keys(by_name) | gone,
                      membership)


def member_delta(records: Sequence[LogRecord], membership: str) -> MemberDelta | None:
    """The member values `records` (every logged write to one group in the window) added and
    removed, or None when the group's member list must be read whole instead. `membership` is
    the group attribute holding them (member, uniqueMember or memberUid).

    None when a record adds the group, replaces its member values or deletes them all (then
    the log does not hold the list), or writes a uniqueMember value with a UID suffix. Renames leave the values alone. A value written by one
    record is listed or not as that record left it; the window reaches back past the last
    sync, so it holds writes already applied, and applying one again changes nothing. A value
    written by several records is `unsure`: CSNs are taken when an operation starts, so the
    log's order of two writes to one value need not be the order they took effect in."""
    prefix = membership.lower().encode("ascii") + b":"
    last: dict[str, bool] = {}  # key -> listed after the last record writing it
    logged: dict[str, str] = {}  # key -> the value as a record wrote it
    unsure: set[str] = set()
    for record in records:
        if record.kind == MODRDN:
            continue
        if record.kind != MODIFY:
            return None
        mine: dict[str, bool] = {}  # key -> listed after this record
        for line in record.mods:
            if not line[:len(prefix)].lower() == prefix:
                continue
            op, value = line[len(prefix):len(prefix) + 1], line[len(prefix) + 2:]
            if op not in (b"+", b"-") or not value:
                return None  # replace, increment, or the whole attribute deleted
            text = _decode(value)
            if text is not None and membership == UNIQUE_MEMBER and _UID_SUFFIX.search(text):
                # uid=a#'01'B and uid=a are two values naming one entry: removing one says
                # nothing of the other.
                return None
            key = None if text is None else _member_key(text, membership)
            if text is None or key is None:
                continue  # a value the full read cannot use either
            mine[key] = op == b"+"
            logged[key] = text
        for key, listed in mine.items():
            if key in last:
                unsure.add(key)
            last[key] = listed
    added = {k for k, listed in last.items() if listed and k not in unsure}
    removed = {k for k, listed in last.items() if not listed and k not in unsure}
    return _delta(added, removed, membership,
                  tuple(sorted((k, logged[k]) for k in unsure)))


def _delta(added: set[str], removed: set[str], membership: str,
           unsure: tuple[tuple[str, str], ...] = ()) -> MemberDelta:
    if membership == MEMBER_UID:
        return MemberDelta(MemberRefs(name_keys=frozenset(added)),
                           MemberRefs(name_keys=frozenset(removed)), unsure)
    return MemberDelta(MemberRefs(dn_keys=frozenset(added)),
                       MemberRefs(dn_keys=frozenset(removed)), unsure)


def _decode(value: bytes) -> str | None:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _member_key(text: str, membership: str) -> str | None:
    if membership == MEMBER_UID:
        return member_name_key(text) or None
    return member_dn_key(text, membership)


@dataclass
class LogVerdict:
    """What a window of the accesslog says, once compared with what the searches found."""

    usable: bool
    why_not: str = ""
    touched: set[str] = field(default_factory=set)  # ids of entries any record wrote to
    renamed: dict[str, set[str]] = field(default_factory=dict)  # id -> old DN keys (modrdn)


def judge_log(records: Sequence[LogRecord], *, changed_csns: Mapping[str, str],
              newest_csns: Iterable[str]) -> LogVerdict:
    """Whether the records can be trusted to name every entry written in the window.

    The checks catch a log that does not cover this database, leaves out operation types, or
    is filtered by `logbase`: every changed entry found by entryCSN (`changed_csns`: id ->
    entryCSN) must have a record with that CSN, and so must the newest change of each server
    id (`newest_csns`, the contextCSN values that moved), which may be a delete. A log that
    fails them is not used; deletions are then found by a scan of the ids instead."""
    by_csn = {r.csn.lower() for r in records}
    for entry_id, csn in changed_csns.items():
        if csn.lower() not in by_csn:
            return LogVerdict(False, f"the accesslog has no record of the change {csn} to the "
                              f"entry {entry_id} (does it log every write to this database?)")
    for csn in newest_csns:
        if csn.lower() not in by_csn:
            return LogVerdict(False, f"the accesslog has no record of the newest change {csn} "
                              "(does it log every write, deletes included?)")
    verdict = LogVerdict(True)
    for record in records:
        if record.entry_id:
            verdict.touched.add(record.entry_id)
        if record.kind == MODRDN:
            old = member_dn_key(record.dn, "member")  # the DN as a key; None if it is not one
            if old is None:
                return LogVerdict(False, f"the accesslog names an entry renamed from "
                                  f"{record.dn!r}, which is not a valid DN")
            verdict.renamed.setdefault(record.entry_id, set()).add(old)
    return verdict

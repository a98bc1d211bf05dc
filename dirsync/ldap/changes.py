"""Incremental reads: what changed in a directory since a token, or FullSyncRequired.

    token = initial_token(config)          # before a full read; store it with that result
    read = read_changes(config, token)     # later: IncrementalRead, with read.next_token

One method per preset (`method_of`):

* `openldap-contextcsn` — OpenLDAP with the syncprov overlay: contextCSN / entryCSN, deletions
  from the accesslog where usable, else the id scan; a settle window (`settle_seconds`, per
  directory) for refint's silent rewrites. Described step by step below.
* `389ds-entryusn` — 389 DS with the USN plugin: the root DSE's `lastusn` per backend
  (`nsBackendSuffix` tells which backend holds each base; if it cannot be told, every
  backend's window is applied), `(entryUSN>=<mark>)` for changed entries, deletions by the
  id scan (nsUniqueId). Referential integrity and memberOf rewrites are internal writes with
  an entryUSN of their own, so no settle window; instead each round re-reads the previous
  round's window once, since `lastusn` counts writes whose transaction may still be open
  (watermark.py). A counter that went back or other backends → FullSyncRequired.
* `ad-usn` — Active Directory: `(uSNChanged>=<highestCommittedUSN + 1>)`, guarded by the
  server URL, the DC (`dsServiceName`) and its `invocationId` (another DC, or one restored from
  backup → FullSyncRequired); deletions by the id scan (objectGUID). Renaming a member changes
  no group (member is a link) and renaming an OU changes nothing below it: both are caught
  by steps 3 and 4. Without hasSubordinates, every changed entry that is neither of the user
  nor of the group object class is taken for a container. Range retrieval of member works as
  in the full read (paging.py).

Not supported (a `none` token that says why): `incremental = false`, and memberOf membership
(see `unsupported_reason`). A server the preset's marks cannot be read from (no syncprov, no
USN plugin, an unreadable invocationID) gets a `none` token naming the fix.

A caveat for 389 DS: a write whose transaction is still open when the token of a *full* sync
is taken, and that commits after the full read has passed its entry, is only seen when that
entry next changes or at the next full sync; 389 has no "highest committed" counter to guard
against it.

How one read goes (one connection, as the service account); steps 2-5 are shared by all
methods, with the method's own "changed" filter:

1. **Marks.** (OpenLDAP) The contextCSN of the database suffix above each base DN, compared
   with the token (`watermark.plan_round`): another server, another database, a CSN that went back, a
   server id that appeared, or a changed configuration → FullSyncRequired. Nothing written
   since (and nothing left to settle) → an empty result after this one search.
2. **Changed entries**: `(&(<user filter>)(entryCSN>=<mark>))` under the user base, the same
   for groups, each returning the full current state of the entry, mapped by the same
   `EntryMapper` as the full read. Entries that no longer map (no username, ...) are reported
   as deleted, as a full read would leave them out.
3. **Moved subtrees.** Renaming or moving an OU changes the DN of everything below it without
   touching their entryCSN; so the changed entries *with subordinates* under each base are
   found, and the users / groups below each of them read again.
4. **Groups that list a changed entry.** OpenLDAP's refint overlay rewrites member values
   after a rename silently (no entryCSN, no accesslog record), and a new entry can take a DN
   that groups listed before it existed. So for every changed user or group, the groups
   whose member attribute names it (its current DN; for memberUid, its username) are looked
   up: one small search per changed entry that returns only the groups' ids, not their
   member lists (an "everyone" group lists everyone; reading it again for each change would
   cost more than the change). The resulting guarantee, which the store relies on: **the
   groups listing a changed entry are exactly the groups with a member list in the result
   (`group_members`) whose members name it, and `listed_by[its id]`.**
   No lookup is needed for a changed entry the mirror holds under the same DN that is not
   settling (`_Reader.parents_kept`): renamed, moved or added in the window, by the
   accesslog's records or, without them, by the token's list of entries seen renamed or
   new in earlier rounds (`Token.lookups`). Its memberships stay as the mirror holds them.
5. **Member lists from the log** (OpenLDAP with a usable accesslog): a changed group is first
   read without its member attribute. When the log's records of it in the window only add
   and delete single member values (`delta.member_delta`) and the mirror already holds the
   group (`held`), those values are the change: an "everyone" group gaining one
   member costs one value, not a re-read of 100,000. A value written more than once in the
   window is looked up in the group (one search each), since the log's order of the writes
   need not be the order they took effect in. Any other changed group (new, its values
   replaced, or not held) has its member list read whole by its id.
6. **Deletions**, from one of two sources (`IncrementalRead.deletions` says which; 389 DS and
   AD always scan):
   * `accesslog` — when an OpenLDAP accesslog database is visible to the bind account, reaches
     back to the mark (its `minCSN`) and passes the checks of `delta.judge_log`: every entry
     any logged write touched (reqEntryUUID) that is not among the changed entries in scope
     is gone from the mirror's scope (deleted, moved out, filtered out). A container renamed
     out of a base with entries still below it cannot be followed through the log; the read
     then switches to the scan.
   * `present-scan` — otherwise: one paged search per base requesting only the unique id;
     `present_user_ids` / `present_group_ids` are the complete sets.

Every search is checked (paging.py, wire.py): a size limit, a broken page sequence or a lost
connection raises the LdapError, never a partial result. Searches are paged, but for the
group lookups of step 4, which are small, sent together (wire.search_each) and asked again
paged when a limit stops one. Nothing here touches the store. ldap3 is not imported here
(connection.py is its only door).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Collection, Iterable, Iterator, Mapping, Sequence

from dirsync.dn import dn_key
from dirsync.ldap.config import DEFAULT_SETTLE_SECONDS, DirectoryConfig
from dirsync.ldap.connection import Connection, bound, connected_url
from dirsync.ldap.delta import (
    ADD,
    MODRDN,
    LogRecord,
    LogVerdict,
    MemberDelta,
    MemberRefs,
    ancestors,
    bases_of,
    judge_log,
    member_delta,
    member_refs,
    or_chunks,
    outermost,
    parse_log_record,
    within,
)
from dirsync.ldap.entries import EntryMapper, Skip
from dirsync.ldap.errors import (
    BaseDnMissing,
    DirectoryOperationFailed,
    FullSyncRequired,
    IncompleteRead,
)
from dirsync.ldap.filters import all_of, any_of, at_least, entry_filter, equality, matches_with
from dirsync.ldap.members import Skipped
from dirsync.ldap.paging import NO_ATTRIBUTES, RawEntry, RawValues, read_entry, search_pages
from dirsync.ldap.presets import MEMBER, MEMBER_OF, MEMBER_UID, UNIQUE_MEMBER
from dirsync.ldap.read import empty_user_search
from dirsync.ldap.usnmarks import read_389_marks, read_ad_marks
from dirsync.ldap.watermark import (
    METHOD_AD_USN,
    METHOD_CONTEXTCSN,
    METHOD_ENTRYUSN,
    METHOD_NONE,
    Token,
    ad_changed_filter,
    ad_guard,
    config_fingerprint,
    context_marks,
    first_marks,
    first_usn_marks,
    format_token,
    parse_csn,
    parse_token,
    plan_round,
    plan_usn_round,
    unsupported_token,
)
from dirsync.ldap.wire import scan_first_values, search_each
from dirsync.model import Group, User
from dirsync.names import name_key

log = logging.getLogger(__name__)

# Changes are read again for this long after they were first seen: refint finishes its silent
# member rewrites in a background task (see watermark.py), one unindexed search of the whole
# database per rename or delete. Measured here on 2 cores: 30 renames, moves and deletes took
# refint 12 s to work off at 10,000 users and 106 s at 100,000. Re-reading ten minutes of
# changes costs little; missing a rewrite costs a membership until the next full sync.
# Each directory sets its own (`settle_seconds`, config.py); this is the default.
SETTLE_SECONDS = DEFAULT_SETTLE_SECONDS

_METHOD_BY_PRESET = {"openldap": METHOD_CONTEXTCSN, "389ds": METHOD_ENTRYUSN,
                     "active_directory": METHOD_AD_USN}

DELETIONS_ACCESSLOG = "accesslog"
DELETIONS_PRESENT = "present-scan"
DELETIONS_NONE = "none"  # nothing was written since the token: nothing can have gone
DELETION_CHOICES = ("auto", DELETIONS_PRESENT)

# progress(phase, entries_read): "changes" while changed entries are read, "deletions" during
# the deletion check; called when a phase starts and after every page.
Progress = Callable[[str, int], None]
# held(kind, ids): of these user or group ids, those the mirror holds, with the dn_key and
# name key it holds them under (asked while the caller holds the directory's sync lock, so
# the mirror is as the token's sync left it).
Held = Callable[[str, Collection[str]], Mapping[str, tuple[str | None, str]]]
PHASE_CHANGES = "changes"
PHASE_DELETIONS = "deletions"

_NONLEAF = "(hasSubordinates=TRUE)"
# Entries a token carries for lookups while they settle: past this, every changed entry of
# the window is looked up (as without the list) until they leave it.
MAX_LOOKUPS = 10_000
_LOG_FILTER = "(&(objectClass=auditWriteObject)(reqResult=0))"
_AUDIT_CONTAINER = "auditcontainer"


@dataclass
class ChangeDiagnostics:
    """How an incremental read went; for logs, status and benchmarks."""

    method: str = METHOD_CONTEXTCSN
    deletions: str = DELETIONS_NONE
    why_scan: str = ""  # why deletions came from a scan rather than the accesslog
    windows: dict[str, str] = field(default_factory=dict)  # suffix -> CSN read from
    searches: int = 0
    entries_read: int = 0
    log_records: int = 0
    subtrees_reread: list[str] = field(default_factory=list)  # moved / renamed containers
    parent_lookups: int = 0  # searches for the unchanged groups listing a changed entry
    parents_kept: int = 0  # changed entries whose groups needed no lookup (accesslog)
    listings: int = 0  # (changed entry, unchanged group listing it) pairs found
    member_deltas: int = 0  # changed groups whose member changes came from the accesslog
    member_lists: int = 0  # changed groups whose member list was read whole
    member_checks: int = 0  # searches for a value written more than once in the window
    skipped: list[Skipped] = field(default_factory=list)  # changed entries that do not map

    def summary(self) -> str:
        parts = [f"method {self.method}", f"deletions by {self.deletions}",
                 f"{self.searches} searches", f"{self.entries_read} entries read"]
        if self.log_records:
            parts.append(f"{self.log_records} accesslog records")
        if self.subtrees_reread:
            parts.append(f"{len(self.subtrees_reread)} moved subtrees read again")
        if self.parents_kept:
            parts.append(f"{self.parents_kept} changed entries kept their groups")
        if self.listings:
            parts.append(f"{self.listings} memberships in unchanged groups")
        if self.member_deltas:
            parts.append(f"{self.member_deltas} member lists changed by logged values "
                         f"({self.member_checks} values checked), {self.member_lists} read "
                         "whole")
        if self.skipped:
            parts.append(f"{len(self.skipped)} changed entries not usable")
        if self.why_scan:
            parts.append(f"scan because {self.why_scan}")
        return ", ".join(parts)


@dataclass
class IncrementalRead:
    """What changed since a token. Applying it to a mirror that held the directory as of that
    token gives what a full read now would give, when applied in this order:

    1. Remove every entry whose external id is in `deleted_ids`; when `present_user_ids` /
       `present_group_ids` are set (deletions == "present-scan"), also every user / group
       whose id is not in them. `deleted_ids` may name entries the mirror never held (log
       records of entries outside the scope): ignore those.
    2. Insert or update `changed_users` and `changed_groups` by external id (DN, names,
       active flag: the full current state).
    3. For every changed group in `group_members`, replace its direct members by its
       MemberRefs resolved against the mirror after step 2: `dn_keys` against each user's and
       group's `dn_key(dn)`, `name_keys` (memberUid) against the users' name keys. Keys that
       name nothing are members outside the scope, as in the full read; a group naming itself
       is ignored.
    4. For every changed user and group not in `parents_kept`, its memberships in groups not
       in `group_members` are exactly `listed_by.get(its id, ())`: remove the others, add
       these (ids the mirror does not hold are groups a full read leaves out: ignore them).
       Those in `parents_kept` (the mirror holds them under the same DN, see
       `_Reader.parents_kept`) keep the memberships the mirror holds, but for steps 3 and 5.
    5. For every group in `member_deltas` (changed groups the mirror holds whose member list
       was not read), resolve `added` and `removed` as in step 3; for each member so named
       that is not one of step 4's (unchanged, or in `parents_kept`), add or remove the
       membership.

    Every other membership (an unchanged group and an unchanged member) stays as it is.
    Invariants: no id is both changed and in `deleted_ids`; the present sets contain every
    changed id; `listed_by` names no group of `group_members` and no entry of
    `parents_kept`; every key of `member_deltas` is a changed group and none is in
    `group_members`; `parents_kept` names only changed entries. Name clashes between a changed entry
    and an unchanged one (two entries with the same username) are the mirror's to settle,
    with the full read's rule (members.py).
    """

    directory: str
    method: str
    deletions: str  # DELETIONS_ACCESSLOG, DELETIONS_PRESENT or DELETIONS_NONE
    changed_users: list[User]
    changed_groups: list[Group]
    group_members: dict[str, MemberRefs]  # changed group id -> its direct members
    member_deltas: dict[str, MemberDelta]  # changed group id -> member values added, removed
    listed_by: dict[str, frozenset[str]]  # changed entry id -> unchanged groups listing it
    parents_kept: frozenset[str]  # changed entry ids whose groups were not looked up
    deleted_ids: frozenset[str]
    present_user_ids: frozenset[str] | None
    present_group_ids: frozenset[str] | None
    next_token: str
    diagnostics: ChangeDiagnostics
    started_at: datetime  # aware UTC
    seconds: float
    members_by_name: bool = False  # member values are usernames (memberUid), not DNs

    @property
    def empty(self) -> bool:
        return not (self.changed_users or self.changed_groups or self.deleted_ids
                    or self.present_user_ids is not None)


# -- the public entry points ------------------------------------------------------------------


def unsupported_reason(config: DirectoryConfig) -> str | None:
    """Why this configuration cannot be read incrementally at all (before any connection)."""
    if not config.incremental:
        return "incremental sync is switched off for this directory (incremental = false)"
    if config.membership == MEMBER_OF:
        return ("membership = \"memberOf\" cannot be synced incrementally: the servers update "
                "memberOf without marking the member as changed (OpenLDAP's memberof overlay "
                "sets no entryCSN, AD's back-links no uSNChanged), so a new or removed "
                "membership would go unseen; use membership = \"member\" for incremental sync")
    return None


def method_of(config: DirectoryConfig) -> str:
    """The incremental method for this directory's preset."""
    return _METHOD_BY_PRESET.get(config.preset, METHOD_CONTEXTCSN)


def initial_token(config: DirectoryConfig, *, settle_seconds: float | None = None) -> str:
    """The token to store with a full read: call it *before* the full read starts, so that
    whatever changes while the full read runs is read again by the next incremental read.
    Never raises FullSyncRequired: a directory that cannot be read incrementally gets a token
    that says why. Raises LdapError when the directory cannot be asked. `settle_seconds`
    (OpenLDAP only) defaults to the directory's `settle_seconds` setting."""
    reason = unsupported_reason(config)
    if reason:
        return unsupported_token(reason)
    settle = config.settle_seconds if settle_seconds is None else settle_seconds
    method = method_of(config)
    fingerprint = config_fingerprint(config)
    now = datetime.now(timezone.utc)
    with bound(config, doing="connecting to read the sync marks") as conn:
        server = connected_url(conn)
        if method == METHOD_ENTRYUSN:
            marks = read_389_marks(conn, config)
            if isinstance(marks, str):
                return unsupported_token(marks)
            return format_token(Token(method, server, fingerprint,
                                      usn=first_usn_marks(marks.lastusn)))
        if method == METHOD_AD_USN:
            high = read_ad_marks(conn, config)
            if isinstance(high, str):
                return unsupported_token(high)
            return format_token(Token(method, server, fingerprint, ad=high))
        current, _ = _context_csns(conn, config)
    if isinstance(current, str):
        return unsupported_token(current)
    suffixes, since = first_marks(current.values(), now, settle)
    return format_token(Token(METHOD_CONTEXTCSN, server, fingerprint, suffixes, since))


def read_changes(config: DirectoryConfig, token: str, progress: Progress | None = None, *,
                 deletions: str = "auto",
                 settle_seconds: float | None = None,
                 held: Held | None = None) -> IncrementalRead:
    """Everything that changed in `config`'s directory since `token` (see IncrementalRead).

    Raises FullSyncRequired when the changes cannot be read correctly from this token, and an
    LdapError when the directory cannot be read (nothing partial is ever returned).
    `deletions="present-scan"` skips the accesslog and scans the ids (benchmarks, tests);
    389 DS and Active Directory always scan. `settle_seconds` (OpenLDAP only) defaults to the
    directory's `settle_seconds` setting. Without `held` every changed group's member list is
    read whole and every changed entry's groups are looked up (steps 4 and 5 of the module
    docstring in full)."""
    if deletions not in DELETION_CHOICES:
        raise ValueError(f"deletions must be one of {DELETION_CHOICES}, not {deletions!r}")
    settle = config.settle_seconds if settle_seconds is None else settle_seconds
    started_at = datetime.now(timezone.utc)
    clock = time.monotonic()
    parsed = parse_token(config.name, token)
    if parsed.method == METHOD_NONE:
        raise FullSyncRequired(config.name, parsed.reason)
    reason = unsupported_reason(config)
    if reason:
        raise FullSyncRequired(config.name, reason)
    method = method_of(config)
    if parsed.method != method:
        raise FullSyncRequired(config.name, f"the token's method {parsed.method!r} is not the "
                               f"one of this directory's preset ({method!r})")
    if parsed.fingerprint != config_fingerprint(config):
        raise FullSyncRequired(config.name, "the directory's configuration (bases, filters, "
                               "object classes, membership or attribute mapping) changed since "
                               "the token was taken")
    with bound(config, doing="connecting to read changes") as conn:
        server = connected_url(conn)
        if server != parsed.server:
            raise FullSyncRequired(config.name, f"the token was taken from {parsed.server}, "
                                   f"this read reached {server}; marks of one server do not "
                                   "apply to another")
        diagnostics = ChangeDiagnostics(method=method)
        if method == METHOD_ENTRYUSN:
            window = _entryusn_window(conn, config, parsed, diagnostics)
        elif method == METHOD_AD_USN:
            window = _ad_window(conn, config, parsed, diagnostics)
        else:
            window = _csn_window(conn, config, parsed, started_at, settle, diagnostics)
        if window.nothing_to_read:
            next_token = format_token(replace(window.next_token, lookups=parsed.lookups))
            return IncrementalRead(
                config.name, method, DELETIONS_NONE, [], [], {}, {}, {}, frozenset(), frozenset(),
                None, None, next_token, diagnostics, started_at, time.monotonic() - clock,
                config.membership == MEMBER_UID)
        reader = _Reader(conn, config, progress, diagnostics, held, parsed.lookups)
        result = reader.read(window, deletions)
        next_token = format_token(replace(window.next_token, lookups=reader.next_lookups(window)))
    seconds = time.monotonic() - clock
    read = IncrementalRead(
        directory=config.name, method=method, deletions=diagnostics.deletions,
        changed_users=result.users, changed_groups=result.groups,
        group_members=result.members, member_deltas=result.deltas,
        listed_by=result.listed_by, parents_kept=result.kept, deleted_ids=result.deleted,
        present_user_ids=result.present_users, present_group_ids=result.present_groups,
        next_token=next_token, diagnostics=diagnostics, started_at=started_at, seconds=seconds,
        members_by_name=config.membership == MEMBER_UID)
    log.info("directory %r: incremental read in %.2f s: %d users and %d groups changed, %d "
             "gone%s (%s)", config.name, seconds, len(read.changed_users),
             len(read.changed_groups), len(read.deleted_ids),
             "" if read.present_user_ids is None else
             f", {len(read.present_user_ids)} users and {len(read.present_group_ids or ())} "
             "groups present", diagnostics.summary())
    if diagnostics.why_scan:
        log.warning("directory %r: deletions found by a scan of all ids, because %s",
                    config.name, diagnostics.why_scan)
    return read


# -- windows: what one round reads, per method --------------------------------------------------


@dataclass
class _Window:
    """What one round reads: the filter part selecting changed entries under each base (None:
    nothing changed there), and for OpenLDAP what the accesslog check needs."""

    next_token: Token
    user_changed: str | None = None
    group_changed: str | None = None
    # OpenLDAP: suffix key -> (suffix DN, {sid: contextCSN}) and suffix key -> CSN read from.
    csn_current: Mapping[str, tuple[str, Mapping[str, str]]] | None = None
    csn_lower: Mapping[str, str | None] | None = None

    @property
    def nothing_to_read(self) -> bool:
        return self.user_changed is None and self.group_changed is None


def _csn_window(conn: Connection, config: DirectoryConfig, token: Token, now: datetime,
                settle: float, diagnostics: ChangeDiagnostics) -> _Window:
    current, reads = _context_csns(conn, config)
    diagnostics.searches += reads
    if isinstance(current, str):
        raise FullSyncRequired(config.name, current)
    plan = plan_round(config.name, token, current, now, settle)
    # The database holding each base: the deepest suffix above it (a subordinate database
    # lies below its superior's suffix).
    marks = []
    for base in (dn_key(config.user_base_dn), dn_key(config.group_base_dn)):
        suffix = max((k for k in current if within(base, k)), key=len)
        marks.append(plan.lower[suffix])
    for key, mark in plan.lower.items():
        if mark:
            diagnostics.windows[current[key][0]] = mark
    user_mark, group_mark = marks
    return _Window(plan.next_token,
                   at_least("entryCSN", user_mark) if user_mark else None,
                   at_least("entryCSN", group_mark) if group_mark else None,
                   current, plan.lower)


def _entryusn_window(conn: Connection, config: DirectoryConfig, token: Token,
                     diagnostics: ChangeDiagnostics) -> _Window:
    if token.usn is None:
        raise FullSyncRequired(config.name, "the incremental sync token cannot be used: it "
                               "carries no 389 DS marks")
    marks = read_389_marks(conn, config)
    diagnostics.searches += 1
    if isinstance(marks, str):
        raise FullSyncRequired(config.name, marks)
    plan = plan_usn_round(config.name, token.usn, marks.lastusn)
    next_token = replace(token, usn=plan.next_marks)
    for backend, low in plan.lower.items():
        if low is not None:
            diagnostics.windows[backend or "global"] = str(low)

    def changed(base: str) -> str | None:
        # entryUSN is counted per backend: a base whose backend cannot be told is read from
        # the lowest mark of any backend that moved (more than needed, never less).
        backend = marks.backend_of[dn_key(base)]
        lows = ([plan.lower[backend]] if backend is not None
                else list(plan.lower.values()))
        found = [low for low in lows if low is not None]
        return at_least("entryUSN", str(min(found))) if found else None

    return _Window(next_token, changed(config.user_base_dn), changed(config.group_base_dn))


def _ad_window(conn: Connection, config: DirectoryConfig, token: Token,
               diagnostics: ChangeDiagnostics) -> _Window:
    if token.ad is None:
        raise FullSyncRequired(config.name, "the incremental sync token cannot be used: it "
                               "carries no Active Directory marks")
    current = read_ad_marks(conn, config)
    diagnostics.searches += 2
    if isinstance(current, str):
        raise FullSyncRequired(config.name, current)
    why = ad_guard(token.ad, current)
    if why:
        raise FullSyncRequired(config.name, why)
    next_token = replace(token, ad=current)
    if current.usn == token.ad.usn:
        return _Window(next_token)
    diagnostics.windows[current.server] = str(token.ad.usn + 1)
    changed = ad_changed_filter(token.ad)
    return _Window(next_token, changed, changed)


# -- marks ------------------------------------------------------------------------------------


def _context_csns(conn: Connection, config: DirectoryConfig
                  ) -> tuple[dict[str, tuple[str, dict[str, str]]] | str, int]:
    """suffix key -> (suffix DN, {sid: contextCSN}) for the databases holding the base DNs,
    or a sentence saying why there is no usable contextCSN; and how many entries were read."""
    found: dict[str, tuple[str, dict[str, str]]] = {}
    read: dict[str, list[bytes]] = {}  # dn key -> contextCSN values: the bases share parents
    for base in dict.fromkeys((config.user_base_dn, config.group_base_dn)):
        suffix = _suffix_of(conn, config, base, read)
        if isinstance(suffix, str):
            return suffix, len(read)
        found[dn_key(suffix[0])] = suffix
    return found, len(read)


def _suffix_of(conn: Connection, config: DirectoryConfig, base: str,
               read: dict[str, list[bytes]]) -> tuple[str, dict[str, str]] | str:
    # syncprov keeps contextCSN on the suffix entry of its database: the nearest entry at or
    # above the base that has one. Entries the account may not see read as absent.
    for dn in ancestors(base):
        key = dn_key(dn)
        if key not in read:
            entry = read_entry(conn, config, dn, ["contextCSN"], what="the sync marks of")
            read[key] = entry[1].get("contextcsn", []) if entry else []
        values = read[key]
        if values:
            try:
                return dn, context_marks(bytes(v).decode("ascii") for v in values)
            except (ValueError, UnicodeDecodeError) as exc:
                return f"the contextCSN of {dn} is not understood ({exc})"
    return (f"no contextCSN was found on '{base}' or above it, so changes cannot be read "
            "incrementally; enable OpenLDAP's syncprov overlay on the database (it also needs "
            "an eq index on entryCSN) and let the bind account read contextCSN on the suffix "
            "entry")


# -- the read ---------------------------------------------------------------------------------


@dataclass
class _Result:
    users: list[User]
    groups: list[Group]
    members: dict[str, MemberRefs]
    deltas: dict[str, MemberDelta]
    listed_by: dict[str, frozenset[str]]
    kept: frozenset[str]
    deleted: frozenset[str]
    present_users: frozenset[str] | None
    present_groups: frozenset[str] | None


@dataclass
class _Found:
    """Changed entries of one kind, by external id."""

    entities: dict[str, User | Group] = field(default_factory=dict)
    csns: dict[str, str] = field(default_factory=dict)  # id -> entryCSN (entryCSN search only)
    skipped_ids: set[str] = field(default_factory=set)


class _Reader:
    def __init__(self, conn: Connection, config: DirectoryConfig, progress: Progress | None,
                 diagnostics: ChangeDiagnostics, held: Held | None = None,
                 lookups: Mapping[str, str] | None = None) -> None:
        self.conn = conn
        self.config = config
        self.mapper = EntryMapper(config)
        self.report = progress or (lambda phase, entries: None)
        self.d = diagnostics
        self.user_filter = entry_filter(config.user_object_class, config.user_filter)
        self.group_filter = entry_filter(config.group_object_class, config.group_filter)
        self.user_base = dn_key(config.user_base_dn)
        self.group_base = dn_key(config.group_base_dn)
        self.members: dict[str, MemberRefs] = {}
        self.deltas: dict[str, MemberDelta] = {}
        self.held = held
        self.held_answers: dict[str, dict[str, tuple[str | None, str] | None]] = {}
        self.lookups = lookups  # the token's: entries to look up while they settle
        self.records: list[LogRecord] = []  # the accesslog window, once read
        self.located: tuple[str, list[str]] | str | None = None  # find_log's answer, once asked
        self.kept: frozenset[str] = frozenset()
        self.found: tuple[_Found, _Found] | None = None
        self.moved_below: set[str] = set()  # entries read again below a moved container
        self.listed_by: dict[str, frozenset[str]] = {}
        method = diagnostics.method
        # entryCSN is kept per changed entry for the accesslog check (OpenLDAP only).
        self.marks = ["entryCSN"] if method == METHOD_CONTEXTCSN else []
        # Renaming or moving a container changes the DN of everything below it; OpenLDAP and
        # AD leave the entries below untouched (no new entryCSN / uSNChanged), 389 DS gives
        # them a new entryUSN, but is asked the same way, to be sure. AD has no
        # hasSubordinates: there every changed entry that is neither a user nor a group is
        # taken for a container.
        self.nonleaf = (_NONLEAF if method != METHOD_AD_USN else
                        f"(!{any_of(equality('objectClass', config.user_object_class), equality('objectClass', config.group_object_class))})")

    # -- plumbing --------------------------------------------------------------------------
    def search(self, base: str, search_filter: str, attributes: Sequence[str], what: str,
               phase: str) -> Iterator[RawEntry]:
        self.d.searches += 1
        for page in search_pages(self.conn, self.config, base, search_filter, attributes,
                                 what=what):
            self.d.entries_read += len(page)
            yield from page
            self.report(phase, self.d.entries_read)

    def read(self, window: _Window, deletions: str) -> _Result:
        config = self.config
        self.report(PHASE_CHANGES, 0)
        users, groups = _Found(), _Found()
        if window.user_changed:
            self.read_users(config.user_base_dn, all_of(self.user_filter, window.user_changed),
                            users, "changed users", True)
        current, lower = window.csn_current, window.csn_lower
        use_log = deletions == "auto" and current is not None and lower is not None
        # Member lists wait for the log's verdict (step 5) when it may make them unnecessary.
        later = (use_log and self.held is not None
                 and config.membership in (MEMBER, UNIQUE_MEMBER, MEMBER_UID)
                 and self.mapper.unique_id == "entryuuid"
                 and current is not None and self.log_visible(current))
        if window.group_changed:
            self.read_groups(config.group_base_dn, all_of(self.group_filter,
                             window.group_changed), groups, "changed groups", True,
                             with_members=not later)

        # The accesslog (OpenLDAP), when there is one we can use, decides which moved
        # containers need their subtree read again (only renamed ones) and which ids are gone.
        verdict: LogVerdict | None = None
        if use_log:
            assert current is not None and lower is not None
            verdict = self.read_log(current, lower, users, groups)
        renamed = verdict.renamed if verdict else None

        for base, changed, is_users in ((config.user_base_dn, window.user_changed, True),
                                        (config.group_base_dn, window.group_changed, False)):
            if changed:
                self.reread_moved(base, changed, users if is_users else groups, is_users,
                                  renamed)

        if verdict is not None and current is not None:
            self.check_renamed_containers(verdict, current)

        if later:
            self.complete_members(groups, verdict)

        if self.d.method == METHOD_CONTEXTCSN:
            self.kept = self.parents_kept(users, groups, verdict)
        self.found = (users, groups)
        self.find_parents(_without(users, self.kept), _without(groups, self.kept))

        if verdict is not None and verdict.usable:
            self.d.deletions = DELETIONS_ACCESSLOG
            in_scope = set(users.entities) | set(groups.entities)
            gone = (verdict.touched - in_scope) | users.skipped_ids | groups.skipped_ids
            return self.result(users, groups, gone, None, None)
        return self.scan(users, groups)

    def result(self, users: _Found, groups: _Found, gone: set[str],
               present_users: frozenset[str] | None,
               present_groups: frozenset[str] | None) -> _Result:
        # A group that left the scope after the member lookups cannot be anyone's parent.
        listed_by = {entity_id: parents - gone for entity_id, parents in self.listed_by.items()
                     if entity_id not in gone and parents - gone}
        deltas = {group_id: delta for group_id, delta in self.deltas.items()
                  if group_id not in gone}
        return _Result(_users(users), _groups(groups), self.members, deltas, listed_by,
                       self.kept - gone, frozenset(gone), present_users, present_groups)

    # -- changed entries -------------------------------------------------------------------
    def read_users(self, base: str, search_filter: str, found: _Found, what: str,
                   by_csn: bool) -> set[str]:
        """Changed users; their ids."""
        return {user.external_id or "" for user, _ in
                self.read_entries("user", base, search_filter, found, what, by_csn)}

    def read_groups(self, base: str, search_filter: str, found: _Found, what: str,
                    by_csn: bool, *, with_members: bool = True) -> set[str]:
        """Changed groups, with their member lists unless `with_members` is false (then
        `complete_members` must follow); their ids."""
        ids: set[str] = set()
        for group, values in self.read_entries("group", base, search_filter, found, what,
                                               by_csn, with_members):
            ids.add(group.external_id or "")
            if with_members:
                self.members[group.external_id or ""] = member_refs(
                    self.mapper.members(values), self.config.membership)
        return ids

    def complete_members(self, groups: _Found, verdict: LogVerdict | None) -> None:
        """Step 5: each changed group read without its member list gets its member changes
        from the log, or its member list read whole."""
        pending = [i for i, e in groups.entities.items() if i not in self.members]
        if verdict is not None and verdict.usable and pending:
            by_id: dict[str, list[LogRecord]] = {}
            for record in self.records:
                by_id.setdefault(record.entry_id, []).append(record)
            held = self.stored("group", pending)
            for group_id in pending:
                delta = (member_delta(by_id.get(group_id, ()), self.config.membership)
                         if group_id in held else None)
                if delta is not None:
                    self.deltas[group_id] = self.settle_unsure(group_id, delta)
            self.d.member_deltas = len(self.deltas)
        whole = [i for i in pending if i not in self.deltas]
        self.d.member_lists = len(whole)
        if not whole:
            return
        attributes = [self.config.attributes.unique_id, self.config.membership]
        read: set[str] = set()
        parts = [equality(self.config.attributes.unique_id, i) for i in sorted(whole)]
        for chunk in or_chunks(parts):
            for _, values in self.search(self.config.group_base_dn,
                                         all_of(self.group_filter, chunk), attributes,
                                         "member lists of changed groups", PHASE_CHANGES):
                try:
                    group_id = self.mapper.external_id(values)
                except Skip:
                    continue
                if group_id in groups.entities and group_id not in self.members:
                    read.add(group_id)
                    self.members[group_id] = member_refs(self.mapper.members(values),
                                                         self.config.membership)
        # Gone from the scope since it was found changed: as a full read now would have it.
        for group_id in set(whole) - read:
            del groups.entities[group_id]
            groups.skipped_ids.add(group_id)

    def settle_unsure(self, group_id: str, delta: MemberDelta) -> MemberDelta:
        """Asks the server whether each value the log cannot settle is listed now: one
        search for the group with that value, instead of its whole member list."""
        if not delta.unsure:
            return delta
        membership = self.config.membership
        listed: set[str] = set()
        for key, value in delta.unsure:
            has = (matches_with(membership, "caseIgnoreIA5Match", value)
                   if membership == MEMBER_UID else equality(membership, value))
            self.d.member_checks += 1
            for _ in self.search(self.config.group_base_dn,
                                 all_of(self.group_filter,
                                        equality(self.config.attributes.unique_id, group_id),
                                        has),
                                 [NO_ATTRIBUTES], "a logged member value", PHASE_CHANGES):
                listed.add(key)
        return delta.settled(listed, membership)

    def read_entries(self, kind: str, base: str, search_filter: str, found: _Found, what: str,
                     by_csn: bool, with_members: bool = True
                     ) -> Iterator[tuple[User | Group, RawValues]]:
        """Changed users or groups, mapped as the full read maps them and kept in `found`;
        entries that no longer map are skipped (and reported gone when the mirror has them).
        Groups are read without their member attribute unless `with_members`."""
        mapper = self.mapper
        attributes, make = ((mapper.user_attributes(), mapper.user) if kind == "user"
                            else (mapper.group_attributes(), mapper.group))
        if not with_members:
            member = self.config.membership.lower()
            attributes = [a for a in attributes if a.lower() != member]
        for dn, values in self.search(base, search_filter, [*attributes, *self.marks], what,
                                      PHASE_CHANGES):
            try:
                dn_key(dn)
                entity: User | Group = make(dn, values)
            except (Skip, ValueError) as exc:
                self.skip(dn, values, f"not read as a {kind}: {exc}", found)
                continue
            assert entity.external_id is not None
            self.keep(found, entity.external_id, entity, values, by_csn)
            yield entity, values

    def keep(self, found: _Found, entity_id: str, entity: User | Group,
             values: Mapping[str, Sequence[bytes]], by_csn: bool) -> None:
        found.entities[entity_id] = entity
        found.skipped_ids.discard(entity_id)
        csn = values.get("entrycsn")
        if by_csn and csn:
            found.csns[entity_id] = bytes(csn[0]).decode("ascii", "replace")

    def skip(self, dn: str, values: Mapping[str, Sequence[bytes]], reason: str,
             found: _Found) -> None:
        # A changed entry that no longer maps is not in what a full read returns: if the mirror
        # holds it (by id), it must go. Without an id it cannot be in the mirror at all.
        self.d.skipped.append(Skipped(dn, reason))
        try:
            entity_id = self.mapper.external_id(values)
        except Skip:
            return
        if entity_id not in found.entities:
            found.skipped_ids.add(entity_id)
        csn = values.get("entrycsn")
        if csn:
            found.csns[entity_id] = bytes(csn[0]).decode("ascii", "replace")

    # -- moved subtrees --------------------------------------------------------------------
    def reread_moved(self, base: str, changed: str, found: _Found, is_users: bool,
                     renamed: Mapping[str, set[str]] | None) -> None:
        containers: list[str] = []
        attributes = ["entryUUID"] if renamed is not None else [NO_ATTRIBUTES]
        for dn, values in self.search(base, all_of(changed, self.nonleaf), attributes,
                                      "changed entries with subordinates", PHASE_CHANGES):
            # With the accesslog, a container that was only modified (a description, ...)
            # kept its DN, and so did everything below it.
            if renamed is not None and _text(values, "entryuuid").lower() not in renamed:
                continue
            containers.append(dn)
        keys = {dn_key(dn): dn for dn in containers}
        for key in outermost(keys):
            dn = keys[key]
            self.d.subtrees_reread.append(dn)
            if is_users:
                self.moved_below |= self.read_users(dn, self.user_filter, found,
                                                    "users below a moved entry", False)
            else:
                self.moved_below |= self.read_groups(dn, self.group_filter, found,
                                                     "groups below a moved entry", False)

    # -- groups listing changed entries ----------------------------------------------------
    def stored(self, kind: str, ids: Iterable[str]) -> Mapping[str, tuple[str | None, str]]:
        """`held` for these ids, each asked of the mirror once per read (the changed groups
        are asked about for their member lists, then again for their lookups)."""
        answers = self.held_answers.setdefault(kind, {})
        new = [i for i in ids if i not in answers]
        if new and self.held is not None:
            found = self.held(kind, new)
            answers.update({i: found.get(i) for i in new})
        return {i: a for i in ids if (a := answers.get(i)) is not None}

    def next_lookups(self, window: _Window) -> dict[str, str] | None:
        """The next token's entries to look up again (OpenLDAP): those looked up this round
        that the mirror did not hold under their DN or that were still settling, with the CSN
        they were first seen at, while that CSN is in the window. None (look up every
        changed entry) when there are too many to carry, or nothing to tell them by."""
        if self.held is None or self.found is None or window.csn_lower is None:
            return None
        marks = [m for m in window.csn_lower.values() if m]
        floor = min((parse_csn(m) for m in marks), default=None)
        out: dict[str, str] = {}
        for found in self.found:
            for entity_id in found.entities:
                if entity_id in self.kept:
                    continue
                csn = (self.lookups or {}).get(entity_id) or found.csns.get(entity_id)
                if csn and (floor is None or parse_csn(csn) >= floor):
                    out[entity_id] = csn
        return out if len(out) <= MAX_LOOKUPS else None

    def parents_kept(self, users: _Found, groups: _Found,
                     verdict: LogVerdict | None) -> frozenset[str]:
        """The changed entries whose groups need no lookup: with a usable log, those the
        mirror holds under the same DN (memberUid: the same username) that no record in the
        window adds or renames, and that lie below no container renamed in the window.
        Values naming them change only by logged writes to the groups, which steps 3 and 5
        apply. refint's silent rewrites follow renames (of the entry or a container above
        it) and may finish after a first lookup, which the settle window repeats; an entry
        added may take a DN that groups listed before it existed."""
        if self.held is None:
            return frozenset()
        if verdict is not None and verdict.usable:
            fresh = {r.entry_id for r in self.records if r.kind in (ADD, MODRDN)}
        elif self.lookups is not None:
            fresh = set(self.lookups)  # without a log: what earlier rounds saw renamed or new
        else:
            return frozenset()
        fresh |= self.moved_below
        by_name = self.config.membership == MEMBER_UID
        kept: set[str] = set()
        for kind, found in (("user", users), ("group", groups)):
            stored = self.stored(kind, found.entities)
            for entity_id, entity in found.entities.items():
                if entity_id not in stored or entity_id in fresh:
                    continue
                dn, name = stored[entity_id]
                if by_name:
                    same = kind == "group" or name == name_key(entity.name)
                else:
                    same = entity.dn is not None and dn == dn_key(entity.dn)
                if same:
                    kept.add(entity_id)
        self.d.parents_kept = len(kept)
        return frozenset(kept)

    def find_parents(self, users: _Found, groups: _Found) -> None:
        """For each changed entry, the unchanged groups in scope whose member attribute names
        it. One search per entry, returning ids only: which value matched is what we need,
        and an OR of several entries could not tell."""
        if self.config.membership == MEMBER_UID:
            lookups = [(i, matches_with("memberUid", "caseIgnoreIA5Match", u.name))
                       for i, u in users.entities.items()]
        else:
            attribute = self.config.membership
            lookups = [(i, equality(attribute, e.dn))
                       for i, e in (*users.entities.items(), *groups.entities.items()) if e.dn]
        # All lookups are sent at once (wire.py pipelines them): they are independent, and
        # one round trip each was most of their cost.
        answers = search_each(self.conn, self.config, self.config.group_base_dn,
                              [all_of(self.group_filter, c) for _, c in lookups],
                              [self.config.attributes.unique_id],
                              what="groups listing a changed entry")
        for (entity_id, _), entries in zip(lookups, answers):
            self.d.parent_lookups += 1
            self.d.searches += 1
            self.d.entries_read += len(entries)
            parents: set[str] = set()
            for _, values in entries:
                try:
                    parent = self.mapper.external_id(values)
                except Skip:
                    continue  # no id: not in the mirror either
                if parent not in self.members:
                    parents.add(parent)
            if parents:
                self.listed_by[entity_id] = frozenset(parents)
                self.d.listings += len(parents)
            self.report(PHASE_CHANGES, self.d.entries_read)

    # -- the accesslog ---------------------------------------------------------------------
    def read_log(self, current: Mapping[str, tuple[str, Mapping[str, str]]],
                 lower: Mapping[str, str | None], users: _Found, groups: _Found
                 ) -> LogVerdict | None:
        """The verdict of the accesslog on this window, or None when there is no log to use
        (then deletions come from a scan; the reason is in the diagnostics)."""
        if len(current) != 1:
            self.d.why_scan = "the user and group bases lie in different databases"
            return None
        if self.mapper.unique_id != "entryuuid":
            self.d.why_scan = (f"the unique id attribute is {self.config.attributes.unique_id}, "
                               "and the accesslog names entries by entryUUID")
            return None
        [(key, (suffix, seen))] = current.items()
        mark = lower[key]
        assert mark is not None
        try:
            found = self.located if self.located is not None else self.find_log(key)
            if isinstance(found, str):
                self.d.why_scan = found
                return None
            log_base, min_csns = found
            late = [m for m in min_csns if parse_csn(m) > parse_csn(mark)]
            if not min_csns or late:
                self.d.why_scan = (f"the accesslog {log_base} does not reach back to {mark} "
                                   f"(it starts at {', '.join(min_csns) or 'nothing'}: purged, "
                                   "or enabled later)")
                return None
            records = self.log_records(log_base, mark, with_old=False)
            if records is None:
                # OpenLDAP 2.4 logs no reqEntryUUID; there the entryUUID is among the old
                # values (reqOld) when the log is configured with `logoldattr entryUUID`.
                # Asked for only then: reqOld holds every old value of a modified attribute,
                # the whole member list of a large group for one member added.
                records = self.log_records(log_base, mark, with_old=True)
            if isinstance(records, str):
                self.d.why_scan = records
                return None
        except (IncompleteRead, BaseDnMissing, DirectoryOperationFailed) as exc:
            # The log is an optimisation: when it cannot be read completely, the scan is still
            # correct. A lost connection is not this kind of error and goes up.
            self.d.why_scan = f"the accesslog could not be read: {exc.reason}"
            return None
        self.d.log_records = len(records)
        self.records = records
        moved = [csn for sid, csn in seen.items()
                 if parse_csn(csn) >= parse_csn(mark)]
        verdict = judge_log(records, changed_csns={**users.csns, **groups.csns},
                            newest_csns=moved)
        if not verdict.usable:
            self.d.why_scan = verdict.why_not
            return None
        return verdict

    def log_records(self, log_base: str, mark: str,
                    with_old: bool) -> list[LogRecord] | str | None:
        """The log's successful writes from `mark` on; without `with_old`, None when a record
        names its entry only in reqOld; a sentence when the log cannot be used."""
        attributes = ["reqType", "reqDN", "reqEntryUUID", "entryCSN", "reqMod"]
        if with_old:
            attributes.append("reqOld")
        records: list[LogRecord] = []
        for dn, values in self.search(log_base, all_of(_LOG_FILTER, at_least("entryCSN", mark)),
                                      attributes, "accesslog records", PHASE_CHANGES):
            if not with_old and not values.get("reqentryuuid"):
                kind = values.get("reqtype") or (b"",)
                if bytes(kind[0]).strip().lower() != b"add":
                    return None
            record = parse_log_record(values, dn, "entryuuid")
            if isinstance(record, str):
                return record
            records.append(record)
        return records

    def log_visible(self, current: Mapping[str, tuple[str, Mapping[str, str]]]) -> bool:
        """Whether an accesslog database is visible at all; asked before the changed groups
        are read (no log: their member lists come with them), and kept for `read_log`."""
        if len(current) != 1:
            return False
        [key] = current
        try:
            self.located = self.find_log(key)
        except (IncompleteRead, BaseDnMissing, DirectoryOperationFailed) as exc:
            self.located = f"the accesslog could not be read: {exc.reason}"
        return not isinstance(self.located, str)

    def find_log(self, suffix_key: str) -> tuple[str, list[str]] | str:
        """The accesslog database's suffix and minCSN values, or why there is none to use."""
        root = read_entry(self.conn, self.config, "", ["namingContexts"],
                          what="the root DSE")
        contexts = [bytes(v).decode("utf-8", "replace")
                    for v in (root[1].get("namingcontexts", ()) if root else ())]
        logs: list[tuple[str, list[str]]] = []
        for context in contexts:
            try:
                if dn_key(context) == suffix_key:
                    continue
            except ValueError:
                continue
            entry = read_entry(self.conn, self.config, context, ["objectClass", "minCSN"],
                               what="a naming context")
            if entry is None:
                continue
            classes = {bytes(v).decode("utf-8", "replace").lower()
                       for v in entry[1].get("objectclass", ())}
            if _AUDIT_CONTAINER in classes:
                logs.append((context, [bytes(v).decode("ascii", "replace")
                                       for v in entry[1].get("mincsn", ())]))
        if not logs:
            return "no accesslog database is visible to the bind account"
        if len(logs) > 1:
            return (f"several accesslog databases are visible ({', '.join(c for c, _ in logs)})"
                    " and it cannot be told which one logs this directory")
        return logs[0]

    def check_renamed_containers(self, verdict: LogVerdict,
                                 current: Mapping[str, tuple[str, Mapping[str, str]]]) -> None:
        """A container renamed or moved so that entries below it left a base cannot be
        followed through the log (their own ids are in no record): fall back to the scan."""
        if not verdict.usable:
            return
        bases = (self.user_base, self.group_base)
        suspects = {entry_id: olds for entry_id, olds in verdict.renamed.items()
                    if any(bases_of(old, bases) for old in olds)}
        if not suspects:
            return
        now: dict[str, tuple[str, bool]] = {}
        parts = [equality("entryUUID", entry_id) for entry_id in sorted(suspects)]
        for suffix, _ in current.values():
            for chunk in or_chunks(parts):
                for dn, values in self.search(suffix, chunk, ["entryUUID", "hasSubordinates"],
                                              "renamed entries", PHASE_CHANGES):
                    now[_text(values, "entryuuid").lower()] = (
                        dn, _text(values, "hassubordinates").upper() == "TRUE")
        for entry_id, olds in suspects.items():
            dn, has_children = now.get(entry_id, ("", False))
            if not has_children:
                continue  # a leaf: its own id is in `touched`; anything below left on record
            new = bases_of(dn_key(dn), bases)
            if any(bases_of(old, bases) - new for old in olds):
                verdict.usable = False
                verdict.why_not = (f"the container now at {dn} was moved out of a base DN "
                                   "with entries below it")
                self.d.why_scan = verdict.why_not
                return

    # -- the deletion scan -----------------------------------------------------------------
    def scan(self, users: _Found, groups: _Found) -> _Result:
        self.d.deletions = DELETIONS_PRESENT
        self.report(PHASE_DELETIONS, self.d.entries_read)
        present_users = self.scan_ids(self.config.user_base_dn, self.user_filter, "user ids")
        if not present_users:
            # As in the full read: "nobody is there" is far more often a lost ACL or a wrong
            # filter than the truth, and these sets tell the store what to delete.
            raise empty_user_search(self.config, self.user_filter)
        present_groups = self.scan_ids(self.config.group_base_dn, self.group_filter,
                                       "group ids")
        gone = set(users.skipped_ids | groups.skipped_ids)
        # An entry found changed but missing from the scan that followed left the scope in
        # between: the scan is the newer truth.
        for found, present in ((users, present_users), (groups, present_groups)):
            for entity_id in [i for i in found.entities if i not in present]:
                del found.entities[entity_id]
                self.members.pop(entity_id, None)
                gone.add(entity_id)
        return self.result(users, groups, gone, frozenset(present_users - users.skipped_ids),
                           frozenset(present_groups - groups.skipped_ids))

    def scan_ids(self, base: str, search_filter: str, what: str) -> set[str]:
        # Only the first id value of each entry is read off the wire (wire.py); the few
        # entries it cannot read that way come as whole entries.
        ids: set[str] = set()
        self.d.searches += 1
        for values, entries in scan_first_values(self.conn, self.config, base, search_filter,
                                                 self.config.attributes.unique_id, what=what):
            ids.update(self.mapper.external_ids(values))
            for _, entry in entries:
                try:
                    ids.add(self.mapper.external_id(entry))
                except Skip:
                    continue  # no id: not in the mirror, so nothing to keep
            self.d.entries_read += len(values) + len(entries)
            self.report(PHASE_DELETIONS, self.d.entries_read)
        return ids


def _without(found: _Found, ids: frozenset[str]) -> _Found:
    return _Found({i: e for i, e in found.entities.items() if i not in ids})


def _users(found: _Found) -> list[User]:
    return [e for e in found.entities.values() if isinstance(e, User)]


def _groups(found: _Found) -> list[Group]:
    return [e for e in found.entities.values() if isinstance(e, Group)]


def _text(values: Mapping[str, Sequence[bytes]], name: str) -> str:
    raw = values.get(name) or ()
    return bytes(raw[0]).decode("utf-8", "replace").strip() if raw else ""


__all__ = [
    "DELETIONS_ACCESSLOG", "DELETIONS_NONE", "DELETIONS_PRESENT", "SETTLE_SECONDS",
    "ChangeDiagnostics", "IncrementalRead", "MemberRefs", "FullSyncRequired",
    "initial_token", "read_changes", "unsupported_reason",
]

"""A full read of one directory: every user and group, as a Snapshot, or an exception.

Two paged searches on one connection bound as the service account — users, then groups —
each requesting only the mapped attributes; entries become Users and Groups as they arrive
(entries.py), and memberships are resolved once both are in (members.py).

What this module guarantees the sync engine: `read_directory` either returns the *whole*
directory or raises an `LdapError`. In particular it raises (UnexpectedEmptyResult) when the
user search succeeds but yields no usable user, because "nobody is there any more" is far
more often a lost ACL, a wrong filter or a wrong base than the truth, and acting on it would
delete everyone. It does not touch the store.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.connection import bound
from dirsync.ldap.entries import EntryMapper, Skip
from dirsync.ldap.errors import UnexpectedEmptyResult
from dirsync.ldap.filters import entry_filter
from dirsync.ldap.members import ReadDiagnostics, SnapshotBuilder
from dirsync.ldap.paging import PageCounter, search_pages
from dirsync.model import Snapshot

log = logging.getLogger(__name__)

# progress(phase, entries_read): phase is "users", "groups" or "resolving"; called when a
# phase starts and after every page, from the reading thread.
Progress = Callable[[str, int], None]

PHASE_USERS = "users"
PHASE_GROUPS = "groups"
PHASE_RESOLVING = "resolving"


@dataclass
class DirectoryRead:
    """The result of a full read: the directory's content and what was odd about it."""

    directory: str
    snapshot: Snapshot
    diagnostics: ReadDiagnostics
    started_at: datetime  # aware UTC; when the read began
    seconds: float  # how long it took
    references_ignored: int = 0  # continuation references skipped (AD domain roots)


def read_directory(config: DirectoryConfig, progress: Progress | None = None) -> DirectoryRead:
    """Read every user and group of `config`'s directory. Raises an LdapError on any failure,
    including a size or time limit, a broken page sequence and an empty user search."""
    report = progress or _no_progress
    started_at = datetime.now(timezone.utc)
    clock = time.monotonic()
    mapper = EntryMapper(config)
    builder = SnapshotBuilder(config.membership)
    counter = PageCounter()
    with bound(config, doing="connecting to read the directory") as conn:
        user_filter = entry_filter(config.user_object_class, config.user_filter)
        report(PHASE_USERS, 0)
        users = usable = 0
        for page in search_pages(conn, config, config.user_base_dn, user_filter,
                                 mapper.user_attributes(), what="users", counter=counter):
            for dn, values in page:
                try:
                    user = mapper.user(dn, values)
                except Skip as skip:
                    builder.skip(dn, f"not read as a user: {skip}")
                    continue
                builder.add_user(user, mapper.members(values) if mapper.member_of_mode else ())
                usable += 1
            users += len(page)
            report(PHASE_USERS, users)
        _refuse_empty_users(config, user_filter, users, usable, builder.diagnostics)

        group_filter = entry_filter(config.group_object_class, config.group_filter)
        report(PHASE_GROUPS, 0)
        groups = 0
        for page in search_pages(conn, config, config.group_base_dn, group_filter,
                                 mapper.group_attributes(), what="groups", counter=counter):
            for dn, values in page:
                try:
                    group = mapper.group(dn, values)
                except Skip as skip:
                    builder.skip(dn, f"not read as a group: {skip}")
                    continue
                builder.add_group(group, mapper.member_values(values))
            groups += len(page)
            report(PHASE_GROUPS, groups)

    report(PHASE_RESOLVING, users + groups)
    snapshot, diagnostics = builder.finish()
    diagnostics.users_read, diagnostics.groups_read = users, groups
    seconds = time.monotonic() - clock
    log.info("directory %r read in %.2f s: %d users, %d groups, %d user and %d group "
             "memberships (%s)", config.name, seconds, len(snapshot.users),
             len(snapshot.groups), len(snapshot.user_memberships),
             len(snapshot.group_memberships), diagnostics.summary())
    for duplicate in diagnostics.duplicates:
        log.warning("directory %r: %s %r is claimed by several entries; keeping %s, ignoring %s",
                    config.name, duplicate.kind, duplicate.value, duplicate.kept_dn,
                    "; ".join(duplicate.dropped_dns))
    return DirectoryRead(config.name, snapshot, diagnostics, started_at, seconds,
                         counter.references_ignored)


_REFUSAL = ("dirsync will not treat that as every user having been deleted; check the base "
            "DN, the filter and the bind account's read access")


def empty_user_search(config: DirectoryConfig, user_filter: str) -> UnexpectedEmptyResult:
    """The error for a user search that found nothing: the full read and the incremental
    read's id scan both refuse it, since acting on it would delete every user."""
    return UnexpectedEmptyResult(config.name, f"the user search under '{config.user_base_dn}' "
                                 f"with filter {user_filter} found no entries although the "
                                 f"base exists; {_REFUSAL}")


def _refuse_empty_users(config: DirectoryConfig, user_filter: str, entries: int, usable: int,
                        diagnostics: ReadDiagnostics) -> None:
    where = f"the user search under '{config.user_base_dn}' with filter {user_filter}"
    refusal = _REFUSAL
    if entries == 0:
        raise empty_user_search(config, user_filter)
    if usable == 0:
        first = diagnostics.skipped[0]
        raise UnexpectedEmptyResult(config.name, f"{where} found {entries} entries but none is a "
                                    f"usable user (for example {first.dn}: {first.reason}); "
                                    f"{refusal}, and attributes.username and unique_id")


def _no_progress(phase: str, entries: int) -> None:
    return None

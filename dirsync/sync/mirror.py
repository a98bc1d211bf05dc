"""Mirroring one LDAP directory into the store: lock, read, guard, apply, record.

The order is what keeps the store safe: the whole directory is read (or the read fails)
before the store is touched; the difference is computed and checked against the
mass-deletion guard before anything is written; then it is applied in one transaction with
its journal rows. Any failure leaves the store serving the last good state, and the run is
recorded so `dirsync status` can say "stale since ..., because ...".
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace

from dirsync import events as ev
from dirsync.errors import DirsyncError
from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.changes import initial_token, read_changes, unsupported_reason
from dirsync.ldap.errors import FullSyncRequired, LdapError
from dirsync.ldap.read import read_directory
from dirsync.model import Snapshot
from dirsync.names import name_key
from dirsync.settings import MAX_JOURNAL_ROWS
from dirsync.store import journal, runs, scoped, stage, writes
from dirsync.store.db import Connection, Store, utcnow
from dirsync.store.locks import directory_lock
from dirsync.sync.apply import ApplyCounts
from dirsync.sync.incremental import apply_incremental
from dirsync.sync.setwise import Losses, apply_setwise

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]

# Below this many losses the guard stays quiet whatever the share: in a directory of twenty
# people, two leavers on one day are 10 % and perfectly normal.
MASS_DELETE_FLOOR = 10


class MassDeletion(DirsyncError):
    """A sync would delete or deactivate more than the configured share of a directory."""


@dataclass
class SyncResult:
    directory: str
    status: str  # ok | failed | refused | busy
    mode: str = "full"  # full | incremental
    counts: ApplyCounts | None = None
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.status == "ok" and self.counts is not None:
            text = f"{self.directory}: {self.mode} sync ok, {self.counts.summary()}"
        else:
            text = f"{self.directory}: {self.mode} sync {self.status}: {self.error}"
        return text + "".join(f"\n  note: {n}" for n in self.notes)


def _guard(losses: Losses, config: DirectoryConfig) -> None:
    share = config.mass_delete_threshold
    for what, lost, total in (
        ("users", losses.users_lost, losses.users_total),
        ("groups", losses.groups_lost, losses.groups_total),
    ):
        if lost > MASS_DELETE_FLOOR and lost > share * total:
            raise MassDeletion(
                f"refused: this sync would delete or deactivate {lost} of {total} {what} "
                f"({lost / total:.0%}, more than the {share:.0%} allowed by "
                f"mass_delete_threshold); if the directory really lost them, run "
                f"`dirsync sync {config.name} --allow-mass-delete`"
            )


def _settle_names(conn: Connection, directory_id: int, config: DirectoryConfig,
                  order: Sequence[str], snapshot: Snapshot,
                  journal_limit: int) -> tuple[Snapshot, list[str]]:
    """Names are unique across the store, and the first directory in the configuration that
    claims a name owns it. Names held by an earlier (or unconfigured) directory are dropped
    from this snapshot; names held by a later one are taken from it."""
    rank = {name_key(n): i for i, n in enumerate(order)}
    mine = rank.get(name_key(config.name), len(order))
    notes: list[str] = []
    dropped_users: set[str] = set()
    dropped_groups: set[str] = set()
    for kind, entities, dropped in (
        (ev.USER, snapshot.users, dropped_users),
        (ev.GROUP, snapshot.groups, dropped_groups),
    ):
        if not stage.others_hold(conn, stage.USERS if kind == ev.USER else stage.GROUPS,
                                 directory_id):
            continue  # the usual single directory: 0.4 s of lookups for 100,000 users saved
        holders = writes.name_holders(conn, kind, directory_id, [name_key(e.name) for e in entities])
        evict: list[tuple[int, str]] = []
        for key, (entity_id, name, directory) in sorted(holders.items()):
            if rank.get(name_key(directory), -1) > mine:
                evict.append((entity_id, name))
                notes.append(f"{kind} {name!r} also exists in directory {directory!r}; "
                             f"{config.name!r} comes first and takes it")
            else:
                dropped.add(key)
                notes.append(f"{kind} {name!r} also exists in directory {directory!r}, "
                             f"which comes first; ignored here")
        if evict:
            writes.delete_entities(conn, kind, [i for i, _ in evict])
            journal.record_entities(conn, kind, ev.DELETED, [(i, n, ()) for i, n in evict],
                                    journal_limit)
    if not dropped_users and not dropped_groups:
        return snapshot, notes
    return replace(
        snapshot,
        users=[u for u in snapshot.users if name_key(u.name) not in dropped_users],
        groups=[g for g in snapshot.groups if name_key(g.name) not in dropped_groups],
        user_memberships={(g, u) for g, u in snapshot.user_memberships
                          if g not in dropped_groups and u not in dropped_users},
        group_memberships={(p, c) for p, c in snapshot.group_memberships
                           if p not in dropped_groups and c not in dropped_groups},
    ), notes


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A sync builds millions of small acyclic objects (entries, tuples, rows) that Python's
    cycle collector walks again and again: 13 s of a 30 s read of 100,000 users measured
    (bench/README.md). Nothing a sync makes needs it; it runs again afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def sync_directory(store: Store, config: DirectoryConfig, order: Sequence[str] = (), *,
                   full: bool = False, allow_mass_delete: bool = False,
                   progress: Progress | None = None,
                   journal_limit: int = MAX_JOURNAL_ROWS,
                   settle_seconds: float | None = None) -> SyncResult:
    """One sync of `config`'s directory: incremental when the directory allows it and a token
    from the last sync is at hand, full otherwise, every `full_sync_every` rounds, when
    `full` is asked for, and whenever an incremental read cannot guarantee the full result.
    `order` is every configured directory's name, in configuration order; `journal_limit` is
    events.max_journal_rows; `settle_seconds` overrides the directory's own setting (how far
    back each incremental read looks again for changes still settling, dirsync.ldap.changes).
    Never raises for a directory problem:
    the result says."""
    with directory_lock(store, config.name) as held:
        if not held:
            return SyncResult(config.name, "busy",
                              error="another process is syncing this directory right now")
        job = _Job(store, config, list(order) or [config.name], allow_mass_delete, progress,
                   journal_limit, settle_seconds)
        with store.read() as conn:
            token, rounds = runs.sync_state(conn, config.name)
        why_full = _why_full(config, full, token, rounds)
        with _collector_paused():
            if why_full is None:
                assert token is not None
                result = job.incremental(token, rounds)
                if result is not None:
                    return result
                why_full = job.fallback_reason
            return job.full(why_full)


def _why_full(config: DirectoryConfig, asked: bool, token: str | None, rounds: int) -> str | None:
    reason = unsupported_reason(config)
    if asked:
        return "a full sync was asked for"
    if reason:
        return reason
    if token is None:
        return "no previous sync to continue from"
    if rounds + 1 >= config.full_sync_every:
        return f"every {config.full_sync_every}th sync is a full one (full_sync_every)"
    return None


class _Job:
    def __init__(self, store: Store, config: DirectoryConfig, order: list[str],
                 allow_mass_delete: bool, progress: Progress | None, journal_limit: int,
                 settle_seconds: float | None) -> None:
        self.store, self.config, self.order = store, config, order
        self.allow_mass_delete, self.progress = allow_mass_delete, progress
        self.journal_limit = journal_limit
        self.settle_seconds = settle_seconds
        self.fallback_reason = ""

    def guard(self, losses: Losses) -> None:
        if not self.allow_mass_delete:
            _guard(losses, self.config)

    def _held(self, kind: str, external_ids: Collection[str]) -> dict[str, tuple[str | None, str]]:
        # Under the directory lock: the store holds what the token's sync left.
        with self.store.read() as conn:
            return scoped.held_entries(conn, self.config.name, kind, external_ids)

    def _failed(self, mode: str, started: object, status: str, error: str,
                notes: list[str] | None = None) -> SyncResult:
        with self.store.write() as conn:
            directory_id = writes.ensure_directory(conn, self.config.name, "ldap")
            runs.record_run(conn, directory_id, mode=mode, started_at=started, status=status,
                            error=error, notes="; ".join(notes or []) or None)
        return SyncResult(self.config.name, status, mode=mode, error=error, notes=notes or [])

    def _apply(self, mode: str, started: object, notes: list[str], snapshot: Snapshot,
               apply: Callable[[Connection, int, Snapshot], ApplyCounts], token: str | None,
               rounds: int) -> SyncResult:
        config = self.config
        try:
            with self.store.write() as conn:
                directory_id = writes.ensure_directory(conn, config.name, "ldap")
                snapshot, name_notes = _settle_names(conn, directory_id, config, self.order,
                                                     snapshot, self.journal_limit)
                notes += name_notes
                counts = apply(conn, directory_id, snapshot)
                runs.set_sync_state(conn, directory_id, token, rounds)
                runs.record_run(
                    conn, directory_id, mode=mode, started_at=started, status="ok",
                    added=counts.users_added + counts.groups_added + counts.memberships_added,
                    updated=counts.users_updated + counts.groups_updated,
                    deleted=counts.users_removed + counts.groups_removed + counts.memberships_removed,
                    notes="; ".join(notes),
                )
        except MassDeletion as exc:
            log.error("sync of directory %r %s", config.name, exc)
            return self._failed(mode, started, "refused", str(exc), notes)
        except DirsyncError as exc:
            log.error("%s sync of directory %r failed, nothing was written: %s", mode,
                      config.name, exc)
            return self._failed(mode, started, "failed", str(exc), notes)
        for note in name_notes:
            log.warning("directory %r: %s", config.name, note)
        log.info("directory %r: %s sync in %.1f s: %s (%s)", config.name, mode,
                 (utcnow() - started).total_seconds(), counts.summary(), "; ".join(notes))
        return SyncResult(config.name, "ok", mode=mode, counts=counts, notes=notes)

    def full(self, why: str) -> SyncResult:
        config, started = self.config, utcnow()
        try:
            # Taken before the read, so what changes during it is read again next time.
            token = (initial_token(config, settle_seconds=self.settle_seconds)
                     if unsupported_reason(config) is None else None)
            read = read_directory(config, self.progress)
        except LdapError as exc:
            log.warning("sync of directory %r failed before the store was touched: %s",
                        config.name, exc)
            return self._failed("full", started, "failed", str(exc))
        notes = [f"full because {why}", read.diagnostics.summary()]
        if self.progress:
            self.progress("applying", len(read.snapshot.users) + len(read.snapshot.groups))
        return self._apply(
            "full", started, notes, read.snapshot,
            # The read is used up here: the apply frees its parts as it goes (memory).
            lambda conn, d, snap: apply_setwise(conn, d, snap, self.guard, self.journal_limit,
                                                release=True),
            token, 0)

    def incremental(self, token: str, rounds: int) -> SyncResult | None:
        """None when a full sync must run instead (`fallback_reason` says why)."""
        config, started = self.config, utcnow()
        try:
            read = read_changes(config, token, self.progress, settle_seconds=self.settle_seconds,
                                held=self._held)
        except FullSyncRequired as exc:
            self.fallback_reason = exc.reason
            log.info("directory %r: %s", config.name, exc)
            return None
        except LdapError as exc:
            log.warning("incremental sync of directory %r failed before the store was "
                        "touched: %s", config.name, exc)
            return self._failed("incremental", started, "failed", str(exc))
        snapshot = Snapshot(users=list(read.changed_users), groups=list(read.changed_groups))
        result = self._apply(
            "incremental", started, [read.diagnostics.summary()], snapshot,
            lambda conn, d, snap: apply_incremental(conn, d, read, snap, self.guard,
                                                    self.journal_limit),
            read.next_token, rounds + 1)
        if result.status == "failed":
            # e.g. a changed entry taking the name of one that has not changed yet: what a
            # full read resolves whole, a partial one cannot.
            self.fallback_reason = f"the incremental apply failed ({result.error})"
            return None
        return result


@dataclass
class DirectoryStatus:
    name: str
    last_good: runs.Run | None
    last: runs.Run | None

    def describe(self) -> str:
        if self.last is None:
            return f"{self.name}: never synced"
        good = self.last_good
        if self.last.status == "ok" and good is not None:
            return (f"{self.name}: up to date as of {good.finished_at:%Y-%m-%d %H:%M:%S}Z "
                    f"({good.mode}, +{good.added} ~{good.updated} -{good.deleted})")
        since = f"{good.finished_at:%Y-%m-%d %H:%M:%S}Z" if good and good.finished_at else "its first sync"
        return f"{self.name}: stale since {since}, because {self.last.error}"


def directory_status(store: Store, name: str) -> DirectoryStatus:
    with store.read() as conn:
        history = runs.history(conn, name, limit=1)
        return DirectoryStatus(name, runs.last_good(conn, name), history[0] if history else None)

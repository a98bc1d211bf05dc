"""The event feed: tokens, the changes since one, and trimming the journal behind it.

A token is "<store epoch>:<seq>". The epoch is chosen when the store is created, so a token
from another store (or from this one before it was re-created) is refused, while a restart, an
upgrade or another dirsync process on the same database accept it. A token is good while no
row after it has been trimmed; otherwise, and for anything unparseable, the client gets
EVENT_TOKEN_EXPIRED and runs a full synchronisation.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

from dirsync import events as ev
from dirsync.errors import EventTokenExpired
from dirsync.store import journal, reads
from dirsync.store.db import Store, utcnow

log = logging.getLogger(__name__)

TRIM_BATCH = 50_000


@dataclass
class Feed:
    """What GET /event/{token} answers: events, the rows they render, the next token."""

    token: str
    events: list[ev.Event] = field(default_factory=list)
    users: dict[int, Any] = field(default_factory=dict)
    groups: dict[int, Any] = field(default_factory=dict)
    user_attributes: dict[int, dict] = field(default_factory=dict)
    group_attributes: dict[int, dict] = field(default_factory=dict)
    journal_rows: int = 0


def _token(epoch: str, seq: int) -> str:
    return f"{epoch}:{seq}"


def current_token(store: Store) -> str:
    with store.snapshot() as conn:
        return _token(journal.epoch(conn), journal.head(conn))


def _parse(token: str, epoch: str) -> int:
    token_epoch, sep, seq = token.partition(":")
    if not sep or not seq.isdigit() or not token_epoch.isdigit():
        raise EventTokenExpired(f"Event token {token!r} is not one this server issued")
    if token_epoch != epoch:
        raise EventTokenExpired(f"Event token {token!r} belongs to another store or an earlier one")
    return int(seq)


def read_feed(store: Store, token: str, *, max_rows: int, max_events: int) -> Feed:
    """Everything that changed since `token`, as net events; raises EventTokenExpired."""
    with store.snapshot() as conn:
        epoch = journal.epoch(conn)
        since = _parse(token, epoch)
        head = journal.head(conn)
        if since > head:
            raise EventTokenExpired(f"Event token {token!r} is newer than this store's journal")
        if since < journal.trimmed_through(conn):
            raise EventTokenExpired(
                f"Event token {token!r} is older than the retained events, or a bulk change "
                "replaced them; a full synchronisation is needed"
            )
        rows = journal.rows_after(conn, since, max_rows + 1)
        if len(rows) > max_rows:
            raise EventTokenExpired(
                f"More than {max_rows} changes since event token {token!r}; a full synchronisation is cheaper"
            )
        feed = Feed(token=_token(epoch, rows[-1].seq if rows else since), journal_rows=len(rows))
        if not rows:
            return feed
        t = ev.touched(rows)
        names = {(ev.USER, i): n for i, n in journal.current_names(conn, ev.USER, t.user_ids()).items()}
        names.update({(ev.GROUP, i): n for i, n in journal.current_names(conn, ev.GROUP, t.group_ids()).items()})
        present = journal.present_pairs(conn, t.pairs)
        recreated = sorted(ev.renamed_groups(t, names))
        if recreated:
            present |= journal.pairs_of_groups(conn, recreated)
        feed.events = ev.plan(t, names, present)
        if len(feed.events) > max_events:
            raise EventTokenExpired(
                f"More than {max_events} events since event token {token!r}; a full synchronisation is cheaper"
            )
        _load_rows(conn, feed)
    return feed


def _load_rows(conn: Any, feed: Feed) -> None:
    user_ids: set[int] = set()
    group_ids: set[int] = set()
    full_users: set[int] = set()  # rendered whole, attributes included
    full_groups: set[int] = set()
    for event in feed.events:
        if isinstance(event, ev.EntityEvent):
            if event.entity_id is not None:
                user = event.kind == ev.USER
                (user_ids if user else group_ids).add(event.entity_id)
                (full_users if user else full_groups).add(event.entity_id)
        else:
            (user_ids if event.kind == ev.USER_MEMBERSHIP else group_ids).add(event.child_id)
            group_ids.update(event.parent_ids)
    feed.users = reads.users_by_ids(conn, sorted(user_ids))
    feed.groups = reads.groups_by_ids(conn, sorted(group_ids))
    feed.user_attributes = reads.user_attributes_of(conn, sorted(full_users))
    feed.group_attributes = reads.group_attributes_of(conn, sorted(full_groups))


@dataclass
class TrimResult:
    deleted: int
    trimmed_through: int


def trim(store: Store, *, days: int, keep: int, now: dt.datetime | None = None,
         batch: int = TRIM_BATCH) -> TrimResult:
    """Drop journal rows older than `days` that are not among the newest `keep`, in batches
    of their own transactions so a large trim never holds the write lock for long."""
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    deleted = 0
    with store.write() as conn:
        target = journal.trim_point(conn, cutoff, keep)
        oldest = journal.oldest_row(conn)
    # Rows below an earlier mark (a bulk change's reset) go too, though the mark need not move.
    while oldest is not None and oldest <= target:
        with store.write() as conn:
            deleted += journal.trim_through(conn, target, batch)
            oldest = journal.oldest_row(conn)
    with store.read() as conn:
        mark = journal.trimmed_through(conn)
    if deleted:
        log.info("event journal trimmed: %d entries removed, tokens before %d now expire", deleted, mark)
    return TrimResult(deleted=deleted, trimmed_through=mark)


@dataclass
class Status:
    token: str
    entries: int
    oldest: dt.datetime | None
    trimmed_through: int


def status(store: Store) -> Status:
    with store.snapshot() as conn:
        entries, oldest = journal.summary(conn)
        return Status(
            token=_token(journal.epoch(conn), journal.head(conn)),
            entries=entries,
            oldest=oldest,
            trimmed_through=journal.trimmed_through(conn),
        )

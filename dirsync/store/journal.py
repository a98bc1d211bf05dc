"""The change journal: written in each change's transaction, read by the event feed, trimmed.

Writers call `record_*` inside `Store.write()`, whose serialisation makes seq order commit order.
Readers use `Store.snapshot()`, so the rows they see and the entities they render agree.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, delete, func, insert, select, update

from dirsync.events import GROUP_MEMBERSHIP, USER, USER_MEMBERSHIP, JournalRow, Pair
from dirsync.store.bulk import CHUNK, bound, insert_rows
from dirsync.store.db import as_utc, utcnow
from dirsync.store.tables import group_memberships, groups, journal, schema_info, user_memberships, users

TRIMMED = "journal_trimmed_through"
BATCH = 5000


RESET = "reset"
COLUMNS = ("created_at", "kind", "operation", "subject_id", "parent_id", "old_name",
           "removed_attributes")


class Batch:
    """The journal rows of one transaction, written together by `write`.

    A change too big for any client to catch up with through the feed (more rows than the
    feed will ever serve: events.max_journal_rows) is journalled as one `reset` row that
    expires every older token, like a trim, instead of a million rows nobody can use. A first
    load of a large directory is the usual case. Given that `limit`, a batch stops keeping
    rows once it has more than that (it only counts them): they could only be thrown away."""

    def __init__(self, limit: int | None = None) -> None:
        self.entities: list[tuple[str, str, int, str | None, Iterable[str]]] = []
        # (kind, operation, [(member id, parent id)]), in the order given
        self.pairs: list[tuple[str, str, list[tuple[int, int]]]] = []
        self.limit = limit
        self._pair_rows = 0
        self._counted = 0  # rows not kept, the batch being over its limit

    def __len__(self) -> int:
        return len(self.entities) + self._pair_rows + self._counted

    def keeps(self, more: int) -> bool:
        """Whether `more` rows added now would be kept (rather than only counted)."""
        return self.limit is None or len(self) + more <= self.limit

    def count(self, rows: int) -> None:
        """`rows` rows of this change, counted but not kept: for a caller that asked `keeps`
        and need not build rows that would be thrown away."""
        self._counted += rows
        self._settle()

    def entity(self, kind: str, operation: str,
               items: Iterable[tuple[int, str | None, Iterable[str]]]) -> None:
        """items: (entity id, name before the change or None, attribute names removed)."""
        if self._counted:
            self._counted += sum(1 for _ in items)
            return
        self.entities.extend((kind, operation, i, old, removed) for i, old, removed in items)
        self._settle()

    def pair(self, kind: str, operation: str, pairs: Iterable[tuple[int, int]]) -> None:
        """pairs: (member id, parent group id); kind USER_MEMBERSHIP or GROUP_MEMBERSHIP."""
        if self._counted:
            self._counted += sum(1 for _ in pairs)
            return
        items = list(pairs)
        if items:
            self.pairs.append((kind, operation, items))
            self._pair_rows += len(items)
        self._settle()

    def _settle(self) -> None:
        if self.limit is not None and len(self) > self.limit:
            self._counted = len(self)
            self.entities, self.pairs, self._pair_rows = [], [], 0

    def write(self, conn: Connection, limit: int, uncounted: int = 0) -> None:
        """`uncounted`: rows of this change the caller did not add because they would
        overflow the limit anyway."""
        now = utcnow()
        if self._counted and len(self) + uncounted <= limit:
            raise RuntimeError("journal batch written with a higher limit than it was given; "
                               "rows it did not keep would be lost")
        if len(self) + uncounted > limit:
            seq = conn.execute(insert(journal).values(
                created_at=now, kind=RESET, operation=RESET, subject_id=len(self) + uncounted,
            )).inserted_primary_key[0]
            _set_trimmed(conn, int(seq))
            return
        insert_rows(conn, journal, COLUMNS, [
            (now, kind, op, entity_id, None, old_name,
             json.dumps(sorted(removed)) if removed else None)
            for kind, op, entity_id, old_name, removed in self.entities
        ])
        for kind, op, pairs in self.pairs:
            _insert_pairs(conn, now, kind, op, pairs)


def _insert_pairs(conn: Connection, now: dt.datetime, kind: str, operation: str,
                  pairs: list[tuple[int, int]]) -> None:
    """Membership rows, unpacked by the database (SQLite's json_each, PostgreSQL's unnest):
    in an executemany each row is a statement of its own, which on SQLite also updates
    AUTOINCREMENT's counter each time (110,000 rows: 0.8 s of CPU against 0.3 s)."""
    preparer = conn.dialect.identifier_preparer
    into = (f"INSERT INTO {preparer.format_table(journal)} "
            "(created_at, kind, operation, subject_id, parent_id) ")
    created_at = bound(conn, journal.c.created_at, now)
    for i in range(0, len(pairs), CHUNK):
        chunk = pairs[i : i + CHUNK]
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                into + "SELECT %s, %s, %s, m, p FROM unnest(%s::bigint[], %s::bigint[]) AS t(m, p)",
                (created_at, kind, operation, [m for m, _ in chunk], [p for _, p in chunk]))
        else:
            conn.exec_driver_sql(
                into + "SELECT ?, ?, ?, json_extract(value, '$[0]'), json_extract(value, '$[1]') "
                "FROM json_each(?)", (created_at, kind, operation, json.dumps(chunk)))


def record_entities(conn: Connection, kind: str, operation: str,
                    items: Sequence[tuple[int, str | None, Iterable[str]]], limit: int) -> None:
    batch = Batch()
    batch.entity(kind, operation, items)
    batch.write(conn, limit)


# --- reading ---------------------------------------------------------------------------------


def epoch(conn: Connection) -> str:
    value = conn.execute(select(schema_info.c.value).where(schema_info.c.name == "epoch")).scalar()
    if value is None:
        raise LookupError("the store has no epoch; run `dirsync init`")
    return str(value)


def trimmed_through(conn: Connection) -> int:
    value = conn.execute(select(schema_info.c.value).where(schema_info.c.name == TRIMMED)).scalar()
    return int(value) if value is not None else 0


def head(conn: Connection) -> int:
    """The newest seq a token can name: the last row, or the trim mark if nothing is left."""
    newest = conn.execute(select(func.max(journal.c.seq))).scalar()
    return max(int(newest or 0), trimmed_through(conn))


def rows_after(conn: Connection, seq: int, limit: int) -> list[JournalRow]:
    """At most `limit` rows after `seq`, in seq order."""
    result = conn.execute(
        select(journal.c.seq, journal.c.kind, journal.c.operation, journal.c.subject_id,
               journal.c.parent_id, journal.c.old_name, journal.c.removed_attributes)
        .where(journal.c.seq > seq)
        .order_by(journal.c.seq)
        .limit(limit)
    )
    return [
        JournalRow(r.seq, r.kind, r.operation, r.subject_id, r.parent_id, r.old_name,
                   tuple(json.loads(r.removed_attributes)) if r.removed_attributes else ())
        for r in result
    ]


def current_names(conn: Connection, kind: str, ids: Sequence[int]) -> dict[int, str]:
    table = users if kind == USER else groups
    out: dict[int, str] = {}
    for i in range(0, len(ids), 900):
        out.update(conn.execute(select(table.c.id, table.c.name).where(table.c.id.in_(ids[i : i + 900]))).all())
    return out


def _pair_table(kind: str) -> tuple:
    if kind == USER_MEMBERSHIP:
        return user_memberships, user_memberships.c.user_id, user_memberships.c.group_id
    return group_memberships, group_memberships.c.child_id, group_memberships.c.parent_id


def present_pairs(conn: Connection, pairs: Iterable[Pair]) -> set[Pair]:
    """Which of `pairs` exist now."""
    wanted: dict[str, set[tuple[int, int]]] = {}
    for kind, child, parent in pairs:
        wanted.setdefault(kind, set()).add((child, parent))
    out: set[Pair] = set()
    for kind, pairs_of_kind in wanted.items():
        _, child_col, parent_col = _pair_table(kind)
        # By member id, which the (member, group) indexes serve; a row-value IN would make
        # SQLite scan the whole membership table.
        children = sorted({c for c, _ in pairs_of_kind})
        for i in range(0, len(children), 900):
            found = conn.execute(
                select(child_col, parent_col).where(child_col.in_(children[i : i + 900]))
            )
            out.update((kind, c, p) for c, p in found if (c, p) in pairs_of_kind)
    return out


def pairs_of_groups(conn: Connection, group_ids: Sequence[int]) -> set[Pair]:
    """Every current membership with one of `group_ids` at either end."""
    out: set[Pair] = set()
    for i in range(0, len(group_ids), 900):
        chunk = group_ids[i : i + 900]
        out.update((USER_MEMBERSHIP, u, g) for u, g in conn.execute(
            select(user_memberships.c.user_id, user_memberships.c.group_id)
            .where(user_memberships.c.group_id.in_(chunk))))
        out.update((GROUP_MEMBERSHIP, c, p) for c, p in conn.execute(
            select(group_memberships.c.child_id, group_memberships.c.parent_id)
            .where(group_memberships.c.parent_id.in_(chunk) | group_memberships.c.child_id.in_(chunk))))
    return out


def summary(conn: Connection) -> tuple[int, dt.datetime | None]:
    """(number of rows, time of the oldest)."""
    count, oldest = conn.execute(select(func.count(), func.min(journal.c.created_at))).one()
    return int(count), (as_utc(oldest) if oldest is not None else None)


# --- trimming --------------------------------------------------------------------------------


def trim_point(conn: Connection, older_than: dt.datetime, keep: int) -> int:
    """The highest seq that may go: older than the cutoff and not among the newest `keep`."""
    # The newest `keep` rows stay; seq has gaps (rolled-back transactions), so count rows.
    limit = conn.execute(
        select(journal.c.seq).order_by(journal.c.seq.desc()).offset(keep).limit(1)
    ).scalar()
    if limit is None:
        return trimmed_through(conn)
    value = conn.execute(
        select(func.max(journal.c.seq)).where(journal.c.created_at < older_than, journal.c.seq <= limit)
    ).scalar()
    return max(int(value or 0), trimmed_through(conn))


def trim_through(conn: Connection, seq: int, batch: int) -> int:
    """Delete at most `batch` rows up to `seq` and move the trim mark; rows deleted."""
    last = conn.execute(
        select(journal.c.seq).where(journal.c.seq <= seq).order_by(journal.c.seq).offset(batch - 1).limit(1)
    ).scalar()
    upto = seq if last is None else int(last)
    deleted = conn.execute(delete(journal).where(journal.c.seq <= upto)).rowcount
    _set_trimmed(conn, max(upto, trimmed_through(conn)))
    return int(deleted or 0)


def oldest_row(conn: Connection) -> int | None:
    value = conn.execute(select(func.min(journal.c.seq))).scalar()
    return int(value) if value is not None else None


def _set_trimmed(conn: Connection, mark: int) -> None:
    if conn.execute(update(schema_info).where(schema_info.c.name == TRIMMED).values(value=str(mark))).rowcount == 0:
        conn.execute(insert(schema_info).values(name=TRIMMED, value=str(mark)))

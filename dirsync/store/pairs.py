"""A directory's memberships read and written group by group, for the set-wise full sync.

A full read names every membership of the directory, a million for a large one, and on most
days almost none has changed. Rather than staging them all to find nothing, the sync compares
each group's member ids as read with the store's, which `stored_members` hands over as one
text per group, and diffs pair by pair only the groups that differ (dirsync.sync.setwise).
`write` then writes that difference, in key order.

Deciding what changed is not done here; this module only reads and writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, Table, Text, bindparam, cast, delete, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by

from dirsync.store.bulk import CHUNK, indexes_rebuilt
from dirsync.store.stage import all_mine
from dirsync.store.tables import group_memberships, groups, user_memberships, users

Pair = tuple[int, int]  # (parent group id, member id)


def _table(kind: str) -> tuple[Table, str, str]:
    if kind == "user":
        return user_memberships, "group_id", "user_id"
    return group_memberships, "parent_id", "child_id"


def ids_by_name_key(conn: Connection, kind: str, directory_id: int) -> dict[str, int]:
    """The directory's users or groups: name key -> id."""
    table = users if kind == "user" else groups
    return dict(conn.execute(select(table.c.name_key, table.c.id)
                             .where(all_mine(table, directory_id))).all())


def stored_members(conn: Connection, kind: str, directory_id: int) -> dict[int, str]:
    """The direct members (users or child groups) of each of the directory's groups that has
    any: parent id -> member ids, comma-separated. Ascending on PostgreSQL (ORDER BY in the
    aggregate); on SQLite in the order it reads the (group, member) primary key, ascending in
    practice but not promised (SQLite 3.40 has no ORDER BY in aggregates), so a caller may
    only take an equal text as equal members."""
    table, parent, member = _table(kind)
    mine = select(groups.c.id).where(groups.c.directory_id == directory_id)
    text = cast(table.c[member], Text)
    if conn.dialect.name == "postgresql":
        joined: Any = func.string_agg(text, aggregate_order_by(",", table.c[member]))
    else:
        joined = func.group_concat(table.c[member], ",")
    # IN rather than a join: SQLite then walks the primary key group by group (no temporary
    # B-tree for GROUP BY), which is also what keeps each text in member order.
    return dict(conn.execute(select(table.c[parent], joined)
                             .where(table.c[parent].in_(mine))
                             .group_by(table.c[parent])).all())


def write(conn: Connection, kind: str, added: list[tuple[int, list[int]]], added_count: int,
          removed: list[Pair]) -> None:
    """Delete `removed` and insert `added`: (parent, [members]), in key order, `added_count`
    pairs in all."""
    table, parent, member = _table(kind)
    if removed:
        # One keyed delete per pair; a row-value IN makes SQLite scan the whole table.
        conn.execute(delete(table).where(table.c[parent] == bindparam("p"),
                                         table.c[member] == bindparam("m")),
                     [{"p": p, "m": m} for p, m in removed])
    if added_count:
        with indexes_rebuilt(conn, table, added_count):
            _insert(conn, table, parent, member, added)


def _insert(conn: Connection, table: Table, parent: str, member: str,
            added: Iterable[tuple[int, list[int]]]) -> None:
    """The database unpacks each group's member list (SQLite's json_each, PostgreSQL's
    unnest): a row-per-pair executemany spends more in the driver than in the database (a
    million pairs into SQLite: 4.2 s of CPU against 2.6 s)."""
    preparer = conn.dialect.identifier_preparer
    into = (f"INSERT INTO {preparer.format_table(table)} "
            f"({preparer.quote(parent)}, {preparer.quote(member)}) ")
    if conn.dialect.name == "postgresql":
        sql = into + "SELECT * FROM unnest(%s::bigint[], %s::bigint[])"
        for chunk in _chunks(added):
            conn.exec_driver_sql(sql, ([p for p, _ in chunk], [m for _, m in chunk]))
        return
    sql = into + "SELECT ?, value FROM json_each(?)"
    batch: list[tuple[int, str]] = []
    size = 0
    for parent_id, members in added:
        batch.append((parent_id, "[" + ",".join(map(str, members)) + "]"))
        size += len(members)
        if size >= CHUNK:
            conn.exec_driver_sql(sql, batch)
            batch, size = [], 0
    if batch:
        conn.exec_driver_sql(sql, batch)


def _chunks(added: Iterable[tuple[int, list[int]]]) -> Iterator[list[Pair]]:
    chunk: list[Pair] = []
    for parent, members in added:
        chunk += [(parent, m) for m in members]
        if len(chunk) >= CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def flatten(added: Iterable[tuple[int, list[int]]]) -> Iterator[Pair]:
    """(parent, [members]) -> (parent, member) pairs, in the same order."""
    for parent, members in added:
        for m in members:
            yield parent, m

"""Many-row INSERTs straight to the database driver.

SQLAlchemy builds and type-processes the parameters of every row in Python, which costs more
than the database itself for the million membership and journal rows of a large directory.
Here the statement is written once, each column's own bind processor (dates, booleans) is
applied once per distinct value, and rows go to the driver's executemany in chunks, so a
generator of rows is never held in memory whole.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Table, func, select

CHUNK = 20_000

# A load this large into a table that holds fewer rows (a first sync) is faster without the
# table's plain indexes, rebuilt after in one sorted pass each: rows arriving in key order
# scatter their inserts over every other index (on SQLite, measured on a busy machine:
# 1,000,000 memberships about twice as fast, 100,000 users about a fifth faster).
REBUILD_INDEXES_FROM = 50_000


@contextlib.contextmanager
def indexes_rebuilt(conn: Connection, table: Table, adding: int) -> Iterator[None]:
    """For the block, which inserts `adding` rows into `table`: drop the table's plain
    (non-unique) indexes and create them again after, when the load is large against what
    the table holds. SQLite only: on PostgreSQL a dropped index locks the table against
    every reader until commit. Inside the caller's transaction, so a failure brings them
    back."""
    indexes = sorted((i for i in table.indexes if not i.unique), key=lambda i: str(i.name))
    rebuild = (conn.dialect.name == "sqlite" and indexes and adding >= REBUILD_INDEXES_FROM
               and adding >= int(conn.execute(select(func.count()).select_from(table)).scalar()
                                 or 0))
    if not rebuild:
        yield
        return
    for index in indexes:
        index.drop(conn)
    yield
    for index in indexes:
        index.create(conn)


def bound(conn: Connection, column: Any, value: Any) -> Any:
    """`value` as the driver takes it for `column` (a date, a boolean), for SQL written here."""
    process = column.type._cached_bind_processor(conn.dialect)
    return value if process is None or value is None else process(value)


def insert_rows(conn: Connection, table: Table, columns: Sequence[str],
                rows: Iterable[Sequence[Any]]) -> int:
    """Insert `rows` (tuples in `columns` order); returns how many."""
    dialect = conn.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    preparer = dialect.identifier_preparer
    sql = (f"INSERT INTO {preparer.format_table(table)} "
           f"({', '.join(preparer.quote(c) for c in columns)}) "
           f"VALUES ({', '.join(mark for _ in columns)})")
    processors = [(i, p) for i, c in enumerate(columns)
                  if (p := table.c[c].type._cached_bind_processor(dialect)) is not None]
    # The processed columns are dates and booleans with few distinct values (one timestamp
    # per transaction): convert each value once.
    seen: list[dict[Any, Any]] = [{} for _ in processors]
    iterator = iter(rows)
    total = 0
    while chunk := list(islice(iterator, CHUNK)):
        if processors:
            converted = []
            for row in chunk:
                row = list(row)
                for (index, process), cache in zip(processors, seen):
                    value = row[index]
                    if value is not None:
                        out = cache.get(value)
                        if out is None:
                            out = cache[value] = process(value)
                        row[index] = out
                converted.append(tuple(row))
            chunk = converted
        else:
            chunk = [tuple(r) for r in chunk]
        conn.exec_driver_sql(sql, chunk)
        total += len(chunk)
    return total

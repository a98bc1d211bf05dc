"""Many-row INSERTs straight to the database driver.

SQLAlchemy builds and type-processes the parameters of every row in Python, which costs more
than the database itself for the million membership and journal rows of a large directory.
Here the statement is written once, each column's own bind processor (dates, booleans) is
applied once per distinct value, and rows go to the driver's executemany in chunks, so a
generator of rows is never held in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

from sqlalchemy import Connection, Table

CHUNK = 20_000


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

"""Many-row INSERTs straight to the database driver.

SQLAlchemy builds and type-processes the parameters of every row in Python, which costs more
than the database itself for the million membership and journal rows of a large directory.
Here the statement is written once, each column's own bind processor (dates, booleans) is
applied, and the rows go to the driver's executemany as tuples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table

CHUNK = 20_000


def insert_rows(conn: Connection, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    dialect = conn.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    preparer = dialect.identifier_preparer
    sql = (f"INSERT INTO {preparer.format_table(table)} "
           f"({', '.join(preparer.quote(c) for c in columns)}) "
           f"VALUES ({', '.join(mark for _ in columns)})")
    processors = [(i, p) for i, c in enumerate(columns)
                  if (p := table.c[c].type._cached_bind_processor(dialect)) is not None]
    if processors:
        rows = [list(row) for row in rows]
        for index, process in processors:
            # The processed columns are dates and booleans, with few distinct values per
            # batch (one timestamp per transaction): convert each value once.
            seen: dict[Any, Any] = {}
            for row in rows:
                value = row[index]
                if value is not None:
                    out = seen.get(value)
                    if out is None:
                        out = seen[value] = process(value)
                    row[index] = out
    for i in range(0, len(rows), CHUNK):
        conn.exec_driver_sql(sql, [tuple(r) for r in rows[i : i + CHUNK]])

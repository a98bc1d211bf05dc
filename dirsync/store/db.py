"""Engines, connections and the schema's lifecycle. The only place engines are made.

SQLite is opened in WAL mode with foreign keys on, so several server processes can read while
a fixture load or sync writes. PostgreSQL URLs are pointed at psycopg 3.

Transactions, because the event feed depends on them:
* Writes are serialised. On SQLite every write transaction is BEGIN IMMEDIATE; on PostgreSQL it
  takes one transaction-scoped advisory lock first. So journal sequence numbers are allocated in
  commit order, and a reader can never see seq N+1 committed while N is still in flight; and a
  sync computes its difference against a state no other writer can change under it.
* Reads on SQLite run inside an explicit BEGIN, so all statements of one `read()` see one
  snapshot (pysqlite would otherwise run each SELECT in autocommit). `snapshot()` gives the
  same guarantee on PostgreSQL (REPEATABLE READ).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from typing import Iterator

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, select, update
from sqlalchemy.schema import CreateTable

__all__ = ["Connection", "Store", "StoreError", "as_utc", "utcnow"]
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError

from dirsync.errors import ConfigError, DirsyncError
from dirsync.store.tables import (
    SCHEMA_VERSION,
    group_memberships,
    metadata,
    schema_info,
    user_memberships,
)


class StoreError(DirsyncError):
    """The store cannot be used (unreachable, not initialised, newer schema)."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def as_utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; we only ever store UTC."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


def _normalise_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError("database_url", f"{url!r} is not a database URL") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# Any constant works; it only has to differ from locks other software takes on the database.
WRITE_LOCK_KEY = 0x64697273796E63  # "dirsync"


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Take transaction control away from pysqlite; `_sqlite_begin` issues BEGIN itself.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    # The set-wise sync's staging tables are temporary: keep them off the disk.
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.close()


def _sqlite_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("dirsync_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


class Store:
    """A database holding one dirsync store."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = _normalise_url(url)
        kwargs: dict = {"future": True}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        with self._translate():
            with self.engine.connect() as conn:
                yield conn

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """Reads that must all see one committed state (the event feed)."""
        with self._translate():
            with self.engine.connect() as conn:
                if not self.is_sqlite:
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """One serialised transaction; committed when the block ends without an exception."""
        with self._translate():
            with self.engine.connect() as conn:
                conn.execution_options(dirsync_write=True)
                with conn.begin():
                    if not self.is_sqlite:
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
                    yield conn

    @contextlib.contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StoreError(f"the store at {self.safe_url} failed: {exc.orig}") from exc
        except IntegrityError as exc:
            # A constraint the sync logic should have kept (a unique name); nothing was written.
            raise StoreError(f"the store refused a change: {exc.orig}") from exc

    def init_schema(self) -> str:
        """Create missing tables; refuse a store written by a newer dirsync."""
        with self.write() as conn:
            found = self._version(conn)
            if found is not None and found > SCHEMA_VERSION:
                raise StoreError(
                    f"the store at {self.safe_url} has schema version {found}, newer than this "
                    f"dirsync ({SCHEMA_VERSION}); upgrade dirsync"
                )
            if found == 1:
                # Version 1 had a placeholder journal that nothing wrote; version 2 redesigned it.
                conn.exec_driver_sql("DROP TABLE journal")
            if found is not None and found < 3 and self.is_sqlite:
                # Version 3 keeps memberships in WITHOUT ROWID tables (tables.py).
                for table in (user_memberships, group_memberships):
                    _rebuild(conn, table)
            metadata.create_all(conn)
            if found is None:
                conn.execute(schema_info.insert().values(name="version", value=str(SCHEMA_VERSION)))
            elif found < SCHEMA_VERSION:
                conn.execute(
                    update(schema_info)
                    .where(schema_info.c.name == "version")
                    .values(value=str(SCHEMA_VERSION))
                )
            if conn.execute(select(schema_info.c.value).where(schema_info.c.name == "epoch")).first() is None:
                # Tokens carry the epoch, so a client's token from another store is never valid here.
                conn.execute(schema_info.insert().values(name="epoch", value=str(secrets.randbits(63))))
            if found is None:
                return "created"
            return "up to date" if found == SCHEMA_VERSION else f"upgraded from schema version {found}"

    def check_schema(self) -> None:
        """Fail with a clear message unless `dirsync init` has been run on this store."""
        with self.read() as conn:
            found = self._version(conn)
        if found is None:
            raise StoreError(f"the store at {self.safe_url} is empty; run `dirsync init` first")
        if found != SCHEMA_VERSION:
            raise StoreError(
                f"the store at {self.safe_url} has schema version {found}, this dirsync needs "
                f"{SCHEMA_VERSION}; run `dirsync init` to upgrade"
            )

    @staticmethod
    def _version(conn: Connection) -> int | None:
        if not inspect(conn).has_table(schema_info.name):
            return None
        try:
            value = conn.execute(
                select(schema_info.c.value).where(schema_info.c.name == "version")
            ).scalar()
        except SQLAlchemyError:
            return None
        return int(value) if value is not None else None

    def dispose(self) -> None:
        self.engine.dispose()


def _rebuild(conn: Connection, table: Table) -> None:
    """Re-create `table` as tables.py now defines it, keeping its rows: the old one is
    renamed aside (its indexes dropped first, their names being taken again), the rows are
    copied in key order, and the indexes are built after the copy, in one sorted pass each."""
    if not inspect(conn).has_table(table.name):
        return
    old = f"{table.name}_old"
    for index in table.indexes:
        conn.exec_driver_sql(f"DROP INDEX IF EXISTS {index.name}")
    conn.exec_driver_sql(f"ALTER TABLE {table.name} RENAME TO {old}")
    conn.execute(CreateTable(table))
    columns = ", ".join(c.name for c in table.columns)
    key = ", ".join(c.name for c in table.primary_key.columns)
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({columns}) "
                         f"SELECT {columns} FROM {old} ORDER BY {key}")
    conn.exec_driver_sql(f"DROP TABLE {old}")
    for index in table.indexes:
        index.create(conn)

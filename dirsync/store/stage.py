"""Set-wise sync: a directory's users and groups are staged in temporary tables and compared
with the store in SQL, so a 100,000-user directory is diffed by the database, not in Python
objects. Only the entities that may have changed are staged (`candidates` streams the stored
rows past the read first), so a re-sync of an unchanged directory stages nothing. Memberships
are compared group by group in dirsync.store.pairs, without staging.

Used by the LDAP mirror, whose entities always carry an external id. All of it runs in the
caller's write transaction; the staging tables are temporary and dropped before it ends.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from dirsync.dn import dn_key
from dirsync.model import Group, User
from dirsync.names import name_key
from dirsync.store.bulk import indexes_rebuilt, insert_rows
from dirsync.store.db import utcnow
from dirsync.store.tables import (
    NAME,
    TEXT,
    directories,
    group_attributes,
    groups,
    user_attributes,
    users,
)

_meta = MetaData()
NEW, CHANGED = 1, 2


def _temp(name: str, *columns: Column) -> Table:
    return Table(name, _meta, *columns, prefixes=["TEMPORARY"])


stage_users = _temp(
    "stage_users",
    Column("external_id", NAME, primary_key=True),
    Column("name", NAME, nullable=False), Column("name_key", NAME, nullable=False),
    Column("first_name", TEXT), Column("last_name", TEXT), Column("display_name", TEXT),
    Column("email", TEXT), Column("first_name_key", TEXT), Column("last_name_key", TEXT),
    Column("display_name_key", TEXT), Column("email_key", TEXT),
    Column("active", Boolean, nullable=False), Column("dn", Text), Column("dn_key", Text),
    Column("flag", Integer, nullable=False, server_default="0"),
)
stage_groups = _temp(
    "stage_groups",
    Column("external_id", NAME, primary_key=True),
    Column("name", NAME, nullable=False), Column("name_key", NAME, nullable=False),
    Column("description", Text), Column("description_key", Text),
    Column("active", Boolean, nullable=False), Column("dn", Text), Column("dn_key", Text),
    Column("flag", Integer, nullable=False, server_default="0"),
)
# Keyed on the owner's external id: without an index SQLite scanned every staged attribute
# once per user (39 s for the 2,000 attributes of a 100k directory).
stage_user_attributes = _temp(
    "stage_user_attributes",
    Column("external_id", NAME, primary_key=True), Column("name", NAME, primary_key=True),
    Column("position", Integer, primary_key=True), Column("value", Text),
)
stage_group_attributes = _temp(
    "stage_group_attributes",
    Column("external_id", NAME, primary_key=True), Column("name", NAME, primary_key=True),
    Column("position", Integer, primary_key=True), Column("value", Text),
)
STAGES = (stage_users, stage_groups, stage_user_attributes, stage_group_attributes)

USER_FIELDS = ("name", "first_name", "last_name", "display_name", "email", "active")
GROUP_FIELDS = ("name", "description", "active")


@dataclass(frozen=True)
class Kind:
    """The tables of one entity kind, and the fields a Crowd client sees."""

    name: str
    table: Table
    stage: Table
    attributes: Table
    stage_attributes: Table
    owner: str  # the attributes' owner column
    fields: tuple[str, ...]
    values: Callable[[Any], tuple[Any, ...]]  # an entity's row, in `columns` order

    @property
    def columns(self) -> list[str]:
        """The staged columns, as the store's table has them too."""
        return [c.name for c in self.stage.c if c.name != "flag"]


def _user_values(u: User) -> tuple[Any, ...]:
    return (u.external_id, u.name, name_key(u.name), u.first_name, u.last_name, u.display_name,
            u.email, name_key(u.first_name), name_key(u.last_name), name_key(u.display_name),
            name_key(u.email), u.active, u.dn, _dn_key(u.dn))


def _group_values(g: Group) -> tuple[Any, ...]:
    return (g.external_id, g.name, name_key(g.name), g.description, name_key(g.description),
            g.active, g.dn, _dn_key(g.dn))


USERS = Kind("user", users, stage_users, user_attributes, stage_user_attributes, "user_id",
             USER_FIELDS, _user_values)
GROUPS = Kind("group", groups, stage_groups, group_attributes, stage_group_attributes,
              "group_id", GROUP_FIELDS, _group_values)


# SQLite's default page cache is 2 MB; inserting a million rows into indexed tables in key
# order of another index thrashes it (30 s for the memberships of a 100k directory). A sync's
# connection gets more for the duration, and gives it back after. SQLite takes pages as it
# touches them, so this is a ceiling: a first sync of 100,000 users and 1,000,000
# memberships touches about 100 MB of the main database.
SQLITE_SYNC_CACHE_KIB = 131_072
SQLITE_DEFAULT_CACHE_KIB = 2_000


@contextlib.contextmanager
def sync_cache(conn: Connection) -> Iterator[None]:
    """A larger SQLite page cache for the block (nothing on PostgreSQL)."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_SYNC_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_DEFAULT_CACHE_KIB}")


def plan_joins(conn: Connection, kind: Kind) -> None:
    """Give SQLite's planner the sizes it needs to join the staged rows to the store's.
    Without statistics it takes `directory_id = ?` for a handful of rows and walks all of a
    directory's users to join a few hundred staged ones: 0.2-0.3 s per query in an
    incremental round of a 100,000-user directory, where starting from the staging table
    costs nothing. The staging table is analysed each time (it holds what was just staged);
    the store's table when it has no statistics yet (about 0.05 s for 100,000 users)."""
    if conn.dialect.name != "sqlite":
        return  # PostgreSQL's autovacuum keeps statistics, and temp tables are estimated
    known = conn.exec_driver_sql(
        "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'").scalar()
    if not known or not conn.exec_driver_sql(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = ?", (kind.table.name,)).scalar():
        conn.exec_driver_sql(f"ANALYZE main.{kind.table.name}")
    conn.exec_driver_sql(f"ANALYZE temp.{kind.stage.name}")


def create(conn: Connection) -> None:
    for table in STAGES:
        table.drop(conn, checkfirst=True)
        table.create(conn)


def drop(conn: Connection) -> None:
    for table in STAGES:
        table.drop(conn, checkfirst=True)


def _dn_key(dn: str | None) -> str | None:
    return dn_key(dn) if dn else None


_external_id = attrgetter("external_id")


def stage_users_rows(conn: Connection, items: Iterable[User]) -> None:
    _stage_rows(conn, USERS, items)


def stage_groups_rows(conn: Connection, items: Iterable[Group]) -> None:
    _stage_rows(conn, GROUPS, items)


def _stage_rows(conn: Connection, kind: Kind, items: Iterable[Any]) -> None:
    # In key order: the staging table's B-tree grows at its end, and the store's
    # (directory, external id) index too when the new ones are copied over.
    items = sorted(items, key=_external_id)
    insert_rows(conn, kind.stage, kind.columns, map(kind.values, items))
    insert_rows(conn, kind.stage_attributes, ("external_id", "name", "position", "value"), (
        (e.external_id, n, p, v) for e in items for n, vs in e.attributes.items()
        for p, v in enumerate(vs)))


def insert_new(conn: Connection, kind: Kind, directory_id: int, items: Iterable[Any]) -> int:
    """Insert entities of which the directory has none stored yet (a first sync) straight
    into the store, without staging: the same rows `write` would copy from the staging
    tables, written once instead of twice (1 s of a 100,000-user first sync). Returns how
    many."""
    t, a = kind.table, kind.attributes
    now = utcnow()
    items = sorted(items, key=_external_id)
    with indexes_rebuilt(conn, t, len(items)):
        count = insert_rows(conn, t, ["directory_id", "created_at", "updated_at", *kind.columns],
                            ((directory_id, now, now, *kind.values(e)) for e in items))
    with_attributes = [e for e in items if e.attributes]
    if with_attributes:
        ids = dict(conn.execute(select(t.c.external_id, t.c.id)
                                .where(all_mine(t, directory_id))).all())
        insert_rows(conn, a, (kind.owner, "name", "position", "value"), (
            (ids[e.external_id], n, p, v) for e in with_attributes
            for n, vs in e.attributes.items() for p, v in enumerate(vs)))
    return count


def ids_of(conn: Connection, kind: Kind, directory_id: int) -> list[int]:
    """Every stored id of the directory's users (or groups), ascending."""
    t = kind.table
    return list(conn.execute(select(t.c.id).where(all_mine(t, directory_id))
                             .order_by(t.c.id)).scalars())


# --- comparing ---------------------------------------------------------------------------------


def _mine(kind: Kind, directory_id: int) -> Any:
    return kind.table.c.directory_id == directory_id


def all_mine(table: Table, directory_id: int) -> Any:
    """`directory_id = ?` for reading every row of a directory, written (`+ 0`) so that no
    index serves it: SQLite would walk the (directory, DN key) index and fetch the rows in
    DN order, a random page at a time, where reading the table in order is 1.5-2 times
    faster (100,000 users: 0.4 s against 0.2-0.3 s)."""
    return (table.c.directory_id + 0) == directory_id


def _joined(kind: Kind) -> Any:
    return kind.table.c.external_id == kind.stage.c.external_id


def candidates(conn: Connection, kind: Kind, directory_id: int,
               entities: Sequence[Any]) -> tuple[list[Any], list[tuple[int, str]]]:
    """Split a full read against the store, before staging: the entities that may differ
    from their stored copy (new, or any column `mark` compares or any attribute not the
    same), and (id, name) of the stored entities the read no longer has.

    A re-sync of an unchanged directory then stages nothing: the stored rows are streamed
    past the read's entities once instead of being compared with 100,000 staged copies.
    `mark` still decides what changed among the candidates; this only has to miss nothing,
    and it compares exact values, so it cannot."""
    t, a = kind.table, kind.attributes
    columns = (*kind.fields, "dn")  # what `mark` compares; "name" first
    values_of = attrgetter(*columns)
    by_external = {e.external_id: e for e in entities}
    stored_attributes: dict[int, list[tuple[str, int, str]]] = {}
    for owner, name, position, value in conn.execute(
            select(a.c[kind.owner], a.c.name, a.c.position, a.c.value)
            .join(t, t.c.id == a.c[kind.owner]).where(_mine(kind, directory_id))):
        stored_attributes.setdefault(owner, []).append((name, position, value))
    maybe: list[Any] = []
    gone: list[tuple[int, str]] = []
    rows = conn.execute(
        select(t.c.id, t.c.external_id, *[t.c[c] for c in columns])
        .where(all_mine(t, directory_id)).execution_options(yield_per=10_000))
    for row in rows:
        entity = by_external.pop(row[1], None)
        if entity is None:
            gone.append((row[0], row[2]))
        elif (tuple(row[2:]) != values_of(entity)
              or ((entity.attributes or row[0] in stored_attributes)
                  and _attribute_rows(entity) != sorted(stored_attributes.get(row[0], ())))):
            maybe.append(entity)
    maybe.extend(by_external.values())  # not stored yet
    gone.sort()
    return maybe, gone


def _attribute_rows(entity: Any) -> list[tuple[str, int, str]]:
    """As staged: (name, position, value)."""
    return sorted((n, p, v) for n, vs in entity.attributes.items() for p, v in enumerate(vs))


def others_hold(conn: Connection, kind: Kind, directory_id: int) -> bool:
    """Whether any other directory holds a user (or group): if none does, no name of this
    one can clash with theirs and the per-name checks can be skipped."""
    t = kind.table
    others = select(directories.c.id).where(directories.c.id != directory_id)
    return bool(conn.execute(select(exists().where(t.c.directory_id.in_(others)))).scalar())


def mark(conn: Connection, kind: Kind, directory_id: int) -> None:
    """Flag staged entities NEW (not in the store) or CHANGED (any stored column differs,
    attributes included)."""
    t, s = kind.table, kind.stage
    conn.execute(update(s).values(flag=NEW).where(
        ~exists().where(_mine(kind, directory_id), _joined(kind))))
    differs = or_(*[t.c[c].is_distinct_from(s.c[c]) for c in kind.fields + ("dn",)])
    changed = select(t.c.external_id).where(_mine(kind, directory_id), _joined(kind), differs)
    conn.execute(update(s).values(flag=CHANGED).where(s.c.flag == 0, s.c.external_id.in_(changed)))
    # Attributes: any stored (name, position, value) not staged, or the other way round.
    a, sa = kind.attributes, kind.stage_attributes
    stored = (select(t.c.external_id, a.c.name, a.c.position, a.c.value)
              .join(t, t.c.id == a.c[kind.owner])
              .where(_mine(kind, directory_id), t.c.external_id.in_(select(s.c.external_id))))
    staged = select(sa.c.external_id, sa.c.name, sa.c.position, sa.c.value)
    for only_one_side in (stored.except_(staged), staged.except_(stored)):
        differ = only_one_side.subquery()
        conn.execute(update(s).values(flag=CHANGED).where(
            s.c.flag == 0, s.c.external_id.in_(select(differ.c.external_id))))


def deactivated(conn: Connection, kind: Kind, directory_id: int) -> int:
    t, s = kind.table, kind.stage
    return int(conn.execute(select(func.count()).select_from(t).join(s, _joined(kind)).where(
        _mine(kind, directory_id), t.c.active, ~s.c.active)).scalar() or 0)


def counts(conn: Connection, kind: Kind) -> tuple[int, int]:
    """(new, changed) among the staged entities."""
    s = kind.stage
    rows = dict(conn.execute(select(s.c.flag, func.count()).group_by(s.c.flag)).all())
    return int(rows.get(NEW, 0)), int(rows.get(CHANGED, 0))


def stored_count(conn: Connection, kind: Kind, directory_id: int) -> int:
    return int(conn.execute(select(func.count()).select_from(kind.table)
                            .where(_mine(kind, directory_id))).scalar() or 0)


def changes_for_journal(conn: Connection, kind: Kind, directory_id: int) -> list[tuple[int, str, list[str]]]:
    """(id, name before, attribute names removed) of CHANGED entities a client can see change
    (a DN alone changes nothing for a client)."""
    t, s, a, sa = kind.table, kind.stage, kind.attributes, kind.stage_attributes
    visible = or_(*[t.c[c].is_distinct_from(s.c[c]) for c in kind.fields])
    rows = conn.execute(select(t.c.id, t.c.name, t.c.external_id, visible.label("visible"))
                        .join(s, _joined(kind)).where(_mine(kind, directory_id), s.c.flag == CHANGED))
    out: dict[int, tuple[str, bool]] = {r.id: (r.name, bool(r.visible)) for r in rows}
    gone: dict[int, list[str]] = {}
    attr_changed: set[int] = set()
    if out:
        stored = (select(t.c.id, a.c.name).join(t, t.c.id == a.c[kind.owner])
                  .join(s, _joined(kind)).where(_mine(kind, directory_id), s.c.flag == CHANGED))
        staged = (select(t.c.id, sa.c.name).join(t, t.c.external_id == sa.c.external_id)
                  .where(_mine(kind, directory_id)))
        for owner, name in conn.execute(stored.except_(staged)):
            gone.setdefault(owner, []).append(name)
        # An attribute change alone is visible too.
        stored_v = (select(t.c.id, a.c.name, a.c.position, a.c.value).join(t, t.c.id == a.c[kind.owner])
                    .join(s, _joined(kind)).where(_mine(kind, directory_id), s.c.flag == CHANGED))
        staged_v = (select(t.c.id, sa.c.name, sa.c.position, sa.c.value)
                    .join(t, t.c.external_id == sa.c.external_id)
                    .join(s, s.c.external_id == sa.c.external_id)
                    .where(_mine(kind, directory_id), s.c.flag == CHANGED))
        for only_one_side in (stored_v.except_(staged_v), staged_v.except_(stored_v)):
            differ = only_one_side.subquery()
            attr_changed |= {r[0] for r in conn.execute(select(differ.c.id).distinct())}
    return [(i, name, sorted(gone.get(i, []))) for i, (name, visible) in out.items()
            if visible or i in attr_changed]


# --- writing -----------------------------------------------------------------------------------


def delete_ids(conn: Connection, kind: Kind, ids: list[int]) -> None:
    """Delete users or groups by id; their attributes and memberships go with them (ON DELETE
    CASCADE)."""
    t = kind.table
    for i in range(0, len(ids), 900):
        conn.execute(delete(t).where(t.c.id.in_(ids[i : i + 900])))


def write(conn: Connection, kind: Kind, directory_id: int, removed_ids: list[int],
          new_ids: bool = True) -> list[int]:
    """Apply the staged entities: delete `removed_ids`, update CHANGED, insert NEW. Returns
    the new ids (an empty list unless `new_ids`)."""
    t, s, a, sa = kind.table, kind.stage, kind.attributes, kind.stage_attributes
    now = utcnow()
    delete_ids(conn, kind, removed_ids)
    columns = [c.name for c in s.c if c.name not in ("external_id", "flag")]
    # Park renamed rows on placeholders first (a->b, b->a swaps); see writes._write_entities.
    renamed = select(t.c.id).join(s, _joined(kind)).where(
        _mine(kind, directory_id), s.c.flag == CHANGED, t.c.name_key != s.c.name_key)
    conn.execute(update(t).where(t.c.id.in_(renamed)).values(
        name_key=literal("RENAMING ") + cast(t.c.id, String)))
    conn.execute(
        update(t).where(_mine(kind, directory_id), _joined(kind), s.c.flag == CHANGED)
        .values({**{c: s.c[c] for c in columns}, "updated_at": now})
    )
    changed_ids = select(t.c.id).join(s, _joined(kind)).where(
        _mine(kind, directory_id), s.c.flag == CHANGED)
    conn.execute(delete(a).where(a.c[kind.owner].in_(changed_ids)))
    conn.execute(insert(t).from_select(
        ["directory_id", "external_id", "created_at", "updated_at", *columns],
        select(literal(directory_id), s.c.external_id, literal(now, t.c.created_at.type),
               literal(now, t.c.updated_at.type), *[s.c[c] for c in columns])
        .where(s.c.flag == NEW),
    ))
    conn.execute(insert(a).from_select(
        [kind.owner, "name", "position", "value"],
        select(t.c.id, sa.c.name, sa.c.position, sa.c.value)
        .join(t, and_(t.c.external_id == sa.c.external_id, _mine(kind, directory_id)))
        .join(s, s.c.external_id == sa.c.external_id)
        .where(s.c.flag.in_([NEW, CHANGED])),
    ))
    if not new_ids:
        return []
    return [r.id for r in conn.execute(
        select(t.c.id).join(s, _joined(kind)).where(_mine(kind, directory_id), s.c.flag == NEW))]

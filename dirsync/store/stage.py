"""Set-wise sync: a directory's content is staged in temporary tables and compared with the
store in SQL, so a 100,000-user directory is diffed by the database, not in Python objects.

Used by the LDAP mirror, whose entities always carry an external id. All of it runs in the
caller's write transaction; the staging tables are temporary and dropped before it ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
from dirsync.store.bulk import insert_rows
from dirsync.store.db import utcnow
from dirsync.store.tables import (
    ID,
    NAME,
    TEXT,
    group_attributes,
    group_memberships,
    groups,
    user_attributes,
    user_memberships,
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
    Column("flag", Integer, nullable=False, default=0),
)
stage_groups = _temp(
    "stage_groups",
    Column("external_id", NAME, primary_key=True),
    Column("name", NAME, nullable=False), Column("name_key", NAME, nullable=False),
    Column("description", Text), Column("description_key", Text),
    Column("active", Boolean, nullable=False), Column("dn", Text), Column("dn_key", Text),
    Column("flag", Integer, nullable=False, default=0),
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
stage_user_pairs = _temp(
    "stage_user_pairs",
    Column("group_id", ID, primary_key=True), Column("user_id", ID, primary_key=True),
)
stage_group_pairs = _temp(
    "stage_group_pairs",
    Column("parent_id", ID, primary_key=True), Column("child_id", ID, primary_key=True),
)
STAGES = (stage_users, stage_groups, stage_user_attributes, stage_group_attributes,
          stage_user_pairs, stage_group_pairs)

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


USERS = Kind("user", users, stage_users, user_attributes, stage_user_attributes, "user_id",
             USER_FIELDS)
GROUPS = Kind("group", groups, stage_groups, group_attributes, stage_group_attributes,
              "group_id", GROUP_FIELDS)


# SQLite's default page cache is 2 MB; inserting a million rows into indexed tables in key
# order of another index thrashes it (30 s for the memberships of a 100k directory). The
# sync's connection gets 256 MB for the duration, and gives it back after.
SQLITE_SYNC_CACHE_KIB = 262_144
SQLITE_DEFAULT_CACHE_KIB = 2_000


def create(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_SYNC_CACHE_KIB}")
    for table in STAGES:
        table.drop(conn, checkfirst=True)
        table.create(conn)


def drop(conn: Connection) -> None:
    for table in STAGES:
        table.drop(conn, checkfirst=True)
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_DEFAULT_CACHE_KIB}")


def _dn_key(dn: str | None) -> str | None:
    return dn_key(dn) if dn else None


def stage_users_rows(conn: Connection, items: Iterable[User]) -> None:
    items = list(items)
    insert_rows(conn, stage_users, [c.name for c in stage_users.c], (
        (u.external_id, u.name, name_key(u.name), u.first_name, u.last_name, u.display_name,
         u.email, name_key(u.first_name), name_key(u.last_name), name_key(u.display_name),
         name_key(u.email), u.active, u.dn, _dn_key(u.dn), 0)
        for u in items))
    insert_rows(conn, stage_user_attributes, ("external_id", "name", "position", "value"), (
        (u.external_id, n, p, v) for u in items for n, vs in u.attributes.items()
        for p, v in enumerate(vs)))


def stage_groups_rows(conn: Connection, items: Iterable[Group]) -> None:
    items = list(items)
    insert_rows(conn, stage_groups, [c.name for c in stage_groups.c], (
        (g.external_id, g.name, name_key(g.name), g.description, name_key(g.description),
         g.active, g.dn, _dn_key(g.dn), 0)
        for g in items))
    insert_rows(conn, stage_group_attributes, ("external_id", "name", "position", "value"), (
        (g.external_id, n, p, v) for g in items for n, vs in g.attributes.items()
        for p, v in enumerate(vs)))


# --- comparing ---------------------------------------------------------------------------------


def _mine(kind: Kind, directory_id: int) -> Any:
    return kind.table.c.directory_id == directory_id


def _joined(kind: Kind) -> Any:
    return kind.table.c.external_id == kind.stage.c.external_id


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
              .join(t, t.c.id == a.c[kind.owner]).where(_mine(kind, directory_id)))
    staged = select(sa.c.external_id, sa.c.name, sa.c.position, sa.c.value)
    for only_one_side in (stored.except_(staged), staged.except_(stored)):
        differ = only_one_side.subquery()
        conn.execute(update(s).values(flag=CHANGED).where(
            s.c.flag == 0, s.c.external_id.in_(select(differ.c.external_id))))


def removed(conn: Connection, kind: Kind, directory_id: int) -> list[tuple[int, str]]:
    """(id, name) of stored entities the directory no longer has."""
    t, s = kind.table, kind.stage
    return [(r.id, r.name) for r in conn.execute(
        select(t.c.id, t.c.name).where(
            _mine(kind, directory_id), ~exists().where(s.c.external_id == t.c.external_id)))]


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


def write(conn: Connection, kind: Kind, directory_id: int, removed_ids: list[int]) -> list[int]:
    """Apply the staged entities: delete `removed_ids`, update CHANGED, insert NEW. Returns
    the new ids."""
    t, s, a, sa = kind.table, kind.stage, kind.attributes, kind.stage_attributes
    now = utcnow()
    for i in range(0, len(removed_ids), 900):
        conn.execute(delete(t).where(t.c.id.in_(removed_ids[i : i + 900])))
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
    return [r.id for r in conn.execute(
        select(t.c.id).join(s, _joined(kind)).where(_mine(kind, directory_id), s.c.flag == NEW))]


# --- memberships -------------------------------------------------------------------------------


def stage_pairs(conn: Connection, directory_id: int, user_pairs: Iterable[tuple[str, str]],
                group_pairs: Iterable[tuple[str, str]]) -> None:
    """Memberships by name key, (group, user) and (parent, child), resolved to store ids."""
    user_ids = dict(conn.execute(select(users.c.name_key, users.c.id)
                                 .where(users.c.directory_id == directory_id)).all())
    group_ids = dict(conn.execute(select(groups.c.name_key, groups.c.id)
                                  .where(groups.c.directory_id == directory_id)).all())
    insert_rows(conn, stage_user_pairs, ("group_id", "user_id"),
                ((group_ids[g], user_ids[u]) for g, u in user_pairs))
    insert_rows(conn, stage_group_pairs, ("parent_id", "child_id"),
                ((group_ids[p], group_ids[c]) for p, c in group_pairs))


def _pair_sets(directory_id: int) -> tuple[tuple[Table, Table, str, str], ...]:
    return ((user_memberships, stage_user_pairs, "group_id", "user_id"),
            (group_memberships, stage_group_pairs, "parent_id", "child_id"))


def pair_changes(conn: Connection, directory_id: int) -> dict[str, tuple[Any, Any]]:
    """For user and group memberships: (added, removed) as SELECTs of (parent, member)."""
    mine = select(groups.c.id).where(groups.c.directory_id == directory_id)
    out = {}
    for label, (table, stage, parent, member) in zip(("user", "group"), _pair_sets(directory_id)):
        added = select(stage.c[parent], stage.c[member]).where(~exists().where(
            table.c[parent] == stage.c[parent], table.c[member] == stage.c[member]))
        removed_ = select(table.c[parent], table.c[member]).where(
            table.c[parent].in_(mine), ~exists().where(
                stage.c[parent] == table.c[parent], stage.c[member] == table.c[member]))
        out[label] = (added, removed_)
    return out


def count_of(conn: Connection, query: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar() or 0)


def write_pairs(conn: Connection, directory_id: int, sizes: dict[str, tuple[int, int]]) -> None:
    """`sizes`: (added, removed) per kind from `pair_changes`; a pass over a million pairs is
    skipped when it has nothing to do."""
    mine = select(groups.c.id).where(groups.c.directory_id == directory_id)
    for label, (table, stage, parent, member) in zip(("user", "group"), _pair_sets(directory_id)):
        added, removed_ = sizes[label]
        if removed_:
            conn.execute(delete(table).where(table.c[parent].in_(mine), ~exists().where(
                stage.c[parent] == table.c[parent], stage.c[member] == table.c[member])))
        if added:
            # In key order: the primary key's B-tree then grows at its end.
            conn.execute(insert(table).from_select([parent, member], select(
                stage.c[parent], stage.c[member]).where(~exists().where(
                    table.c[parent] == stage.c[parent], table.c[member] == stage.c[member]))
                .order_by(stage.c[parent], stage.c[member])))

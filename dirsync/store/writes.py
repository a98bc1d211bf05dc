"""Writing one directory's users, groups and memberships: the primitives a sync applies.

All of it runs in the caller's transaction. Renames are written so that the unique name index
never sees two rows with one name mid-transaction; membership sets are compared as store ids.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, insert, select, tuple_, update

from dirsync.dn import dn_key
from dirsync.errors import DirsyncError
from dirsync.model import EntityChanges, Group, User
from dirsync.names import name_key
from dirsync.passwords import hash_user_password, same_user_password
from dirsync.store.bulk import insert_rows
from dirsync.store.db import utcnow
from dirsync.store.tables import (
    directories,
    group_attributes,
    group_memberships,
    groups,
    user_attributes,
    user_memberships,
    users,
)


class NameConflict(DirsyncError):
    """A name in the snapshot belongs to another directory's entity."""


def ensure_directory(conn: Connection, name: str, kind: str) -> int:
    row = conn.execute(select(directories.c.id, directories.c.kind).where(directories.c.name == name)).first()
    if row is not None:
        if row.kind != kind:
            raise DirsyncError(f"directory {name!r} is of kind {row.kind}, not {kind}")
        return int(row.id)
    return int(
        conn.execute(
            insert(directories).values(name=name, kind=kind, created_at=utcnow())
        ).inserted_primary_key[0]
    )


def stored_users(conn: Connection, directory_id: int) -> dict[int, User]:
    rows = list(conn.execute(select(users).where(users.c.directory_id == directory_id)))
    attrs = _attributes_by_owner(conn, user_attributes, user_attributes.c.user_id,
                                 users.c.directory_id == directory_id, users.c.id)
    return {
        r.id: User(
            name=r.name, first_name=r.first_name, last_name=r.last_name,
            display_name=r.display_name, email=r.email, active=r.active,
            external_id=r.external_id, password=r.password_hash, dn=r.dn,
            attributes=attrs.get(r.id, {}),
        )
        for r in rows
    }


def stored_groups(conn: Connection, directory_id: int) -> dict[int, Group]:
    rows = list(conn.execute(select(groups).where(groups.c.directory_id == directory_id)))
    attrs = _attributes_by_owner(conn, group_attributes, group_attributes.c.group_id,
                                 groups.c.directory_id == directory_id, groups.c.id)
    return {
        r.id: Group(
            name=r.name, description=r.description, active=r.active,
            external_id=r.external_id, dn=r.dn, attributes=attrs.get(r.id, {}),
        )
        for r in rows
    }


def _attributes_by_owner(conn: Connection, table: Table, owner: Any, scope: Any, owner_pk: Any) -> dict[int, dict]:
    out: dict[int, dict[str, tuple[str, ...]]] = {}
    rows = conn.execute(
        select(owner, table.c.name, table.c.value)
        .where(owner.in_(select(owner_pk).where(scope)))
        .order_by(owner, table.c.name, table.c.position)
    )
    for owner_id, name, value in rows:
        entry = out.setdefault(owner_id, {})
        entry[name] = entry.get(name, ()) + (value,)
    return out


def _user_values(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "name_key": name_key(user.name),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "display_name": user.display_name,
        "email": user.email,
        "first_name_key": name_key(user.first_name),
        "last_name_key": name_key(user.last_name),
        "display_name_key": name_key(user.display_name),
        "email_key": name_key(user.email),
        "active": user.active,
        "dn": user.dn,
        "dn_key": dn_key(user.dn) if user.dn else None,
    }


def _group_values(group: Group) -> dict[str, Any]:
    return {
        "name": group.name,
        "name_key": name_key(group.name),
        "description": group.description,
        "description_key": name_key(group.description),
        "active": group.active,
        "dn": group.dn,
        "dn_key": dn_key(group.dn) if group.dn else None,
    }


def _password_values(user: User, stored: User | None) -> dict[str, Any]:
    if user.password is None:
        return {"password_hash": None}
    if stored is not None and stored.password is not None:
        if same_user_password(user.password, stored.password):
            return {}
    return {"password_hash": hash_user_password(user.password)}


def check_user_names(conn: Connection, directory_id: int, keys: Iterable[str]) -> None:
    _check_names(conn, users, directory_id, keys, "user")


def check_group_names(conn: Connection, directory_id: int, keys: Iterable[str]) -> None:
    _check_names(conn, groups, directory_id, keys, "group")


def _check_names(conn: Connection, table: Table, directory_id: int, keys: Iterable[str], kind: str) -> None:
    keys = list(keys)
    for i in range(0, len(keys), 900):
        row = conn.execute(
            select(table.c.name, directories.c.name.label("directory"))
            .join(directories, directories.c.id == table.c.directory_id)
            .where(table.c.directory_id != directory_id, table.c.name_key.in_(keys[i : i + 900]))
            .limit(1)
        ).first()
        if row is not None:
            raise NameConflict(
                f"{kind} {row.name!r} already belongs to directory {row.directory!r}; "
                "names must be unique across directories"
            )


def name_holders(conn: Connection, kind: str, directory_id: int,
                 keys: Iterable[str]) -> dict[str, tuple[int, str, str]]:
    """Which of `keys` other directories hold: name key -> (id, name, directory name)."""
    table = users if kind == "user" else groups
    keys = list(keys)
    out: dict[str, tuple[int, str, str]] = {}
    for i in range(0, len(keys), 900):
        for row in conn.execute(
            select(table.c.name_key, table.c.id, table.c.name, directories.c.name.label("directory"))
            .join(directories, directories.c.id == table.c.directory_id)
            .where(table.c.directory_id != directory_id, table.c.name_key.in_(keys[i : i + 900]))
        ):
            out[row.name_key] = (row.id, row.name, row.directory)
    return out


def delete_entities(conn: Connection, kind: str, ids: list[int]) -> None:
    """Delete users or groups by id; their memberships go with them (ON DELETE CASCADE)."""
    table = users if kind == "user" else groups
    for i in range(0, len(ids), 900):
        conn.execute(delete(table).where(table.c.id.in_(ids[i : i + 900])))


def write_users(conn: Connection, directory_id: int, changes: EntityChanges[User],
                stored: dict[int, User]) -> list[int]:
    """Returns the new users' ids, in the order of `changes.added`."""
    return _write_entities(conn, users, directory_id, changes, stored, _user_values,
                    user_attributes, "user_id")


def write_groups(conn: Connection, directory_id: int, changes: EntityChanges[Group],
                 stored: dict[int, Group]) -> list[int]:
    """Returns the new groups' ids, in the order of `changes.added`."""
    return _write_entities(conn, groups, directory_id, changes, stored, _group_values,
                    group_attributes, "group_id")


def _write_entities(
    conn: Connection,
    table: Table,
    directory_id: int,
    changes: EntityChanges[Any],
    stored: dict[int, Any],
    values_of: Any,
    attr_table: Table,
    attr_owner: str,
) -> list[int]:
    # Statements are executed many rows at a time: one statement per row cost ~1 ms each in
    # SQLAlchemy's statement building alone, minutes for a first load of 100k users.
    now = utcnow()
    if changes.removed:
        for i in range(0, len(changes.removed), 900):
            conn.execute(delete(table).where(table.c.id.in_(changes.removed[i : i + 900])))
    # Renames may swap names (a->b, b->a); park renamed rows on unique placeholders first so
    # the unique index on name_key never sees two rows with one name mid-transaction. A
    # placeholder holds upper-case letters, which no casefolded name key can, and no NUL,
    # which PostgreSQL text refuses.
    renamed = [i for i, e in changes.updated if name_key(e.name) != name_key(stored[i].name)]
    if renamed:
        conn.execute(update(table).where(table.c.id == bindparam("_id")).values(name_key=bindparam("_key")),
                     [{"_id": i, "_key": f"RENAMING {i}"} for i in renamed])
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    replaced: list[tuple[int, dict]] = []
    for store_id, entity in changes.updated:
        values = values_of(entity)
        if table is users:
            values.update(_password_values(entity, stored[store_id]))
        values["updated_at"] = now
        by_columns.setdefault(tuple(sorted(values)), []).append({"_id": store_id, **values})
        if entity.attributes != stored[store_id].attributes:
            replaced.append((store_id, entity.attributes))
    for columns, rows in by_columns.items():
        statement = update(table).where(table.c.id == bindparam("_id")).values(
            {c: bindparam(c) for c in columns})
        conn.execute(statement, rows)
    if replaced:
        ids = [i for i, _ in replaced]
        for i in range(0, len(ids), 900):
            conn.execute(delete(attr_table).where(attr_table.c[attr_owner].in_(ids[i : i + 900])))
        _insert_attributes(conn, attr_table, attr_owner, replaced)
    if not changes.added:
        return []
    rows = []
    for entity in changes.added:
        values = values_of(entity)
        if table is users:
            values.update(_password_values(entity, None))
        rows.append({"directory_id": directory_id,
                     "external_id": entity.external_id or str(uuid.uuid4()),
                     "created_at": now, "updated_at": now, **values})
    columns = tuple(rows[0])
    insert_rows(conn, table, columns, [tuple(r[c] for c in columns) for r in rows])
    external = [r["external_id"] for r in rows]
    ids: dict[str, int] = {}
    for i in range(0, len(external), 900):
        ids.update(conn.execute(
            select(table.c.external_id, table.c.id)
            .where(table.c.directory_id == directory_id, table.c.external_id.in_(external[i : i + 900]))
        ).all())
    new_ids = [int(ids[x]) for x in external]
    _insert_attributes(conn, attr_table, attr_owner,
                       [(i, e.attributes) for i, e in zip(new_ids, changes.added) if e.attributes])
    return new_ids


def _insert_attributes(conn: Connection, table: Table, owner_col: str,
                       owners: list[tuple[int, dict[str, tuple[str, ...]]]]) -> None:
    insert_rows(conn, table, (owner_col, "name", "position", "value"), [
        (owner_id, name, pos, value)
        for owner_id, attributes in owners
        for name, values in attributes.items()
        for pos, value in enumerate(values)
    ])


def user_ids_by_key(conn: Connection, directory_id: int) -> dict[str, int]:
    return _ids_by_key(conn, users, directory_id)


def group_ids_by_key(conn: Connection, directory_id: int) -> dict[str, int]:
    return _ids_by_key(conn, groups, directory_id)


def _ids_by_key(conn: Connection, table: Table, directory_id: int) -> dict[str, int]:
    return dict(
        conn.execute(select(table.c.name_key, table.c.id).where(table.c.directory_id == directory_id)).all()
    )


Pairs = list[tuple[int, int]]


def sync_user_memberships(conn: Connection, directory_id: int,
                          wanted: set[tuple[int, int]]) -> tuple[Pairs, Pairs]:
    """Make the directory's (group id, user id) pairs equal `wanted`; (added, removed)."""
    in_directory = select(groups.c.id).where(groups.c.directory_id == directory_id)
    return _sync_pairs(conn, user_memberships, "group_id", "user_id",
                       user_memberships.c.group_id.in_(in_directory), wanted)


def sync_group_memberships(conn: Connection, directory_id: int,
                           wanted: set[tuple[int, int]]) -> tuple[Pairs, Pairs]:
    """Make the directory's (parent id, child id) pairs equal `wanted`; (added, removed)."""
    in_directory = select(groups.c.id).where(groups.c.directory_id == directory_id)
    return _sync_pairs(conn, group_memberships, "parent_id", "child_id",
                       group_memberships.c.parent_id.in_(in_directory), wanted)


def _sync_pairs(conn: Connection, table: Table, a: str, b: str, scope: Any,
                wanted: set[tuple[int, int]]) -> tuple[Pairs, Pairs]:
    current = {(x, y) for x, y in conn.execute(select(table.c[a], table.c[b]).where(scope))}
    add = sorted(wanted - current)
    remove = sorted(current - wanted)
    for i in range(0, len(remove), 400):
        conn.execute(delete(table).where(tuple_(table.c[a], table.c[b]).in_(remove[i : i + 400])))
    insert_rows(conn, table, (a, b), add)
    return add, remove

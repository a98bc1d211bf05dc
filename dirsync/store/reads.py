"""Read queries behind the Crowd API: lookups, listings, nested membership, the membership dump.

Nesting is resolved in the database with recursive CTEs. `UNION` (not `UNION ALL`) makes them
terminate on cycles: a group already reached is not expanded again. Listings are ordered by the
unique `name_key`, so `start-index`/`max-results` paging is a stable total order.

Rows returned are SQLAlchemy Rows with the columns of USER_COLUMNS / GROUP_COLUMNS.

The statements on the per-request paths are built once, with bind parameters, and reused:
building a recursive CTE in SQLAlchemy costs several times what SQLite takes to run it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Integer, Row, Select, bindparam, select, true

from dirsync.names import name_key
from dirsync.store.tables import (
    directories,
    ID,
    group_attributes,
    group_memberships,
    groups,
    user_attributes,
    user_memberships,
    users,
)

USER_COLUMNS = (
    users.c.id,
    users.c.directory_id,
    users.c.external_id,
    users.c.name,
    users.c.first_name,
    users.c.last_name,
    users.c.display_name,
    users.c.email,
    users.c.active,
    users.c.created_at,
    users.c.updated_at,
)
GROUP_COLUMNS = (
    groups.c.id,
    groups.c.name,
    groups.c.description,
    groups.c.active,
    groups.c.created_at,
    groups.c.updated_at,
)

# Rows fetched per round trip when streaming big results.
STREAM_BATCH = 5000


def _page(query: Select[Any], start: int, limit: int | None) -> Select[Any]:
    if start:
        query = query.offset(start)
    if limit is not None:
        query = query.limit(limit)
    return query


def _paged(query: Select[Any], has_start: bool, has_limit: bool) -> Select[Any]:
    """Paging by bind parameters, so one built statement serves every page."""
    if has_start:
        query = query.offset(bindparam("start", type_=Integer))
    if has_limit:
        query = query.limit(bindparam("limit", type_=Integer))
    return query


def _page_params(start: int, limit: int | None, **params: Any) -> dict[str, Any]:
    params["start"] = start
    params["limit"] = limit
    return params


_ID = bindparam("id", type_=ID)
_OTHER = bindparam("other", type_=ID)
_KEY = bindparam("key")


# --- single entities -------------------------------------------------------------------------


_FIND_USER = select(*USER_COLUMNS).where(users.c.name_key == _KEY)
_FIND_GROUP = select(*GROUP_COLUMNS).where(groups.c.name_key == _KEY)


def find_user(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(_FIND_USER, {"key": name_key(name)}).first()


def find_user_with_password(conn: Connection, name: str) -> Row[Any] | None:
    """The user with what a login needs: the password hash, or the DN and the directory to
    bind to."""
    return conn.execute(
        select(*USER_COLUMNS, users.c.password_hash, users.c.dn,
               directories.c.name.label("directory"), directories.c.kind.label("directory_kind"))
        .join(directories, directories.c.id == users.c.directory_id)
        .where(users.c.name_key == name_key(name))
    ).first()


def find_user_by_key(conn: Connection, key: str) -> Row[Any] | None:
    directory_id, sep, external_id = key.partition(":")
    if not sep or not directory_id.isdigit():
        return None
    return conn.execute(
        select(*USER_COLUMNS).where(
            users.c.directory_id == int(directory_id), users.c.external_id == external_id
        )
    ).first()


def find_group(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(_FIND_GROUP, {"key": name_key(name)}).first()


def users_by_ids(conn: Connection, ids: Sequence[int]) -> dict[int, Row[Any]]:
    return _by_ids(conn, USER_COLUMNS, users.c.id, ids)


def groups_by_ids(conn: Connection, ids: Sequence[int]) -> dict[int, Row[Any]]:
    return _by_ids(conn, GROUP_COLUMNS, groups.c.id, ids)


def _by_ids(conn: Connection, columns: Any, id_col: Any, ids: Sequence[int]) -> dict[int, Row[Any]]:
    out: dict[int, Row[Any]] = {}
    for i in range(0, len(ids), 900):
        out.update((r.id, r) for r in conn.execute(select(*columns).where(id_col.in_(ids[i : i + 900]))))
    return out


def _attributes(conn: Connection, table: Any, owner: Any, ids: Iterable[int]) -> dict[int, dict]:
    ids = list(ids)
    out: dict[int, dict[str, list[str]]] = {i: {} for i in ids}
    if not ids:
        return out
    # Chunked so that a 100,000-user listing with attributes does not build one giant IN list.
    for i in range(0, len(ids), 900):
        rows = conn.execute(
            select(owner, table.c.name, table.c.value)
            .where(owner.in_(ids[i : i + 900]))
            .order_by(owner, table.c.name, table.c.position)
        )
        for owner_id, name, value in rows:
            out[owner_id].setdefault(name, []).append(value)
    return out


def user_attributes_of(conn: Connection, user_ids: Iterable[int]) -> dict[int, dict]:
    return _attributes(conn, user_attributes, user_attributes.c.user_id, user_ids)


def group_attributes_of(conn: Connection, group_ids: Iterable[int]) -> dict[int, dict]:
    return _attributes(conn, group_attributes, group_attributes.c.group_id, group_ids)


# --- searches --------------------------------------------------------------------------------


def search_users(
    conn: Connection, condition: ColumnElement[bool], start: int, limit: int | None
) -> Iterator[Row[Any]]:
    query = select(*USER_COLUMNS).where(condition).order_by(users.c.name_key)
    return _stream(conn, _page(query, start, limit))


def search_groups(
    conn: Connection, condition: ColumnElement[bool], start: int, limit: int | None
) -> Iterator[Row[Any]]:
    query = select(*GROUP_COLUMNS).where(condition).order_by(groups.c.name_key)
    return _stream(conn, _page(query, start, limit))


def _stream(conn: Connection, query: Select[Any]) -> Iterator[Row[Any]]:
    result = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH).execute(query)
    yield from result


# --- membership graph ------------------------------------------------------------------------


def _ancestors_of_user(user_id: Any):  # type: ignore[no-untyped-def]
    """Ids of every group the user is in, directly or through nesting."""
    anc = (
        select(user_memberships.c.group_id.label("id"))
        .where(user_memberships.c.user_id == user_id)
        .cte("anc", recursive=True)
    )
    return anc.union(
        select(group_memberships.c.parent_id).join(anc, group_memberships.c.child_id == anc.c.id)
    )


def _ancestors_of_group(group_id: Any):  # type: ignore[no-untyped-def]
    anc = (
        select(group_memberships.c.parent_id.label("id"))
        .where(group_memberships.c.child_id == group_id)
        .cte("anc", recursive=True)
    )
    return anc.union(
        select(group_memberships.c.parent_id).join(anc, group_memberships.c.child_id == anc.c.id)
    )


def _descendants_of_group(group_id: Any):  # type: ignore[no-untyped-def]
    """Ids of the group itself and every group nested in it."""
    desc = select(group_id.label("id")).cte("desc", recursive=True)
    return desc.union(
        select(group_memberships.c.child_id).join(desc, group_memberships.c.parent_id == desc.c.id)
    )


@cache
def _groups_of_user_query(nested: bool, start: bool, limit: bool) -> Select[Any]:
    if nested:
        ids = select(_ancestors_of_user(_ID).c.id)
    else:
        ids = select(user_memberships.c.group_id).where(user_memberships.c.user_id == _ID)
    query = select(*GROUP_COLUMNS).where(groups.c.id.in_(ids)).order_by(groups.c.name_key)
    return _paged(query, start, limit)


@cache
def _users_of_group_query(nested: bool, start: bool, limit: bool) -> Select[Any]:
    if nested:
        member_groups = select(_descendants_of_group(_ID).c.id)
        ids = select(user_memberships.c.user_id).where(
            user_memberships.c.group_id.in_(member_groups)
        )
    else:
        ids = select(user_memberships.c.user_id).where(user_memberships.c.group_id == _ID)
    query = select(*USER_COLUMNS).where(users.c.id.in_(ids)).order_by(users.c.name_key)
    return _paged(query, start, limit)


@cache
def _child_groups_query(nested: bool, start: bool, limit: bool) -> Select[Any]:
    if nested:
        ids = select(_descendants_of_group(_ID).c.id)
        condition = groups.c.id.in_(ids) & (groups.c.id != _ID)
    else:
        ids = select(group_memberships.c.child_id).where(group_memberships.c.parent_id == _ID)
        condition = groups.c.id.in_(ids)
    query = select(*GROUP_COLUMNS).where(condition).order_by(groups.c.name_key)
    return _paged(query, start, limit)


@cache
def _parent_groups_query(nested: bool, start: bool, limit: bool) -> Select[Any]:
    if nested:
        ids = select(_ancestors_of_group(_ID).c.id)
        condition = groups.c.id.in_(ids) & (groups.c.id != _ID)
    else:
        ids = select(group_memberships.c.parent_id).where(group_memberships.c.child_id == _ID)
        condition = groups.c.id.in_(ids)
    query = select(*GROUP_COLUMNS).where(condition).order_by(groups.c.name_key)
    return _paged(query, start, limit)


def _related(builder: Any, conn: Connection, entity_id: int, nested: bool, start: int,
             limit: int | None) -> list[Row[Any]]:
    query = builder(nested, bool(start), limit is not None)
    return list(conn.execute(query, _page_params(start, limit, id=entity_id)))


def groups_of_user(
    conn: Connection, user_id: int, *, nested: bool, start: int = 0, limit: int | None = None
) -> list[Row[Any]]:
    return _related(_groups_of_user_query, conn, user_id, nested, start, limit)


def users_of_group(
    conn: Connection, group_id: int, *, nested: bool, start: int = 0, limit: int | None = None
) -> list[Row[Any]]:
    return _related(_users_of_group_query, conn, group_id, nested, start, limit)


def child_groups(
    conn: Connection, group_id: int, *, nested: bool, start: int = 0, limit: int | None = None
) -> list[Row[Any]]:
    return _related(_child_groups_query, conn, group_id, nested, start, limit)


def parent_groups(
    conn: Connection, group_id: int, *, nested: bool, start: int = 0, limit: int | None = None
) -> list[Row[Any]]:
    return _related(_parent_groups_query, conn, group_id, nested, start, limit)


_IS_USER_MEMBER = {
    True: select(true()).where(_OTHER.in_(select(_ancestors_of_user(_ID).c.id))).limit(1),
    False: select(true())
    .where(user_memberships.c.user_id == _ID, user_memberships.c.group_id == _OTHER)
    .limit(1),
}
_IS_GROUP_MEMBER = {
    True: select(true()).where(_OTHER.in_(select(_ancestors_of_group(_ID).c.id))).limit(1),
    False: select(true())
    .where(group_memberships.c.child_id == _ID, group_memberships.c.parent_id == _OTHER)
    .limit(1),
}


def is_user_member(conn: Connection, user_id: int, group_id: int, *, nested: bool) -> bool:
    query = _IS_USER_MEMBER[nested]
    return conn.execute(query, {"id": user_id, "other": group_id}).first() is not None


def is_group_member(conn: Connection, child_id: int, parent_id: int, *, nested: bool) -> bool:
    query = _IS_GROUP_MEMBER[nested]
    return conn.execute(query, {"id": child_id, "other": parent_id}).first() is not None


# --- the bulk membership dump ----------------------------------------------------------------


def iter_memberships(conn: Connection) -> Iterator[tuple[str, list[str], list[str]]]:
    """(group name, direct user names, direct child group names) for every group, in group-id
    order. Three ordered streams are merged, so memory holds one group's members at a time."""
    streamed = conn.execution_options(stream_results=True, yield_per=STREAM_BATCH)
    group_rows = streamed.execute(select(groups.c.id, groups.c.name).order_by(groups.c.id))
    user_rows = streamed.execute(
        select(user_memberships.c.group_id, users.c.name)
        .join(users, users.c.id == user_memberships.c.user_id)
        .order_by(user_memberships.c.group_id)
    )
    child = groups.alias("child")
    child_rows = streamed.execute(
        select(group_memberships.c.parent_id, child.c.name)
        .join(child, child.c.id == group_memberships.c.child_id)
        .order_by(group_memberships.c.parent_id)
    )
    next_user = next(user_rows, None)
    next_child = next(child_rows, None)
    for group_id, group_name in group_rows:
        member_names: list[str] = []
        while next_user is not None and next_user[0] <= group_id:
            if next_user[0] == group_id:
                member_names.append(next_user[1])
            next_user = next(user_rows, None)
        child_names: list[str] = []
        while next_child is not None and next_child[0] <= group_id:
            if next_child[0] == group_id:
                child_names.append(next_child[1])
            next_child = next(child_rows, None)
        yield group_name, member_names, child_names

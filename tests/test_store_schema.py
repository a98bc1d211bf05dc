"""The schema's lifecycle on SQLite and PostgreSQL: `dirsync init` upgrades a version 2 store
(memberships in rowid tables on SQLite) to version 3 without losing a row, and a store not yet
upgraded is refused with the command that fixes it."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text, update

from dirsync.model import Group, Snapshot, User
from dirsync.store.db import Store, StoreError
from dirsync.store.tables import group_memberships, schema_info, user_memberships
from dirsync.store.writes import ensure_directory
from dirsync.sync.apply import ApplyCounts
from dirsync.sync.setwise import apply_setwise

# What schema version 2 created on SQLite (sqlite_master of a version 2 store).
V2_SQLITE = [
    "DROP TABLE user_memberships",
    "DROP TABLE group_memberships",
    """CREATE TABLE user_memberships (
        group_id INTEGER NOT NULL,
        user_id INTEGER NOT NULL,
        PRIMARY KEY (group_id, user_id),
        FOREIGN KEY(group_id) REFERENCES groups (id) ON DELETE CASCADE,
        FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE)""",
    """CREATE TABLE group_memberships (
        parent_id INTEGER NOT NULL,
        child_id INTEGER NOT NULL,
        PRIMARY KEY (parent_id, child_id),
        FOREIGN KEY(parent_id) REFERENCES groups (id) ON DELETE CASCADE,
        FOREIGN KEY(child_id) REFERENCES groups (id) ON DELETE CASCADE)""",
    "CREATE INDEX ix_group_memberships_child ON group_memberships (child_id, parent_id)",
    "CREATE INDEX ix_user_memberships_user ON user_memberships (user_id, group_id)",
]


def directory() -> Snapshot:
    people = [User(f"user{i}", external_id=f"u{i}") for i in range(12)]
    teams = [Group(f"team{g}", external_id=f"g{g}") for g in range(4)]
    return Snapshot(users=people, groups=teams,
                    user_memberships={(f"team{i % 4}", f"user{i}") for i in range(12)}
                    | {("team0", "user5")},
                    group_memberships={("team0", "team1"), ("team1", "team0")})


def sync(store: Store) -> ApplyCounts:
    with store.write() as conn:
        return apply_setwise(conn, ensure_directory(conn, "corp", "ldap"), directory(),
                             lambda _losses: None, 1000)


def pairs(store: Store) -> tuple[set, set]:
    with store.read() as conn:
        return (set(conn.execute(select(user_memberships)).all()),
                set(conn.execute(select(group_memberships)).all()))


def make_version_2(store: Store) -> None:
    """Turn a freshly initialised store, rows and all, into what version 2 left behind."""
    with store.write() as conn:
        if store.is_sqlite:
            users_ = conn.execute(select(user_memberships)).all()
            groups_ = conn.execute(select(group_memberships)).all()
            for statement in V2_SQLITE:
                conn.exec_driver_sql(statement)
            conn.execute(user_memberships.insert(), [dict(r._mapping) for r in users_])
            conn.execute(group_memberships.insert(), [dict(r._mapping) for r in groups_])
        conn.execute(update(schema_info).where(schema_info.c.name == "version").values(value="2"))


def without_rowid(store: Store) -> set[str]:
    with store.read() as conn:
        return {name for name, sql in conn.execute(text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'")) if "WITHOUT ROWID" in sql}


def test_init_upgrades_a_version_2_store_keeping_every_membership(store: Store) -> None:
    sync(store)
    before = pairs(store)
    assert len(before[0]) == 13 and len(before[1]) == 2
    make_version_2(store)
    if store.is_sqlite:
        assert without_rowid(store) == set()
    with pytest.raises(StoreError, match="has schema version 2.*run `dirsync init` to upgrade"):
        store.check_schema()
    assert store.init_schema() == "upgraded from schema version 2"
    store.check_schema()
    assert pairs(store) == before
    if store.is_sqlite:
        assert without_rowid(store) == {"user_memberships", "group_memberships"}
        with store.read() as conn:
            indexes = {r[0] for r in conn.execute(text(
                "SELECT name FROM sqlite_master WHERE type = 'index'"))}
        assert {"ix_user_memberships_user", "ix_group_memberships_child"} <= indexes
    assert sync(store) == ApplyCounts()  # the upgraded store is the store it was
    assert store.init_schema() == "up to date"

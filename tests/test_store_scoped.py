"""dirsync.store.scoped: lookups by key for incremental syncs, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from dirsync.dn import dn_key
from dirsync.model import Snapshot, User
from dirsync.store import scoped, writes
from dirsync.sync.setwise import apply_setwise


def directory(store: Any, name: str, count: int) -> tuple[int, list[User]]:
    users = [User(name=f"{name}-u{i}", external_id=f"{name}-{i}", dn=f"uid=u{i},ou={name},dc=x")
             for i in range(count)]
    with store.write() as conn:
        directory_id = writes.ensure_directory(conn, name, "ldap")
        apply_setwise(conn, directory_id, Snapshot(users=users), lambda _losses: None, 10)
    return directory_id, users


def test_many_keys_and_few_keys_find_the_same_rows(store: Any) -> None:
    corp, users = directory(store, "corp", scoped.SCAN_FROM + 300)
    other, _ = directory(store, "other", 50)  # same DNs under another OU: must not leak in
    keys = [dn_key(u.dn or "") for u in users] + ["uid=nobody,ou=corp,dc=x"]
    with store.read() as conn:
        many = scoped.ids_by_key(conn, "user", "dn_key", corp, keys)  # one pass over the rows
        few: dict[str, int] = {}
        for start in range(0, len(keys), 100):  # chunked IN lookups
            few.update(scoped.ids_by_key(conn, "user", "dn_key", corp, keys[start:start + 100]))
        assert many == few and len(many) == len(users)
        assert scoped.ids_by_key(conn, "user", "dn_key", other, keys[:10]) == {}
        by_id = scoped.ids_by_external(conn, "user", corp, [u.external_id for u in users[:3]])
    assert set(by_id) == {"corp-0", "corp-1", "corp-2"}
    assert {many[dn_key(u.dn or "")] for u in users[:3]} == set(by_id.values())


def test_stored_ids_outside_a_present_set_and_their_names(store: Any) -> None:
    corp, users = directory(store, "corp", 30)
    other, _ = directory(store, "other", 5)
    present = {f"corp-{i}" for i in range(30) if i not in (3, 7)} | {"new-in-the-scan"}
    with store.read() as conn:
        outside = scoped.external_ids_outside(conn, "user", corp, present)
        some = scoped.stored_external_ids(conn, "user", corp, [*outside, "gone"])
        ids = scoped.ids_by_external(conn, "user", corp, ["corp-3"])
    assert outside == {"corp-3", "corp-7"}  # not the other directory's, not unknown ids
    assert some == {"corp-3": (ids["corp-3"], "corp-u3"), "corp-7": (some["corp-7"][0], "corp-u7")}

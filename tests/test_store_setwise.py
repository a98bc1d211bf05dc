"""The set-wise full-sync apply on SQLite and PostgreSQL: a re-sync of an unchanged directory
writes and journals nothing, a change writes and journals exactly itself, memberships are
compared group by group whatever order the store lists them in, the mass-deletion guard sees
the change before anything is written, a large first load rebuilds the member index, and the
DN keys the staging computes agree with the parser's."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, inspect, select

from dirsync import events as ev
from dirsync.dn import dn_key
from dirsync.model import Group, Snapshot, User
from dirsync.names import name_key
from dirsync.store import bulk, journal, stage
from dirsync.store.db import Store
from dirsync.store.tables import (
    group_memberships,
    groups,
    user_attributes,
    user_memberships,
    users,
)
from dirsync.store.writes import ensure_directory
from dirsync.sync.apply import ApplyCounts
from dirsync.sync.setwise import Losses, apply_setwise, pair_changes

LIMIT = 1_000


def directory(users_: int = 30, groups_: int = 6) -> Snapshot:
    people = [User(f"user{i}", f"First{i}", f"Last{i}", f"User {i}", f"u{i}@example.com",
                   external_id=f"u-{i:03d}", dn=f"uid=user{i},ou=people,dc=example,dc=com",
                   attributes={"site": (f"s{i % 3}",)} if i % 5 == 0 else {})
              for i in range(users_)]
    teams = [Group(f"team{g}", f"Team {g}", external_id=f"g-{g:03d}",
                   dn=f"cn=team{g},ou=groups,dc=example,dc=com") for g in range(groups_)]
    members = {(name_key(f"team{g}"), name_key(f"user{i}"))
               for g in range(groups_) for i in range(users_) if (i + g) % (g + 2) == 0}
    # team0 > team1 > team2, and team3 listing team0: a cycle is allowed
    nested = {("team0", "team1"), ("team1", "team2"), ("team3", "team0")}
    return Snapshot(users=people, groups=teams, user_memberships=members,
                    group_memberships=nested)


def apply(store: Store, snapshot: Snapshot, guard: Any = None, **kwargs: Any) -> ApplyCounts:
    with store.write() as conn:
        directory_id = ensure_directory(conn, "corp", "ldap")
        return apply_setwise(conn, directory_id, snapshot, guard or (lambda _losses: None),
                             LIMIT, **kwargs)


def contents(store: Store) -> dict[str, Any]:
    with store.read() as conn:
        uname = dict(conn.execute(select(users.c.id, users.c.name)).all())
        gname = dict(conn.execute(select(groups.c.id, groups.c.name)).all())
        return {
            "users": {r.name: (r.external_id, r.first_name, r.last_name, r.display_name,
                               r.email, r.active, r.dn, r.dn_key, r.name_key, r.email_key)
                      for r in conn.execute(select(users))},
            "groups": {r.name: (r.external_id, r.description, r.active, r.dn, r.dn_key)
                       for r in conn.execute(select(groups))},
            "attributes": sorted((uname[o], n, p, v) for o, n, p, v
                                 in conn.execute(select(user_attributes))),
            "members": {(gname[g], uname[u]) for g, u in conn.execute(select(user_memberships))},
            "nested": {(gname[p], gname[c]) for p, c in conn.execute(select(group_memberships))},
        }


def journal_since(store: Store, seq: int) -> list[tuple[str, str, str, str | None]]:
    """(kind, operation, subject name, parent name) of the journal rows after `seq`."""
    with store.read() as conn:
        uname = dict(conn.execute(select(users.c.id, users.c.name)).all())
        gname = dict(conn.execute(select(groups.c.id, groups.c.name)).all())
        rows = journal.rows_after(conn, seq, 10_000)
    out = []
    for r in rows:
        subject = (uname if r.kind in (ev.USER, ev.USER_MEMBERSHIP) else gname).get(
            r.subject_id, r.old_name or f"#{r.subject_id}")
        out.append((r.kind, r.operation, subject, gname.get(r.parent_id) if r.parent_id else None))
    return sorted(out)


def head(store: Store) -> int:
    with store.read() as conn:
        return journal.head(conn)


def expected(snapshot: Snapshot) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    names = {name_key(e.name): e.name for e in [*snapshot.users, *snapshot.groups]}
    return ({(names[g], names[u]) for g, u in snapshot.user_memberships},
            {(names[p], names[c]) for p, c in snapshot.group_memberships})


def test_a_resync_of_an_unchanged_directory_writes_and_journals_nothing(store) -> None:  # type: ignore[no-untyped-def]
    first = apply(store, directory())
    assert (first.users_added, first.groups_added) == (30, 6)
    assert first.memberships_added == len(directory().user_memberships) + 3
    state, seq = contents(store), head(store)
    assert (state["members"], state["nested"]) == expected(directory())
    again = apply(store, directory())
    assert again == ApplyCounts()
    assert contents(store) == state
    assert head(store) == seq, "nothing changed, so nothing may be journalled"


def test_a_change_is_written_and_journalled_exactly(store) -> None:  # type: ignore[no-untyped-def]
    apply(store, directory())
    seq = head(store)
    snap = directory()
    snap.users = [u for u in snap.users if u.name != "user4"]  # gone, with its memberships
    snap.users = [replace(u, email="new@example.com") if u.name == "user7" else u
                  for u in snap.users]
    snap.users = [replace(u, attributes={}) if u.name == "user10" else u for u in snap.users]
    snap.users = [replace(u, name="Renamed12") if u.name == "user12" else u for u in snap.users]
    snap.user_memberships = {(g, "renamed12" if u == "user12" else u)
                             for g, u in snap.user_memberships}  # the same pairs, by id
    snap.users.append(User("user99", external_id="u-099", dn="uid=user99,ou=people,dc=example,dc=com"))
    held_by_team5 = {u for g, u in snap.user_memberships if g == "team5"}
    snap.user_memberships = {(g, u) for g, u in snap.user_memberships
                             if u != "user4" and g != "team5" and (g, u) != ("team0", "user0")}
    snap.user_memberships |= {("team1", "user99"), ("team2", "user1")}
    snap.group_memberships = {("team0", "team1"), ("team1", "team2"), ("team4", "team3")}
    counts = apply(store, snap)
    state = contents(store)
    assert (state["members"], state["nested"]) == expected(snap)
    assert state["users"]["user7"][4] == "new@example.com"
    assert not [a for a in state["attributes"] if a[0] == "user10"]
    removed_members = ({("team0", "user0")} | {("team5", u) for u in held_by_team5}
                       | {(g, "user4") for g, u in directory().user_memberships if u == "user4"})
    assert counts.users_added == 1 and counts.users_updated == 3 and counts.users_removed == 1
    assert counts.memberships_added == 3
    # user4's memberships go with it (ON DELETE CASCADE): not counted, and not journalled,
    # since the feed announces the user's deletion
    cascaded = {(g, "user4") for g, u in directory().user_memberships if u == "user4"}
    assert counts.memberships_removed == len(removed_members - cascaded) + 1
    rows = journal_since(store, seq)
    assert rows == sorted(
        [(ev.USER, ev.DELETED, "user4", None), (ev.USER, ev.UPDATED, "user7", None),
         (ev.USER, ev.UPDATED, "user10", None), (ev.USER, ev.UPDATED, "Renamed12", None),
         (ev.USER, ev.CREATED, "user99", None),
         (ev.USER_MEMBERSHIP, ev.CREATED, "user99", "team1"),
         (ev.USER_MEMBERSHIP, ev.CREATED, "user1", "team2"),
         (ev.GROUP_MEMBERSHIP, ev.CREATED, "team3", "team4"),
         (ev.GROUP_MEMBERSHIP, ev.DELETED, "team0", "team3")]
        + [(ev.USER_MEMBERSHIP, ev.DELETED, u, g) for g, u in removed_members - cascaded])


def test_a_change_over_the_journal_limit_is_one_reset_row(store) -> None:  # type: ignore[no-untyped-def]
    apply(store, directory())
    seq = head(store)
    snap = directory(users_=60, groups_=10)
    with store.write() as conn:
        counts = apply_setwise(conn, ensure_directory(conn, "corp", "ldap"), snap,
                               lambda _losses: None, 20)
    assert counts.users_added == 30
    assert [(r.kind, r.subject_id) for r in journal_rows(store, seq)] == [
        (journal.RESET, counts.users_added + counts.groups_added + counts.memberships_added
         + counts.memberships_removed)]


def journal_rows(store: Store, seq: int) -> list[Any]:
    with store.read() as conn:
        return journal.rows_after(conn, seq, 10_000)


def test_the_guard_sees_the_change_before_anything_is_written(store) -> None:  # type: ignore[no-untyped-def]
    class Refused(Exception):
        pass

    seen: list[Losses] = []

    def refuse(losses: Losses) -> None:
        seen.append(losses)
        raise Refused

    with pytest.raises(Refused):
        apply(store, directory(), refuse)  # a first load, written without staging
    assert contents(store)["users"] == {} and head(store) == 0
    apply(store, directory())
    state, seq = contents(store), head(store)
    smaller = directory(users_=10, groups_=6)
    smaller.users = [replace(u, active=False) if u.name == "user1" else u for u in smaller.users]
    with pytest.raises(Refused):
        apply(store, smaller, refuse)
    assert seen[-1] == Losses(users_lost=21, users_total=30, groups_lost=0, groups_total=6)
    assert contents(store) == state and head(store) == seq


def test_release_empties_the_snapshot_and_writes_the_same(store) -> None:  # type: ignore[no-untyped-def]
    snap = directory()
    apply(store, snap, release=True)
    assert (snap.users, snap.groups, snap.user_memberships, snap.group_memberships) == \
        ([], [], set(), set())
    state = contents(store)
    assert (state["members"], state["nested"]) == expected(directory())
    assert apply(store, directory()) == ApplyCounts()


def test_a_large_first_load_rebuilds_the_indexes(store, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(bulk, "REBUILD_INDEXES_FROM", 10)

    def indexes() -> set[str]:
        with store.read() as conn:
            return {i["name"] for table in ("users", "groups", "user_memberships")
                    for i in inspect(conn).get_indexes(table)}

    plain = {"ix_users_email_key", "ix_users_dn_key", "ix_groups_dn_key",
             "ix_user_memberships_user"}
    assert plain <= indexes()
    with pytest.raises(RuntimeError), store.write() as conn:
        apply_setwise(conn, ensure_directory(conn, "corp", "ldap"), directory(),
                      lambda _losses: None, LIMIT)
        raise RuntimeError("fails after the load: all of it rolls back")
    assert plain <= indexes()
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(user_memberships)).scalar() == 0
    apply(store, directory())
    assert plain <= indexes()
    assert contents(store)["members"] == expected(directory())[0]
    with store.read() as conn:  # and they answer: a lookup by member uses its index
        plan = " ".join(str(r) for r in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT group_id FROM user_memberships WHERE user_id = 1")) \
            if store.is_sqlite else "ix_user_memberships_user"
    assert "ix_user_memberships_user" in plan


# --- pure parts ----------------------------------------------------------------------------------

IDS = {"a": 1, "b": 2, "c": 3, "d": 10, "e": 11}


@pytest.mark.parametrize(("read", "stored", "added", "removed"), [
    ({"g": ["a", "b"]}, {}, [(100, [1, 2])], []),  # first load
    ({"g": ["b", "a"]}, {100: "1,2"}, [], []),  # unchanged
    ({"g": ["b", "a"]}, {100: "2,1"}, [], []),  # unchanged, the store listing out of order
    ({"g": ["e", "d", "a"]}, {100: "11,1,10"}, [], []),
    ({"g": ["a", "c"]}, {100: "2,1"}, [(100, [3])], [(100, 2)]),
    ({"g": ["a"]}, {100: "1", 200: "2,3"}, [], [(200, 2), (200, 3)]),  # h lost every member
    ({"g": ["d"], "h": ["a"]}, {200: "1"}, [(100, [10])], []),
    ({}, {100: "1,10"}, [], [(100, 1), (100, 10)]),
])
def test_pair_changes(read: dict[str, list[str]], stored: dict[int, str],
                      added: list[tuple[int, list[int]]], removed: list[tuple[int, int]]) -> None:
    changes = pair_changes(read, {"g": 100, "h": 200}, IDS, dict(stored))
    assert (changes.added, changes.removed) == (added, removed)
    assert changes.added_count == sum(len(m) for _, m in added)


def test_a_journal_batch_over_its_limit_only_counts() -> None:
    batch = journal.Batch(limit=3)
    batch.entity(ev.USER, ev.CREATED, [(1, None, ()), (2, None, ())])
    assert batch.keeps(1) and not batch.keeps(2)
    batch.pair(ev.USER_MEMBERSHIP, ev.CREATED, [(1, 10), (2, 10)])
    assert len(batch) == 4 and (batch.entities, batch.pairs) == ([], [])  # thrown away
    batch.count(5)
    batch.entity(ev.USER, ev.DELETED, [(3, "x", ())])
    assert len(batch) == 10
    with pytest.raises(RuntimeError):
        batch.write(None, limit=100)  # type: ignore[arg-type]  # would lose the rows


DN_CHARS = st.sampled_from(list("abcXYZé ß=,+\\\"#;<>0123456789._@-") + ["Ω", "İ"])


@settings(max_examples=2000, deadline=None)
@given(st.one_of(
    st.text(DN_CHARS, max_size=40),
    st.lists(st.tuples(st.sampled_from(["uid", "CN", "ou", "dc", "x-Attr"]),
                       st.text(st.sampled_from(list("abcXYZ09 ._@-é")), min_size=1, max_size=8)),
             min_size=1, max_size=4).map(lambda rdns: ",".join(f"{k}={v}" for k, v in rdns)),
))
def test_staged_dn_keys_agree_with_the_parser(text: str) -> None:
    try:
        want = dn_key(text) if text else None
    except ValueError:
        with pytest.raises(ValueError):
            stage._dn_key(text)
        return
    assert stage._dn_key(text) == want


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # PostgreSQL keeps its own
def test_sqlite_joins_start_from_the_few_staged_rows(store) -> None:  # type: ignore[no-untyped-def]
    """With planner statistics, a join of a few staged users to a directory of thousands
    starts from the staging table (SQLite guessed the opposite without them)."""
    big = directory(users_=3000, groups_=4)
    apply(store, big)
    with store.write() as conn:
        directory_id = ensure_directory(conn, "corp", "ldap")
        stage.create(conn)
        stage.stage_users_rows(conn, big.users[:20])
        stage.plan_joins(conn, stage.USERS)
        t, s = stage.USERS.table, stage.USERS.stage
        query = (select(func.count()).select_from(t).join(s, t.c.external_id == s.c.external_id)
                 .where(t.c.directory_id == directory_id, t.c.active, ~s.c.active))
        sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
        stage.drop(conn)
    assert plan[0].startswith("SCAN stage_users"), plan

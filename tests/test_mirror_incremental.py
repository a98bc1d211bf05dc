"""Incremental syncs into the store equal full syncs: random batches of changes on a real
slapd (adds, deletes, renames, moves in and out of scope, edits, locks, membership and
nesting changes with cycles, containers moved), after each batch one store is synced
incrementally and another from scratch, and their contents must be the same.

The batches come from the LDAP layer's own equivalence test (tests/test_ldap_changes.py),
which checks the incremental *read*; this one checks the read applied to the store, journal
and all, through `sync_directory` as the scheduler runs it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from test_ldap_changes import Changer, tree_config

from dirsync.store.db import Store
from dirsync.store.tables import group_attributes, group_memberships, groups, user_attributes, user_memberships, users
from dirsync.sync.mirror import sync_directory

SEEDS = [int(s) for s in os.environ.get("DIRSYNC_MIRROR_SEEDS", "11,12").split(",")]
ROUNDS = int(os.environ.get("DIRSYNC_MIRROR_ROUNDS", "5"))
BATCH = int(os.environ.get("DIRSYNC_MIRROR_BATCH", "12"))


def contents(store: Store) -> dict[str, Any]:
    """Everything a sync writes, keyed by external id (store ids differ between stores)."""
    with store.read() as conn:
        uid = {r.id: r.external_id for r in conn.execute(select(users.c.id, users.c.external_id))}
        gid = {r.id: r.external_id for r in conn.execute(select(groups.c.id, groups.c.external_id))}
        user_rows = {r.external_id: (r.name, r.first_name, r.last_name, r.display_name, r.email,
                                     r.active, r.dn) for r in conn.execute(select(users))}
        group_rows = {r.external_id: (r.name, r.description, r.active, r.dn)
                      for r in conn.execute(select(groups))}
        user_attrs = sorted((uid[o], n, p, v) for o, n, p, v in conn.execute(select(user_attributes)))
        group_attrs = sorted((gid[o], n, p, v) for o, n, p, v in conn.execute(select(group_attributes)))
        members = {(gid[g], uid[u]) for g, u in conn.execute(select(user_memberships))}
        nested = {(gid[p], gid[c]) for p, c in conn.execute(select(group_memberships))}
    return {"users": user_rows, "groups": group_rows, "user_attributes": user_attrs,
            "group_attributes": group_attrs, "members": members, "nested": nested}


def assert_like_a_full_sync(store: Store, config: Any, path: Path, context: str) -> None:
    """`store` holds what a full sync into a new store at `path` gives."""
    fresh = Store(f"sqlite:///{path}")
    fresh.init_schema()
    try:
        assert sync_directory(fresh, config, full=True).status == "ok"
        assert contents(store) == contents(fresh), context
    finally:
        fresh.dispose()


@pytest.mark.parametrize("settle", [0.2, None], ids=["short-settle", "default-settle"])
@pytest.mark.parametrize("seed", SEEDS)
def test_incremental_syncs_equal_full_syncs(seed: int, settle: float | None, store: Store,
                                             ldap_tree: Any, directory_config: Any,
                                             tmp_path: Path) -> None:
    # A short settle window makes each round read only what changed since the last one, so
    # unchanged groups listing changed entries (listed_by) are exercised; the default one
    # reads the last minute again every round, as in production.
    extra = {} if settle is None else {"settle_seconds": settle}
    changer = Changer(ldap_tree, seed)
    config = tree_config(directory_config, ldap_tree, full_sync_every=1000)
    changer.populate(users=15, groups=10)
    first = sync_directory(store, config, **extra)
    assert first.status == "ok" and first.mode == "full", first.summary()
    modes = []
    for round_number in range(ROUNDS):
        done = changer.batch(BATCH)
        result = sync_directory(store, config, allow_mass_delete=True, **extra)
        assert result.status == "ok", result.summary()
        modes.append(result.mode)
        assert_like_a_full_sync(store, config, tmp_path / f"fresh-{round_number}.db",
                                f"seed {seed}, round {round_number}: {done}")
    assert modes.count("incremental") >= ROUNDS - 1, modes


@pytest.mark.parametrize("membership", ["memberUid", "uniqueMember", "member"])
def test_member_lists_values_and_renames_of_each_membership_type(
        membership: str, store: Store, ldap_tree: Any, directory_config: Any,
        tmp_path: Path) -> None:
    tree, server = ldap_tree, ldap_tree.server
    config = directory_config(user_base_dn=tree.people, group_base_dn=tree.groups,
                              membership=membership, settle_seconds=0, full_sync_every=1000)
    people = {uid: tree.add_user(uid) for uid in ("ann", "ben", "cat", "dan", "eve")}
    attribute, kind = {"memberUid": ("memberUid", "posixGroup"),
                       "uniqueMember": ("uniqueMember", "groupOfUniqueNames"),
                       "member": ("member", "groupOfNames")}[membership]

    def value(uid: str) -> str:
        return uid.upper() if membership == "memberUid" else people[uid]

    extra = "gidNumber: 5000\n" if membership == "memberUid" else ""
    groups = {}
    for cn, members in (("all", ["ann", "ben", "cat"]), ("few", ["ann", "dan"])):
        groups[cn] = f"cn={cn},{tree.groups}"
        server.load_ldif(f"dn: {groups[cn]}\nobjectClass: {kind}\ncn: {cn}\n{extra}"
                         + "".join(f"{attribute}: {value(m)}\n" for m in members))
    if membership != "memberUid":  # nesting
        server.modify(f"dn: {groups['all']}\nchangetype: modify\nadd: {attribute}\n"
                      f"{attribute}: {groups['few']}\n")
    assert sync_directory(store, config).mode == "full"

    def check(what: str) -> None:
        result = sync_directory(store, config)
        assert result.status == "ok" and result.mode == "incremental", result.summary()
        assert_like_a_full_sync(store, config, tmp_path / f"fresh-{what}.db", what)

    # Single values added and removed: logged values (member, uniqueMember, memberUid).
    server.modify(f"dn: {groups['all']}\nchangetype: modify\nadd: {attribute}\n"
                  f"{attribute}: {value('eve')}\n-\ndelete: {attribute}\n"
                  f"{attribute}: {value('ben')}\n")
    check("values")
    # A replaced list is read whole and compared with what the store holds.
    server.modify(f"dn: {groups['few']}\nchangetype: modify\nreplace: {attribute}\n"
                  f"{attribute}: {value('cat')}\n{attribute}: {value('eve')}\n")
    check("replaced")
    # A renamed member: its groups are looked up (memberUid values keep naming "cat").
    server.modrdn(people["cat"], "uid=cat2")
    people["cat2"] = people.pop("cat").replace("uid=cat,", "uid=cat2,")
    time.sleep(0.1)  # refint's background task
    check("renamed")

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
        fresh = Store(f"sqlite:///{tmp_path}/fresh-{round_number}.db")
        fresh.init_schema()
        try:
            assert sync_directory(fresh, config, full=True).status == "ok"
            assert contents(store) == contents(fresh), f"seed {seed}, round {round_number}: {done}"
        finally:
            fresh.dispose()
    assert modes.count("incremental") >= ROUNDS - 1, modes

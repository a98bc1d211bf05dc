"""Entity diff: what a directory's snapshot changes against the store's copy. Pure.

Entities are matched by external id when the source gives one (so a renamed LDAP entry stays the
same user), otherwise by name key. A matched entity whose fields differ is an update; unmatched
stored entities are removals; unmatched snapshot entities are additions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

from dirsync.model import E, EntityChanges, User
from dirsync.names import name_key
from dirsync.passwords import same_user_password

def _same(stored: E, wanted: E) -> bool:
    if isinstance(stored, User):
        assert isinstance(wanted, User)
        if wanted.password is None:
            if stored.password is not None:
                return False
        elif not same_user_password(wanted.password, stored.password):
            return False
        return replace(stored, password=None) == replace(wanted, password=None)
    return stored == wanted


def diff_entities(stored: Mapping[int, E], wanted: Sequence[E]) -> EntityChanges[E]:
    """`stored` maps store ids to entities as stored (User.password = the stored hash)."""
    by_external = {e.external_id: i for i, e in stored.items() if e.external_id is not None}
    by_name = {name_key(e.name): i for i, e in stored.items()}
    changes: EntityChanges[E] = EntityChanges()
    matched: set[int] = set()
    for entity in wanted:
        store_id = (
            by_external.get(entity.external_id)
            if entity.external_id is not None
            else by_name.get(name_key(entity.name))
        )
        if store_id is None or store_id in matched:
            changes.added.append(entity)
            continue
        matched.add(store_id)
        current = stored[store_id]
        # A source without ids keeps the id we generated when the entity was first seen.
        entity = replace(entity, external_id=current.external_id)
        if not _same(current, entity):
            changes.updated.append((store_id, entity))
    changes.removed = [i for i in stored if i not in matched]
    return changes

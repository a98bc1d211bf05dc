"""WHERE clauses for Crowd search restrictions over the `users` and `groups` tables.

Owns: `user_condition` and `group_condition`, which turn a `dirsync.search.Restriction` into a
SQLAlchemy Core boolean expression, and the rules for what each property may be matched with.
Must not: run queries, page, sort or parse requests; callers put the condition into their own
`select(users).where(...)`.

Semantics, the same on SQLite and PostgreSQL:
* Text properties compare case-insensitively for all of Unicode: the value is folded with
  `names.name_key` and compared with the casefolded `*_key` column. LIKE is safe on both
  databases because both sides are already folded (SQLite's LIKE folds ASCII, PostgreSQL's
  folds nothing), and values are escaped with `names.like_escape`.
* LESS_THAN and friends on text compare code points (COLLATE "C" on PostgreSQL, whose default
  collation may follow a locale; SQLite's BINARY already does).
* A NULL match on text means "NULL or empty": `name` is never empty, so the "Test settings"
  probe (`name` NULL) matches nothing and the search answers an empty list.
* Dates compare in UTC with millisecond precision, Crowd's: `createdDate = 2013-01-30T16:38:27.369
  +1100` matches every stored time within that millisecond.
* Wrong types and match modes for known properties raise `IllegalArgument`.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    String,
    Table,
    and_,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from dirsync.errors import IllegalArgument
from dirsync.names import LIKE_ESCAPE, like_escape, name_key
from dirsync.search import (
    GROUP_PROPERTIES,
    USER_PROPERTIES,
    BooleanRestriction,
    MatchMode,
    NullRestriction,
    PropertyRestriction,
    PropertyType,
    Restriction,
)
from dirsync.store.tables import group_attributes, groups, user_attributes, users

__all__ = ["group_condition", "user_condition"]

Condition = ColumnElement[bool]

_ORDERING: Mapping[MatchMode, Callable[[Any, Any], Condition]] = {
    MatchMode.LESS_THAN: operator.lt,
    MatchMode.LESS_THAN_OR_EQUAL: operator.le,
    MatchMode.GREATER_THAN: operator.gt,
    MatchMode.GREATER_THAN_OR_EQUAL: operator.ge,
}
_WILDCARDS = (MatchMode.STARTS_WITH, MatchMode.ENDS_WITH, MatchMode.CONTAINS)
# Crowd keeps java.util.Date, so equality means "the same millisecond".
_MILLISECOND = dt.timedelta(milliseconds=1)
_MICROSECOND = dt.timedelta(microseconds=1)


class _CodePointOrder(FunctionElement[str]):
    """Its argument, compared by code point on every database."""

    type = String()
    name = "code_point_order"
    inherit_cache = True


@compiles(_CodePointOrder)
def _codepoint_order_default(element: _CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite's default collation, BINARY, compares UTF-8 bytes, which is code point order.
    return compiler.process(element.clauses, **kw)


@compiles(_CodePointOrder, "postgresql")
def _codepoint_order_postgresql(
    element: _CodePointOrder, compiler: SQLCompiler, **kw: Any
) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


@dataclass(frozen=True)
class _Target:
    noun: str
    table: Table
    properties: Mapping[str, PropertyType]
    # known text properties -> their casefolded key column
    keys: Mapping[str, Column[str]]
    attributes: Table
    attribute_owner: Column[int]


_USERS = _Target(
    noun="user",
    table=users,
    properties=USER_PROPERTIES,
    keys={
        "name": users.c.name_key,
        "email": users.c.email_key,
        "firstName": users.c.first_name_key,
        "lastName": users.c.last_name_key,
        "displayName": users.c.display_name_key,
    },
    attributes=user_attributes,
    attribute_owner=user_attributes.c.user_id,
)
_GROUPS = _Target(
    noun="group",
    table=groups,
    properties=GROUP_PROPERTIES,
    keys={"name": groups.c.name_key, "description": groups.c.description_key},
    attributes=group_attributes,
    attribute_owner=group_attributes.c.group_id,
)


def user_condition(restriction: Restriction) -> Condition:
    """A condition on `users` rows that holds for the users `restriction` matches."""
    return _condition(restriction, _USERS)


def group_condition(restriction: Restriction) -> Condition:
    """A condition on `groups` rows that holds for the groups `restriction` matches."""
    return _condition(restriction, _GROUPS)


def _condition(restriction: Restriction, target: _Target) -> Condition:
    if isinstance(restriction, NullRestriction):
        return true()
    if isinstance(restriction, BooleanRestriction):
        parts = [_condition(member, target) for member in restriction.restrictions]
        if restriction.logic == "AND":
            return and_(*parts) if parts else true()
        if restriction.logic == "OR":
            return or_(*parts) if parts else false()
        raise IllegalArgument(f"unknown boolean-logic {restriction.logic!r}; expected AND or OR")
    if isinstance(restriction, PropertyRestriction):
        return _property(restriction, target)
    raise TypeError(f"not a search restriction: {restriction!r}")


def _property(r: PropertyRestriction, target: _Target) -> Condition:
    expected = target.properties.get(r.name)
    if expected is None:
        if r.type != PropertyType.STRING:
            raise IllegalArgument(
                f"'{r.name}' is not a {target.noun} property, so it is searched as a custom "
                f"attribute, which is STRING, not {r.type}"
            )
        return _attribute(r, target)
    if r.type != expected:
        raise IllegalArgument(f"the {target.noun} property '{r.name}' is {expected}, not {r.type}")
    if r.name in target.keys:
        return _folded_text(r, target.keys[r.name])
    if r.name == "externalId":
        return _exact_text(r, target.table.c.external_id)
    if r.name == "active":
        return _boolean(r, target.table.c.active)
    if r.name == "local":
        # dirsync mirrors remote directories: none of its groups is local to the client.
        return _boolean(r, None)
    if r.name == "createdDate":
        return _date(r, target.table.c.created_at)
    if r.name == "updatedDate":
        return _date(r, target.table.c.updated_at)
    raise AssertionError(f"{target.noun} property {r.name} has no column")  # pragma: no cover


def _text_value(r: PropertyRestriction) -> str:
    if not isinstance(r.value, str):
        raise IllegalArgument(f"'{r.name}' needs a text value, not {r.value!r}")
    return r.value


def _pattern(mode: MatchMode, value: str) -> str:
    escaped = like_escape(value)
    return {
        MatchMode.STARTS_WITH: f"{escaped}%",
        MatchMode.ENDS_WITH: f"%{escaped}",
        MatchMode.CONTAINS: f"%{escaped}%",
    }[mode]


def _folded_text(r: PropertyRestriction, key: Column[str]) -> Condition:
    if r.match_mode == MatchMode.NULL:
        return or_(key.is_(None), key == "")
    value = name_key(_text_value(r))
    if r.match_mode == MatchMode.EXACTLY_MATCHES:
        return key == value
    if r.match_mode in _WILDCARDS:
        return key.like(_pattern(r.match_mode, value), escape=LIKE_ESCAPE)
    return _ORDERING[r.match_mode](_CodePointOrder(key), value)


def _exact_text(r: PropertyRestriction, column: Column[str]) -> Condition:
    """Case-sensitive text (external ids): no LIKE, which folds ASCII on SQLite only."""
    if r.match_mode == MatchMode.NULL:
        return or_(column.is_(None), column == "")
    value = _text_value(r)
    n = len(value)
    if r.match_mode == MatchMode.EXACTLY_MATCHES:
        return column == value
    if r.match_mode in _WILDCARDS and n == 0:
        return column.is_not(None)
    if r.match_mode == MatchMode.STARTS_WITH:
        return func.substr(column, 1, n) == value
    if r.match_mode == MatchMode.ENDS_WITH:
        # A start below 1 (value longer than the column) yields a shorter string on both
        # databases, so it cannot compare equal.
        return func.substr(column, func.length(column) - (n - 1)) == value
    if r.match_mode == MatchMode.CONTAINS:
        # Portable substring test: SQLite has instr(), PostgreSQL strpos(), both have replace().
        return func.replace(column, value, "") != column
    return _ORDERING[r.match_mode](_CodePointOrder(column), value)


def _attribute(r: PropertyRestriction, target: _Target) -> Condition:
    attrs = target.attributes
    owned = select(attrs.c.name).where(
        target.attribute_owner == target.table.c.id, attrs.c.name == r.name
    )
    if r.match_mode == MatchMode.NULL:
        return ~exists(owned.where(attrs.c.value != ""))
    # Attribute values have no folded key column, so both sides go through the database's
    # lower(): full Unicode on PostgreSQL, ASCII only on SQLite ("É" and "é" differ there).
    # Folding both sides in SQL at least keeps the two sides consistent on each database.
    stored = func.lower(attrs.c.value)
    value = _text_value(r)
    if r.match_mode == MatchMode.EXACTLY_MATCHES:
        matches = stored == _lower(value)
    elif r.match_mode in _WILDCARDS:
        matches = stored.like(_lower(_pattern(r.match_mode, value)), escape=LIKE_ESCAPE)
    else:
        matches = _ORDERING[r.match_mode](_CodePointOrder(stored), _lower(value))
    return exists(owned.where(matches))


def _lower(value: str) -> ColumnElement[str]:
    return func.lower(literal(value, String()))


def _boolean(r: PropertyRestriction, column: Column[bool] | None) -> Condition:
    """`column` None: a property no row has set (`local`); it is false everywhere."""
    if r.match_mode == MatchMode.NULL:
        return false() if column is None else column.is_(None)
    if r.match_mode != MatchMode.EXACTLY_MATCHES:
        raise IllegalArgument(
            f"match-mode {r.match_mode} does not apply to the BOOLEAN property '{r.name}'; "
            "use EXACTLY_MATCHES"
        )
    if not isinstance(r.value, bool):
        raise IllegalArgument(f"'{r.name}' needs true or false, not {r.value!r}")
    if column is None:
        return false() if r.value else true()
    return column.is_(true()) if r.value else column.is_(false())


def _date(r: PropertyRestriction, column: Column[dt.datetime]) -> Condition:
    if r.match_mode == MatchMode.NULL:
        return column.is_(None)
    if r.match_mode in _WILDCARDS:
        raise IllegalArgument(
            f"match-mode {r.match_mode} does not apply to the DATE property '{r.name}'; use "
            "EXACTLY_MATCHES, LESS_THAN, LESS_THAN_OR_EQUAL, GREATER_THAN or GREATER_THAN_OR_EQUAL"
        )
    if not isinstance(r.value, dt.datetime):
        raise IllegalArgument(f"'{r.name}' needs a date, not {r.value!r}")
    value = r.value if r.value.tzinfo is not None else r.value.replace(tzinfo=dt.timezone.utc)
    try:
        # We store UTC. SQLite's DateTime drops the offset of whatever it is given, so the
        # value must be in UTC before it is bound; PostgreSQL would compare either way.
        start = value.astimezone(dt.timezone.utc)
    except OverflowError:
        raise IllegalArgument(f"'{r.name}': {r.value.isoformat()} is out of range") from None
    # The stored time T "equals" the value when T falls in [start, end): the whole millisecond
    # for a millisecond value (Crowd's precision), else the exact microsecond.
    step = _MILLISECOND if start.microsecond % 1000 == 0 else _MICROSECOND
    end: dt.datetime | None
    try:
        end = start + step
    except OverflowError:
        end = None  # the value is the last representable instant; nothing lies beyond it
    before_end = column < end if end is not None else true()
    if r.match_mode == MatchMode.EXACTLY_MATCHES:
        return and_(column >= start, before_end)
    if r.match_mode == MatchMode.LESS_THAN:
        return column < start
    if r.match_mode == MatchMode.LESS_THAN_OR_EQUAL:
        return before_end
    if r.match_mode == MatchMode.GREATER_THAN:
        return column >= end if end is not None else false()
    return column >= start  # GREATER_THAN_OR_EQUAL

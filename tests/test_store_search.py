"""dirsync.store.search: restrictions run as SQL against real stores (SQLite and PostgreSQL,
the shared `postgres_server`), seeded with users and groups full of edge cases."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Connection, insert, select

from dirsync.errors import IllegalArgument
from dirsync.names import name_key
from dirsync.search import (
    BooleanRestriction,
    MatchMode,
    PropertyRestriction,
    PropertyType,
    Restriction,
    parse_cql,
    parse_xml,
)
from dirsync.store.db import Store
from dirsync.store.search import group_condition, user_condition
from dirsync.store.tables import (
    directories,
    group_attributes,
    groups,
    user_attributes,
    users,
)

if TYPE_CHECKING:
    from servers import PostgresServer

UTC = dt.timezone.utc
M = MatchMode


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(UTC)


# name, first, last, display, email, active, external id, created, attributes
USERS: list[tuple[str, str, str, str, str, bool, str, str, dict[str, list[str]]]] = [
    ("alice", "Alice", "Smith", "Alice Smith", "alice@example.net", True, "uuid-aaa",
     "2013-01-01T00:00:00+00:00", {"department": ["Engineering"]}),
    ("ÉMILE", "Émile", "Zola", "Émile Zola", "Emile@Example.NET", True, "uuid-bbb",
     "2014-06-01T12:00:00.369512+00:00", {"department": ["Writing"], "city": ["Paris"]}),
    ("strasse", "Hans", "Straße", "Hans Straße", "hans@example.de", True, "UUID-ccc",
     "2015-01-01T00:00:00+00:00", {}),
    # LIKE metacharacters, each with a decoy below that an unescaped pattern would also match
    ("a%b_c", "Per%cent", "Under_score", "Back\\slash", "pct@example.net", True, "x%y",
     "2015-06-01T00:00:00+00:00", {"quota": ["50%"]}),
    ("axxbyc", "Perxxcent", "Underxscore", "Backslash", "", False, "",
     "2016-01-01T00:00:00+00:00", {"quota": ["500"]}),
    ("bob", "Bob", "", "", "", False, "uuid-ddd",
     "2016-06-01T00:00:00+00:00", {"department": ["engineering", "Support"]}),
]
ALL_USERS = sorted(user[0] for user in USERS)

# name, description, active, external id, created, attributes
GROUPS: list[tuple[str, str, bool, str, str, dict[str, list[str]]]] = [
    ("Admins", "Administrators of the ÉCOLE", True, "g1", "2013-01-01T00:00:00+00:00",
     {"colour": ["Blue"]}),
    ("developers", "", True, "g2", "2014-01-01T00:00:00+00:00", {}),
    ("old-staff", "Former STAFF", False, "g3", "2015-01-01T00:00:00+00:00", {}),
]
ALL_GROUPS = sorted(group[0] for group in GROUPS)


def seed(conn: Connection) -> None:
    now = dt.datetime(2020, 1, 1, tzinfo=UTC)
    directory_id = conn.execute(
        insert(directories).values(name="fixtures", kind="fixtures", created_at=now)
    ).inserted_primary_key[0]
    for name, first, last, display, email, active, ext, created, attrs in USERS:
        user_id = conn.execute(
            insert(users).values(
                directory_id=directory_id, external_id=ext, name=name, name_key=name_key(name),
                first_name=first, last_name=last, display_name=display, email=email,
                first_name_key=name_key(first), last_name_key=name_key(last),
                display_name_key=name_key(display), email_key=name_key(email),
                active=active, created_at=at(created),
                updated_at=now if name == "alice" else at(created),
            )
        ).inserted_primary_key[0]
        for attr, values in attrs.items():
            for position, value in enumerate(values):
                conn.execute(
                    insert(user_attributes).values(
                        user_id=user_id, name=attr, position=position, value=value
                    )
                )
    for name, description, active, ext, created, attrs in GROUPS:
        group_id = conn.execute(
            insert(groups).values(
                directory_id=directory_id, external_id=ext, name=name, name_key=name_key(name),
                description=description, description_key=name_key(description),
                active=active, created_at=at(created), updated_at=at(created),
            )
        ).inserted_primary_key[0]
        for attr, values in attrs.items():
            for position, value in enumerate(values):
                conn.execute(
                    insert(group_attributes).values(
                        group_id=group_id, name=attr, position=position, value=value
                    )
                )


# --- stores ----------------------------------------------------------------------------------


def _create_postgres_database(server: PostgresServer) -> str:
    """A new database named s_<uuid>; linguistic (ICU en-US) where the server supports it."""
    name = f"s_{uuid.uuid4().hex}"
    try:
        with server.connect() as conn:
            # ICU en-US sorts "é" next to "e", unlike the cluster's C locale: ordered
            # comparisons must not depend on the database's collation.
            conn.execute(
                sql.SQL(
                    "CREATE DATABASE {} TEMPLATE template0 LOCALE 'C.UTF-8' "
                    "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
                ).format(sql.Identifier(name))
            )
    except psycopg.Error:  # a PostgreSQL before 15, or built without ICU
        return server.create_database(name).rsplit("/", 1)[1]
    return name


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def search_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Store]:
    """A store seeded with USERS and GROUPS, on SQLite and on PostgreSQL.

    The tests here only read, so one seeded store per module and backend serves them all.
    """
    server: PostgresServer | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'store.db'}"
    else:
        # Looked up lazily so a sqlite-only selection never starts PostgreSQL.
        server = request.getfixturevalue("postgres_server")
        server.ensure_running()
        database = _create_postgres_database(server)
        url = server.url(database)
    store = Store(url)
    try:
        store.init_schema()
        with store.write() as conn:
            seed(conn)
        yield store
    finally:
        store.dispose()
        if server is not None:
            server.ensure_running()
            server.drop_database(database)


def user_names(store: Store, restriction: Restriction) -> list[str]:
    with store.read() as conn:
        rows = conn.execute(select(users.c.name).where(user_condition(restriction)))
        return sorted(rows.scalars())


def group_names(store: Store, restriction: Restriction) -> list[str]:
    with store.read() as conn:
        rows = conn.execute(select(groups.c.name).where(group_condition(restriction)))
        return sorted(rows.scalars())


def prop(
    name: str, mode: MatchMode, value: object = None, ptype: PropertyType = PropertyType.STRING
) -> PropertyRestriction:
    return PropertyRestriction(name, ptype, mode, value)  # type: ignore[arg-type]


# --- users -----------------------------------------------------------------------------------

USER_CQL: list[tuple[str, Sequence[str]]] = [
    ("", ALL_USERS),
    ("name = alice", ["alice"]),
    ("name = ALICE", ["alice"]),
    # non-ASCII case-insensitivity, through casefold and NFC
    ("name = émile", ["ÉMILE"]),
    ("name = e\u0301mile", ["ÉMILE"]),
    ("name = *MIL*", ["ÉMILE"]),
    ("lastName = STRASSE", ["strasse"]),
    ("lastName = straße", ["strasse"]),
    ("displayName = *SSE", ["strasse"]),
    ("email = emile@example.net", ["ÉMILE"]),
    ("displayName = *ZOLA", ["ÉMILE"]),
    # LIKE metacharacters are literal
    ("firstName = per%cent", ["a%b_c"]),
    ("firstName = *%*", ["a%b_c"]),
    ("lastName = *_*", ["a%b_c"]),
    ("name = a%b_*", ["a%b_c"]),
    (r"displayName = *k\s*", ["a%b_c"]),
    (r'displayName = "back\\slash"', ["a%b_c"]),
    ("name = *_c", ["a%b_c"]),
    # code point order on the folded keys
    ("name < b", ["a%b_c", "alice", "axxbyc"]),
    ("name <= bob", ["a%b_c", "alice", "axxbyc", "bob"]),
    ("name > strasse", ["ÉMILE"]),
    ("name >= strasse", ["strasse", "ÉMILE"]),
    ("active = true", ["a%b_c", "alice", "strasse", "ÉMILE"]),
    ("active = false", ["axxbyc", "bob"]),
    # externalId: case-sensitive, metacharacters literal
    ("externalId = uuid-bbb", ["ÉMILE"]),
    ("externalId = UUID-BBB", []),
    ("externalId = uuid-*", ["alice", "bob", "ÉMILE"]),
    ("externalId = *-ccc", ["strasse"]),
    ("externalId = *%*", ["a%b_c"]),
    ("externalId = *dd*", ["bob"]),
    ("externalId = *CC*", []),
    ("externalId = *cc*", ["strasse"]),
    ("externalId = *", ALL_USERS),
    ("externalId > x", ["a%b_c"]),
    # dates: offsets are honoured, equality is per millisecond
    ("createdDate < 2013-01-01T10:30:00.000+1100", []),
    ("createdDate < 2013-01-01T11:30:00.000+1100", ["alice"]),
    ("createdDate = 2014-06-01T22:00:00.369+1000", ["ÉMILE"]),
    ("createdDate = 2014-06-01T12:00:00.369512Z", ["ÉMILE"]),
    ("createdDate = 2014-06-01T12:00:00.369511Z", []),
    ("createdDate = 2014-06-01T12:00:00.370Z", []),
    ("createdDate <= 2014-06-01T12:00:00.369Z", ["alice", "ÉMILE"]),
    ("createdDate < 2014-06-01T12:00:00.369Z", ["alice"]),
    ("createdDate >= 2014-06-01T12:00:00.369Z", ["a%b_c", "axxbyc", "bob", "strasse", "ÉMILE"]),
    ("createdDate > 2014-06-01T12:00:00.369Z", ["a%b_c", "axxbyc", "bob", "strasse"]),
    ("createdDate > 2016-01-01 and createdDate < 2016-12-31", ["bob"]),
    ("createdDate <= 9999-12-31T23:59:59.999Z", ALL_USERS),
    ("createdDate > 9999-12-31T23:59:59.999Z", []),
    ("updatedDate > 2019-12-31", ["alice"]),
    # custom attributes: exact name, value case-insensitive (ASCII on SQLite)
    ("department = engineering", ["alice", "bob"]),
    ("department = ENGINEERING", ["alice", "bob"]),
    ("department = eng*", ["alice", "bob"]),
    ("department = *ING", ["alice", "bob", "ÉMILE"]),
    ("department = support", ["bob"]),
    ("Department = engineering", []),
    ("city = paris", ["ÉMILE"]),
    ("quota = *%", ["a%b_c"]),
    ("quota < 500", ["a%b_c"]),
    ("nosuch = x", []),
    # boolean logic: AND binds tighter than OR
    ("(name = alice or name = bob) and active = true", ["alice"]),
    ("name = alice or name = bob and active = true", ["alice"]),
    ("name = bob and active = true or name = alice", ["alice"]),
    (
        "(active = false and (email = * or name = x*)) or lastName = zola",
        ["axxbyc", "bob", "ÉMILE"],
    ),
    ("department = engineering and (city = paris or active = false)", ["bob"]),
]


@pytest.mark.parametrize(("cql", "expected"), USER_CQL, ids=[c[0] or "<all>" for c in USER_CQL])
def test_user_search(search_store: Store, cql: str, expected: Sequence[str]) -> None:
    assert user_names(search_store, parse_cql(cql, entity="user")) == sorted(expected)


# 2012-12-31T23:30Z, half an hour before alice was created
SYDNEY_1030 = dt.datetime(2013, 1, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=11)))

USER_RESTRICTIONS: list[tuple[str, Restriction, Sequence[str]]] = [
    ("name NULL", prop("name", M.NULL), []),
    ("email NULL", prop("email", M.NULL), ["axxbyc", "bob"]),
    ("lastName NULL", prop("lastName", M.NULL), ["bob"]),
    ("externalId NULL", prop("externalId", M.NULL), ["axxbyc"]),
    ("active NULL", prop("active", M.NULL, ptype=PropertyType.BOOLEAN), []),
    ("createdDate NULL", prop("createdDate", M.NULL, ptype=PropertyType.DATE), []),
    ("department NULL", prop("department", M.NULL), ["a%b_c", "axxbyc", "strasse"]),
    ("empty AND", BooleanRestriction("AND", ()), ALL_USERS),
    ("empty OR", BooleanRestriction("OR", ()), []),
    (
        "naive date is UTC",
        prop("createdDate", M.LESS_THAN, dt.datetime(2013, 1, 1, 0, 0, 1), PropertyType.DATE),
        ["alice"],
    ),
    # A hand-built value keeps its offset; SQLite would silently drop it if bound as is.
    ("offset kept, before", prop("createdDate", M.LESS_THAN, SYDNEY_1030, PropertyType.DATE), []),
    (
        "offset kept, after",
        prop("createdDate", M.LESS_THAN, SYDNEY_1030 + dt.timedelta(hours=1), PropertyType.DATE),
        ["alice"],
    ),
    ("CONTAINS empty", prop("email", M.CONTAINS, ""), ALL_USERS),
    ("ENDS_WITH backslash", prop("displayName", M.ENDS_WITH, "\\SLASH"), ["a%b_c"]),
    ("STARTS_WITH empty externalId", prop("externalId", M.STARTS_WITH, ""), ALL_USERS),
    ("ENDS_WITH longer than externalId", prop("externalId", M.ENDS_WITH, "xx-uuid-aaa"), []),
]


@pytest.mark.parametrize(
    ("restriction", "expected"),
    [c[1:] for c in USER_RESTRICTIONS],
    ids=[c[0] for c in USER_RESTRICTIONS],
)
def test_user_search_restrictions(
    search_store: Store, restriction: Restriction, expected: Sequence[str]
) -> None:
    assert user_names(search_store, restriction) == sorted(expected)


def test_test_settings_probe_finds_nothing(search_store: Store) -> None:
    """The "Test settings" button's search must answer an empty list, not an error."""
    probe = parse_xml(
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        b"<property-search-restriction><property><name>name</name><type>STRING</type>"
        b"</property><match-mode>NULL</match-mode></property-search-restriction>"
    )
    with search_store.read() as conn:
        rows = conn.execute(select(users.c.name).where(user_condition(probe)).limit(1)).all()
    assert rows == []


# --- groups ----------------------------------------------------------------------------------

GROUP_CQL: list[tuple[str, Sequence[str]]] = [
    ("", ALL_GROUPS),
    ("name = ADMINS", ["Admins"]),
    ("name = *s", ["Admins", "developers"]),
    ("description = *école*", ["Admins"]),
    ("description = *staff", ["old-staff"]),
    ("active = false", ["old-staff"]),
    ("active = true", ["Admins", "developers"]),
    ("local = true", []),
    ("local = false", ALL_GROUPS),
    ("local = false and name = d*", ["developers"]),
    ("externalId = g2", ["developers"]),
    ("colour = BLUE", ["Admins"]),
    ("createdDate >= 2014-01-01", ["developers", "old-staff"]),
    ("updatedDate < 2014-01-01", ["Admins"]),
    ("name = admins or (description = former* and active = false)", ["Admins", "old-staff"]),
]


@pytest.mark.parametrize(("cql", "expected"), GROUP_CQL, ids=[c[0] or "<all>" for c in GROUP_CQL])
def test_group_search(search_store: Store, cql: str, expected: Sequence[str]) -> None:
    assert group_names(search_store, parse_cql(cql, entity="group")) == sorted(expected)


@pytest.mark.parametrize(
    ("restriction", "expected"),
    [
        (prop("description", M.NULL), ["developers"]),
        (prop("name", M.NULL), []),
        (prop("local", M.NULL, ptype=PropertyType.BOOLEAN), []),
        (prop("colour", M.NULL), ["developers", "old-staff"]),
    ],
    ids=["description NULL", "name NULL", "local NULL", "colour NULL"],
)
def test_group_search_restrictions(
    search_store: Store, restriction: Restriction, expected: Sequence[str]
) -> None:
    assert group_names(search_store, restriction) == sorted(expected)


# --- refused ---------------------------------------------------------------------------------

B, D, S = PropertyType.BOOLEAN, PropertyType.DATE, PropertyType.STRING
NEW_YEAR_2013 = dt.datetime(2013, 1, 1, tzinfo=UTC)

REFUSED: list[tuple[str, str, Restriction, str]] = [
    ("user", "STARTS_WITH on active", prop("active", M.STARTS_WITH, True, B),
     "match-mode STARTS_WITH does not apply to the BOOLEAN property 'active'"),
    ("user", "LESS_THAN on active", prop("active", M.LESS_THAN, True, B), "use EXACTLY_MATCHES"),
    ("user", "DATE value for name", prop("name", M.EXACTLY_MATCHES, NEW_YEAR_2013, D),
     "the user property 'name' is STRING, not DATE"),
    ("user", "STRING value for active", prop("active", M.EXACTLY_MATCHES, "true", S),
     "the user property 'active' is BOOLEAN, not STRING"),
    ("user", "CONTAINS on a date", prop("createdDate", M.CONTAINS, NEW_YEAR_2013, D),
     "match-mode CONTAINS does not apply to the DATE property 'createdDate'"),
    ("user", "BOOLEAN custom attribute", prop("local", M.EXACTLY_MATCHES, True, B),
     "'local' is not a user property, so it is searched as a custom attribute, which is STRING"),
    ("user", "description is not a user property", prop("description", M.EXACTLY_MATCHES, True, B),
     "custom attribute"),
    ("user", "wrong Python value", prop("name", M.EXACTLY_MATCHES, 3), "needs a text value"),
    ("group", "LESS_THAN on local", prop("local", M.LESS_THAN, True, B),
     "does not apply to the BOOLEAN property 'local'"),
    ("group", "DATE for description", prop("description", M.EXACTLY_MATCHES, NEW_YEAR_2013, D),
     "the group property 'description' is STRING, not DATE"),
    ("group", "nested refusal",
     BooleanRestriction("OR", (prop("name", M.NULL), prop("active", M.ENDS_WITH, False, B))),
     "'active'"),
]


@pytest.mark.parametrize(
    ("entity", "restriction", "message"),
    [(c[0], c[2], c[3]) for c in REFUSED],
    ids=[c[1] for c in REFUSED],
)
def test_refused(entity: str, restriction: Restriction, message: str) -> None:
    condition = user_condition if entity == "user" else group_condition
    with pytest.raises(IllegalArgument) as caught:
        condition(restriction)
    assert message in caught.value.message

"""Client applications: name, password hash, allowed networks.

Passwords arrive here already hashed; this module never sees a clear password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from dirsync.errors import DirsyncError
from dirsync.names import name_key
from dirsync.store.db import as_utc, utcnow
from dirsync.store.tables import application_networks, applications


class ApplicationError(DirsyncError):
    """An application cannot be created or changed as asked."""


@dataclass(frozen=True, slots=True)
class Application:
    id: int
    name: str
    password_hash: str
    networks: tuple[str, ...]
    updated_at: object


# Built once: this runs on every authenticated request.
_FIND = (
    select(
        applications.c.id,
        applications.c.name,
        applications.c.password_hash,
        applications.c.updated_at,
        application_networks.c.network,
    )
    .outerjoin(application_networks, application_networks.c.application_id == applications.c.id)
    .where(applications.c.name_key == bindparam("key"))
    .order_by(application_networks.c.network)
)


def find_application(conn: Connection, name: str) -> Application | None:
    rows = conn.execute(_FIND, {"key": name_key(name)}).all()
    if not rows:
        return None
    first = rows[0]
    networks = tuple(r.network for r in rows if r.network is not None)
    return Application(
        first.id, first.name, first.password_hash, networks, as_utc(first.updated_at)
    )


def get_application(conn: Connection, name: str) -> Application:
    app = find_application(conn, name)
    if app is None:
        raise ApplicationError(f"no application named {name!r}; see `dirsync app list`")
    return app


def list_applications(conn: Connection) -> list[Application]:
    names = conn.execute(select(applications.c.name).order_by(applications.c.name_key)).scalars()
    return [get_application(conn, n) for n in list(names)]


def add_application(
    conn: Connection, name: str, password_hash: str, networks: Iterable[str]
) -> None:
    now = utcnow()
    try:
        app_id = conn.execute(
            insert(applications).values(
                name=name,
                name_key=name_key(name),
                password_hash=password_hash,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
    except IntegrityError:
        raise ApplicationError(f"an application named {name!r} exists already") from None
    _add_networks(conn, app_id, networks)


def _add_networks(conn: Connection, app_id: int, networks: Iterable[str]) -> None:
    rows = [{"application_id": app_id, "network": n} for n in dict.fromkeys(networks)]
    if rows:
        conn.execute(insert(application_networks), rows)


def _touch(conn: Connection, app_id: int, **values: object) -> None:
    # updated_at is part of the auth cache key, so any change drops cached verifications.
    conn.execute(
        update(applications).where(applications.c.id == app_id).values(updated_at=utcnow(), **values)
    )


def allow_networks(conn: Connection, name: str, networks: Iterable[str]) -> Application:
    app = get_application(conn, name)
    _add_networks(conn, app.id, [n for n in networks if n not in app.networks])
    _touch(conn, app.id)
    return get_application(conn, name)


def deny_networks(conn: Connection, name: str, networks: Iterable[str]) -> Application:
    app = get_application(conn, name)
    missing = [n for n in networks if n not in app.networks]
    if missing:
        raise ApplicationError(
            f"application {app.name!r} does not allow {', '.join(missing)}; "
            f"it allows {', '.join(app.networks) or 'nothing'}"
        )
    conn.execute(
        delete(application_networks).where(
            application_networks.c.application_id == app.id,
            application_networks.c.network.in_(list(networks)),
        )
    )
    _touch(conn, app.id)
    return get_application(conn, name)


def set_password_hash(conn: Connection, name: str, password_hash: str) -> None:
    app = get_application(conn, name)
    _touch(conn, app.id, password_hash=password_hash)


def remove_application(conn: Connection, name: str) -> None:
    app = get_application(conn, name)
    conn.execute(delete(application_networks).where(application_networks.c.application_id == app.id))
    conn.execute(delete(applications).where(applications.c.id == app.id))

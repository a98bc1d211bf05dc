"""Builders for tests: snapshots, seeded stores, applications, API clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests

from dirsync import passwords
from dirsync.app import create_app
from dirsync.model import Group, Snapshot, User
from dirsync.names import name_key
from dirsync.settings import Settings
from dirsync.store import apps as store_apps
from dirsync.store.db import Store
from dirsync.sync.fixtures import apply_fixtures

APP_NAME = "bitbucket"
APP_PASSWORD = "app-secret-password-1"


def snapshot(
    users: list[User] | None = None,
    groups: list[Group] | None = None,
    members: dict[str, list[str]] | None = None,
    children: dict[str, list[str]] | None = None,
) -> Snapshot:
    """`members` maps a group name to user names; `children` a group name to child groups."""
    return Snapshot(
        users=list(users or []),
        groups=list(groups or []),
        user_memberships={
            (name_key(g), name_key(u)) for g, names in (members or {}).items() for u in names
        },
        group_memberships={
            (name_key(p), name_key(c)) for p, names in (children or {}).items() for c in names
        },
    )


def org() -> Snapshot:
    """A small organisation with nesting, a cycle, an inactive user and awkward names."""
    return snapshot(
        users=[
            User("alice", "Alice", "Anderson", "Alice Anderson", "alice@example.com",
                 password="alice-pw-1", attributes={"department": ("Engineering",)}),
            User("Bob", "Bob", "Builder", "Bob Builder", "bob@example.com", password="bob-pw-2"),
            User("carol", "Carol", "Clark", "Carol Clark", "carol@example.com", active=False,
                 password="carol-pw-3"),
            User("José.Müller", "José", "Müller", "José Müller", "jose@example.com"),
            User("dave<&>\"'", "Dave", "Dangerous", "Dave <&>", "dave@example.com"),
        ],
        groups=[
            Group("bitbucket-users", "All Bitbucket users"),
            Group("bitbucket-administrators", "Admins"),
            Group("engineering", "Engineering", attributes={"cost-centre": ("42", "43")}),
            Group("backend"),
            Group("frontend"),
            Group("cycle-a"),
            Group("cycle-b"),
            Group("cycle-c"),
            Group("empty"),
        ],
        members={
            "bitbucket-administrators": ["alice"],
            "backend": ["Bob", "José.Müller"],
            "frontend": ["carol"],
            "engineering": ["dave<&>\"'"],
            "cycle-c": ["alice"],
        },
        children={
            "bitbucket-users": ["engineering", "bitbucket-administrators"],
            "engineering": ["backend", "frontend"],
            "cycle-a": ["cycle-b"],
            "cycle-b": ["cycle-c"],
            "cycle-c": ["cycle-a"],
        },
    )


def seed(store: Store, snap: Snapshot | None = None) -> Any:
    return apply_fixtures(store, "fixtures", snap if snap is not None else org())


def add_app(
    store: Store,
    name: str = APP_NAME,
    password: str = APP_PASSWORD,
    networks: tuple[str, ...] = ("127.0.0.1/32", "::1/128"),
) -> None:
    with store.write() as conn:
        store_apps.add_application(conn, name, passwords.hash_app_password(password), networks)


@dataclass
class Api:
    """A running dirsync over a real socket and a client session authenticated as APP_NAME."""

    url: str
    session: requests.Session
    store: Store

    @property
    def base(self) -> str:
        return f"{self.url}/rest/usermanagement/1"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.base + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.base + path, **kwargs)


def start_api(live_app: Any, store: Store, settings: Settings, host: str = "127.0.0.1") -> Api:
    server = live_app(create_app(settings, store=store), host=host)
    session = requests.Session()
    session.auth = (APP_NAME, APP_PASSWORD)
    return Api(server.url, session, store)

"""pytest fixtures for the LDAP tests: a seeded slapd, directory configs, private subtrees.

Fixtures
* `slapd` — the shared SlapdServer (TLS on, syncprov and accesslog on), seeded with
  fixtures/ldap/{org, disabled, nesting, escaping}.ldif; started on first use, restarted if a
  test left it stopped. Tests must not change the seed: anything that writes uses `ldap_tree`.
* `ldap_tree` — a private subtree `ou=t-<hex>,dc=example,dc=com` with `ou=people` and
  `ou=groups`, deleted after the test; helpers add users and groups to it.
* `private_slapd` — a fresh slapd (TLS on, org.ldif loaded, no change tracking) for one test,
  for tests that stop or kill the server; closed afterwards.
* `changelog_slapd` — the same with syncprov and accesslog, `syncprov_slapd` with syncprov only
  (contextCSN, but no change log): for incremental-sync tests that need a server of their own.
* `directory_config` — factory: `directory_config(server=None, **keys) -> DirectoryConfig`,
  parsed by the real `parse_directories` from a [[directories]] table that reads the seed
  as the sync account; `keys` override or (with None) remove table keys; `password=` sets
  the bind password handed over through the environment. Shared login connection pools
  (`check_user_password`) are closed after the test.

The shared server is a per-process singleton rather than a plain session fixture, so that
it is started once even while test modules import these fixtures with `import *` (each
import would otherwise make its own session-scoped copy). A missing slapd skips locally and
fails under CI=true.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from dirsync.ldap.bind import close_checkers
from dirsync.ldap.config import DirectoryConfig, parse_directories
from servers import MissingServer, skip_or_fail
from slapd import SUFFIX, SYNC_DN, SYNC_PASSWORD, SlapdServer

SEED = ("org", "disabled", "nesting", "escaping")
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
PASSWORD_ENV = "DIRSYNC_TEST_BIND_PASSWORD"

_shared: SlapdServer | None = None


def _new_server(seed: tuple[str, ...], *, syncprov: bool = False,
                accesslog: bool = False) -> SlapdServer:
    try:
        server = SlapdServer(tls=True, syncprov=syncprov, accesslog=accesslog)
    except MissingServer as exc:
        skip_or_fail(str(exc))
    try:
        server.start()
        for name in seed:
            server.load_fixture(name)
    except BaseException:
        server.close()
        raise
    return server


@pytest.fixture
def slapd() -> SlapdServer:
    global _shared
    if _shared is None or _shared.base_dir is None:
        # closed by its atexit hook at the end of the run
        _shared = _new_server(SEED, syncprov=True, accesslog=True)
    _shared.ensure_running()
    return _shared


@pytest.fixture
def private_slapd() -> Iterator[SlapdServer]:
    server = _new_server(("org",))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def changelog_slapd() -> Iterator[SlapdServer]:
    server = _new_server(("org",), syncprov=True, accesslog=True)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def syncprov_slapd() -> Iterator[SlapdServer]:
    server = _new_server(("org",), syncprov=True)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def directory_config(slapd: SlapdServer) -> Iterator[Callable[..., DirectoryConfig]]:
    def make(server: SlapdServer | None = None, *, password: str = SYNC_PASSWORD,
             **keys: Any) -> DirectoryConfig:
        server = server or slapd
        table: dict[str, Any] = {
            "name": "corp",
            "preset": "openldap",
            "urls": [server.url],
            "bind_dn": SYNC_DN,
            "bind_password_env": PASSWORD_ENV,
            "user_base_dn": PEOPLE,
            "group_base_dn": GROUPS,
            "connect_timeout": 2,
            "operation_timeout": 5,
        }
        table.update(keys)
        table = {k: v for k, v in table.items() if v is not None}
        return parse_directories([table], {PASSWORD_ENV: password})[0]

    yield make
    close_checkers()  # pooled login connections made through check_user_password


@dataclass
class LdapTree:
    """A private subtree of the shared server for one test."""

    server: SlapdServer
    base: str
    people: str = ""
    groups: str = ""

    def add_user(self, uid: str, *, ou: str | None = None, password: str | None = None,
                 extra: str = "") -> str:
        """Add an inetOrgPerson `uid=<uid>` (under `ou`, default the people OU); its DN."""
        dn = f"uid={uid},{ou or self.people}"
        self.server.load_ldif(
            f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid.title()}\n"
            f"sn: {uid.title()}\nmail: {uid}@example.com\n"
            f"userPassword: {password or uid + '-password'}\n{extra}"
        )
        return dn

    def add_group(self, cn: str, members: list[str], *, ou: str | None = None) -> str:
        dn = f"cn={cn},{ou or self.groups}"
        lines = "".join(f"member: {m}\n" for m in members)
        self.server.load_ldif(f"dn: {dn}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}")
        return dn

    def add_ou(self, name: str, parent: str | None = None) -> str:
        dn = f"ou={name},{parent or self.base}"
        self.server.load_ldif(f"dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n")
        return dn

    def entry_uuid(self, dn: str) -> str:
        [(_, attrs)] = self.server.search(dn, attributes=["entryUUID"], scope="base")
        return attrs["entryuuid"][0]


@pytest.fixture
def ldap_tree(slapd: SlapdServer) -> Iterator[LdapTree]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    base = f"ou={name},{SUFFIX}"
    slapd.load_ldif(f"dn: {base}\nobjectClass: organizationalUnit\nou: {name}\n")
    tree = LdapTree(slapd, base)
    tree.people = tree.add_ou("people")
    tree.groups = tree.add_ou("groups")
    try:
        yield tree
    finally:
        slapd.ensure_running()
        slapd.delete(base, recursive=True)

"""Control of a private 389 Directory Server for the LDAP tests. The only place tests start it.

* `Ds389Server` — a throwaway `ns-slapd` (Debian package `389-ds-base`) with its own
  `dse.ldif`, bdb database, logs and run files in a temp dir, listening on 127.0.0.1 only on
  a free port (plain LDAP; no TLS: 389 keeps certificates in an NSS database, and TLS is
  covered against slapd). `stop()` shuts it down cleanly (SIGTERM), `kill()` the way a crash
  would; `start()` brings the same data back on the same port.
* `find_389ds` — paths of what the harness needs; MissingServer when any is absent.

Why not `dscreate`: it only creates instances under /etc/dirsrv/slapd-NAME (it looks the new
instance up there), and it wants systemd. The harness does what dscreate does for the part
that matters — fill in the package's own `template-dse.ldif` with paths of a temp dir — and
appends the userRoot backend and its mapping tree, so the server comes up with the suffix
ready for entries. It runs in the foreground (`-d 0`), as our child: its pid is ours to
signal, and nothing outlives the test run.

Configured like a production 389 DS as far as the sync cares: plugins memberOf (transitive
memberOf on users and groups), referential integrity (member values follow renames at once)
and USN (entryUSN, the root DSE's lastusn) are on; passwords are stored hashed (SSHA512,
cheaper than the default PBKDF2 for tests that bind often); the suffix entry carries the ACIs
below. Database transactions are not flushed to disk (`nsslapd-db-durable-transaction: off`):
a throwaway server needs no durability, and it makes loading several times faster.

Accounts (constants below): the root DN `cn=Directory Manager`; `cn=sync`, read-only by ACI
(everything but userPassword, including the operational nsUniqueId, nsAccountLock, memberOf
and entryUSN) and without size or look-through limits, as a real sync account should be;
`cn=limited`, read-only and capped at LIMITED_SIZE entries per search (`nsSizeLimit`,
`nsPagedSizeLimit`). Anonymous may read the root DSE only. Users may read their own entry.

Data is loaded with the OpenLDAP command line tools (ldapmodify, ldapdelete, ...), never with
ldap3: the harness must not share a library, or its bugs, with the code under test. This
module must not import dirsync.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from ldap_server import LdapTestServer, client_env, find_tool
from servers import MissingServer, ServerError, free_port

NS_SLAPD = "/usr/sbin/ns-slapd"
DATA_DIR = Path("/usr/share/dirsrv/data")
TEMPLATE_DSE = DATA_DIR / "template-dse.ldif"
# 389 reads the system schema from its compiled-in directory (/usr/share/dirsrv/schema); the
# instance's own schema directory holds only 99user.ldif, as dscreate leaves it.
SYSCONF_DIR = Path("/etc/dirsrv")
CLIENT_TOOLS = ("ldapmodify", "ldapdelete", "ldapmodrdn", "ldapsearch", "ldapwhoami")

SUFFIX = "dc=example,dc=com"
ROOT_DN = "cn=Directory Manager"
ROOT_PASSWORD = "admin-secret"
SYNC_DN = f"cn=sync,{SUFFIX}"
SYNC_PASSWORD = "sync-secret"
LIMITED_DN = f"cn=limited,{SUFFIX}"
LIMITED_PASSWORD = "limited-secret"
LIMITED_SIZE = 3
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "ldap" / "389ds"

# Plugins that are off in the template and on here: cn=<name>,cn=plugins,cn=config.
ENABLED_PLUGINS = ("MemberOf Plugin", "referential integrity postoperation", "USN")


_INSTALL = ("389 Directory Server and the OpenLDAP client tools (Debian: apt-get install "
            "--no-install-recommends 389-ds-base ldap-utils)")


def _which(name: str, fallback: str | None = None) -> str:
    return find_tool(name, _INSTALL, fallback)


def find_389ds() -> dict[str, str]:
    """Paths of ns-slapd and the client tools; MissingServer when any is absent."""
    tools = {"ns-slapd": _which("ns-slapd", NS_SLAPD)}
    for name in CLIENT_TOOLS:
        tools[name] = _which(name)
    for needed in (TEMPLATE_DSE, SYSCONF_DIR / "schema" / "99user.ldif",
                   SYSCONF_DIR / "config" / "slapd-collations.conf"):
        if not needed.is_file():
            raise MissingServer(f"{needed} is missing (is 389-ds-base installed completely?)")
    return tools


def password_hash(password: str) -> str:
    """{SSHA512}: what 389 accepts for the root password in dse.ldif (it refuses clear text
    there) and stores quickly; the default PBKDF2 would cost every test bind milliseconds."""
    salt = os.urandom(16)
    digest = hashlib.sha512(password.encode("utf-8") + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode("ascii")


class Ds389Server(LdapTestServer):
    """A private 389 Directory Server for one test run (or one test, for tests that crash it).

    `start()` builds the instance the first time (dse.ldif, base entries and accounts) and
    then starts ns-slapd and waits until the Directory Manager can bind. Usable as a context
    manager. `stop()` is a clean shutdown: ns-slapd flushes the database and writes
    dse.ldif. Data goes in as the Directory Manager, so plugins (memberOf, referential
    integrity, USN) apply.
    """

    label = "ns-slapd"
    admin_dn = ROOT_DN
    admin_password = ROOT_PASSWORD

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.tools = find_389ds()
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.base_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        # Seconds the first start() took: build + start + base entries (reported by tests).
        self.setup_seconds = 0.0

    # -- addresses -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def config_dir(self) -> Path:
        return self._base / "config"

    @property
    def log_path(self) -> Path:
        return self._base / "log" / "errors"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Ds389Server:
        if self.running:
            return self
        if self.base_dir is None:
            clock = time.monotonic()
            self._build()
            # Only the first start may move to another port: nobody holds a URL yet.
            # free_port() releases the port before ns-slapd binds it; if another process took
            # it in between, ns-slapd exits at once and a new port is tried.
            for attempt in range(3):
                try:
                    self._start_once()
                    break
                except ServerError:
                    if attempt == 2:
                        raise
                    self._set_port(free_port(self.host))
            self.modify(_BASE_ENTRIES, add=True)
            self.setup_seconds = time.monotonic() - clock
        else:
            self._start_once()
        return self

    # -- data ------------------------------------------------------------------------------
    def load_fixture(self, name: str) -> None:
        """Load fixtures/ldap/389ds/<name>.ldif."""
        self.load_ldif(FIXTURES_DIR / f"{name}.ldif")

    def delete_subtree(self, base: str) -> list[str]:
        """Delete `base` and everything below it, deepest entries first, as far as the server
        lets; the DNs left over. `ldapdelete -r` walks one level at a time and stops at the
        first error; and 389 DS 2.3 miscounts the subordinates of a container that was
        moved after entries below it had been deleted (their tombstones move along), so
        that container answers every delete with operationsError (1) for good."""
        left: list[str] = []
        for _ in range(2):
            try:
                found = self.search(base, attributes=["1.1"])
            except ServerError as exc:
                if "exit 32" in str(exc):
                    return []  # gone
                raise
            left = sorted((dn for dn, _ in found), key=lambda dn: -dn.count(","))
            argv = [self.tools["ldapdelete"], *self._client_args(), "-c"]
            subprocess.run(argv, input="\n".join(left) + "\n", capture_output=True,
                           text=True, env=client_env(), timeout=120, cwd="/")
        try:
            return [dn for dn, _ in self.search(base, attributes=["1.1"])]
        except ServerError as exc:
            if "exit 32" in str(exc):
                return []
            raise

    def unique_id(self, dn: str) -> str:
        """The entry's nsUniqueId, as the server shows it."""
        [(_, attrs)] = self.search(dn, attributes=["nsUniqueId"], scope="base")
        return attrs["nsuniqueid"][0]

    # -- internals -------------------------------------------------------------------------
    def _build(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="dirsync-389ds-"))
        self.base_dir = base
        atexit.register(self.close)  # no orphaned ns-slapd if the run dies before teardown
        dirs = {name: base / name for name in
                ("config", "db", "log", "run", "lock", "tmp", "certs", "ldif", "bak")}
        # ns-slapd reads the instance schema from <config dir>/schema whatever
        # nsslapd-schemadir says, and exits without a word when it is missing.
        dirs["schema"] = dirs["config"] / "schema"
        for path in dirs.values():
            path.mkdir(mode=0o770)
        shutil.copy(SYSCONF_DIR / "schema" / "99user.ldif", dirs["schema"])
        for name in ("slapd-collations.conf", "certmap.conf"):
            source = SYSCONF_DIR / "config" / name
            if source.is_file():
                shutil.copy(source, dirs["config"])
        self.port = free_port(self.host)
        values = {
            "schema_dir": dirs["schema"], "lock_dir": dirs["lock"], "tmp_dir": dirs["tmp"],
            "cert_dir": dirs["certs"], "ldif_dir": dirs["ldif"], "bak_dir": dirs["bak"],
            "run_dir": dirs["run"], "inst_dir": base, "log_dir": dirs["log"],
            "config_dir": dirs["config"], "db_dir": dirs["db"], "db_home_dir": dirs["db"],
            "db_lib": "bdb", "fqdn": "localhost", "ds_port": self.port,
            # ns-slapd switches to this user; the current one owns the temp dir already.
            "ds_user": pwd.getpwuid(os.geteuid()).pw_name,
            "rootdn": ROOT_DN, "ds_passwd": password_hash(ROOT_PASSWORD), "ds_suffix": SUFFIX,
            "ldapi_enabled": "off", "ldapi": dirs["run"] / "slapd.socket", "ldapi_autobind": "off",
        }
        template = TEMPLATE_DSE.read_text(encoding="utf-8")
        unknown = set(re.findall(r"%([a-z_]+)%", template)) - set(values)
        if unknown:
            raise ServerError(f"{TEMPLATE_DSE} uses placeholders this harness does not know: "
                              f"{', '.join(sorted(unknown))}")
        dse = re.sub(r"%([a-z_]+)%", lambda m: str(values[m.group(1)]), template)
        dse = _tune(dse)
        (dirs["config"] / "dse.ldif").write_text(dse.rstrip("\n") + "\n\n" + _BACKEND,
                                                 encoding="utf-8")

    def _set_port(self, port: str | int) -> None:
        self.port = int(port)
        dse = self.config_dir / "dse.ldif"
        text = dse.read_text(encoding="utf-8")
        dse.write_text(re.sub(r"(?m)^nsslapd-port: .*$", f"nsslapd-port: {self.port}", text,
                              count=1), encoding="utf-8")

    def _start_once(self) -> None:
        # -d 0 keeps ns-slapd in the foreground (no debug output), so it is our child.
        log = (self._base / "log" / "console").open("ab")
        try:
            self._proc = subprocess.Popen(
                [self.tools["ns-slapd"], "-D", str(self.config_dir), "-i",
                 str(self._base / "run" / "slapd.pid"), "-d", "0"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd="/",
            )
        finally:
            log.close()
        self._wait_ready()

def _set_attributes(dse: str, dn: str, values: dict[str, str]) -> str:
    """Set single-valued attributes of the entry `dn` in dse.ldif text (replace or append)."""
    blocks = dse.split("\n\n")
    for index, block in enumerate(blocks):
        first = block.lstrip("\n").split("\n", 1)[0]
        if first.lower() != f"dn: {dn}".lower():
            continue
        for name, value in values.items():
            line = f"{name}: {value}"
            pattern = re.compile(rf"(?mi)^{re.escape(name)}:.*$")
            block = pattern.sub(line, block, count=1) if pattern.search(block) else (
                block.rstrip("\n") + "\n" + line)
        blocks[index] = block
        return "\n\n".join(blocks)
    raise ServerError(f"{TEMPLATE_DSE} has no entry {dn}; this 389 DS version is not supported "
                      "by tests/ds389.py")


def _tune(dse: str) -> str:
    dse = _set_attributes(dse, "cn=config", {
        "nsslapd-listenhost": "127.0.0.1",
        "nsslapd-rootpwstoragescheme": "SSHA512",
        "passwordStorageScheme": "SSHA512",
        # Default buffering delays the access log by seconds; a test reading it would wait.
        "nsslapd-accesslog-logbuffering": "off",
    })
    dse = _set_attributes(dse, "cn=config,cn=ldbm database,cn=plugins,cn=config", {
        "nsslapd-db-durable-transaction": "off",
        # Autotuning sizes the caches from the machine's RAM (GBs); a test server needs MBs.
        "nsslapd-cache-autosize": "0",
        "nsslapd-dbcachesize": "33554432",
    })
    for plugin in ENABLED_PLUGINS:
        dse = _set_attributes(dse, f"cn={plugin},cn=plugins,cn=config",
                              {"nsslapd-pluginenabled": "on"})
    return dse


# The userRoot backend holding SUFFIX, and the mapping tree that routes SUFFIX to it: what
# `dsconf backend create` would add online.
_BACKEND = f"""\
dn: cn=userRoot,cn=ldbm database,cn=plugins,cn=config
objectClass: top
objectClass: extensibleObject
objectClass: nsBackendInstance
cn: userRoot
nsslapd-suffix: {SUFFIX}
nsslapd-cachememsize: 33554432
nsslapd-dncachememsize: 16777216

dn: cn=dc\\3Dexample\\2Cdc\\3Dcom,cn=mapping tree,cn=config
objectClass: top
objectClass: extensibleObject
objectClass: nsMappingTree
cn: {SUFFIX}
nsslapd-state: backend
nsslapd-backend: userRoot
"""

# The suffix with its ACIs, and the service accounts. 389 denies everything no ACI allows;
# targetattr "*" does not include operational attributes, so the ones a sync reads are named.
_SYNC_ACI_ATTRS = "*||nsUniqueId||nsAccountLock||memberOf||entryUSN||entryUUID||modifyTimestamp"
_BASE_ENTRIES = f"""\
dn: {SUFFIX}
objectClass: top
objectClass: domain
dc: example
aci: (targetattr="userPassword")(version 3.0; acl "nobody reads passwords"; deny (read,
 search,compare) userdn="ldap:///anyone";)
aci: (targetattr="{_SYNC_ACI_ATTRS}")(version 3.0; acl "sync accounts read everything";
  allow (read,search,compare) userdn="ldap:///{SYNC_DN} || ldap:///{LIMITED_DN}";)
aci: (targetattr="*")(version 3.0; acl "users read their own entry"; allow (read,search,
 compare) userdn="ldap:///self";)

dn: {SYNC_DN}
objectClass: top
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: sync
userPassword: {SYNC_PASSWORD}
nsSizeLimit: -1
nsLookThroughLimit: -1
nsPagedSizeLimit: -1
nsPagedLookThroughLimit: -1

dn: {LIMITED_DN}
objectClass: top
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: limited
userPassword: {LIMITED_PASSWORD}
nsSizeLimit: {LIMITED_SIZE}
nsPagedSizeLimit: {LIMITED_SIZE}
"""

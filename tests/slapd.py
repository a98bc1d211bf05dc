"""Control of a private OpenLDAP slapd for the LDAP tests. The only place tests start slapd.

* `SlapdServer` — a throwaway slapd with its own cn=config (built with `slapadd -n0` from LDIF
  generated here) and back_mdb database in a temp dir, listening on 127.0.0.1 only: plain LDAP
  (StartTLS capable) and, with `tls=True`, LDAPS on a second port. Overlays memberof, refint
  and ppolicy are on, so memberOf, member renames and account locks behave as in production.
  With `syncprov=True` the syncprov overlay keeps contextCSN on the suffix (entryCSN is always
  there); with `accesslog=True` every successful write is also logged, with its entryUUID, in
  a second mdb database under ACCESSLOG_SUFFIX — what incremental sync reads.
  `stop()` shuts it down cleanly, `kill()` the way a crash would; `start()` brings the same
  data back on the same ports, so URLs handed out earlier stay valid.
* `make_ca` / `issue_certificate` — throwaway certificates made with the `openssl` CLI.

What every LDAP test server shares (lifecycle, readiness, the client tools, `parse_ldif`) is in
ldap_server.py.

Accounts in every server (constants below): the rootdn `cn=admin`; `cn=sync`, read-only by ACL
and without size or time limits, as a real sync account should be; `cn=limited`, read-only
and capped at LIMITED_SIZE entries per search, for "a partial read must abort" tests. The
default password policy locks accounts whose pwdAccountLockedTime is set, and never locks
anyone for failed binds (tests try wrong passwords on purpose).

Data is loaded with the OpenLDAP command line tools (ldapmodify, ldapdelete, ...), never with
ldap3: the harness must not share a library, or its bugs, with the code under test. This module
must not import dirsync.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ldap_server import LdapTestServer, find_tool
from servers import MissingServer, ServerError, free_port

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
CLIENT_TOOLS = ("ldapmodify", "ldapdelete", "ldapmodrdn", "ldapsearch", "ldapwhoami")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
# core, cosine, inetorgperson for people; nis for posixGroup/memberUid. ppolicy's schema is
# built into the overlay since OpenLDAP 2.5.
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
BASE_MODULES = ("back_mdb", "memberof", "refint", "ppolicy")

SUFFIX = "dc=example,dc=com"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "admin-secret"
SYNC_DN = f"cn=sync,{SUFFIX}"
SYNC_PASSWORD = "sync-secret"
LIMITED_DN = f"cn=limited,{SUFFIX}"
LIMITED_PASSWORD = "limited-secret"
LIMITED_SIZE = 3
POLICY_DN = f"cn=default,ou=policies,{SUFFIX}"
ACCESSLOG_SUFFIX = "cn=accesslog"
CONFIG_DN = "cn=config"  # rootdn of the cn=config database, for online config changes
CONFIG_PASSWORD = "config-secret"
# A pwdAccountLockedTime of this value locks an account until an administrator unlocks it.
LOCKED_FOREVER = "000001010000Z"
# Fixture seeds for the directory, in load order.
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "ldap"


_INSTALL = "OpenLDAP (Debian: apt-get install slapd ldap-utils)"


def _which(name: str, fallback: str | None = None) -> str:
    return find_tool(name, _INSTALL, fallback)


def find_openldap() -> dict[str, str]:
    """Paths of slapd, slapadd and the client tools; MissingServer when any is absent."""
    tools = {"slapd": _which("slapd", SLAPD), "slapadd": _which("slapadd", SLAPADD)}
    for name in CLIENT_TOOLS:
        tools[name] = _which(name)
    if not (MODULE_DIR / "back_mdb.so").exists():
        raise MissingServer(f"slapd modules are not in {MODULE_DIR} (is slapd installed?)")
    return tools


# -- certificates ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateAuthority:
    cert_file: Path
    key_file: Path


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if not openssl:
        raise MissingServer("the openssl command is not installed; it makes the test certificates")
    proc = subprocess.run([openssl, *args], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise ServerError(f"openssl {args[0]} failed: {proc.stderr.strip()}")


def make_ca(directory: Path, name: str = "dirsync test CA") -> CertificateAuthority:
    """A self-signed CA. EC keys: generating them takes milliseconds, RSA ones do not."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = name.replace(" ", "-")
    cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return CertificateAuthority(cert, key)


def issue_certificate(
    ca: CertificateAuthority, directory: Path, names: Sequence[str] = ("127.0.0.1", "localhost"),
    stem: str = "server",
) -> tuple[Path, Path]:
    """A server certificate signed by `ca` for `names` (IP addresses become IP SANs)."""
    key, csr, cert = directory / f"{stem}.key", directory / f"{stem}.csr", directory / f"{stem}.pem"
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={names[0]}")
    sans = ",".join(
        f"IP:{n}" if n.replace(".", "").isdigit() or ":" in n else f"DNS:{n}" for n in names
    )
    ext = directory / f"{stem}.ext"
    ext.write_text(
        f"subjectAltName={sans}\nbasicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "authorityKeyIdentifier=keyid\nsubjectKeyIdentifier=hash\n"
    )
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca.cert_file), "-CAkey", str(ca.key_file),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return cert, key


# -- LDIF ------------------------------------------------------------------------------------


# -- the server ------------------------------------------------------------------------------


class SlapdServer(LdapTestServer):
    """A private slapd for one test run (or one test, for tests that crash it).

    `start()` builds the instance the first time (certificates, cn=config, base entries) and
    then starts slapd and waits until the admin can bind. The server certificate is issued
    for `cert_names` (IP addresses become IP SANs) by a CA of its own, `ca_file`. Extra
    modules and cn=config LDIF can be passed for overlays a test needs (accesslog, syncprov);
    they are added after the base database, or later with `modify_config`. Usable as a
    context manager.
    """

    label = "slapd"
    admin_dn = ADMIN_DN
    admin_password = ADMIN_PASSWORD
    delete_options = ("-M",)  # ManageDsaIT: referral objects are deleted, not followed
    run_timeout = 60.0
    ready_poll_seconds = 0.01

    def __init__(
        self,
        *,
        tls: bool = True,
        cert_names: Sequence[str] = ("127.0.0.1", "localhost"),
        startup_timeout: float = 15.0,
        extra_modules: Iterable[str] = (),
        extra_config: str = "",
        syncprov: bool = False,
        accesslog: bool = False,
    ) -> None:
        self.tools = find_openldap()
        self.tls = tls
        self.cert_names = tuple(cert_names)
        self.startup_timeout = startup_timeout
        self.extra_modules = tuple(extra_modules)
        self.extra_config = extra_config
        self.syncprov = syncprov
        self.accesslog = accesslog
        self.host = "127.0.0.1"
        self.port = 0
        self.ldaps_port = 0
        self.base_dir: Path | None = None
        self.ca: CertificateAuthority | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def ldaps_url(self) -> str:
        if not self.tls:
            raise ServerError("this slapd was started without TLS")
        return f"ldaps://{self.host}:{self.ldaps_port}"

    @property
    def ca_file(self) -> Path:
        if self.ca is None:
            raise ServerError("this slapd has no TLS certificates")
        return self.ca.cert_file

    @property
    def log_path(self) -> Path:
        return self._base / "slapd.log"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SlapdServer:
        if self.running:
            return self
        if self.base_dir is None:
            self._build()
            # Only the first start may move to other ports: nobody holds a URL yet.
            # free_port() releases the port before slapd binds it, so another process may
            # take it in between; slapd then exits at once, and new ports are tried.
            for attempt in range(3):
                try:
                    self._start_once()
                    break
                except ServerError:
                    if attempt == 2:
                        raise
                    self._pick_ports()
        else:
            self._start_once()
        return self

    # -- data ------------------------------------------------------------------------------
    def load_ldif(self, source: str | Path, *, offline: bool = False) -> None:
        """Load LDIF: a path, or LDIF text. Online (default) it goes through ldapmodify -a, so
        overlays apply and change records (changetype: modify) work; offline it goes through
        slapadd (the server must be stopped; overlays do not run, memberOf is not computed)."""
        path = Path(source) if isinstance(source, Path) else None
        text = path.read_text(encoding="utf-8") if path else str(source)
        if offline:
            if self.running:
                raise ServerError("stop slapd before loading LDIF offline with slapadd")
            self._run([self.tools["slapadd"], "-F", str(self._base / "slapd.d"), "-b", SUFFIX,
                       "-q"], what="slapadd", stdin=text)
            return
        self.modify(text, add=True)

    def load_fixture(self, name: str) -> None:
        """Load fixtures/ldap/<name>.ldif online."""
        self.load_ldif(FIXTURES_DIR / f"{name}.ldif")

    def modify_config(self, ldif: str, *, add: bool = False) -> None:
        """ldapmodify against cn=config (as its rootdn), e.g. to add an overlay or a database
        such as accesslog to the running server."""
        argv = [self.tools["ldapmodify"], *self._client_args(CONFIG_DN, CONFIG_PASSWORD)]
        if add:
            argv.append("-a")
        self._run(argv, what="ldapmodify (cn=config)", stdin=ldif)

    # -- internals -------------------------------------------------------------------------
    def _pick_ports(self) -> None:
        self.port = free_port(self.host)
        self.ldaps_port = free_port(self.host) if self.tls else 0
        while self.tls and self.ldaps_port == self.port:
            self.ldaps_port = free_port(self.host)

    def _build(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="dirsync-slapd-"))
        self.base_dir = base
        atexit.register(self.close)  # no orphaned slapd if the run dies before teardown
        (base / "slapd.d").mkdir()
        (base / "data").mkdir()
        (base / "log").mkdir()
        if self.tls:
            self.ca = make_ca(base / "tls")
            issue_certificate(self.ca, base / "tls", self.cert_names)
        self._pick_ports()
        self._run([self.tools["slapadd"], "-n0", "-F", str(base / "slapd.d")], what="slapadd -n0",
                  stdin=self._config_ldif())
        self._run([self.tools["slapadd"], "-F", str(base / "slapd.d"), "-b", SUFFIX, "-q"],
                  what="slapadd (base entries)", stdin=_BASE_ENTRIES)

    def _config_ldif(self) -> str:
        base = self._base
        tls = ""
        if self.tls:
            tls = (f"olcTLSCACertificateFile: {self.ca_file}\n"
                   f"olcTLSCertificateFile: {base / 'tls' / 'server.pem'}\n"
                   f"olcTLSCertificateKeyFile: {base / 'tls' / 'server.key'}\n")
        overlays = (("syncprov",) if self.syncprov else ()) + (
            ("accesslog",) if self.accesslog else ())
        modules = "".join(f"olcModuleLoad: {m}\n"
                          for m in (*BASE_MODULES, *overlays, *self.extra_modules))
        schemas = "".join(f"include: file://{SCHEMA_DIR / s}.ldif\n\n" for s in SCHEMAS)
        return _CONFIG_TEMPLATE.format(
            base=base, tls=tls, modules=modules, module_dir=MODULE_DIR, schemas=schemas,
            suffix=SUFFIX, admin_dn=ADMIN_DN, admin_pw=ADMIN_PASSWORD, sync_dn=SYNC_DN,
            limited_dn=LIMITED_DN, limited_size=LIMITED_SIZE, policy_dn=POLICY_DN,
            config_dn=CONFIG_DN, config_pw=CONFIG_PASSWORD,
        ) + self._change_tracking_ldif() + self.extra_config

    def _change_tracking_ldif(self) -> str:
        # Overlays are numbered after the base ones ({0}-{2}); the log database must exist
        # (be defined earlier in the LDIF) before the accesslog overlay names it.
        ldif = ""
        index = 3
        if self.accesslog:
            ldif += _ACCESSLOG_DATABASE.format(
                base=self._base, log_suffix=ACCESSLOG_SUFFIX, admin_dn=ADMIN_DN,
                sync_dn=SYNC_DN, limited_dn=LIMITED_DN, limited_size=LIMITED_SIZE)
        if self.syncprov:
            ldif += _SYNCPROV_OVERLAY.format(index=index)
            index += 1
        if self.accesslog:
            ldif += _ACCESSLOG_OVERLAY.format(index=index, log_suffix=ACCESSLOG_SUFFIX)
        return ldif

    def _start_once(self) -> None:
        urls = self.url + "/" + (f" {self.ldaps_url}/" if self.tls else "")
        # -d keeps slapd in the foreground, so it is our child and its pid is ours to signal.
        debug = os.environ.get("DIRSYNC_SLAPD_DEBUG", "0")
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                [self.tools["slapd"], "-h", urls, "-F", str(self._base / "slapd.d"), "-d", debug],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd="/",
            )
        finally:
            log.close()
        self._wait_ready()

# cn=config of every test server. ACLs: nobody reads passwords (binds still work); the sync
# and limited accounts read everything else, users read their own entry, anonymous nothing.
# Limits: the frontend keeps slapd's default 500 entries; cn=sync is unlimited; cn=limited is
# capped in total, paged or not (size.prtotal defaults to the hard limit).
_CONFIG_TEMPLATE = """\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {base}/slapd.pid
olcArgsFile: {base}/slapd.args
{tls}
dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {module_dir}
{modules}
dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}\
dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcRootDN: {config_dn}
olcRootPW: {config_pw}

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {suffix}
olcDbDirectory: {base}/data
olcRootDN: {admin_dn}
olcRootPW: {admin_pw}
olcDbNoSync: TRUE
olcDbMaxSize: 1073741824
olcDbIndex: objectClass eq
olcDbIndex: entryUUID eq
olcDbIndex: entryCSN eq
olcDbIndex: uid eq
olcDbIndex: cn eq
olcDbIndex: member eq
olcDbIndex: uniqueMember eq
olcDbIndex: memberUid eq
olcLimits: {{0}}dn.exact="{sync_dn}" size=unlimited time=unlimited
olcLimits: {{1}}dn.exact="{limited_dn}" size.soft={limited_size} size.hard={limited_size}
olcAccess: {{0}}to attrs=userPassword by self =xw by anonymous auth by * none
olcAccess: {{1}}to * by dn.exact="{sync_dn}" read by dn.exact="{limited_dn}" read
  by self read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE

dn: olcOverlay={{1}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{1}}refint
olcRefintAttribute: member
olcRefintAttribute: uniqueMember

dn: olcOverlay={{2}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{2}}ppolicy
olcPPolicyDefault: {policy_dn}

"""

# Change tracking (syncprov=True, accesslog=True). The log database is readable by the two
# service accounts only, with the same limits as the main database. logsuccess: failed writes
# are not changes. logold/logoldattr keep the old entryUUID of deleted and renamed entries,
# which is where OpenLDAP 2.4 (no reqEntryUUID) has it. No logpurge: test servers are short-lived.
_ACCESSLOG_DATABASE = """\
dn: olcDatabase={{2}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{2}}mdb
olcSuffix: {log_suffix}
olcDbDirectory: {base}/log
olcRootDN: {admin_dn}
olcDbNoSync: TRUE
olcDbMaxSize: 1073741824
olcDbIndex: entryCSN eq
olcDbIndex: reqStart eq
olcLimits: {{0}}dn.exact="{sync_dn}" size=unlimited time=unlimited
olcLimits: {{1}}dn.exact="{limited_dn}" size.soft={limited_size} size.hard={limited_size}
olcAccess: {{0}}to * by dn.exact="{sync_dn}" read by dn.exact="{limited_dn}" read by * none

"""

_SYNCPROV_OVERLAY = """\
dn: olcOverlay={{{index}}}syncprov,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {{{index}}}syncprov

"""

_ACCESSLOG_OVERLAY = """\
dn: olcOverlay={{{index}}}accesslog,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcAccessLogConfig
olcOverlay: {{{index}}}accesslog
olcAccessLogDB: {log_suffix}
olcAccessLogOps: writes
olcAccessLogSuccess: TRUE
olcAccessLogOld: (objectClass=*)
olcAccessLogOldAttr: entryUUID

"""

# The suffix, the service accounts and the password policy: what the config above refers to.
_BASE_ENTRIES = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
o: Example Corp
dc: example

dn: {SYNC_DN}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: sync
userPassword: {SYNC_PASSWORD}

dn: {LIMITED_DN}
objectClass: applicationProcess
objectClass: simpleSecurityObject
cn: limited
userPassword: {LIMITED_PASSWORD}

dn: ou=policies,{SUFFIX}
objectClass: organizationalUnit
ou: policies

dn: {POLICY_DN}
objectClass: organizationalRole
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 0
"""

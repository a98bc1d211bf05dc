"""Control of a private Active Directory (Samba's AD DC) for the LDAP tests. The only place
tests start Samba.

* `SambaAdServer` — a throwaway domain EXAMPLE.TEST (Debian packages `samba`, `samba-ad-dc`,
  ...) copied from a cached provisioned template into a temp dir and served by `samba`
  (LDAP service only) in a **network namespace of its own**, reachable from the tests at
  `ldap://127.0.0.1:<free port>`. `stop()` shuts it down (SIGTERM), `kill()` the way a crash
  would; `start()` brings the same data back on the same URL.
* `find_samba` — paths of what the harness needs; MissingServer when any is absent.

Why a network namespace: Samba's LDAP server listens on 389, 636, 3268 and 3269 and no
setting moves it elsewhere, so two of them cannot share a host, nor can one run beside
another LDAP server on 389. Each SambaAdServer runs `samba` under `unshare --net`, with only
a loopback interface, where it binds 127.0.0.1:389 (`interfaces = 127.0.0.1`,
`bind interfaces only = yes`). A small forwarder joins the two: the harness binds a free
port on the host's 127.0.0.1 and hands that listening socket to a Python process started
with `nsenter --net=/proc/<samba>/ns/net`, which accepts there and connects to 127.0.0.1:389
inside. No address but 127.0.0.1 is ever used, on either side. This needs root (as CI and
the development machines are); without it the tests skip with the reason.

Why a cached template: `samba-tool domain provision` takes ~8 s, and the seed includes a
group of BULK_USERS members (more than AD's MaxValRange of 1500) whose load takes ~7 s
more. The harness provisions once into a template directory (fixtures loaded offline with
`ldbmodify` through Samba's own database modules, so GUIDs, SIDs, USNs and backlinks are
real), keyed by the Samba version, the fixture files and this harness's template recipe,
under $DIRSYNC_TEST_CACHE (default ~/.cache/dirsync-tests). Each server copies the template
(~50 MB) into its own temp dir and writes its own smb.conf: the database files name each
other by relative paths, so the copy is a complete, independent domain.

Configuration: simple binds over plain LDAP are allowed (`ldap server require strong auth =
no`; real AD allows them too unless LDAP signing is enforced), TLS is off, and the domain's
password policy has complexity, history and expiry off so fixture passwords are simple and
never expire. Accounts: `Administrator` (ADMIN_DN) for loading data; `svc-sync` (SYNC_DN), an
ordinary domain user, for reading, as AD connectors are meant to be configured.

Data is loaded with the OpenLDAP command line tools (through the forwarder) or Samba's ldb
tools, never with ldap3: the harness must not share a library, or its bugs, with the code
under test. This module must not import dirsync.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from ldap_server import LdapTestServer, end_process, find_tool, parse_ldif
from servers import MissingServer, ServerError, free_port

REALM = "EXAMPLE.TEST"
DOMAIN = "EXAMPLE"
NETBIOS_NAME = "DC1"
SUFFIX = "DC=example,DC=test"
ADMIN_DN = f"CN=Administrator,CN=Users,{SUFFIX}"
ADMIN_PASSWORD = "Admin-Passw0rd!"
SYNC_DN = f"CN=svc-sync,OU=service,{SUFFIX}"
SYNC_PASSWORD = "sync-secret"
PEOPLE = f"OU=people,{SUFFIX}"
GROUPS = f"OU=groups,{SUFFIX}"
# The big group: more members than AD's MaxValRange (1500 values of one attribute per read).
BULK = f"OU=bulk,{SUFFIX}"
BULK_GROUP = f"CN=big,{BULK}"
BULK_USERS = 1600
LDAP_PORT = 389  # inside the namespace; Samba cannot be told another

SAMBA_TOOLS = ("samba", "samba-tool", "ldbmodify")
CLIENT_TOOLS = ("ldapmodify", "ldapdelete", "ldapmodrdn", "ldapsearch")
NAMESPACE_TOOLS = ("unshare", "nsenter", "ip")
FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "ldap" / "ad"
SEED = ("org", "nesting", "escaping")
# Change when the recipe in _build_template changes, so cached templates are rebuilt.
TEMPLATE_RECIPE = "2"

# The forwarder, run inside the namespace: argv[1] is the inherited listening socket (on the
# host's 127.0.0.1), argv[2] the port to connect to inside. One thread per direction per
# connection; a connection Samba refuses is closed at once, as a stopped server would be.
_FORWARDER = r"""
import socket, sys, threading
listener = socket.socket(fileno=int(sys.argv[1]))
target = ("127.0.0.1", int(sys.argv[2]))

def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for sock in (src, dst):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

def serve(client):
    try:
        upstream = socket.create_connection(target, timeout=5)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    other = threading.Thread(target=pump, args=(client, upstream), daemon=True)
    other.start()
    pump(upstream, client)
    other.join()
    client.close()
    upstream.close()

while True:
    client, _ = listener.accept()
    threading.Thread(target=serve, args=(client,), daemon=True).start()
"""


_INSTALL = ("Samba's AD DC and the OpenLDAP client tools (Debian: apt-get install "
            "--no-install-recommends samba samba-ad-dc samba-ad-provision samba-dsdb-modules "
            "samba-vfs-modules ldb-tools ldap-utils)")


def _which(name: str) -> str:
    return find_tool(name, _INSTALL)


def find_samba() -> dict[str, str]:
    """Paths of samba, samba-tool, the ldb and OpenLDAP tools and the namespace tools;
    MissingServer when any is absent or when this process cannot make namespaces (not root)."""
    tools = {name: _which(name) for name in (*SAMBA_TOOLS, *CLIENT_TOOLS, *NAMESPACE_TOOLS)}
    if os.geteuid() != 0:
        raise MissingServer("Samba's AD DC runs here in a network namespace of its own, which "
                            "needs root; run the tests as root (CI does)")
    return tools


def encode_password(password: str) -> str:
    """unicodePwd's value: the password in double quotes, UTF-16LE, base64 for LDIF."""
    return base64.b64encode(f'"{password}"'.encode("utf-16-le")).decode("ascii")


def prepare_ldif(text: str) -> str:
    """LDIF with `unicodePwd: clear` (or `unicodePwd:: base64 of UTF-8 clear`) lines turned
    into what AD accepts. Fixtures keep passwords readable; AD wants them encoded."""
    def encode(match: re.Match[str]) -> str:
        value = match.group(2).strip()
        clear = base64.b64decode(value).decode("utf-8") if match.group(1) else value
        return f"unicodePwd:: {encode_password(clear)}"

    return re.sub(r"(?mi)^unicodePwd:(:?)(.*)$", encode, text)


def guid_from_base64(value: str) -> str:
    """objectGUID as ldapsearch prints it (base64 of the 16 bytes) -> the usual string form."""
    return str(uuid.UUID(bytes_le=base64.b64decode(value)))


def bulk_ldif(count: int = BULK_USERS) -> str:
    """OU=bulk with `count` users (enabled, no password) and CN=big listing all of them."""
    records = [f"dn: {BULK}\nobjectClass: organizationalUnit\nou: bulk\n"]
    for n in range(count):
        # 544 = NORMAL_ACCOUNT | PASSWD_NOTREQD: enabled, and allowed to have no password.
        records.append(f"dn: CN=bulk-{n:04d},{BULK}\nobjectClass: user\n"
                       f"sAMAccountName: bulk-{n:04d}\nuserAccountControl: 544\n")
    members = "".join(f"member: CN=bulk-{n:04d},{BULK}\n" for n in range(count))
    records.append(f"dn: {BULK_GROUP}\nobjectClass: group\nsAMAccountName: big\n{members}")
    return "\n".join(records)


def cache_root() -> Path:
    return Path(os.environ.get("DIRSYNC_TEST_CACHE") or Path.home() / ".cache" / "dirsync-tests")


class SambaAdServer(LdapTestServer):
    """A private Samba AD DC for one test run (or one test, for tests that crash it).

    `start()` copies the provisioned template the first time (building it if the cache has
    none), then starts samba in a new network namespace, the forwarder, and waits until the
    Administrator can bind through it. Usable as a context manager. `stop()` is a clean
    shutdown (SIGTERM to samba, which ends its workers), `kill()` a crash (SIGKILL to every
    process of the namespace); either way the forwarder and its listening socket go too, so
    connections are refused, as with a stopped server. Data goes in as the Administrator,
    `unicodePwd` in clear (see prepare_ldif); searches keep binary values (objectGUID,
    objectSid, invocationId) as base64 text and leave continuation references out.
    """

    label = "samba"
    admin_dn = ADMIN_DN
    admin_password = ADMIN_PASSWORD
    ready_poll_seconds = 0.1

    def __init__(self, *, startup_timeout: float = 60.0) -> None:
        self.tools = find_samba()
        self.startup_timeout = startup_timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.base_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None  # samba itself
        self._forwarder: subprocess.Popen[bytes] | None = None
        # Seconds the first start() took, and how much of it went into building the template
        # (0 when it came from the cache). Reported by the tests, for the CI budget.
        self.setup_seconds = 0.0
        self.template_seconds = 0.0

    # -- addresses -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"ldap://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._base / "samba.out"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> SambaAdServer:
        if self.running:
            return self
        if self.base_dir is None:
            clock = time.monotonic()
            template = self._template()
            base = Path(tempfile.mkdtemp(prefix="dirsync-samba-"))
            self.base_dir = base
            atexit.register(self.close)  # no orphaned samba if the run dies before teardown
            shutil.copytree(template, base / "domain", symlinks=True)
            _write_smb_conf(base / "domain")
            self.port = free_port(self.host)
            self._start_once()
            self.setup_seconds = time.monotonic() - clock
        else:
            self._start_once()
        return self

    # -- data ------------------------------------------------------------------------------
    def object_guid(self, dn: str) -> str:
        """The entry's objectGUID in its usual string form."""
        [(_, attrs)] = self.search(dn, attributes=["objectGUID"], scope="base")
        return guid_from_base64(attrs["objectguid"][0])

    # -- internals -------------------------------------------------------------------------
    def _template(self) -> Path:
        version = subprocess.run([self.tools["samba"], "-V"], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
        digest = hashlib.sha256(f"{version}\n{TEMPLATE_RECIPE}\n{BULK_USERS}\n".encode())
        for name in SEED:
            digest.update((FIXTURES_DIR / f"{name}.ldif").read_bytes())
        root = cache_root()
        template = root / f"samba-ad-{digest.hexdigest()[:16]}"
        if (template / "private" / "sam.ldb").is_file():
            return template
        clock = time.monotonic()
        root.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f"{template.name}.building-", dir=root))
        try:
            self._build_template(building)
            try:
                building.rename(template)
            except OSError:
                if not (template / "private" / "sam.ldb").is_file():
                    raise
                # Another test process built the same template meanwhile: use theirs.
        finally:
            shutil.rmtree(building, ignore_errors=True)
        self.template_seconds = time.monotonic() - clock
        return template

    def _build_template(self, target: Path) -> None:
        """Provision the domain into `target` and load the seed offline."""
        # A configuration of our own, so that provisioning copies nothing from the system's
        # /etc/samba/smb.conf into the new one and logs nowhere outside `target`. (It may not
        # be target/etc/smb.conf: provision refuses an existing smb.conf without shares.)
        provision_conf = target / "provision.conf"
        provision_conf.write_text(f"[global]\n\tlog file = {target}/log/provision.log\n"
                                  "\tlogging = file\n", encoding="utf-8")
        self._run([self.tools["samba-tool"], "domain", "provision",
                   f"--configfile={provision_conf}", f"--targetdir={target}",
                   f"--realm={REALM}", f"--domain={DOMAIN}", f"--host-name={NETBIOS_NAME}",
                   "--server-role=dc", "--dns-backend=NONE", f"--adminpass={ADMIN_PASSWORD}"],
                  what="samba-tool domain provision", timeout=300)
        provision_conf.unlink()
        # Provisioning wrote an smb.conf for all services; ours serves LDAP only.
        _write_smb_conf(target)
        policy = (f"dn: {SUFFIX}\nchangetype: modify\nreplace: pwdProperties\npwdProperties: 0\n"
                  "-\nreplace: minPwdLength\nminPwdLength: 0\n-\nreplace: pwdHistoryLength\n"
                  "pwdHistoryLength: 0\n-\nreplace: minPwdAge\nminPwdAge: 0\n-\n"
                  "replace: maxPwdAge\nmaxPwdAge: -9223372036854775808\n")
        seed = "\n".join(prepare_ldif((FIXTURES_DIR / f"{name}.ldif").read_text("utf-8"))
                         for name in SEED)
        for what, ldif in (("password policy", policy), ("seed", seed), ("bulk", bulk_ldif())):
            self._run([self.tools["ldbmodify"], f"--configfile={target / 'etc' / 'smb.conf'}",
                       "-H", str(target / "private" / "sam.ldb")],
                      what=f"ldbmodify ({what})", stdin=ldif, timeout=300)
        for name in ("run", "log", "cache"):
            shutil.rmtree(target / name, ignore_errors=True)

    def _start_once(self) -> None:
        base = self._base
        domain = base / "domain"
        for name in ("run", "log", "cache"):
            (domain / name).mkdir(exist_ok=True)
        log = self.log_path.open("ab")
        try:
            # unshare without --fork: sh, then samba, run as the very process Popen started,
            # so its pid is samba's and /proc/<pid>/ns/net names the new namespace.
            self._proc = subprocess.Popen(
                [self.tools["unshare"], "--net", "--", "/bin/sh", "-c",
                 f'{self.tools["ip"]} link set lo up && exec "$0" "$@"', self.tools["samba"],
                 "--foreground", "--no-process-group", "--debug-stdout",
                 f"--configfile={domain / 'etc' / 'smb.conf'}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd="/",
            )
        finally:
            log.close()
        try:
            self._start_forwarder()
            self._wait_ready()
        except BaseException:
            self._end(signal.SIGKILL)
            raise

    def _start_forwarder(self) -> None:
        assert self._proc is not None
        # Until unshare has made the namespace and sh has brought lo up and exec'd samba,
        # /proc/<pid>/ns/net is still the host's: a forwarder started then would forward to
        # the host's own port 389. Wait for the exec.
        samba = os.path.realpath(self.tools["samba"])
        deadline = time.monotonic() + self.startup_timeout
        while _executable_of(self._proc.pid) != samba:
            if self._proc.poll() is not None:
                raise ServerError(f"samba exited while starting\n--- server log ---\n"
                                  f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServerError("samba was not started in its network namespace within "
                                  f"{self.startup_timeout:.0f}s\n{self.log_tail()}")
            time.sleep(0.01)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind((self.host, self.port))
            except OSError as exc:
                raise ServerError(f"cannot listen on {self.host}:{self.port} again for "
                                  f"Samba: {exc}") from exc
            listener.listen(64)
            self._forwarder = subprocess.Popen(
                [self.tools["nsenter"], f"--net=/proc/{self._proc.pid}/ns/net", "--",
                 sys.executable, "-c", _FORWARDER, str(listener.fileno()), str(LDAP_PORT)],
                pass_fds=(listener.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
            )
        finally:
            listener.close()  # the forwarder holds it now

    def _prepare(self, ldif: str) -> str:
        return prepare_ldif(ldif)

    def _parse(self, ldif: str) -> list[tuple[str, dict[str, list[str]]]]:
        # A continuation reference comes as a block with only `ref:` lines.
        return [(dn, attrs) for dn, attrs in parse_ldif(_base64_binary(ldif))
                if dn or set(attrs) != {"ref"}]

    def _ready_argv(self) -> list[str]:
        # Ready when the Administrator can bind and read the root DSE through the forwarder.
        return [self.tools["ldapsearch"], *self._client_args(), "-o", "nettimeout=2", "-LLL",
                "-b", "", "-s", "base", "(objectClass=*)", "highestCommittedUSN"]

    def _is_ready(self, answer: subprocess.CompletedProcess[str]) -> bool:
        return answer.returncode == 0 and "highestCommittedUSN" in answer.stdout

    def _end(self, sig: signal.Signals) -> None:
        samba, self._proc = self._proc, None
        forwarder, self._forwarder = self._forwarder, None
        namespace = _namespace_of(samba.pid) if samba is not None else None
        # The forwarder first: from then on connections are refused, not left hanging.
        for proc in (forwarder, samba):
            end_process(proc, sig, self.startup_timeout)
        if namespace is not None:
            # samba's workers: it ends them itself on SIGTERM, but a SIGKILL leaves them to
            # notice on their own. Every process left in the namespace is one of ours.
            _empty_namespace(namespace, grace=10.0 if sig == signal.SIGTERM else 0.0)


def _executable_of(pid: int) -> str | None:
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None


def _namespace_of(pid: int) -> str | None:
    """The network namespace of a process ("net:[4026532...]"), or None when it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _empty_namespace(namespace: str, *, grace: float) -> None:
    """Wait until no process is left in `namespace`, killing what is left after `grace`
    seconds. Only processes of a namespace this harness made are ever signalled."""
    if namespace == _namespace_of(os.getpid()):
        return  # never the test process's own namespace
    started = time.monotonic()
    while True:
        members = [int(entry.name) for entry in Path("/proc").iterdir()
                   if entry.name.isdigit() and _namespace_of(int(entry.name)) == namespace]
        if not members:
            return
        waited = time.monotonic() - started
        if waited > grace + 10:
            raise ServerError(f"processes {members} of Samba's namespace would not exit")
        if waited >= grace:
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.05)


def _base64_binary(text: str) -> str:
    """Keep ldapsearch's base64 values of binary attributes (objectGUID, objectSid,
    invocationId) as base64 text, so parse_ldif does not try to decode them as UTF-8."""
    out = []
    for line in text.splitlines():
        name, sep, value = line.partition(":: ")
        if sep and name.lower() in _BINARY:
            line = f"{name}: {value}"
        out.append(line)
    return "\n".join(out) + "\n"


_BINARY = {"objectguid", "objectsid", "invocationid", "msds-consistencyguid"}


def _write_smb_conf(domain: Path) -> None:
    """The smb.conf of a domain directory: every path inside it, only the LDAP service."""
    (domain / "etc").mkdir(parents=True, exist_ok=True)
    (domain / "etc" / "smb.conf").write_text(f"""\
[global]
	netbios name = {NETBIOS_NAME}
	workgroup = {DOMAIN}
	realm = {REALM}
	server role = active directory domain controller
	server services = ldap
	interfaces = 127.0.0.1
	bind interfaces only = yes
	private dir = {domain}/private
	binddns dir = {domain}/bind-dns
	lock directory = {domain}
	state directory = {domain}/state
	cache directory = {domain}/cache
	pid directory = {domain}/run
	ncalrpc dir = {domain}/run/ncalrpc
	log file = {domain}/log/samba.log
	logging = file
	log level = 1
	ldap server require strong auth = no
	tls enabled = no
""", encoding="utf-8")

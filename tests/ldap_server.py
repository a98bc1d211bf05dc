"""What the LDAP servers the tests start have in common: slapd (slapd.py), 389 DS (ds389.py)
and Samba's AD DC (samba_ad.py) each run as one child process in the foreground, are ready
when their administrator can bind, stop cleanly (SIGTERM) or crash (SIGKILL), and take their
data through the OpenLDAP client tools. Each module keeps only what differs: how the
instance is built and started, and its own accounts and tools.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Sequence

from servers import ManagedServer, MissingServer, ServerError


def find_tool(name: str, install: str, fallback: str | None = None) -> str:
    """The path of a server or client program (on PATH, else `fallback`); MissingServer
    naming `install` (what to install, and how) when there is none."""
    found = shutil.which(name) or (fallback if fallback and os.access(fallback, os.X_OK) else None)
    if not found:
        raise MissingServer(f"{name} is not installed; install {install}")
    return found


def parse_ldif(text: str) -> list[tuple[str, dict[str, list[str]]]]:
    """(dn, {attribute: values}) per entry of `ldapsearch -LLL` output. Attribute names are
    lower-cased; base64 values are decoded as UTF-8."""
    entries: list[tuple[str, dict[str, list[str]]]] = []
    for block in text.split("\n\n"):
        lines: list[str] = []
        for line in block.splitlines():
            if line.startswith(" ") and lines:
                lines[-1] += line[1:]  # folded continuation
            elif line and not line.startswith("#"):
                lines.append(line)
        if not lines:
            continue
        dn = ""
        attrs: dict[str, list[str]] = {}
        for line in lines:
            name, _, value = line.partition(":")
            if value.startswith(":"):
                value = base64.b64decode(value[1:].strip()).decode("utf-8")
            else:
                value = value[1:] if value.startswith(" ") else value
            if name.lower() == "dn":
                dn = value
            else:
                attrs.setdefault(name.lower(), []).append(value)
        entries.append((dn, attrs))
    return entries


class LdapTestServer(ManagedServer):
    """Base of the LDAP test servers. Subclasses set `label` (for messages), `admin_dn`,
    `admin_password`, and in __init__ `tools` (tool name -> path), `startup_timeout`,
    `base_dir` and `_proc`; they provide `url`, `log_path`, `start()` and `_start_once()`."""

    label = "server"
    admin_dn = ""
    admin_password = ""
    # Options for ldapdelete (slapd adds -M so referral objects are deleted, not followed).
    delete_options: tuple[str, ...] = ()
    run_timeout = 120.0
    ready_poll_seconds = 0.05
    tools: dict[str, str]
    startup_timeout: float
    base_dir: Path | None
    _proc: subprocess.Popen[bytes] | None

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        proc = self._process()
        return proc is not None and proc.poll() is None

    @property
    def _base(self) -> Path:
        if self.base_dir is None:
            raise ServerError(f"{self.label} has not been started yet")
        return self.base_dir

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """A clean shutdown (SIGTERM)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """A crash (SIGKILL): connections are cut mid-answer."""
        self._end(signal.SIGKILL)

    def _halt(self) -> None:
        self.kill()

    # -- data ------------------------------------------------------------------------------
    def load_ldif(self, source: str | Path) -> None:
        """Load LDIF (a path, or LDIF text) through ldapmodify -a as the administrator, so
        overlays and plugins apply and change records work."""
        path = Path(source) if isinstance(source, Path) else None
        self.modify(path.read_text(encoding="utf-8") if path else str(source), add=True)

    def modify(self, ldif: str, *, add: bool = False) -> None:
        """ldapmodify as the administrator; `add=True` treats records without changetype as
        adds."""
        argv = [self.tools["ldapmodify"], *self._client_args()]
        if add:
            argv.append("-a")
        self._run(argv, what="ldapmodify", stdin=self._prepare(ldif))

    def modrdn(self, dn: str, new_rdn: str, new_superior: str | None = None) -> None:
        """Rename (and with `new_superior`, move) an entry; the old RDN value is removed."""
        argv = [self.tools["ldapmodrdn"], *self._client_args(), "-r"]
        if new_superior:
            argv += ["-s", new_superior]
        self._run([*argv, dn, new_rdn], what="ldapmodrdn")

    def delete(self, dn: str, *, recursive: bool = False) -> None:
        argv = [self.tools["ldapdelete"], *self._client_args(), *self.delete_options]
        if recursive:
            argv.append("-r")
        self._run([*argv, dn], what="ldapdelete")

    def search(
        self, base: str, search_filter: str = "(objectClass=*)", attributes: Sequence[str] = (),
        *, scope: str = "sub", bind_dn: str | None | Any = ..., password: str | None = None,
        page_size: int = 0,
    ) -> list[tuple[str, dict[str, list[str]]]]:
        """ldapsearch (as the administrator by default, anonymously with bind_dn=None, paged
        with page_size); entries as parse_ldif returns them. A non-zero exit raises
        ServerError naming the exit code, which is the LDAP result code."""
        if bind_dn is ...:
            bind_dn = self.admin_dn
        auth = (self._client_args(bind_dn, password or self.admin_password) if bind_dn
                else ["-x", "-H", self.url])
        paging = ["-E", f"pr={page_size}/noprompt"] if page_size else []
        out = self._run([self.tools["ldapsearch"], *auth, *paging, "-LLL", "-o",
                         "ldif-wrap=no", "-b", base, "-s", scope, search_filter, *attributes],
                        what="ldapsearch")
        return self._parse(out)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except (OSError, ServerError):
            return "(no server log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- for subclasses ----------------------------------------------------------------------
    def _prepare(self, ldif: str) -> str:
        """LDIF as the server takes it (Samba encodes clear-text passwords)."""
        return ldif

    def _parse(self, ldif: str) -> list[tuple[str, dict[str, list[str]]]]:
        return parse_ldif(ldif)

    def _process(self) -> subprocess.Popen[bytes] | None:
        """The process whose exit means the server is down."""
        return self._proc

    def _ready_argv(self) -> list[str]:
        return [self.tools["ldapwhoami"], *self._client_args(), "-o", "nettimeout=2"]

    def _is_ready(self, answer: subprocess.CompletedProcess[str]) -> bool:
        return answer.returncode == 0

    # -- internals -------------------------------------------------------------------------
    def _client_args(self, dn: str | None = None, password: str | None = None) -> list[str]:
        # -x simple bind; LDAPNOINIT in client_env keeps ~/.ldaprc and /etc/ldap/ldap.conf out.
        return ["-x", "-H", self.url, "-D", dn or self.admin_dn,
                "-w", password or self.admin_password]

    def _wait_ready(self) -> None:
        """Ready when the administrator can bind: listening alone is not enough, the
        databases must be open."""
        deadline = time.monotonic() + self.startup_timeout
        argv = self._ready_argv()
        last = ""
        while time.monotonic() < deadline:
            proc = self._process()
            assert proc is not None
            if proc.poll() is not None:
                self._end(signal.SIGKILL)
                raise ServerError(f"{self.label} exited while starting\n--- server log ---\n"
                                  f"{self.log_tail()}")
            answer = subprocess.run(argv, capture_output=True, text=True, env=client_env(),
                                    timeout=10)
            if self._is_ready(answer):
                return
            last = answer.stderr.strip()
            time.sleep(self.ready_poll_seconds)
        self._end(signal.SIGKILL)
        raise ServerError(f"{self.label} on {self.url} did not accept a bind within "
                          f"{self.startup_timeout:.0f}s: {last}\n--- server log ---\n"
                          f"{self.log_tail()}")

    def _end(self, sig: signal.Signals) -> None:
        proc, self._proc = self._proc, None
        end_process(proc, sig, self.startup_timeout)

    def _run(self, argv: list[str], *, what: str, stdin: str | None = None,
             timeout: float | None = None) -> str:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                              env=client_env(), timeout=timeout or self.run_timeout, cwd="/")
        if proc.returncode != 0:
            raise ServerError(f"{what} failed (exit {proc.returncode}): "
                              f"{proc.stderr.strip()[-2000:] or proc.stdout.strip()[-2000:]}")
        return proc.stdout


def end_process(proc: subprocess.Popen[Any] | None, sig: signal.Signals, grace: float) -> None:
    """Signal a child and reap it; SIGKILL when it outlives `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def client_env() -> dict[str, str]:
    # LDAPNOINIT: ignore ldap.conf and ~/.ldaprc, whose URI/BASE/TLS settings would otherwise
    # redirect the tools; LDAP* variables of the caller likewise.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDAP")}
    env["LDAPNOINIT"] = "1"
    return env

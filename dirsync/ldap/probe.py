"""`dirsync directory test NAME`: check a directory configuration step by step.

Each step is one CheckResult with one clear sentence; a failed step explains itself and the
steps that depend on it are reported as skipped, so an administrator sees the first real
problem rather than a cascade. Steps:

1. connection (and TLS) to each configured URL, one result per URL;
2. bind as the configured account (or anonymously);
3. each base DN exists and is visible to that account;
4. how many entries the user filter and the group filter match (none is a failure).

Nothing is written to the directory or the store.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from dirsync.ldap.config import DirectoryConfig
from dirsync.ldap.connection import bound, close_quietly, open_connection
from dirsync.ldap.errors import LdapError, TlsFailure
from dirsync.ldap.filters import entry_filter
from dirsync.ldap.paging import NO_ATTRIBUTES, count_entries, read_entry

OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    check: str  # "connection", "tls", "bind", "user base", "group base", "user filter", ...
    status: str  # OK, FAILED or SKIPPED
    message: str
    count: int | None = None  # entries matched, for the filter checks

    @property
    def ok(self) -> bool:
        return self.status == OK


def test_directory(config: DirectoryConfig) -> list[CheckResult]:
    """Run every check against the directory; never raises for a directory problem."""
    results: list[CheckResult] = []
    reachable = False
    for url in config.urls:
        single = dataclasses.replace(config, urls=(url,))
        secured = url.tls or config.start_tls
        kind = "tls" if secured else "connection"
        try:
            conn = open_connection(single, bind=False, doing="connecting")
        except TlsFailure as exc:
            results.append(CheckResult("tls", FAILED, exc.reason))
            continue
        except LdapError as exc:
            results.append(CheckResult("connection", FAILED, exc.reason))
            continue
        close_quietly(conn)
        reachable = True
        how = ("with StartTLS, certificate verified" if config.start_tls and not url.tls
               else "over TLS, certificate verified" if url.tls else "without TLS")
        if secured and not config.verify:
            how = how.replace("certificate verified", "certificate NOT verified (verify = false)")
        results.append(CheckResult(kind, OK, f"connected to {url} {how}"))
    if not reachable:
        results.append(CheckResult("bind", SKIPPED, "no server could be reached"))
        return results

    who = f"as {config.bind_dn}" if config.bind_dn else "anonymously"
    try:
        conn = open_connection(config, config.bind_dn, config.bind_password, doing="binding")
    except LdapError as exc:
        results.append(CheckResult("bind", FAILED, exc.reason))
        return results
    close_quietly(conn)
    results.append(CheckResult("bind", OK, f"bound {who}"))

    try:
        with bound(config, doing="binding") as conn:
            bases = [("user base", config.user_base_dn, "user_base_dn")]
            if config.group_base_dn.lower() != config.user_base_dn.lower():
                bases.append(("group base", config.group_base_dn, "group_base_dn"))
            base_ok = {}
            for check, base, key in bases:
                entry = read_entry(conn, config, base, [NO_ATTRIBUTES], what=key)
                if entry is None:
                    results.append(CheckResult(check, FAILED, f"{key} '{base}' does not exist, or "
                                               f"the account bound {who} may not see it"))
                else:
                    results.append(CheckResult(check, OK, f"{key} '{base}' exists"))
                base_ok[base] = entry is not None
            for check, base, object_class, extra, what in (
                ("user filter", config.user_base_dn, config.user_object_class,
                 config.user_filter, "users"),
                ("group filter", config.group_base_dn, config.group_object_class,
                 config.group_filter, "groups"),
            ):
                search_filter = entry_filter(object_class, extra)
                if not base_ok.get(base, True):
                    results.append(CheckResult(check, SKIPPED, f"the base '{base}' is missing"))
                    continue
                try:
                    count = count_entries(conn, config, base, search_filter, what=what)
                except LdapError as exc:
                    results.append(CheckResult(check, FAILED, exc.reason))
                    continue
                if count == 0:
                    results.append(CheckResult(
                        check, FAILED, f"{search_filter} matches nothing under '{base}'; check "
                        f"the object class and filter, or the account's read access", 0))
                else:
                    results.append(CheckResult(
                        check, OK, f"{search_filter} matches {count} {what} under '{base}'",
                        count))
    except LdapError as exc:
        results.append(CheckResult("search", FAILED, exc.reason))
    return results


test_directory.__test__ = False  # type: ignore[attr-defined]  # not a pytest test

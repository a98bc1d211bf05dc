"""LDAP result codes (RFC 4511 section 4.1.9) -> our errors. Pure: one table, one function.

Only code 0 is success for a read. In particular sizeLimitExceeded (4) and timeLimitExceeded
(3) come back with *some* entries, and ldap3 does not raise for them even with
raise_exceptions=True; here they are errors like any other, so that nobody mistakes the
entries that did arrive for the whole directory.
"""

from __future__ import annotations

from dirsync.ldap.errors import (
    BaseDnMissing,
    BindRejected,
    DirectoryOperationFailed,
    DirectoryUnreachable,
    LdapError,
    LimitExceeded,
    PagingIncomplete,
    ReferralNotFollowed,
)

SUCCESS = 0
TIME_LIMIT_EXCEEDED = 3
SIZE_LIMIT_EXCEEDED = 4
REFERRAL = 10
ADMIN_LIMIT_EXCEEDED = 11
UNAVAILABLE_CRITICAL_EXTENSION = 12
NO_SUCH_OBJECT = 32
INVALID_CREDENTIALS = 49
INSUFFICIENT_ACCESS = 50
BUSY = 51
UNAVAILABLE = 52
UNWILLING_TO_PERFORM = 53

# code -> (error class, what it means, what to do about it)
_TABLE: dict[int, tuple[type[LdapError], str, str]] = {
    TIME_LIMIT_EXCEEDED: (
        LimitExceeded, "the server's time limit was exceeded",
        "raise the time limit for the bind account (OpenLDAP: limits ... time=unlimited)"),
    SIZE_LIMIT_EXCEEDED: (
        LimitExceeded, "the server's size limit was exceeded, so only part of the entries "
        "arrived", "give the bind account an unlimited size limit (OpenLDAP: limits dn.exact=... "
        "size=unlimited; 389 DS: nsSizeLimit: -1)"),
    REFERRAL: (
        ReferralNotFollowed, "the server answered with a referral to another server",
        "point the base DN and URLs at the server that holds the entries (dirsync does not "
        "follow referrals)"),
    ADMIN_LIMIT_EXCEEDED: (
        LimitExceeded, "an administrative limit was exceeded (often: page size above what the "
        "bind account may request, or a look-through limit)",
        "lower page_size or raise the account's limits"),
    UNAVAILABLE_CRITICAL_EXTENSION: (
        PagingIncomplete, "the server does not support paged results (RFC 2696)",
        "use a server or proxy that supports the paged results control"),
    NO_SUCH_OBJECT: (
        BaseDnMissing, "the entry does not exist, or the bind account may not see it",
        "check the base DN for typos and the bind account's read access"),
    INVALID_CREDENTIALS: (
        BindRejected, "the bind DN or password was refused",
        "check bind_dn and the password in bind_password_env / bind_password_file"),
    INSUFFICIENT_ACCESS: (
        DirectoryOperationFailed, "the bind account lacks the access rights for this",
        "grant the bind account read access to the users and groups"),
    BUSY: (
        DirectoryUnreachable, "the server is busy", "try again later"),
    UNAVAILABLE: (
        DirectoryUnreachable, "the server is unavailable (shutting down or read-only replica "
        "without a provider)", "try again later or list another server in urls"),
    UNWILLING_TO_PERFORM: (
        DirectoryOperationFailed, "the server is unwilling to perform the operation", ""),
}


def error_for_result(
    directory: str, code: int, description: str, message: str, doing: str
) -> LdapError:
    """The error for a non-success result of `doing` (e.g. "searching users under ou=people,...").
    The server's own diagnostic message is appended, since it often names the exact cause."""
    cls, meaning, fix = _TABLE.get(
        code, (DirectoryOperationFailed, f"the server answered {description or 'an error'}", "")
    )
    text = f"{doing} failed: {meaning} (LDAP result {code} {description}"
    text += f": {message.strip()})" if message and message.strip() else ")"
    if fix:
        text += f"; {fix}"
    return cls(directory, text, result_code=code)

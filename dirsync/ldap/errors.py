"""Why reading from (or binding to) a directory failed. Pure: no ldap3 here.

    DirsyncError
    ├── LdapError                        names the directory; `result_code` when the server sent one
    │   ├── DirectoryUnreachable         no URL answered (refused, timed out, name unknown)
    │   │   ├── ConnectionLost           the server went away in the middle of an operation
    │   │   └── OperationTimedOut        no answer within operation_timeout
    │   ├── TlsFailure                   handshake, certificate verification or StartTLS failed
    │   ├── BindRejected                 the service account's bind DN or password was refused
    │   ├── BaseDnMissing                a configured base DN does not exist (or is hidden)
    │   ├── IncompleteRead               the server did not hand over everything asked for
    │   │   ├── LimitExceeded            size, time or administrative limit (4, 3, 11)
    │   │   ├── PagingIncomplete         paged results (RFC 2696) or range retrieval broke off
    │   │   ├── ReferralNotFollowed      the answer points to another server (10, references)
    │   │   └── UnexpectedEmptyResult    a search that must find entries found none
    │   └── DirectoryOperationFailed     any other result code (insufficient access, ...)
    └── FullSyncRequired                 an incremental read cannot promise a correct result

Every LdapError means "this read cannot be trusted": a caller must never turn it into an
empty or partial directory (the mass deletions of other connectors started exactly there).
Messages are sentences naming the directory, what was being done and, where we can, the fix.
They never contain a password.

FullSyncRequired is deliberately *not* an LdapError: it does not mean the directory failed, it
means "the changes since this token cannot be read correctly, do a full sync instead" (another
server, a changed configuration, a change log that no longer reaches back far enough, ...).
A caller that treats every LdapError as "stale, try later" must not swallow it as one.
"""

from __future__ import annotations

from dirsync.errors import DirsyncError


class LdapError(DirsyncError):
    """A directory operation failed; the message says which directory, what and why."""

    def __init__(self, directory: str, message: str, *, result_code: int | None = None) -> None:
        super().__init__(f"directory '{directory}': {message}")
        self.directory = directory
        self.reason = message
        self.result_code = result_code


class DirectoryUnreachable(LdapError):
    """No configured URL could be reached, or the server said it is busy or unavailable."""


class ConnectionLost(DirectoryUnreachable):
    """The connection broke while an operation was under way."""


class OperationTimedOut(DirectoryUnreachable):
    """The server did not answer within the configured operation timeout."""


class TlsFailure(LdapError):
    """TLS could not be set up: certificate not trusted, wrong host name, StartTLS refused."""


class BindRejected(LdapError):
    """The directory refused the configured bind DN and password."""


class BaseDnMissing(LdapError):
    """A configured base DN does not exist, or the bind account may not see it."""


class IncompleteRead(LdapError):
    """The directory answered, but not with everything that was asked for."""


class LimitExceeded(IncompleteRead):
    """A size, time or administrative limit cut the search short."""


class PagingIncomplete(IncompleteRead):
    """Paged results or attribute range retrieval did not run to the end."""


class ReferralNotFollowed(IncompleteRead):
    """Part of the answer lives on another server and dirsync does not follow referrals."""


class UnexpectedEmptyResult(IncompleteRead):
    """A search that must return entries (all users of a directory) returned none."""


class DirectoryOperationFailed(LdapError):
    """The server refused an operation for a reason not covered above."""


class FullSyncRequired(DirsyncError):
    """An incremental read cannot guarantee the result a full read would give; `reason` says
    why, in a sentence fit for the sync status ("the token was taken from ldap://a, ...")."""

    def __init__(self, directory: str, reason: str) -> None:
        super().__init__(f"directory '{directory}': full sync required: {reason}")
        self.directory = directory
        self.reason = reason

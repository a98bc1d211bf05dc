"""The exception tree. Each error a client can see carries its Crowd reason.

    DirsyncError
    ├── ConfigError                  bad configuration, names the key (never reaches a client)
    ├── FixtureError                 bad fixture input, names file, entry, problem
    └── CrowdError                   client-visible; `reason` is a Crowd ErrorEntity reason
        ├── IllegalArgument          ILLEGAL_ARGUMENT
        ├── UserNotFound             USER_NOT_FOUND
        │   └── UnknownUserAtLogin   USER_NOT_FOUND, as POST /authentication answers it
        ├── GroupNotFound            GROUP_NOT_FOUND
        ├── MembershipNotFound       MEMBERSHIP_NOT_FOUND
        ├── InvalidUserAuthentication INVALID_USER_AUTHENTICATION
        ├── InactiveAccount          INACTIVE_ACCOUNT
        ├── ReadOnly                 APPLICATION_PERMISSION_DENIED
        ├── EventTokenExpired        EVENT_TOKEN_EXPIRED
        └── OperationFailed          OPERATION_FAILED

The HTTP status of a CrowdError is looked up in one table in `dirsync.crowd.errors`; this module
knows nothing about HTTP. Only reasons from the client's enum are used (crowd-protocol §1.3): an
unknown reason unmarshals to null in the Java client.
"""

from __future__ import annotations


class DirsyncError(Exception):
    """Root of every error dirsync raises on purpose."""


class ConfigError(DirsyncError):
    """A configuration value is missing or wrong; the message names the key and the fix."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"configuration key '{key}': {message}")
        self.key = key


class FixtureError(DirsyncError):
    """A fixture file cannot be loaded; nothing of it was applied."""

    def __init__(self, path: str, entry: str | None, message: str) -> None:
        where = f"{path}: {entry}" if entry else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.entry = entry


class CrowdError(DirsyncError):
    reason = "OPERATION_FAILED"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IllegalArgument(CrowdError):
    reason = "ILLEGAL_ARGUMENT"


class UserNotFound(CrowdError):
    reason = "USER_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"User <{name}> does not exist")


class UnknownUserAtLogin(UserNotFound):
    """USER_NOT_FOUND from POST /authentication: Crowd's docs show 400 there, not 404."""


class GroupNotFound(CrowdError):
    reason = "GROUP_NOT_FOUND"

    def __init__(self, name: str) -> None:
        super().__init__(f"Group <{name}> does not exist")


class MembershipNotFound(CrowdError):
    reason = "MEMBERSHIP_NOT_FOUND"

    def __init__(self, child: str, parent: str) -> None:
        super().__init__(f"The child entity <{child}> is not a member of the parent <{parent}>")


class InvalidUserAuthentication(CrowdError):
    reason = "INVALID_USER_AUTHENTICATION"

    def __init__(self, name: str) -> None:
        super().__init__(f"Account with name <{name}> failed to authenticate")


class InactiveAccount(CrowdError):
    reason = "INACTIVE_ACCOUNT"

    def __init__(self, name: str) -> None:
        super().__init__(f"Account with name <{name}> is inactive")


class ReadOnly(CrowdError):
    reason = "APPLICATION_PERMISSION_DENIED"

    def __init__(self) -> None:
        super().__init__(
            "This directory is read-only: dirsync mirrors its users and groups from fixtures "
            "or LDAP. Change them at the source, or set the directory to Read Only in the client."
        )


class EventTokenExpired(CrowdError):
    reason = "EVENT_TOKEN_EXPIRED"


class OperationFailed(CrowdError):
    reason = "OPERATION_FAILED"

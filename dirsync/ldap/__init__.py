"""Reading LDAP directories (OpenLDAP, 389 DS, Active Directory) and binding to them.

The only package that imports ldap3, and only in `connection` (which `paging`, `read`,
`changes`, `bind` and `probe` go through). Everything else here is pure and importable without
a network or ldap3:

* `config`   — the `[[directories]]` configuration, presets, validation (pure)
* `errors`   — why a read or bind failed (pure)
* `filters`  — the one place LDAP filter values are escaped (pure)
* `entries`  — search results -> model Users and Groups (pure)
* `members`  — member values -> memberships, duplicate names, diagnostics (pure)
* `ranges`   — Active Directory range retrieval bookkeeping (pure)
* `watermark` — incremental sync tokens: CSN marks, settle windows, the AD USN guard (pure)
* `delta`    — what an incremental read's answers mean: member refs, scope, the accesslog (pure)
* `connection`, `paging` — opening a bound connection; paged, fully checked searches
* `read`     — a full read of one directory into a `dirsync.model.Snapshot`
* `changes`  — incremental reads: `initial_token`, `read_changes` -> IncrementalRead
* `bind`     — checking a user's password by binding as the user
* `probe`    — `dirsync directory test NAME`

This file only re-exports the pure names, so importing `dirsync.ldap` stays cheap.
"""

from dirsync.ldap.config import DIRECTORY_KEYS, DirectoryConfig, parse_directories
from dirsync.ldap.errors import FullSyncRequired, IncompleteRead, LdapError

__all__ = [
    "DIRECTORY_KEYS",
    "DirectoryConfig",
    "FullSyncRequired",
    "IncompleteRead",
    "LdapError",
    "parse_directories",
]

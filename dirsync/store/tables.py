"""The schema. SQLAlchemy Core tables; the same on SQLite and PostgreSQL.

Layout decisions:
* Names are unique by `name_key` (Unicode casefold) across the whole store, because a Crowd
  client must never see two users (or groups) whose names differ only by case. When several
  directories are mirrored, the first directory that claims a name owns it.
* Each user and group has a stable `external_id` within its directory (entryUUID, objectGUID,
  a fixture id, or a generated UUID). The Crowd `<key>` is "<directory id>:<external id>", so a
  rename keeps the key.
* `*_key` columns hold casefolded copies of searchable text, so that searches are
  case-insensitive for all of Unicode on both databases (SQLite's lower() is ASCII-only).
* `journal` holds one row per change, written in the change's own transaction (see
  dirsync/store/journal.py). Rows name store ids, not names, except `old_name`: the name an
  entity had before an update or delete, which is the name a client still knows it by.
* `schema_info` also holds the store's `epoch` (a random id chosen when the store is created,
  part of every event token) and `journal_trimmed_through` (the highest trimmed seq).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 3

metadata = MetaData()

# Long enough for anything an LDAP server holds in practice; Crowd clients cut at 255.
NAME = String(255)
TEXT = String(1024)
# BigInteger ids on PostgreSQL; SQLite only makes INTEGER PRIMARY KEY a rowid alias.
ID = BigInteger().with_variant(Integer(), "sqlite")

schema_info = Table(
    "schema_info",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(255), nullable=False),
)

directories = Table(
    "directories",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", NAME, nullable=False, unique=True),
    Column("kind", String(32), nullable=False),  # "fixtures" | "ldap"
    Column("created_at", DateTime(timezone=True), nullable=False),
    # LDAP: where the next incremental read starts (dirsync.ldap.changes tokens), and how
    # many incremental rounds ran since the last full sync.
    Column("sync_token", Text, nullable=True),
    Column("incremental_rounds", Integer, nullable=False, default=0),
    sqlite_autoincrement=True,
)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("directory_id", ID, ForeignKey("directories.id"), nullable=False),
    Column("external_id", NAME, nullable=False),
    Column("name", NAME, nullable=False),
    Column("name_key", NAME, nullable=False, unique=True),
    Column("first_name", TEXT, nullable=False, default=""),
    Column("last_name", TEXT, nullable=False, default=""),
    Column("display_name", TEXT, nullable=False, default=""),
    Column("email", TEXT, nullable=False, default=""),
    Column("first_name_key", TEXT, nullable=False, default=""),
    Column("last_name_key", TEXT, nullable=False, default=""),
    Column("display_name_key", TEXT, nullable=False, default=""),
    Column("email_key", TEXT, nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("password_hash", String(512), nullable=True),
    Column("dn", Text, nullable=True),
    # dirsync.dn.dn_key(dn): how an incremental sync finds the members a group names
    Column("dn_key", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("directory_id", "external_id", name="uq_users_directory_external"),
    sqlite_autoincrement=True,
)
Index("ix_users_email_key", users.c.email_key)
Index("ix_users_dn_key", users.c.directory_id, users.c.dn_key)

user_attributes = Table(
    "user_attributes",
    metadata,
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("value", Text, nullable=False),
)

groups = Table(
    "groups",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("directory_id", ID, ForeignKey("directories.id"), nullable=False),
    Column("external_id", NAME, nullable=False),
    Column("name", NAME, nullable=False),
    Column("name_key", NAME, nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("description_key", Text, nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("dn", Text, nullable=True),
    Column("dn_key", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("directory_id", "external_id", name="uq_groups_directory_external"),
    sqlite_autoincrement=True,
)

Index("ix_groups_dn_key", groups.c.directory_id, groups.c.dn_key)

group_attributes = Table(
    "group_attributes",
    metadata,
    Column("group_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("name", NAME, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("value", Text, nullable=False),
)

# Memberships are their primary key and nothing else: on SQLite a WITHOUT ROWID table is that
# key's B-tree alone, where a rowid table keeps the pairs twice (the table and its key's
# index): a third less to write and cache for a million pairs (schema version 3; `dirsync
# init` rebuilds the tables of older stores, dirsync/store/db.py).
user_memberships = Table(
    "user_memberships",
    metadata,
    Column("group_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sqlite_with_rowid=False,
)
Index("ix_user_memberships_user", user_memberships.c.user_id, user_memberships.c.group_id)

group_memberships = Table(
    "group_memberships",
    metadata,
    Column("parent_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("child_id", ID, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    sqlite_with_rowid=False,
)
Index("ix_group_memberships_child", group_memberships.c.child_id, group_memberships.c.parent_id)

applications = Table(
    "applications",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("name", NAME, nullable=False),
    Column("name_key", NAME, nullable=False, unique=True),
    Column("password_hash", String(512), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    sqlite_autoincrement=True,
)

application_networks = Table(
    "application_networks",
    metadata,
    Column(
        "application_id", ID, ForeignKey("applications.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("network", String(64), primary_key=True),  # normalised CIDR, e.g. 10.0.0.0/8
)

# The event feed's journal. seq is allocated in commit order because writes are serialised
# (dirsync/store/db.py); AUTOINCREMENT keeps SQLite from reusing seqs after a trim.
journal = Table(
    "journal",
    metadata,
    Column("seq", ID, primary_key=True, autoincrement=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("kind", String(16), nullable=False),  # user | group | user_membership | group_membership
    Column("operation", String(8), nullable=False),  # created | updated | deleted
    Column("subject_id", ID, nullable=False),  # the entity, or the member (user or child group)
    Column("parent_id", ID, nullable=True),  # memberships: the parent group
    Column("old_name", NAME, nullable=True),  # entities: the name before an update or delete
    Column("removed_attributes", Text, nullable=True),  # JSON list of attribute names
    sqlite_autoincrement=True,
)
Index("ix_journal_created_at", journal.c.created_at)

# One row per sync of a directory (fixture load or LDAP round).
sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("directory_id", ID, ForeignKey("directories.id"), nullable=False),
    Column("mode", String(16), nullable=False),  # full | incremental | fixtures
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("status", String(16), nullable=False),  # ok | failed | refused
    Column("added", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("deleted", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    # What the operator should know about a run that worked: name conflicts, members outside
    # the configured scope, entries skipped.
    Column("notes", Text, nullable=True),
    sqlite_autoincrement=True,
)
Index("ix_sync_runs_directory", sync_runs.c.directory_id, sync_runs.c.id)

"""dirsync: a Crowd-compatible user server over a SQL store mirrored from LDAP or fixtures."""

__version__ = "0.1.0"

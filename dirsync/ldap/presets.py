"""Conventional defaults per directory server: OpenLDAP, 389 Directory Server, Active Directory.

Pure data. A preset fills in every setting the configuration leaves out; any of them can be
overridden per directory. The choices follow what these servers ship and what Atlassian's own
connectors default to (see /work/shared/ldap-notes.md §2.1), with two deliberate differences:
OpenLDAP uses `uid` (not `cn`) as the username and groupOfNames/member (not
groupOfUniqueNames), which is what current OpenLDAP deployments use.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

PRESET_NAMES = ("openldap", "389ds", "active_directory")

# Membership types: where a group's members are listed, and as what.
MEMBER = "member"  # group attribute, member DNs (groupOfNames, AD group)
UNIQUE_MEMBER = "uniqueMember"  # group attribute, DNs with an optional #'0101'B suffix
MEMBER_UID = "memberUid"  # group attribute, usernames (posixGroup); no nesting
MEMBER_OF = "memberOf"  # user (and group) attribute, DNs of the groups it belongs to
MEMBERSHIP_TYPES = (MEMBER, UNIQUE_MEMBER, MEMBER_UID, MEMBER_OF)

# How the disabled flag is read from the attribute mapped as `disabled`.
DISABLED_NONE = "none"  # never disabled
DISABLED_PRESENT = "present"  # disabled when the attribute has any value (ppolicy lock time)
DISABLED_TRUE = "true_value"  # disabled when the value is TRUE (389 nsAccountLock)
DISABLED_AD_UAC = "ad_user_account_control"  # bit 2 (ACCOUNTDISABLE) of userAccountControl
DISABLED_METHODS = (DISABLED_NONE, DISABLED_PRESENT, DISABLED_TRUE, DISABLED_AD_UAC)

# Continuation references in a subtree search: abort the read, or skip them.
REFERENCES_FAIL = "fail"
REFERENCES_IGNORE = "ignore"
REFERENCE_HANDLING = (REFERENCES_FAIL, REFERENCES_IGNORE)

# Group object class that goes with a membership type, when the preset's own does not.
GROUP_CLASS_FOR_MEMBERSHIP = MappingProxyType({
    UNIQUE_MEMBER: "groupOfUniqueNames",
    MEMBER_UID: "posixGroup",
})


@dataclass(frozen=True)
class Preset:
    user_object_class: str
    user_filter: str | None
    group_object_class: str
    group_filter: str | None
    membership: str
    disabled_method: str
    attributes: Mapping[str, str]
    # What a continuation reference (part of the subtree on another server) means.
    continuation_references: str = "fail"


_COMMON_PERSON = {
    "first_name": "givenName",
    "last_name": "sn",
    "display_name": "displayName",
    "email": "mail",
    "group_name": "cn",
    "group_description": "description",
}

PRESETS: Mapping[str, Preset] = MappingProxyType({
    "openldap": Preset(
        user_object_class="inetOrgPerson",
        user_filter=None,
        group_object_class="groupOfNames",
        group_filter=None,
        membership=MEMBER,
        # ppolicy: an administrator locks an account by setting pwdAccountLockedTime.
        disabled_method=DISABLED_PRESENT,
        attributes=MappingProxyType({
            **_COMMON_PERSON, "username": "uid", "unique_id": "entryUUID",
            "disabled": "pwdAccountLockedTime",
        }),
    ),
    "389ds": Preset(
        user_object_class="inetOrgPerson",
        user_filter=None,
        group_object_class="groupOfNames",
        group_filter=None,
        membership=MEMBER,
        disabled_method=DISABLED_TRUE,
        attributes=MappingProxyType({
            **_COMMON_PERSON, "username": "uid", "unique_id": "nsUniqueId",
            "disabled": "nsAccountLock",
        }),
    ),
    "active_directory": Preset(
        # objectClass=user also matches computer accounts; objectCategory=person does not.
        user_object_class="user",
        user_filter="(objectCategory=person)",
        group_object_class="group",
        group_filter=None,
        membership=MEMBER,
        disabled_method=DISABLED_AD_UAC,
        attributes=MappingProxyType({
            **_COMMON_PERSON, "username": "sAMAccountName", "unique_id": "objectGUID",
            "disabled": "userAccountControl",
        }),
        # A search from the domain root returns references to the DomainDnsZones,
        # ForestDnsZones and Configuration partitions, which hold no users or groups.
        continuation_references=REFERENCES_IGNORE,
    ),
})

"""The [[directories]] configuration: presets, defaults, and an error naming the key for every
bad value. Pure: no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dirsync.errors import ConfigError
from dirsync.ldap.config import DIRECTORY_KEYS, LdapUrl, parse_directories

ENV = {"BIND_PW": "s3cret"}


def table(**keys: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "corp",
        "preset": "openldap",
        "urls": ["ldap://ldap.example.com"],
        "bind_dn": "cn=sync,dc=example,dc=com",
        "bind_password_env": "BIND_PW",
        "base_dn": "dc=example,dc=com",
    }
    base.update(keys)
    return {k: v for k, v in base.items() if v is not None}


def parse_one(**keys: Any) -> Any:
    return parse_directories([table(**keys)], ENV)[0]


def test_openldap_preset_defaults() -> None:
    config = parse_one()
    assert config.urls == (LdapUrl("ldap", "ldap.example.com", 389),)
    assert config.user_base_dn == config.group_base_dn == "dc=example,dc=com"
    assert (config.user_object_class, config.group_object_class) == ("inetOrgPerson",
                                                                     "groupOfNames")
    assert config.membership == "member"
    assert config.attributes.username == "uid"
    assert config.attributes.unique_id == "entryUUID"
    assert (config.disabled_method, config.attributes.disabled) == ("present",
                                                                    "pwdAccountLockedTime")
    assert config.verify is True and config.start_tls is False
    assert config.page_size == 1000
    assert config.mass_delete_threshold == 0.05
    assert config.settle_seconds == 600
    assert config.bind_password == "s3cret"
    assert config.continuation_references == "fail"


def test_389ds_and_active_directory_presets() -> None:
    ds = parse_one(preset="389ds")
    assert ds.attributes.unique_id == "nsUniqueId"
    assert (ds.disabled_method, ds.attributes.disabled) == ("true_value", "nsAccountLock")
    ad = parse_one(preset="active_directory", urls="ldaps://dc1.example.com")
    assert ad.urls == (LdapUrl("ldaps", "dc1.example.com", 636),)
    assert ad.user_object_class == "user" and ad.user_filter == "(objectCategory=person)"
    assert ad.group_object_class == "group"
    assert ad.attributes.username == "sAMAccountName"
    assert ad.attributes.unique_id == "objectGUID"
    assert ad.disabled_method == "ad_user_account_control"
    assert ad.continuation_references == "ignore"


@pytest.mark.parametrize(("membership", "group_class"), [
    ("member", "groupOfNames"),
    ("uniqueMember", "groupOfUniqueNames"),
    ("memberUid", "posixGroup"),
    ("memberof", "groupOfNames"),  # accepted case-insensitively, stored canonically
])
def test_membership_type_picks_its_group_class(membership: str, group_class: str) -> None:
    config = parse_one(membership=membership)
    assert config.group_object_class == group_class
    assert config.membership.lower() == membership.lower()


def test_every_key_can_be_set() -> None:
    config = parse_one(
        urls=["ldap://a.example.com:1389", "ldap://[::1]"], start_tls=True, verify=False,
        user_base_dn="ou=people,dc=example,dc=com", group_base_dn="ou=groups,dc=example,dc=com",
        user_object_class="person", user_filter="(department=IT)",
        group_object_class="groupOfUniqueNames", group_filter="(!(cn=test*))",
        membership="uniqueMember", disabled_method="none",
        attributes={"username": "cn", "email": "mailPrimaryAddress", "unique_id": "2.5.4.45"},
        page_size=500, connect_timeout=1.5, operation_timeout=30, sync_interval_seconds=600,
        incremental=False, full_sync_every=4, mass_delete_threshold=0.2,
        continuation_references="ignore", settle_seconds=45,
    )
    assert [str(u) for u in config.urls] == ["ldap://a.example.com:1389", "ldap://[::1]:389"]
    assert config.uses_tls and config.start_tls and not config.verify
    assert config.user_filter == "(department=IT)"
    assert config.attributes.username == "cn" and config.attributes.first_name == "givenName"
    assert config.attributes.unique_id == "2.5.4.45"
    assert (config.page_size, config.connect_timeout, config.operation_timeout) == (500, 1.5, 30)
    assert (config.incremental, config.full_sync_every) == (False, 4)
    assert config.settle_seconds == 45.0
    assert parse_one(settle_seconds=0).settle_seconds == 0.0  # no refint: no window


def test_an_empty_filter_switches_the_preset_filter_off() -> None:
    assert parse_one(preset="active_directory", user_filter="").user_filter is None


def test_password_from_a_file_without_its_final_newline(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from file \n")
    config = parse_one(bind_password_env=None, bind_password_file=str(secret))
    assert config.bind_password == "from file "


def test_password_is_not_in_the_repr() -> None:
    config = parse_one()
    assert "s3cret" not in repr(config) and "s3cret" not in str(config)


def test_anonymous_directory_without_bind_dn() -> None:
    config = parse_one(bind_dn=None, bind_password_env=None)
    assert config.bind_dn is None and config.bind_password is None


def test_directories_keep_their_order_and_names_must_differ() -> None:
    configs = parse_directories([table(name="first"), table(name="second")], ENV)
    assert [c.name for c in configs] == ["first", "second"]
    with pytest.raises(ConfigError) as info:
        parse_directories([table(name="corp"), table(name="CORP")], ENV)
    assert info.value.key == "directories[1].name"


def test_no_directories() -> None:
    assert parse_directories(None, ENV) == ()
    assert parse_directories([], ENV) == ()


@pytest.mark.parametrize(("keys", "key", "words"), [
    ({"name": None}, "directories[0].name", "required"),
    ({"name": "has space"}, "directories[0].name", "letters, digits"),
    ({"preset": None}, "directories[0].preset", "openldap, 389ds, active_directory"),
    ({"preset": "novell"}, "directories[0].preset", "must be one of"),
    ({"urls": None}, "directories[0].urls", "required"),
    ({"urls": []}, "directories[0].urls", "non-empty list"),
    ({"urls": ["http://x"]}, "directories[0].urls[0]", "ldap://host"),
    ({"urls": ["ldap://"]}, "directories[0].urls[0]", "no host"),
    ({"urls": ["ldap://x:99999"]}, "directories[0].urls[0]", "not a valid URL"),
    ({"urls": "ldap://u:p@x"}, "directories[0].urls", "credentials"),
    ({"urls": ["ldap://x/dc=example"]}, "directories[0].urls[0]", "user_base_dn"),
    ({"urls": ["ldaps://x"], "start_tls": True}, "directories[0].start_tls", "ldaps://"),
    ({"start_tls": "yes"}, "directories[0].start_tls", "true or false"),
    ({"ca_file": "/no/such/ca.pem"}, "directories[0].ca_file", "not a file"),
    ({"bind_password": "inline"}, "directories[0].bind_password", "bind_password_env"),
    ({"bind_password_env": "UNSET_VAR"}, "directories[0].bind_password_env", "UNSET_VAR"),
    ({"bind_password_env": None}, "directories[0].bind_dn", "needs a password"),
    ({"bind_dn": None}, "directories[0].bind_dn", "no bind_dn"),
    ({"bind_password_file": "/tmp/x"}, "directories[0].bind_password_env", "not both"),
    ({"bind_dn": "not a dn"}, "directories[0].bind_dn", "not a valid DN"),
    ({"base_dn": None}, "directories[0].user_base_dn", "user_base_dn (or base_dn)"),
    ({"base_dn": None, "user_base_dn": "dc=x"}, "directories[0].group_base_dn", "group_base_dn"),
    ({"user_base_dn": "ou=a,,dc=x"}, "directories[0].user_base_dn", "not a valid DN"),
    ({"user_filter": "objectClass=person"}, "directories[0].user_filter", "parentheses"),
    ({"user_filter": "(a=b))"}, "directories[0].user_filter", "unbalanced"),
    ({"group_filter": "(a=b)(c=d)"}, "directories[0].group_filter", "(&...)"),
    ({"group_filter": "(&(a=b)"}, "directories[0].group_filter", "missing"),
    ({"user_object_class": "inet org person"}, "directories[0].user_object_class", "attribute"),
    ({"membership": "members"}, "directories[0].membership", "must be one of"),
    ({"disabled_method": "maybe"}, "directories[0].disabled_method", "must be one of"),
    ({"attributes": {"disabled": ""}}, "directories[0].attributes.disabled", "disabled_method"),
    ({"attributes": {"login": "uid"}}, "directories[0].attributes.login", "unknown"),
    ({"attributes": {"username": "u id"}}, "directories[0].attributes.username", "attribute"),
    ({"attributes": "uid"}, "directories[0].attributes", "expected a table"),
    ({"page_size": 0}, "directories[0].page_size", "between 1 and"),
    ({"page_size": "100"}, "directories[0].page_size", "whole number"),
    ({"connect_timeout": 0}, "directories[0].connect_timeout", "more than 0"),
    ({"operation_timeout": True}, "directories[0].operation_timeout", "expected a number"),
    ({"sync_interval_seconds": 1}, "directories[0].sync_interval_seconds", "between"),
    ({"full_sync_every": 0}, "directories[0].full_sync_every", "between"),
    ({"mass_delete_threshold": 1.5}, "directories[0].mass_delete_threshold", "at most 1"),
    ({"settle_seconds": -1}, "directories[0].settle_seconds", "at least 0 and at most 86400"),
    ({"settle_seconds": "10m"}, "directories[0].settle_seconds", "expected a number"),
    ({"settle_seconds": 90_000}, "directories[0].settle_seconds", "at most 86400"),
    ({"continuation_references": "follow"}, "directories[0].continuation_references",
     "fail, ignore"),
    ({"user_bsae_dn": "dc=x"}, "directories[0].user_bsae_dn", "unknown key"),
])
def test_bad_values_name_the_key_and_the_fix(keys: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_one(**keys)
    assert info.value.key == key
    assert words in str(info.value)
    assert "s3cret" not in str(info.value)


def test_empty_password_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        parse_one(bind_password_env=None, bind_password_file=str(empty))
    with pytest.raises(ConfigError, match="cannot read"):
        parse_one(bind_password_env=None, bind_password_file=str(tmp_path / "missing"))


def test_not_a_list_or_not_tables() -> None:
    with pytest.raises(ConfigError) as info:
        parse_directories({"name": "x"}, ENV)  # type: ignore[arg-type]
    assert info.value.key == "directories"
    with pytest.raises(ConfigError) as info:
        parse_directories(["x"], ENV)  # type: ignore[list-item]
    assert info.value.key == "directories[0]"


@pytest.mark.parametrize("key", [k for k, _, _ in DIRECTORY_KEYS])
def test_every_documented_key_is_read_and_checked(key: str) -> None:
    """A documented key that the parser ignored would accept any value; none does."""
    odd = object()
    keys = ({"attributes": {key.split(".", 1)[1]: odd}} if key.startswith("attributes.")
            else {key: odd})
    with pytest.raises(ConfigError) as info:
        parse_one(**keys)
    assert info.value.key.startswith(f"directories[0].{key}")


def test_every_doc_row_has_a_default_and_a_description() -> None:
    assert all(default and description for _, default, description in DIRECTORY_KEYS)
    assert len({key for key, _, _ in DIRECTORY_KEYS}) == len(DIRECTORY_KEYS)

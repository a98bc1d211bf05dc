"""load_fixture_files: several files as one directory, and errors about the files themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from dirsync.errors import FixtureError
from dirsync.fixtures import load_fixture_files

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SHIPPED = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".ldif", ".yaml", ".yml", ".json"))

LDIF_USERS = """\
dn: ou=people,dc=x
objectClass: organizationalUnit
ou: people

dn: uid=alice,ou=people,dc=x
objectClass: inetOrgPerson
uid: alice

dn: uid=bob,ou=people,dc=x
objectClass: inetOrgPerson
uid: bob
"""

LDIF_GROUPS = """\
dn: cn=devs,dc=x
objectClass: groupOfNames
cn: devs
member: UID=Alice,OU=People,DC=X
"""

YAML_GROUPS = """\
groups:
  - name: everyone
    users: [BOB]
    groups: [devs]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_fixture_files() -> None:
    assert [p.name for p in SHIPPED] == [
        "demo.ldif",
        "edge-cycle.yaml",
        "edge-deep-chain.yaml",
        "edge-diamond.yaml",
        "edge-names.ldif",
    ]


def test_all_shipped_fixtures_load_together() -> None:
    snapshot = load_fixture_files(SHIPPED)
    assert (len(snapshot.users), len(snapshot.groups)) == (10 + 1 + 1 + 16 + 1, 7 + 3 + 12 + 4 + 5)
    assert (len(snapshot.user_memberships), len(snapshot.group_memberships)) == (
        11 + 1 + 1 + 1 + 19,
        5 + 3 + 11 + 4 + 4,
    )


def test_references_resolve_across_files(tmp_path: Path) -> None:
    snapshot = load_fixture_files(
        [
            write(tmp_path, "groups.yaml", YAML_GROUPS),
            write(tmp_path, "groups.ldif", LDIF_GROUPS),
            write(tmp_path, "users.ldif", LDIF_USERS),
        ]
    )
    assert [u.name for u in snapshot.users] == ["alice", "bob"]
    assert [g.name for g in snapshot.groups] == ["everyone", "devs"]
    assert snapshot.user_memberships == {("everyone", "bob"), ("devs", "alice")}
    assert snapshot.group_memberships == {("everyone", "devs")}


def test_unknown_member_dn_needs_the_other_file(tmp_path: Path) -> None:
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([write(tmp_path, "groups.ldif", LDIF_GROUPS)])
    assert caught.value.entry == "cn=devs,dc=x"
    assert "unknown member DN 'UID=Alice,OU=People,DC=X'" in str(caught.value)


def test_duplicate_name_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "users.ldif", LDIF_USERS)
    second = write(tmp_path, "more.yaml", "users:\n  - username: ALICE\n")
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([first, second])
    assert str(caught.value) == (
        f"{second}: users[0] (ALICE): user 'ALICE' is already defined as 'alice' "
        f"(names ignore case) at {first}: uid=alice,ou=people,dc=x"
    )


def test_duplicate_dn_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.ldif", LDIF_USERS)
    second = write(tmp_path, "b.ldif", "dn: ou=People, dc=X\nobjectClass: organizationalUnit\n")
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([first, second])
    assert str(caught.value) == (
        f"{second}: ou=People, dc=X: the DN is already defined at {first}: ou=people,dc=x"
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([path])
    assert str(caught.value) == f"{path}: does not exist"
    assert (caught.value.path, caught.value.entry) == (str(path), None)


def test_directory(tmp_path: Path) -> None:
    path = tmp_path / "dir.ldif"
    path.mkdir()
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([path])
    assert str(caught.value) == f"{path}: is a directory, not a fixture file"


@pytest.mark.parametrize(
    ("name", "shown"),
    [("users.txt", "'.txt'"), ("users", "'(no extension)'"), ("a.ldif.bak", "'.bak'")],
)
def test_unknown_extension(tmp_path: Path, name: str, shown: str) -> None:
    path = write(tmp_path, name, "users: []\n")
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([path])
    assert str(caught.value) == (
        f"{path}: unknown fixture format {shown}; use .ldif, .yaml, .yml or .json"
    )


def test_same_file_twice(tmp_path: Path) -> None:
    path = write(tmp_path, "users.ldif", LDIF_USERS)
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([path, tmp_path / "." / "users.ldif"])
    assert "is given twice" in str(caught.value)


def test_no_files() -> None:
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([])
    assert "no fixture files were given" in str(caught.value)


def test_a_single_path_is_a_type_error(tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        # a str is a Sequence[str] to a type checker, so this one is caught at run time
        load_fixture_files(str(tmp_path / "users.ldif"))


def test_an_error_in_any_file_fails_the_whole_load(tmp_path: Path) -> None:
    good = write(tmp_path, "users.ldif", LDIF_USERS)
    bad = write(tmp_path, "bad.yaml", "users: [{username: carol, colour: blue}]\n")
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([good, bad])
    assert caught.value.path == str(bad)

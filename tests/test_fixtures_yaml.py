"""YAML and JSON fixtures: the shipped edge cases, the documented shape, and every error case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from dirsync.errors import FixtureError
from dirsync.fixtures import load_fixture_files
from dirsync.fixtures.document import document_part
from dirsync.model import Group, Snapshot, User

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

FULL = """\
users:
  - username: alice
    id: 3f2c8a9e-0000-4000-8000-00000000000a
    first_name: Alice
    last_name: Anderson
    display_name: Alice Anderson
    email: alice@example.com
    active: true
    password: "alice-pw-1"
    attributes: {department: [Engineering], room: "4.01"}
  - username: Bob
    active: false
    password: "{SSHA}ZukwWx8KFkWHVi5VraozLNYxmIkMAcBY"
groups:
  - name: engineering
    id: eng
    description: Engineering
    active: true
    users: [ALICE]
    groups: [backend]
    attributes: {}
  - name: backend
    active: false
    users: [bob, alice]
"""

FULL_SNAPSHOT = Snapshot(
    users=[
        User(
            name="alice",
            first_name="Alice",
            last_name="Anderson",
            display_name="Alice Anderson",
            email="alice@example.com",
            external_id="3f2c8a9e-0000-4000-8000-00000000000a",
            password="alice-pw-1",
            attributes={"department": ("Engineering",), "room": ("4.01",)},
        ),
        User(name="Bob", active=False, password="{SSHA}ZukwWx8KFkWHVi5VraozLNYxmIkMAcBY"),
    ],
    groups=[
        Group(name="engineering", description="Engineering", external_id="eng"),
        Group(name="backend", active=False),
    ],
    user_memberships={("engineering", "alice"), ("backend", "bob"), ("backend", "alice")},
    group_memberships={("engineering", "backend")},
)


def write(tmp_path: Path, text: str, name: str = "test.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_documented_shape(tmp_path: Path) -> None:
    assert load_fixture_files([write(tmp_path, FULL)]) == FULL_SNAPSHOT


@pytest.mark.parametrize("name", ["test.json", "test.JSON"])
def test_json_has_the_same_shape(tmp_path: Path, name: str) -> None:
    document = yaml.safe_load(FULL)
    path = write(tmp_path, json.dumps(document, indent=2), name)
    assert load_fixture_files([path]) == FULL_SNAPSHOT


@pytest.mark.parametrize("name", ["test.yml", "test.YAML"])
def test_yaml_extensions(tmp_path: Path, name: str) -> None:
    assert load_fixture_files([write(tmp_path, FULL, name)]) == FULL_SNAPSHOT


@pytest.mark.parametrize("text", ["{}", "users: []", "groups: []\nusers: []\n", "# nothing\n{}\n"])
def test_explicitly_empty_documents(tmp_path: Path, text: str) -> None:
    assert load_fixture_files([write(tmp_path, text)]) == Snapshot()


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + "users: [{username: zoë}]\n".encode())
    assert [u.name for u in load_fixture_files([path]).users] == ["zoë"]


def test_edge_cycle() -> None:
    snapshot = load_fixture_files([FIXTURES / "edge-cycle.yaml"])
    assert [u.name for u in snapshot.users] == ["cycle-user"]
    assert snapshot.users[0].external_id == "edge-cycle-user"
    assert [g.name for g in snapshot.groups] == ["cycle-a", "cycle-b", "cycle-c"]
    assert snapshot.user_memberships == {("cycle-a", "cycle-user")}
    assert snapshot.group_memberships == {
        ("cycle-a", "cycle-b"),
        ("cycle-b", "cycle-c"),
        ("cycle-c", "cycle-a"),
    }


def test_edge_diamond() -> None:
    snapshot = load_fixture_files([FIXTURES / "edge-diamond.yaml"])
    assert [u.name for u in snapshot.users] == ["diamond-user"]
    assert [g.name for g in snapshot.groups] == [
        "diamond-top",
        "diamond-left",
        "diamond-right",
        "diamond-bottom",
    ]
    assert snapshot.user_memberships == {("diamond-bottom", "diamond-user")}
    assert snapshot.group_memberships == {
        ("diamond-top", "diamond-left"),
        ("diamond-top", "diamond-right"),
        ("diamond-left", "diamond-bottom"),
        ("diamond-right", "diamond-bottom"),
    }


def test_edge_deep_chain() -> None:
    snapshot = load_fixture_files([FIXTURES / "edge-deep-chain.yaml"])
    names = [f"chain-{i:02d}" for i in range(1, 13)]
    assert [u.name for u in snapshot.users] == ["chain-user"]
    assert [g.name for g in snapshot.groups] == names
    assert snapshot.user_memberships == {("chain-12", "chain-user")}
    assert snapshot.group_memberships == set(zip(names, names[1:]))


# --- errors --------------------------------------------------------------------------------

ERRORS = [
    # (YAML text, expected entry, expected fragment of the message)
    ("", None, "is empty; write `users: []`"),
    ("# just a comment\n", None, "is empty"),
    ("- alice\n", None, "must be a mapping with keys users and groups, not a list"),
    ("users: [alice\n", None, "is not valid YAML: while parsing a flow sequence; expected ',' or ']', but got '<stream end>' at line 2"),
    ("users: []\n---\ngroups: []\n", None, "is not valid YAML: expected a single document in the stream; but found another document at line 2"),
    ("users: !!python/object/apply:os.system [echo hi]\n", None, "is not valid YAML: could not determine a constructor"),
    ("user: []\n", "top level", "unknown key 'user'; allowed keys are users, groups"),
    ("users:\n", None, "users must be a list, not null"),
    ("users: {alice: {}}\n", None, "users must be a list, not a mapping"),
    ("groups: engineering\n", None, "groups must be a list, not a string"),
    ("users: [alice]\n", "users[0]", "must be a mapping with at least the key username, not a string"),
    ("users: [{first_name: A}]\n", "users[0]", "the required key username is missing"),
    ("users: [{username: a, emial: a@x}]\n", "users[0] (a)", "unknown key 'emial'; allowed keys are username, id,"),
    ("users: [{username: a, members: [], 7: x}]\n", "users[0] (a)", "unknown key 'members', 7;"),
    ("users: [{username: a, username: b}]\n", None, "is not valid YAML: duplicate key 'username' at line 1"),
    ("users: [{username: 123}]\n", "users[0]", "username must be a string, not a number; put it in quotes"),
    ("users: [{username: no}]\n", "users[0]", "username must be a string, not a boolean; put it in quotes"),
    ("users: [{username: 2024-01-01}]\n", "users[0]", "username must be a string, not a date"),
    ("users: [{username: ''}]\n", "users[0]", "username is empty"),
    ("users: [{username: ' alice'}]\n", "users[0] ( alice)", "username ' alice' has leading or trailing whitespace"),
    ("users: [{username: \"al\\tice\"}]\n", "users[0] (al\tice)", "username 'al\\tice' contains a control character"),
    ("users: [{username: " + "x" * 256 + "}]\n", "users[0] (" + "x" * 256 + ")", "username is 256 characters long; the limit is 255"),
    ("users: [{username: a, active: 'yes'}]\n", "users[0] (a)", "active must be true or false, not a string 'yes'"),
    ("users: [{username: a, active: 1}]\n", "users[0] (a)", "active must be true or false, not a number 1"),
    ("users: [{username: a, email: null}]\n", "users[0] (a)", "email must be a string, not null"),
    ("users: [{username: a, id: 42}]\n", "users[0] (a)", "id must be a string, not a number; put it in quotes"),
    ("users: [{username: a, id: ''}]\n", "users[0] (a)", "id is empty"),
    ("users: [{username: a, display_name: \"A\\x01\"}]\n", "users[0] (a)", "display_name 'A\\x01' contains the control character"),
    ("users: [{username: a, first_name: " + "x" * 1025 + "}]\n", "users[0] (a)", "first_name is 1025 characters long; the limit is 1024"),
    ("users: [{username: a, password: '{MD4}abc'}]\n", "users[0] (a)", "unknown password hash scheme {MD4}; use clear text or a supported scheme"),
    ("users: [{username: a, password: ''}]\n", "users[0] (a)", "password is empty"),
    ("users: [{username: a, password: 1234}]\n", "users[0] (a)", "password must be a string, not a number; put it in quotes"),
    ("users: [{username: a, attributes: [x]}]\n", "users[0] (a)", "attributes must be a mapping, not a list"),
    ("users: [{username: a, attributes: {dept: 5}}]\n", "users[0] (a)", "attributes.dept must be a string or a non-empty list of strings, not a number"),
    ("users: [{username: a, attributes: {dept: []}}]\n", "users[0] (a)", "attributes.dept must be a string or a non-empty list"),
    ("users: [{username: a, attributes: {dept: [x, 5]}}]\n", "users[0] (a)", "attributes.dept must list strings, not a number 5"),
    ("users: [{username: a, attributes: {1: x}}]\n", "users[0] (a)", "attribute names must be strings, not a number 1"),
    ("users: [{username: a, attributes: {' dept': x}}]\n", "users[0] (a)", "attribute name ' dept' has leading or trailing whitespace"),
    ("groups: [{description: x}]\n", "groups[0]", "the required key name is missing"),
    ("groups: [{name: g, member: [a]}]\n", "groups[0] (g)", "unknown key 'member'; allowed keys are name, id, description, active, users, groups, attributes"),
    ("groups: [{name: g, users: alice}]\n", "groups[0] (g)", "users must be a list of names, not a string"),
    ("groups: [{name: g, users: [1]}]\n", "groups[0] (g)", "users must list names as strings, not a number 1"),
    ("groups: [{name: g, groups: ['']}]\n", "groups[0] (g)", "groups must list names as strings, not a string ''"),
    ("groups: [{name: g, active: null}]\n", "groups[0] (g)", "active must be true or false, not null None"),
    ("groups: [{name: g, users: [bob]}]\n", "groups[0] (g)", "member user 'bob' is not defined in the fixture files"),
    ("groups: [{name: g, groups: [h]}]\n", "groups[0] (g)", "member group 'h' is not defined in the fixture files"),
    ("groups: [{name: g, groups: [G]}]\n", "groups[0] (g)", "the group lists itself as a member"),
    ("users: [{username: alice}, {username: Alice}]\n", "users[1] (Alice)", "user 'Alice' is already defined as 'alice' (names ignore case) at {path}: users[0] (alice)"),
    ("users: [{username: alice}, {username: alice}]\n", "users[1] (alice)", "user 'alice' is already defined at {path}: users[0] (alice)"),
    ("groups: [{name: Straße}, {name: STRASSE}]\n", "groups[1] (STRASSE)", "group 'STRASSE' is already defined as 'Straße'"),
    ("users: [{username: a, id: x}, {username: b, id: x}]\n", "users[1] (b)", "user id 'x' is already used at {path}: users[0] (a)"),
    ("groups: [{name: a, id: x}, {name: b, id: x}]\n", "groups[1] (b)", "group id 'x' is already used at"),
]


@pytest.mark.parametrize(("text", "entry", "problem"), ERRORS)
def test_errors_name_file_entry_and_problem(
    tmp_path: Path, text: str, entry: str | None, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([path])
    error = caught.value
    assert error.path == str(path)
    assert error.entry == entry
    assert problem.replace("{path}", str(path)) in str(error)
    assert str(error).startswith(f"{path}: {entry}: " if entry else f"{path}: ")


JSON_ERRORS = [
    ('{"users": [}', None, "is not valid JSON: Expecting value at line 1, column 12"),
    ('{"users": [], "users": []}', None, "is not valid fixture JSON: duplicate key 'users'"),
    ('{"users": [{"username": "a", "active": "true"}]}', "users[0] (a)", "active must be true or false"),
    ('{"users": [{"username": 1.5}]}', "users[0]", "username must be a string, not a number"),
    ("null", None, "is empty"),
    ("[]", None, "must be a mapping with keys users and groups, not a list"),
]


@pytest.mark.parametrize(("text", "entry", "problem"), JSON_ERRORS)
def test_json_errors(tmp_path: Path, text: str, entry: str | None, problem: str) -> None:
    path = write(tmp_path, text, "test.json")
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([path])
    assert caught.value.entry == entry
    assert problem in str(caught.value)


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("users:\n  - username: jos\xe9\n".encode("latin-1"))
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([path])
    assert str(caught.value) == f"{path}: line 2: is not UTF-8 text; save the file as UTF-8"


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8), st.sampled_from(["a", "b", "A"])
)
KEYS = st.sampled_from(
    ["users", "groups", "username", "name", "id", "active", "password", "attributes", "x"]
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=20,
)


@given(DOCUMENTS)
def test_any_document_loads_or_raises_fixture_error(document: object) -> None:
    try:
        document_part("fuzz.yaml", document)
    except FixtureError:
        pass

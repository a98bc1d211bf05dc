"""LDIF fixtures: the shipped demo and edge-case files, reader details, and every error case."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dirsync.errors import FixtureError
from dirsync.fixtures import load_fixture_files
from dirsync.fixtures.ldif_entries import ldif_part
from dirsync.model import Snapshot, User
from dirsync.passwords import hash_user_password, verify_user_password

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

# The demo users, their documented clear passwords (fixtures/README.md) and how each password
# is stored in demo.ldif.
DEMO_PASSWORDS = [
    ("alice", "alice-pw-1", "{SSHA}"),
    ("bob", "bob-pw-1", "{SSHA512}"),
    ("carol", "carol-pw-1", "{CRYPT}$6$"),
    ("dave", "dave-pw-1", "{PBKDF2-SHA256}"),
    ("erin", "erin-pw-1", "{SSHA}"),
    ("frank", "frank-pw-1", "{PBKDF2-SHA512}"),
    ("grace", "grace-pw-1", "{CRYPT}$1$"),
    ("jose.muller", "jose-pw-1", "{SSHA256}"),
    ("zoe.angstrom", "zoe-pw-1", ""),  # clear text in the directory
    ("taro.yamada", "taro-pw-1", "{CRYPT}$5$"),
]


def load_text(tmp_path: Path, text: str, name: str = "test.ldif") -> Snapshot:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return load_fixture_files([path])


def users_by_name(snapshot: Snapshot) -> dict[str, User]:
    return {user.name: user for user in snapshot.users}


# --- the demo ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> Snapshot:
    return load_fixture_files([FIXTURES / "demo.ldif"])


def test_demo_users(demo: Snapshot) -> None:
    summary = [
        (u.name, u.first_name, u.last_name, u.display_name, u.email, u.active) for u in demo.users
    ]
    assert summary == [
        ("alice", "Alice", "Anderson", "Alice Anderson", "alice@example.com", True),
        ("bob", "Bob", "Brown", "Bob Brown", "bob@example.com", True),
        ("carol", "Carol", "Chen", "Carol Chen", "carol@example.com", True),
        ("dave", "Dave", "Davis", "Dave Davis", "dave@example.com", True),
        ("erin", "Erin", "Evans", "Erin Evans", "erin@example.com", False),
        ("frank", "Frank", "Foster", "Frank Foster", "frank@example.com", True),
        ("grace", "Grace", "Green", "Grace Green", "grace@example.com", True),
        ("jose.muller", "José", "Müller", "José Müller", "jose.muller@example.com", True),
        ("zoe.angstrom", "Zoë", "Ångström", "Zoë Ångström", "zoe.angstrom@example.com", True),
        ("taro.yamada", "Taro", "Yamada", "山田太郎", "taro.yamada@example.com", True),
    ]


def test_demo_users_keep_entry_uuid_and_dn(demo: Snapshot) -> None:
    alice = users_by_name(demo)["alice"]
    assert alice.external_id == "c4b00700-6ebe-5912-9e96-6c37677d4911"
    assert alice.dn == "uid=alice,ou=people,dc=example,dc=com"
    assert alice.attributes == {}
    assert all(user.external_id and len(user.external_id) == 36 for user in demo.users)


def test_demo_groups_and_memberships(demo: Snapshot) -> None:
    assert [(g.name, g.description) for g in demo.groups] == [
        ("bitbucket-users", "Everyone who may log in to Bitbucket"),
        ("bitbucket-administrators", "Bitbucket system administrators"),
        ("engineering", "All engineering teams"),
        ("backend", "Backend team"),
        ("frontend", "Frontend team"),
        ("qa", "Quality assurance"),
        ("design", "Product design"),
    ]
    assert demo.user_memberships == {
        ("bitbucket-users", "grace"),
        ("bitbucket-administrators", "alice"),
        ("bitbucket-administrators", "frank"),
        ("backend", "alice"),
        ("backend", "bob"),
        ("backend", "taro.yamada"),
        ("frontend", "carol"),
        ("frontend", "dave"),
        ("frontend", "erin"),
        ("qa", "jose.muller"),
        ("design", "zoe.angstrom"),
    }
    assert demo.group_memberships == {
        ("bitbucket-users", "engineering"),
        ("bitbucket-users", "qa"),
        ("bitbucket-users", "design"),
        ("engineering", "backend"),
        ("engineering", "frontend"),
    }


@pytest.mark.parametrize(("name", "clear", "prefix"), DEMO_PASSWORDS)
def test_demo_passwords_verify(demo: Snapshot, name: str, clear: str, prefix: str) -> None:
    value = users_by_name(demo)[name].password
    assert value is not None
    if prefix:
        assert value.startswith(prefix)
    else:
        assert value == clear
    stored = hash_user_password(value)
    assert verify_user_password(clear, stored)
    assert not verify_user_password(clear + "x", stored)


def test_readme_documents_every_demo_password() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    for name, clear, _ in DEMO_PASSWORDS:
        assert f"| `{name}` |" in readme
        assert f"`{clear}`" in readme


# --- edge-names.ldif -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def edge() -> Snapshot:
    return load_fixture_files([FIXTURES / "edge-names.ldif"])


def test_edge_names_users(edge: Snapshot) -> None:
    assert [u.name for u in edge.users] == [
        "first.last",
        "dash-user",
        "mail@example.org",
        "comma,user",
        "plus+user",
        'quote"user',
        "back\\slash",
        "<angle>",
        "semi;colon",
        "o'brien&co",
        "#hash",
        "jürgen",
        "MixedCase",
        "multi.rdn",
        "posix.user",
        "locked.389",
    ]
    users = users_by_name(edge)
    assert users["jürgen"].first_name == "Jürgen"  # from givenName;lang-de
    assert users["jürgen"].display_name == "Jürgen Schäfer"  # no displayName: cn
    assert users["jürgen"].dn == "uid=jürgen,ou=people,dc=edge,dc=example"
    assert users["multi.rdn"].display_name == "Multi RDN"
    assert users["first.last"].external_id == "8a4f6e0c-1b2d-4c3e-9f10-2a3b4c5d6e7f"
    assert users["dash-user"].external_id is None
    assert [u.name for u in edge.users if not u.active] == ["locked.389"]
    assert all(u.password is None for u in edge.users)


def test_edge_names_groups(edge: Snapshot) -> None:
    assert [(g.name, g.dn) for g in edge.groups] == [
        ("special-chars", "cn=special-chars,ou=groups,dc=edge,dc=example"),
        ("R&D, Europe", "cn=R&D\\2C Europe,ou=groups,dc=edge,dc=example"),
        ("team-real", "cn=team-real,ou=groups,dc=edge,dc=example"),
        ("posix-group", "cn=posix-group,ou=groups,dc=edge,dc=example"),
        ("all-edge", "cn=all-edge,ou=groups,dc=edge,dc=example"),
    ]


def test_edge_names_memberships(edge: Snapshot) -> None:
    special = {
        "first.last",
        "dash-user",
        "mail@example.org",
        "comma,user",
        "plus+user",
        'quote"user',
        "back\\slash",
        "<angle>",
        "semi;colon",
        "o'brien&co",
        "#hash",
        "jürgen",
        "mixedcase",
        "multi.rdn",
    }
    assert edge.user_memberships == {("special-chars", name) for name in special} | {
        ("r&d, europe", "first.last"),
        ("r&d, europe", "jürgen"),
        ("team-real", "mixedcase"),
        ("posix-group", "posix.user"),
        ("posix-group", "locked.389"),
    }
    assert edge.group_memberships == {
        ("r&d, europe", "special-chars"),
        ("r&d, europe", "team-real"),
        ("all-edge", "r&d, europe"),
        ("all-edge", "posix-group"),
    }


# --- reader details ------------------------------------------------------------------------

USER_A = "dn: uid=a,dc=x\nobjectClass: inetOrgPerson\nuid: a\n"
GROUP_G = "dn: cn=g,dc=x\nobjectClass: groupOfNames\ncn: g\n"

PEOPLE = """\
dn: ou=people,dc=x
objectClass: organizationalUnit
ou: people

"""


def test_crlf_folding_comments_version_and_changetype_add(tmp_path: Path) -> None:
    text = (
        "version: 1\r\n"
        "# a comment that is\r\n"
        "  folded over two lines\r\n"
        "\r\n" + PEOPLE.replace("\n", "\r\n") + "dn: uid=alice,ou=peo\r\n"
        " ple,dc=x\r\n"
        "changetype: add\r\n"
        "objectClass: inetOrgPerson\r\n"
        "uid: alice\r\n"
        "# a comment inside the record\r\n"
        "displayName: Alice \r\n"
        " Anderson\r\n"
        "mail:: YWxpY2VAeC5leGFtcGxl\r\n"
        "sn:Anderson\r\n"
        "\r\n"
        "\r\n"
    )
    snapshot = load_text(tmp_path, text)
    assert snapshot.users == [
        User(
            name="alice",
            last_name="Anderson",
            display_name="Alice Anderson",
            email="alice@x.example",
            dn="uid=alice,ou=people,dc=x",
        )
    ]


def test_folding_may_split_a_utf8_character(tmp_path: Path) -> None:
    raw = "dn: uid=z,dc=x\nobjectClass: inetOrgPerson\nuid: z\ncn: Zoë\n".encode()
    cut = raw.index("ë".encode()) + 1  # between the two bytes of ë
    path = tmp_path / "split.ldif"
    path.write_bytes(raw[:cut] + b"\n " + raw[cut:])
    assert load_fixture_files([path]).users[0].display_name == "Zoë"


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.ldif"
    path.write_bytes(b"\xef\xbb\xbf" + USER_A.encode())
    assert [u.name for u in load_fixture_files([path]).users] == ["a"]


def test_version_directly_followed_by_entry(tmp_path: Path) -> None:
    text = "version: 1\ndn: cn=g,dc=x\nobjectClass: groupOfNames\ncn: g\nmember:\n"
    assert [g.name for g in load_text(tmp_path, text).groups] == ["g"]


def test_attribute_options_and_aliases(tmp_path: Path) -> None:
    text = (
        "dn: uid=a,dc=x\n"
        "objectClass: inetOrgPerson\n"
        "userid: a\n"
        "gn;lang-en: Anne\n"
        "surname: Smith\n"
        "displayName;lang-de: Anne (de)\n"
        "displayName: Anne Smith\n"
        "mail: first@x\n"
        "mail: second@x\n"
    )
    user = load_text(tmp_path, text).users[0]
    assert (user.name, user.first_name, user.last_name) == ("a", "Anne", "Smith")
    # values without options come first, then in file order
    assert (user.display_name, user.email) == ("Anne Smith", "first@x")


@pytest.mark.parametrize(
    ("uids", "rdn", "expected"),
    [
        (["alias", "real"], "uid=real", "real"),
        (["alias", "real"], "uid=REAL", "real"),
        (["alias", "real"], "cn=x+uid=real", "real"),
        (["alias", "real"], "cn=x", "alias"),
        (["only"], "cn=x", "only"),
    ],
)
def test_username_is_the_rdn_uid(tmp_path: Path, uids: list[str], rdn: str, expected: str) -> None:
    values = "".join(f"uid: {uid}\n" for uid in uids)
    text = f"dn: {rdn},dc=x\nobjectClass: inetOrgPerson\ncn: x\n{values}"
    assert load_text(tmp_path, text).users[0].name == expected


@pytest.mark.parametrize(
    ("extra", "active"),
    [
        ("", True),
        ("pwdAccountLockedTime: 000001010000Z\n", False),
        ("pwdAccountLockedTime: 20240101120000Z\n", False),
        ("nsAccountLock: TRUE\n", False),
        ("nsAccountLock: true\n", False),
        ("nsAccountLock: false\n", True),
        ("NSACCOUNTLOCK: True\n", False),
    ],
)
def test_inactive_users(tmp_path: Path, extra: str, active: bool) -> None:
    text = f"dn: uid=a,dc=x\nobjectClass: inetOrgPerson\nuid: a\n{extra}"
    assert load_text(tmp_path, text).users[0].active is active


@pytest.mark.parametrize(
    ("classes", "is_user"),
    [
        (["inetOrgPerson"], True),
        (["person"], True),
        (["organizationalPerson", "person"], True),
        (["account", "posixAccount"], True),
        (["account"], False),  # a uid alone does not make a user
        (["organizationalRole", "simpleSecurityObject"], False),
        (["applicationProcess"], False),
    ],
)
def test_user_classification(tmp_path: Path, classes: list[str], is_user: bool) -> None:
    lines = "".join(f"objectClass: {c}\n" for c in classes)
    snapshot = load_text(tmp_path, f"dn: uid=a,dc=x\n{lines}uid: a\ncn: a\n")
    assert [u.name for u in snapshot.users] == (["a"] if is_user else [])


def test_person_without_uid_is_skipped(tmp_path: Path) -> None:
    text = "dn: cn=admin,dc=x\nobjectClass: person\ncn: admin\nsn: admin\n"
    assert load_text(tmp_path, text).users == []


@pytest.mark.parametrize("group_class", ["groupOfNames", "groupOfUniqueNames", "group"])
def test_group_classes(tmp_path: Path, group_class: str) -> None:
    text = (
        "dn: uid=a,dc=x\nobjectClass: inetOrgPerson\nuid: a\n\n"
        f"dn: cn=g,dc=x\nobjectClass: {group_class}\ncn: g\n"
        "member: uid=a,dc=x\nuniqueMember: uid=a,dc=x#'1'B\n"
    )
    snapshot = load_text(tmp_path, text)
    assert [g.name for g in snapshot.groups] == ["g"]
    assert snapshot.user_memberships == {("g", "a")}


def test_unique_member_suffix_is_stripped_only_when_unescaped(tmp_path: Path) -> None:
    text = (
        "dn: uid=a#'01'B,dc=x\nobjectClass: inetOrgPerson\nuid: a#'01'B\n\n"
        "dn: uid=b,dc=x\nobjectClass: inetOrgPerson\nuid: b\n\n"
        "dn: cn=g,dc=x\nobjectClass: groupOfUniqueNames\ncn: g\n"
        "uniqueMember: uid=a\\#'01'B,dc=x\n"
        "uniqueMember: uid=b,dc=x#''B\n"
    )
    assert load_text(tmp_path, text).user_memberships == {("g", "a#'01'b"), ("g", "b")}


def test_group_details(tmp_path: Path) -> None:
    text = (
        "dn: cn=real+ou=x,dc=x\nobjectClass: groupOfNames\ncn: alias\ncn: real\n"
        "description: First\ndescription: Second\n"
        "entryUUID: 0e4b9c1a-0000-4000-8000-000000000001\n"
        "member:\n"  # the empty-DN placeholder of an empty groupOfNames
        "memberOf: cn=ignored,dc=elsewhere\n"
    )
    snapshot = load_text(tmp_path, text)
    [group] = snapshot.groups
    assert (group.name, group.description, group.external_id, group.dn) == (
        "real",
        "First",
        "0e4b9c1a-0000-4000-8000-000000000001",
        "cn=real+ou=x,dc=x",
    )
    assert snapshot.user_memberships == set() and snapshot.group_memberships == set()


def test_members_that_name_skipped_entries_are_ignored(tmp_path: Path) -> None:
    text = PEOPLE + (
        "dn: cn=svc,dc=x\nobjectClass: organizationalRole\ncn: svc\n\n"
        "dn: cn=g,dc=x\nobjectClass: groupOfNames\ncn: g\n"
        "member: cn=svc,dc=x\nmember: OU=People,DC=X\n"
    )
    snapshot = load_text(tmp_path, text)
    assert snapshot.user_memberships == set() and snapshot.group_memberships == set()


def test_binary_values_of_unused_attributes_are_fine(tmp_path: Path) -> None:
    text = "dn: uid=a,dc=x\nobjectClass: inetOrgPerson\nuid: a\njpegPhoto:: /9j/4AAQ\n"
    assert [u.name for u in load_text(tmp_path, text).users] == ["a"]


@pytest.mark.parametrize(
    "password",
    [
        "plain-secret",
        "{CLEARTEXT}plain-secret",
        "{SSHA}ZukwWx8KFkWHVi5VraozLNYxmIkMAcBY",
        "{CRYPT}$6$RfjyxfKgD8KCprCR$IakgbRD1zmziPy39eBXNTMrNp8CA1DihjbpcL7DpfE6zRdrPLugXwBoi.mgA/YOiEeWsMsH95EE5xcoQ7oZlQ.",
    ],
)
def test_password_is_kept_as_given(tmp_path: Path, password: str) -> None:
    text = f"dn: uid=a,dc=x\nobjectClass: inetOrgPerson\nuid: a\nuserPassword: {password}\n"
    assert load_text(tmp_path, text).users[0].password == password


# --- errors --------------------------------------------------------------------------------

ERRORS = [
    # (LDIF text, expected entry, expected fragment of the message)
    ("", None, "contains no entries"),
    ("# only a comment\n\nversion: 1\n", None, "contains no entries"),
    (" dn: uid=a,dc=x\n", "line 1", "a continuation line (starting with a space) has no line"),
    (USER_A + "\n uid: b\n", "line 5", "a continuation line"),
    ("objectClass: top\n", "line 1", "a record must start with a dn: line, not objectClass:"),
    ("search: 2\nresult: 0 Success\n", "line 1", "export with ldapsearch -LLL"),
    (USER_A + "\nobjectClass: top\ncn: orphan\n", "line 5", "must start with a dn: line"),
    ("version: 2\n\n" + USER_A, "line 1", "only LDIF version 1 is supported"),
    ("dn uid=a,dc=x\n", "line 1", "cannot read 'dn uid=a,dc=x'; expected 'attribute: value'"),
    (USER_A + "this is not ldif\n", "uid=a,dc=x", "line 4: cannot read 'this is not ldif'"),
    (USER_A + "bad_attr: x\n", "uid=a,dc=x", "line 4: cannot read"),
    (USER_A + "cn:: not base64!\n", "uid=a,dc=x", "line 4: the base64 value of cn is not valid"),
    ("dn:: %%%\n", "line 1", "the base64 value of dn is not valid base64"),
    (USER_A + "cn:: /w==\n", "uid=a,dc=x", "line 4: the base64 value of cn is not UTF-8 text"),
    ("dn:: /w==\n", "line 1", "dn is not UTF-8 text"),
    (USER_A + "jpegPhoto:< file:///tmp/a.jpg\n", "uid=a,dc=x", "URL values are not supported"),
    ("dn: uid=a,dc=x\nchangetype: modify\nreplace: cn\ncn: b\n", "uid=a,dc=x", "changetype: modify records are not supported"),
    ("dn: uid=a,dc=x\nchangetype: delete\n", "uid=a,dc=x", "changetype: delete records"),
    (USER_A + "changetype: add\n", "uid=a,dc=x", "line 4: changetype must follow dn"),
    (USER_A + "dn: uid=b,dc=x\n", "uid=a,dc=x", "line 4: a second dn: line; end each entry with"),
    (USER_A + "  \ndn: uid=b,dc=x\n", "uid=a,dc=x", "line 5: a second dn: line"),
    ("dn: uid=a,dc=x\ncontrol: 1.2.3 true\nchangetype: add\n", "uid=a,dc=x", "controls are not supported"),
    ("dn: uid=a;dc=x\nobjectClass: inetOrgPerson\nuid: a\n", "uid=a;dc=x", "the dn is not a valid DN: malformed DN"),
    ("dn:\nobjectClass: inetOrgPerson\nuid: a\n", "line 1", "the dn is empty"),
    ("dn: uid=a,dc=x\nuid: a\n", "uid=a,dc=x", "the entry has no objectClass"),
    ("dn: cn=a,dc=x\nobjectClass: inetOrgPerson\ncn: a\n", "cn=a,dc=x", "an inetOrgPerson needs a uid"),
    (USER_A.replace("uid: a", "uid:"), "uid=a,dc=x", "uid is empty"),
    (USER_A.replace("uid: a", "uid: a "), "uid=a,dc=x", "uid 'a ' has leading or trailing whitespace"),
    (USER_A.replace("uid: a", "uid:: YQdi"), "uid=a,dc=x", "uid 'a\\x07b' contains a control character"),
    (USER_A + "objectClass: groupOfNames\ncn: a\n", "uid=a,dc=x", "both a person and a group"),
    (USER_A + "userPassword: {MD4}abcdef\n", "uid=a,dc=x", "unknown password hash scheme {MD4}"),
    (USER_A + "userPassword: {PBKDF2_SHA256}AAAgAA\n", "uid=a,dc=x", "unknown password hash scheme {PBKDF2_SHA256}"),
    (USER_A + "userPassword:\n", "uid=a,dc=x", "password is empty"),
    (USER_A + "userPassword: one\nuserPassword: two\n", "uid=a,dc=x", "has 2 userPassword values"),
    (USER_A + "displayName:: QQFC\n", "uid=a,dc=x", "displayName 'A\\x01B' contains the control character"),
    ("dn: cn=g,dc=x\nobjectClass: groupOfNames\nmember:\n", "cn=g,dc=x", "a group needs a cn"),
    (GROUP_G + "member: uid=ghost,dc=x\n", "cn=g,dc=x", "unknown member DN 'uid=ghost,dc=x'"),
    (GROUP_G + "uniqueMember: uid=ghost,dc=x#'01'B\n", "cn=g,dc=x", "unknown member DN 'uid=ghost,dc=x'"),
    (GROUP_G + "member: uid=a,,dc=x\n", "cn=g,dc=x", "member value is not a valid DN: malformed DN 'uid=a,,dc=x'"),
    (GROUP_G + "memberUid: ghost\n", "cn=g,dc=x", "member user 'ghost' is not defined"),
    (GROUP_G + "member: CN=G,DC=X\n", "cn=g,dc=x", "the group lists itself as a member"),
    (USER_A + "\n" + USER_A, "uid=a,dc=x", "the DN is already defined at"),
    (USER_A + "\n" + USER_A.replace("dn: uid=a,dc=x", "dn: UID=A, DC=X"), "UID=A, DC=X", "the DN is already defined at"),
    (USER_A + "\n" + USER_A.replace("dn: uid=a,", "dn: uid=A,ou=y,").replace("uid: a", "uid: A"), "uid=A,ou=y,dc=x", "user 'A' is already defined as 'a' (names ignore case) at"),
    (GROUP_G + "\n" + GROUP_G.replace("dn: cn=g,", "dn: cn=G,ou=y,").replace("cn: g", "cn: G"), "cn=G,ou=y,dc=x", "group 'G' is already defined as 'g'"),
    (USER_A + "entryUUID: 1\n\n" + USER_A.replace("=a,", "=b,").replace("uid: a", "uid: b") + "entryUUID: 1\n", "uid=b,dc=x", "user id '1' is already used at"),
]


@pytest.mark.parametrize(("text", "entry", "problem"), ERRORS)
def test_errors_name_file_entry_and_problem(
    tmp_path: Path, text: str, entry: str | None, problem: str
) -> None:
    path = tmp_path / "bad.ldif"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([path])
    error = caught.value
    assert error.path == str(path)
    assert error.entry == entry
    assert problem in str(error)
    assert str(error).startswith(f"{path}: {entry}: " if entry else f"{path}: ")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.ldif"
    path.write_bytes(USER_A.encode() + "cn: Jos\xe9\n".encode("latin-1"))
    with pytest.raises(FixtureError) as caught:
        load_fixture_files([path])
    assert str(caught.value) == f"{path}: line 4: is not UTF-8 text; save the file as UTF-8"


def test_unknown_member_dn_names_group_and_member(tmp_path: Path) -> None:
    with pytest.raises(FixtureError) as caught:
        load_text(tmp_path, GROUP_G + "member: uid=ghost,ou=people,dc=x\n")
    assert str(caught.value) == (
        f"{tmp_path / 'test.ldif'}: cn=g,dc=x: unknown member DN 'uid=ghost,ou=people,dc=x': "
        "no entry in the fixture files has this DN; add the entry or remove the member value"
    )


LDIF_PIECES = st.sampled_from(
    [
        "dn: uid=a,dc=x\n",
        "dn: cn=g,dc=x\n",
        "dn:: dWlkPWEsZGM9eA==\n",
        "objectClass: inetOrgPerson\n",
        "objectClass: groupOfNames\n",
        "uid: a\n",
        "cn: g\n",
        "member: uid=a,dc=x\n",
        "member: uid=b\\,x\n",
        "uniqueMember: cn=g,dc=x#'01'B\n",
        "userPassword: {SSHA}x\n",
        "changetype: add\n",
        "version: 1\n",
        "\n",
        " folded\n",
        "# comment\n",
        "junk\n",
        "a:: ===\n",
        "\r\n",
    ]
)


@given(st.lists(LDIF_PIECES, max_size=14).map("".join))
def test_any_ldif_loads_or_raises_fixture_error(text: str) -> None:
    try:
        ldif_part("fuzz.ldif", text.encode())
    except FixtureError:
        pass


@given(st.binary(max_size=200))
def test_any_bytes_load_or_raise_fixture_error(data: bytes) -> None:
    try:
        ldif_part("fuzz.ldif", data)
    except FixtureError:
        pass

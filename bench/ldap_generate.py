"""Generate a seeded LDAP directory as LDIF for slapadd (bench only), cached in bench/out/.

    .venv/bin/python bench/ldap_generate.py --size large          # 100,000 / 10,000 / ~1,000,000
    .venv/bin/python bench/ldap_generate.py --users 5000 --groups 500 --memberships 50000

What it writes, under the suffix dc=example,dc=com of tests/slapd.py (the suffix entry itself
and the service accounts come from the harness, so they are not in the file):

* `ou=people` with N inetOrgPerson users (10 % of them in `ou=contractors,ou=people`): names
  from several languages, about 2 % of usernames non-ASCII (base64 in the LDIF), about 0.4 %
  with characters a DN must escape (`, + " \\ ; < >` and a leading `#`), and 2 % named by an
  Active-Directory-style `cn=Last\\, First` RDN instead of `uid=`; about 1 % locked by the
  ppolicy overlay (`pwdAccountLockedTime: 000001010000Z`); a seeded entryUUID on every entry,
  so the same seed gives the same ids.
* `ou=groups` with M groupOfNames (about 9 % in `ou=projects,ou=groups`), some with names that
  need escaping (`Legal, Risk & Compliance`) or are non-ASCII. Direct user memberships follow a
  Zipf-like law (weight 1/rank, capped at N, at least one member each, exact total): a few
  "everyone"-sized groups and a long tail of small teams, about 10 per user on average.
* Nesting on about 2 % of groups: department trees under `employees`, a three-group cycle, a
  diamond, a chain 10 deep, and one group that lists itself.
* Member values written the way other tools write them: about 0.5 % in an equivalent but
  different form (upper-case attribute types, `\\2C` hex escapes instead of `\\,`), so a reader
  must compare parsed DNs; and a few out of scope: people in `ou=former` (outside the user
  base) and DNs of entries that no longer exist (slapadd runs no refint).

Next to the LDIF a JSON manifest holds the parameters and what a correct full sync must
produce (users, groups, distinct user and group memberships, locked users, out-of-scope and
self member values), so the benchmark can check the store, not just time it. This module uses
only the standard library: the expected figures must not come from the code under test.

Output: bench/out/ldap-<size>-seed<seed>.ldif and .json; reused while the manifest matches the
parameters and GENERATOR_VERSION; written to a temp name and renamed, so an interrupted run
leaves no half file behind.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import sys
import time
import unicodedata
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"

# Bump whenever the output for given parameters changes, so cached files are regenerated.
GENERATOR_VERSION = 1

SUFFIX = "dc=example,dc=com"  # tests/slapd.py SUFFIX; ldap_sync.py checks they agree
PEOPLE = f"ou=people,{SUFFIX}"
CONTRACTORS = f"ou=contractors,{PEOPLE}"
GROUPS = f"ou=groups,{SUFFIX}"
PROJECTS = f"ou=projects,{GROUPS}"
FORMER = f"ou=former,{SUFFIX}"  # outside the user base DN: members here are out of scope
LOCKED_FOREVER = "000001010000Z"  # ppolicy: locked until an administrator unlocks

SIZES: dict[str, tuple[int, int, int]] = {
    "small": (2_000, 200, 20_000),
    "medium": (10_000, 1_000, 100_000),
    "large": (100_000, 10_000, 1_000_000),
}

FIRST_NAMES = [
    "Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Isabel", "Jack",
    "Karen", "Liam", "Maria", "Noah", "Olivia", "Peter", "Quinn", "Rachel", "Samuel", "Tina",
    "Uma", "Victor", "Wendy", "Xavier", "Yusuf", "Zoe", "Ahmed", "Priya", "Wei", "Hiroshi",
    "Fatima", "Ivan", "Olga", "Mateo", "Lucía", "José", "Zoë", "Søren", "Björn", "Łukasz",
    "Małgorzata", "François", "Chloé", "Jürgen", "Ömer", "Siobhán", "Dániel", "Žofia",
    "Nguyễn", "Đorđe", "Çağla", "Renée", "Inês", "Thérèse", "Raúl", "Åsa", "Jiří",
    "Михаил", "Анна", "Γιώργος", "王芳", "佐藤", "김민준",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia", "Rodriguez",
    "Wilson", "Martinez", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright",
    "Müller", "Schröder", "Weiß", "Nørgaard", "Łęcki", "Kowalczyk", "Dvořák", "Gonçalves",
    "Peña", "Ibáñez", "Öztürk", "Çelik", "Đặng", "O'Brien", "Ní Bhriain", "van der Berg",
    "de la Cruz", "Fernández", "Håkansson", "Ó Súilleabháin", "Lefèvre", "Иванов",
    "Παπαδόπουλος", "李", "田中", "박",
]
DEPARTMENTS = [
    "engineering", "sales", "marketing", "finance", "support", "operations", "research",
    "design", "security", "hr", "it", "data", "platform", "mobile", "qa", "product", "infra",
    "procurement", "recherche-développement", "qualität", "logística", "開発", "продажи",
    # names a DN must escape
    "Legal, Risk & Compliance", "R+D", 'Sales "EMEA"', "#ops", "back\\office", "a;b<c>",
]
TEAM_WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "équipe", "größe", "niño", "café",
]
WELL_KNOWN_GROUPS = [
    "everyone", "employees", "contractors", "jira-software-users", "confluence-users",
    "bitbucket-users", "jira-administrators", "confluence-administrators", "bitbucket-admins",
]
# Usernames with characters a DN must escape; {b} is an ordinary login.
SPECIAL_LOGINS = ["{b}+adm", "{b};x", '"{b}"', "{b}\\ops", "#{b}", "{b},jr", "{b}<x>", "{b}=eq"]
# RFC 4514 section 2.4: always escaped inside a value (plus a leading '#' or space, trailing space).
_DN_SPECIAL = frozenset('\\"+,;<>')
_HEX_FORM = {"\\": "\\5C", '"': "\\22", "+": "\\2B", ",": "\\2C", ";": "\\3B", "<": "\\3C",
             ">": "\\3E", "#": "\\23", " ": "\\20"}


# -- text helpers ----------------------------------------------------------------------------


def unique_key(text: str) -> str:
    """The key under which names must be unique: NFC + casefold, the rule of dirsync's name
    keys and (for ASCII and the scripts used here) of slapd's caseIgnore matching."""
    return unicodedata.normalize("NFC", text).casefold()


def ascii_login(text: str) -> str:
    """'Jürgen' -> 'jurgen'; what survives of other scripts after decomposition, else ''."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c for c in folded.lower() if c.isalnum())


def escape_value(value: str) -> str:
    """An RDN value escaped per RFC 4514 (backslash + character form)."""
    out = "".join("\\" + c if c in _DN_SPECIAL else c for c in value)
    if out.startswith(("#", " ")):
        out = "\\" + out
    if out.endswith(" ") and not out.endswith("\\ "):
        out = out[:-1] + "\\ "
    return out


def hex_escape_value(value: str) -> str:
    """The same RDN value with every escape written as hex (`\\2C`), as some tools write it."""
    out = "".join(_HEX_FORM[c] if c in _DN_SPECIAL else c for c in value)
    if out.startswith(("#", " ")):
        out = _HEX_FORM[out[0]] + out[1:]
    return out


def _safe(value: str) -> bool:
    """LDIF SAFE-STRING (RFC 2849): printable ASCII, not starting with space, ':' or '<', and
    (by convention) not ending with a space."""
    if not value:
        return True
    if value[0] in " :<" or value[-1] == " ":
        return False
    return all(" " <= c <= "~" for c in value)


def ldif_line(attribute: str, value: str) -> str:
    if _safe(value):
        return f"{attribute}: {value}\n"
    return f"{attribute}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}\n"


def seeded_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# -- the directory -----------------------------------------------------------------------------


@dataclass
class Person:
    uid: str
    first: str
    last: str
    rdn_type: str  # "uid" or "cn"
    rdn_value: str
    container: str
    mail: str | None
    display: bool
    locked: bool
    entry_uuid: str

    @property
    def dn(self) -> str:
        return f"{self.rdn_type}={escape_value(self.rdn_value)},{self.container}"

    def variant_dn(self) -> str:
        """An equivalent DN in another form: upper-case types, hex escapes."""
        return (f"{self.rdn_type.upper()}={hex_escape_value(self.rdn_value)},"
                + ",".join(p.split("=", 1)[0].upper() + "=" + p.split("=", 1)[1]
                           for p in self.container.split(",")))


@dataclass
class Team:
    name: str
    container: str
    description: str | None
    entry_uuid: str
    users: list[int] = field(default_factory=list)  # indexes into people
    groups: list[int] = field(default_factory=list)  # indexes into groups (nesting)
    outside: list[str] = field(default_factory=list)  # member DNs outside the user base

    @property
    def dn(self) -> str:
        return f"cn={escape_value(self.name)},{self.container}"


@dataclass
class Manifest:
    generator_version: int
    seed: int
    users: int
    groups: int
    memberships_requested: int
    # What a correct full sync stores (user and group base DNs as in ldap_sync.py).
    expected_users: int = 0
    expected_groups: int = 0
    expected_user_memberships: int = 0
    expected_group_memberships: int = 0
    expected_inactive_users: int = 0
    expected_members_out_of_scope: int = 0
    expected_self_memberships: int = 0
    # Shape, for the report.
    non_ascii_usernames: int = 0
    escaped_usernames: int = 0
    cn_named_users: int = 0
    variant_member_values: int = 0
    former_people: int = 0
    largest_group: int = 0
    median_group: int = 0
    entries: int = 0
    ldif_bytes: int = 0
    ldif_sha256: str = ""
    seconds: float = 0.0


def make_people(rng: random.Random, count: int, m: Manifest) -> list[Person]:
    people: list[Person] = []
    taken: set[str] = set()
    rdns: set[str] = set()
    for i in range(count):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        plain = f"{ascii_login(first) or 'user'}.{ascii_login(last) or 'x'}"
        roll = rng.random()
        if roll < 0.03:
            base = f"{first.lower()}.{last.lower().replace(' ', '')}"  # keeps its accents
        elif roll < 0.035:
            base = rng.choice(SPECIAL_LOGINS).format(b=plain)
        else:
            base = plain
        uid, n = base, 1
        while unique_key(uid) in taken:
            n += 1
            uid = f"{base}{n}"
        taken.add(unique_key(uid))
        if not uid.isascii():
            m.non_ascii_usernames += 1
        if any(c in _DN_SPECIAL for c in uid) or uid.startswith("#"):
            m.escaped_usernames += 1
        container = CONTRACTORS if rng.random() < 0.10 else PEOPLE
        if rng.random() < 0.02:
            # Active Directory style: named by "Last, First" (unique within the container).
            rdn_type, rdn_value = "cn", f"{last}, {first}"
            k = 1
            while unique_key(f"{rdn_value},{container}") in rdns:
                k += 1
                rdn_value = f"{last}, {first} {k}"
            m.cn_named_users += 1
        else:
            rdn_type, rdn_value = "uid", uid
        rdns.add(unique_key(f"{rdn_value},{container}"))
        local = ascii_login(first) + "." + (ascii_login(last) or "x") + (str(n) if n > 1 else "")
        people.append(Person(
            uid=uid, first=first, last=last, rdn_type=rdn_type, rdn_value=rdn_value,
            container=container,
            mail=f"{local}@example.com" if rng.random() >= 0.02 else None,
            display=rng.random() >= 0.05,
            locked=rng.random() < 0.01,
            entry_uuid=seeded_uuid(rng),
        ))
    return people


def make_teams(rng: random.Random, count: int) -> list[Team]:
    names: list[str] = []
    taken: set[str] = set()

    def add(name: str) -> None:
        if unique_key(name) not in taken and len(names) < count:
            taken.add(unique_key(name))
            names.append(name)

    for name in WELL_KNOWN_GROUPS:
        add(name)
    for dept in DEPARTMENTS:
        add(f"dept-{dept}" if dept[0].isalnum() else dept)
    i = 0
    while len(names) < count:
        i += 1
        dept = rng.choice(DEPARTMENTS[:23])  # team names from the plain departments
        word = rng.choice(TEAM_WORDS)
        kind = rng.choice(("team", "project", "role", "svc"))
        add(f"{kind}-{dept}-{word}-{i}")
    return [
        Team(name=name,
             container=PROJECTS if name.startswith("project-") and rng.random() < 0.5 else GROUPS,
             description=f"Members of {name}" if rng.random() < 0.8 else None,
             entry_uuid=seeded_uuid(rng))
        for name in names
    ]


def group_sizes(rng: random.Random, groups: int, users: int, memberships: int) -> list[int]:
    """Zipf-like sizes (weight 1/rank), each between 1 and `users`, summing to exactly
    `memberships`; the biggest go to the well-known groups, the rest in shuffled order."""
    if not groups <= memberships <= groups * users:
        raise SystemExit(f"memberships must be between groups ({groups}) and groups x users "
                         f"({groups * users}), got {memberships}")
    sizes = [1] * groups  # groupOfNames must have a member
    weights = [1.0 / (rank + 1) for rank in range(groups)]
    remaining = memberships - groups
    open_ = list(range(groups))
    while remaining > 0 and open_:
        total = sum(weights[g] for g in open_)
        handed = 0
        for g in open_:
            take = min(int(remaining * weights[g] / total), users - sizes[g])
            sizes[g] += take
            handed += take
        if handed == 0:  # rounding leftovers: one each, biggest first
            for g in open_:
                if handed == remaining:
                    break
                sizes[g] += 1
                handed += 1
        remaining -= handed
        open_ = [g for g in open_ if sizes[g] < users]
    head, tail = sizes[: len(WELL_KNOWN_GROUPS)], sizes[len(WELL_KNOWN_GROUPS):]
    rng.shuffle(tail)
    return head + tail


def make_nesting(rng: random.Random, teams: list[Team], m: Manifest) -> None:
    """Group-in-group edges on about 2 % of the groups, a cycle, a diamond, a deep chain and
    one self-membership."""
    index = {unique_key(t.name): i for i, t in enumerate(teams)}
    edges: set[tuple[int, int]] = set()

    def edge(parent: int, child: int) -> None:
        edges.add((parent, child))

    for parent, child in (("everyone", "employees"), ("everyone", "contractors")):
        if parent in index and child in index:
            edge(index[parent], index[child])
    depts = [i for i, t in enumerate(teams) if t.name.startswith("dept-") or t.name in DEPARTMENTS]
    pool = [i for i, t in enumerate(teams) if t.name.startswith(("team-", "project-"))]
    rng.shuffle(pool)
    budget = max(10, len(teams) // 50)
    pos = 0
    for dept in depts:
        if "employees" in index:
            edge(index["employees"], dept)
        for _ in range(rng.randint(1, 4)):
            if pos >= len(pool) or len(edges) >= budget:
                break
            team = pool[pos]
            pos += 1
            edge(dept, team)
            for _ in range(rng.randint(0, 2)):
                if pos < len(pool):
                    edge(team, pool[pos])
                    pos += 1
    rest = pool[pos:]
    if len(rest) >= 3 + 4 + 10 + 1:
        a, b, c = rest[0:3]  # a cycle a -> b -> c -> a
        edge(a, b), edge(b, c), edge(c, a)
        top, left, right, bottom = rest[3:7]  # a diamond
        edge(top, left), edge(top, right), edge(left, bottom), edge(right, bottom)
        chain = rest[7:17]  # a chain 10 deep
        for parent, child in zip(chain, chain[1:]):
            edge(parent, child)
        lonely = rest[17]
        teams[lonely].groups.append(lonely)  # lists itself: ignored and counted by a reader
        m.expected_self_memberships = 1
    for parent, child in sorted(edges):
        teams[parent].groups.append(child)
    m.expected_group_memberships = len(edges)


Built = tuple[list["Person"], list["Team"], list[str], "Manifest"]


def build(users: int, groups: int, memberships: int, seed: int,
          log=print) -> Built:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    m = Manifest(GENERATOR_VERSION, seed, users, groups, memberships)
    people = make_people(rng, users, m)
    teams = make_teams(rng, groups)
    sizes = group_sizes(rng, len(teams), len(people), memberships)
    population = range(len(people))
    for team, size in zip(teams, sizes):
        team.users = sorted(rng.sample(population, size))
    make_nesting(rng, teams, m)
    # People outside the user base, and DNs of entries that are gone, listed by some groups.
    former = [f"uid=former{i},{FORMER}" for i in range(max(3, users // 1000))]
    out_of_scope = 0
    for k in range(max(5, users // 500)):
        team = teams[rng.randrange(len(teams))]
        # Half people who left for ou=former, half entries deleted long ago (no refint).
        dn = former[k // 2 % len(former)] if k % 2 else f"uid=gone{k},{PEOPLE}"
        if dn not in team.outside:  # a value may appear only once per attribute
            team.outside.append(dn)
            out_of_scope += 1
    m.expected_users = len(people)
    m.expected_groups = len(teams)
    m.expected_user_memberships = sum(sizes)
    m.expected_inactive_users = sum(p.locked for p in people)
    m.expected_members_out_of_scope = out_of_scope
    m.former_people = len(former)
    ordered = sorted(sizes)
    m.largest_group, m.median_group = ordered[-1], ordered[len(ordered) // 2]
    log(f"  {len(people):,} users ({m.non_ascii_usernames} non-ASCII usernames, "
        f"{m.escaped_usernames} with escaped characters, {m.cn_named_users} named by cn, "
        f"{m.expected_inactive_users} locked), {len(teams):,} groups (largest "
        f"{m.largest_group:,}, median {m.median_group}), {m.expected_user_memberships:,} user "
        f"memberships, {m.expected_group_memberships} nested edges")
    return people, teams, former, m


def ldif_entries(people: list[Person], teams: list[Team], former: list[str],
                 rng: random.Random, m: Manifest) -> Iterator[str]:
    """The LDIF text, one entry at a time; parents before children (slapadd needs that)."""
    for dn, ou in ((PEOPLE, "people"), (CONTRACTORS, "contractors"), (GROUPS, "groups"),
                   (PROJECTS, "projects"), (FORMER, "former")):
        yield f"dn: {dn}\nobjectClass: organizationalUnit\nou: {ou}\n\n"
    for dn in former:
        uid = dn.split(",", 1)[0][4:]
        yield (f"dn: {dn}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: Former {uid}\n"
               f"sn: {uid}\n\n")
    for i, p in enumerate(people):
        lines = [ldif_line("dn", p.dn), "objectClass: inetOrgPerson\n", ldif_line("uid", p.uid)]
        if p.rdn_type == "cn":
            lines.append(ldif_line("cn", p.rdn_value))
        else:
            lines.append(ldif_line("cn", f"{p.first} {p.last}"))
        lines += [ldif_line("sn", p.last), ldif_line("givenName", p.first)]
        if p.display:
            lines.append(ldif_line("displayName", f"{p.first} {p.last}"))
        if p.mail:
            lines.append(f"mail: {p.mail}\n")
        lines.append(f"employeeNumber: {100000 + i}\n")
        if p.locked:
            lines.append(f"pwdAccountLockedTime: {LOCKED_FOREVER}\n")
        lines.append(f"entryUUID: {p.entry_uuid}\n\n")
        yield "".join(lines)
    plain_dns = [p.dn for p in people]
    for t in teams:
        lines = [ldif_line("dn", t.dn), "objectClass: groupOfNames\n", ldif_line("cn", t.name)]
        if t.description:
            lines.append(ldif_line("description", t.description))
        for u in t.users:
            if rng.random() < 0.005:
                value = people[u].variant_dn()
                m.variant_member_values += 1
            else:
                value = plain_dns[u]
            lines.append(ldif_line("member", value))
        for g in t.groups:
            lines.append(ldif_line("member", teams[g].dn))
        for dn in t.outside:
            lines.append(ldif_line("member", dn))
        lines.append(f"entryUUID: {t.entry_uuid}\n\n")
        yield "".join(lines)


# -- cache -------------------------------------------------------------------------------------


def paths(label: str, seed: int) -> tuple[Path, Path]:
    stem = OUT_DIR / f"ldap-{label}-seed{seed}"
    return stem.with_suffix(".ldif"), stem.with_suffix(".json")


def size_label(users: int, groups: int, memberships: int) -> str:
    for name, dims in SIZES.items():
        if dims == (users, groups, memberships):
            return name
    return f"{users}u-{groups}g-{memberships}m"


def ensure_ldif(users: int, groups: int, memberships: int, seed: int, *, force: bool = False,
                log=print) -> tuple[Path, Manifest, bool]:  # type: ignore[no-untyped-def]
    """The LDIF and its manifest for these parameters, generated unless cached. Returns
    (path, manifest, generated_now)."""
    ldif, manifest_path = paths(size_label(users, groups, memberships), seed)
    if not force and ldif.exists() and manifest_path.exists():
        try:
            cached = Manifest(**json.loads(manifest_path.read_text()))
        except (TypeError, ValueError):
            cached = None
        if (cached is not None and cached.generator_version == GENERATOR_VERSION
                and (cached.seed, cached.users, cached.groups, cached.memberships_requested)
                == (seed, users, groups, memberships)
                and ldif.stat().st_size == cached.ldif_bytes):
            return ldif, cached, False
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    log(f"generating {ldif.name}: {users:,} users, {groups:,} groups, {memberships:,} "
        f"memberships, seed {seed}")
    t0 = time.perf_counter()
    people, teams, former, m = build(users, groups, memberships, seed, log=log)
    digest = hashlib.sha256()
    tmp = ldif.with_suffix(f".ldif.tmp{os.getpid()}")
    entries = size = 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as fh:
            fh.write(f"# bench/ldap_generate.py v{GENERATOR_VERSION}: {users} users, {groups} "
                     f"groups, {memberships} memberships, seed {seed}; load with slapadd\n\n")
            # A second generator, so member-value variants do not shift the directory's draws.
            for text in ldif_entries(people, teams, former, random.Random(seed + 1), m):
                data = text.encode("utf-8")
                digest.update(data)
                size += len(data)
                fh.write(text)
                entries += 1
        m.entries = entries
        m.ldif_bytes = tmp.stat().st_size
        m.ldif_sha256 = digest.hexdigest()
        m.seconds = round(time.perf_counter() - t0, 2)
        os.replace(tmp, ldif)
    finally:
        tmp.unlink(missing_ok=True)
    manifest_path.write_text(json.dumps(asdict(m), indent=2) + "\n")
    log(f"  wrote {ldif} ({m.ldif_bytes / 1e6:.1f} MB, {entries:,} entries) in {m.seconds:.1f} s")
    return ldif, m, True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="medium",
                        help="small 2,000/200/20,000; medium 10,000/1,000/100,000; "
                             "large 100,000/10,000/1,000,000 (users/groups/memberships)")
    parser.add_argument("--users", type=int, help="override the size's user count")
    parser.add_argument("--groups", type=int, help="override the size's group count")
    parser.add_argument("--memberships", type=int,
                        help="direct user memberships in total (default 10 per user)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    args = parser.parse_args(argv)
    users, groups, memberships = SIZES[args.size]
    if args.users is not None:
        users = args.users
        memberships = 10 * users
    groups = args.groups if args.groups is not None else groups
    memberships = args.memberships if args.memberships is not None else memberships
    path, manifest, generated = ensure_ldif(users, groups, memberships, args.seed,
                                            force=args.force)
    if not generated:
        print(f"{path} is up to date (generated in {manifest.seconds:.1f} s; --force to redo)")
    print(json.dumps(asdict(manifest), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

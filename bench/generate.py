"""Generate a large, seeded directory and write it into a dirsync store (bench only).

    .venv/bin/python bench/generate.py --users 100000 --groups 10000 --memberships 1000000

The snapshot looks like a real company directory: first/last names from several languages
(some non-ASCII, including in user and group names), e-mail addresses, a few inactive users,
power-law group sizes (a handful of huge "everyone"-style groups, a long tail of small teams),
and a few nested groups: department trees plus a three-group cycle.

Writing goes through dirsync's own `apply_fixtures` (one transaction, the real code path), and
its time is reported: that is a figure worth knowing. `--bulk` instead uses a bench-only bulk
loader (`bulk_load` below) that writes the same rows with executemany; it is NOT part of
dirsync and exists only to build stores quickly when apply_fixtures is the slow part.

The same seed and sizes always give the same snapshot.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
import unicodedata
import uuid
from base64 import b64encode
from pathlib import Path

from dirsync.model import Group, Snapshot, User
from dirsync.names import name_key

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
DEFAULT_DB = OUT_DIR / "bench.db"

FIRST_NAMES = [
    "Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Isabel", "Jack",
    "Karen", "Liam", "Maria", "Noah", "Olivia", "Peter", "Quinn", "Rachel", "Samuel", "Tina",
    "Uma", "Victor", "Wendy", "Xavier", "Yusuf", "Zoe", "Ahmed", "Priya", "Wei", "Hiroshi",
    "Fatima", "Ivan", "Olga", "Mateo", "Lucía", "José", "Zoë", "Søren", "Björn", "Łukasz",
    "Małgorzata", "François", "Chloé", "Jürgen", "Ömer", "Ağa", "Siobhán", "Dániel", "Žofia",
    "Ærøn", "Nguyễn", "Đorđe", "Çağla", "Renée", "Inês", "Thérèse", "Raúl", "Åsa", "Jiří",
    "Михаил", "Анна", "Γιώργος", "王芳", "佐藤", "김민준",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia", "Rodriguez",
    "Wilson", "Martinez", "Anderson", "Taylor", "Thomas", "Moore", "Jackson", "Martin", "Lee",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright",
    "Müller", "Schröder", "Weiß", "Straße", "Nørgaard", "Łęcki", "Kowalczyk", "Dvořák",
    "Gonçalves", "Peña", "Ibáñez", "Öztürk", "Çelik", "Đặng", "O'Brien", "Ní Bhriain",
    "van der Berg", "de la Cruz", "Fernández", "Håkansson", "Ó Súilleabháin", "Lefèvre",
    "Иванов", "Παπαδόπουλος", "李", "田中", "박",
]
DEPARTMENTS = [
    "engineering", "sales", "marketing", "finance", "legal", "support", "operations", "research",
    "design", "security", "hr", "it", "data", "platform", "mobile", "qa", "product", "infra",
    "procurement", "recherche-développement", "qualität", "logística", "開発", "продажи",
]
TEAM_WORDS = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "aurora", "borealis", "comet",
    "équipe", "größe", "søndag", "niño", "café",
]
WELL_KNOWN_GROUPS = [
    "everyone", "jira-software-users", "confluence-users", "bitbucket-users", "stash-users",
    "jira-administrators", "confluence-administrators", "bitbucket-admins", "employees",
    "contractors",
]


def _ascii_login(text: str) -> str:
    """'Jürgen' -> 'jurgen', 'Søren' -> 'sren'... ASCII where decomposition allows."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c for c in folded.lower() if c.isalnum())


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ssha(rng: random.Random, password: str) -> str:
    salt = rng.getrandbits(64).to_bytes(8, "big")
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + b64encode(digest + salt).decode()


def make_users(rng: random.Random, count: int) -> list[User]:
    users: list[User] = []
    taken: set[str] = set()
    for i in range(count):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        # Most logins are ASCII (as in most real directories); about 3% keep their accents.
        if rng.random() < 0.03:
            base = f"{first.lower()}.{last.lower().replace(' ', '')}"
        else:
            base = f"{_ascii_login(first) or 'user'}.{_ascii_login(last) or 'x'}"
        name = base
        n = 1
        while name_key(name) in taken:
            n += 1
            name = f"{base}{n}"
        taken.add(name_key(name))
        # Occasionally upper case in the stored name, as LDAP servers hand it over.
        if rng.random() < 0.01:
            name = name.capitalize()
        local = _ascii_login(first) + "." + (_ascii_login(last) or "x") + (str(n) if n > 1 else "")
        attributes: dict[str, tuple[str, ...]] = {}
        if rng.random() < 0.02:
            attributes = {
                "department": (rng.choice(DEPARTMENTS),),
                "phone": (f"+41 44 {rng.randrange(100, 999)} {rng.randrange(10, 99)} {rng.randrange(10, 99)}",),
            }
        users.append(
            User(
                name=name,
                first_name=first,
                last_name=last,
                display_name=f"{first} {last}",
                email=f"{local}@example.com",
                active=rng.random() >= 0.02,
                external_id=_uuid(rng),
                # LDAP-style: most users authenticate by bind (no stored hash); a few carry an
                # {SSHA} hash, which dirsync stores as given (no hashing cost on load).
                password=_ssha(rng, f"pw-{i}") if rng.random() < 0.01 else None,
                dn=f"uid={name},ou=people,dc=example,dc=com",
                attributes=attributes,
            )
        )
    return users


def make_groups(rng: random.Random, count: int) -> list[Group]:
    names: list[str] = []
    taken: set[str] = set()

    def add(name: str) -> None:
        if name_key(name) not in taken and len(names) < count:
            taken.add(name_key(name))
            names.append(name)

    for name in WELL_KNOWN_GROUPS:
        add(name)
    for dept in DEPARTMENTS:
        add(f"dept-{dept}")
    i = 0
    while len(names) < count:
        i += 1
        dept = rng.choice(DEPARTMENTS)
        word = rng.choice(TEAM_WORDS)
        kind = rng.choice(("team", "project", "role", "svc"))
        add(f"{kind}-{dept}-{word}-{i}")
    return [
        Group(
            name=name,
            description=f"Members of {name}" if rng.random() < 0.8 else "",
            active=rng.random() >= 0.01,
            external_id=_uuid(rng),
            dn=f"cn={name},ou=groups,dc=example,dc=com",
        )
        for name in names
    ]


def group_sizes(rng: random.Random, groups: int, users: int, memberships: int) -> list[int]:
    """Zipf-like sizes (weight 1/rank) summing to exactly `memberships`, each <= users."""
    if memberships > groups * users:
        raise SystemExit(f"--memberships {memberships} exceeds groups x users = {groups * users}")
    weights = [1.0 / (rank + 1) for rank in range(groups)]
    sizes = [0] * groups
    capped: set[int] = set()
    remaining = memberships
    # Water-filling: groups that hit the cap (every user) hand their excess to the others.
    while remaining > 0:
        free = [g for g in range(groups) if g not in capped]
        total = sum(weights[g] for g in free)
        handed = 0
        for g in free:
            share = int(remaining * weights[g] / total)
            room = users - sizes[g]
            take = min(share, room)
            sizes[g] += take
            handed += take
            if sizes[g] == users:
                capped.add(g)
        remaining -= handed
        if handed == 0:  # rounding leftovers: one each, biggest groups first
            for g in free:
                if remaining == 0:
                    break
                if sizes[g] < users:
                    sizes[g] += 1
                    remaining -= 1
                    if sizes[g] == users:
                        capped.add(g)
    # The biggest sizes go to the well-known groups first, then a shuffled order, so "team" names
    # do not carry their rank.
    head = sizes[: len(WELL_KNOWN_GROUPS)]
    tail = sizes[len(WELL_KNOWN_GROUPS):]
    rng.shuffle(tail)
    return head + tail


def make_nested(rng: random.Random, groups: list[Group]) -> set[tuple[str, str]]:
    """Department trees (dept -> a few teams -> a few sub-teams), 'everyone' -> employees and
    contractors, and one three-group cycle. About 2% of groups take part."""
    keys = [name_key(g.name) for g in groups]
    by_key = set(keys)
    edges: set[tuple[str, str]] = set()
    for parent, child in (("everyone", "employees"), ("everyone", "contractors")):
        if parent in by_key and child in by_key:
            edges.add((parent, child))
    depts = [k for k in keys if k.startswith("dept-")]
    teams = [k for k in keys if k.startswith(("team-", "project-"))]
    rng.shuffle(teams)
    budget = max(3, len(groups) // 50)
    pos = 0
    for dept in depts:
        for _ in range(rng.randint(1, 4)):
            if pos >= len(teams) or len(edges) >= budget:
                break
            team = teams[pos]
            pos += 1
            edges.add((dept, team))
            for _ in range(rng.randint(0, 2)):
                if pos >= len(teams):
                    break
                edges.add((team, teams[pos]))
                pos += 1
        if "employees" in by_key and len(edges) < budget:
            edges.add(("employees", dept))
    # A cycle a -> b -> c -> a among three further teams.
    if pos + 3 <= len(teams):
        a, b, c = teams[pos : pos + 3]
        edges |= {(a, b), (b, c), (c, a)}
    return edges


def make_snapshot(users: int, groups: int, memberships: int, seed: int,
                  log=print) -> Snapshot:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    t0 = time.perf_counter()
    user_list = make_users(rng, users)
    log(f"  {len(user_list):,} users generated ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    group_list = make_groups(rng, groups)
    log(f"  {len(group_list):,} groups generated ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    user_keys = [name_key(u.name) for u in user_list]
    sizes = group_sizes(rng, len(group_list), len(user_keys), memberships)
    pairs: set[tuple[str, str]] = set()
    population = range(len(user_keys))
    for group, size in zip(group_list, sizes):
        gkey = name_key(group.name)
        for idx in rng.sample(population, size):
            pairs.add((gkey, user_keys[idx]))
    nested = make_nested(rng, group_list)
    log(
        f"  {len(pairs):,} user memberships (largest group {max(sizes, default=0):,}, "
        f"median {sorted(sizes)[len(sizes) // 2] if sizes else 0}), {len(nested)} group "
        f"memberships incl. a 3-cycle ({time.perf_counter() - t0:.1f} s)"
    )
    return Snapshot(users=user_list, groups=group_list, user_memberships=pairs,
                    group_memberships=nested)


# --- bench-only bulk loader ------------------------------------------------------------------


def bulk_load(store, directory: str, snapshot: Snapshot) -> None:  # type: ignore[no-untyped-def]
    """BENCH-ONLY fast path: INSERTs the snapshot with executemany into an EMPTY store.

    Not part of dirsync and not a substitute for `apply_fixtures` (no diff, no name checks, no
    password handling beyond storing the given hash -- the generator only gives {SSHA} hashes
    or None --, no journal, no sync-run record). It writes the same columns dirsync's apply
    writes, so the served data is the same; bench/README.md shows the comparison.
    """
    from sqlalchemy import func, insert, select

    from dirsync.store.db import utcnow
    from dirsync.store.tables import (
        directories,
        group_attributes,
        group_memberships,
        groups,
        user_attributes,
        user_memberships,
        users,
    )

    now = utcnow()
    with store.write() as conn:
        if conn.execute(select(func.count()).select_from(users)).scalar():
            raise SystemExit("--bulk needs an empty store; delete the database file first")
        directory_id = conn.execute(
            insert(directories).values(name=directory, kind="fixtures", created_at=now)
        ).inserted_primary_key[0]
        # The columns dirsync's own apply writes (dirsync.store.writes), spelled out here so
        # that this bench tool does not reach into private helpers.
        rows = [
            {
                "directory_id": directory_id, "external_id": u.external_id, "name": u.name,
                "name_key": name_key(u.name), "first_name": u.first_name,
                "last_name": u.last_name, "display_name": u.display_name, "email": u.email,
                "first_name_key": name_key(u.first_name), "last_name_key": name_key(u.last_name),
                "display_name_key": name_key(u.display_name), "email_key": name_key(u.email),
                "active": u.active, "password_hash": u.password, "dn": u.dn,
                "created_at": now, "updated_at": now,
            }
            for u in snapshot.users
        ]
        for i in range(0, len(rows), 20_000):
            conn.execute(insert(users), rows[i : i + 20_000])
        conn.execute(insert(groups), [
            {
                "directory_id": directory_id, "external_id": g.external_id, "name": g.name,
                "name_key": name_key(g.name), "description": g.description,
                "description_key": name_key(g.description), "active": g.active, "dn": g.dn,
                "created_at": now, "updated_at": now,
            }
            for g in snapshot.groups
        ])
        user_ids = dict(conn.execute(select(users.c.name_key, users.c.id)).all())
        group_ids = dict(conn.execute(select(groups.c.name_key, groups.c.id)).all())
        attr_rows = [
            {"user_id": user_ids[name_key(u.name)], "name": n, "position": p, "value": v}
            for u in snapshot.users for n, vs in u.attributes.items() for p, v in enumerate(vs)
        ]
        if attr_rows:
            conn.execute(insert(user_attributes), attr_rows)
        attr_rows = [
            {"group_id": group_ids[name_key(g.name)], "name": n, "position": p, "value": v}
            for g in snapshot.groups for n, vs in g.attributes.items() for p, v in enumerate(vs)
        ]
        if attr_rows:
            conn.execute(insert(group_attributes), attr_rows)
        pairs = sorted((group_ids[g], user_ids[u]) for g, u in snapshot.user_memberships)
        for i in range(0, len(pairs), 50_000):
            conn.execute(insert(user_memberships),
                         [{"group_id": g, "user_id": u} for g, u in pairs[i : i + 50_000]])
        gpairs = [{"parent_id": group_ids[p], "child_id": group_ids[c]}
                  for p, c in sorted(snapshot.group_memberships)]
        if gpairs:
            conn.execute(insert(group_memberships), gpairs)


# --- command line ----------------------------------------------------------------------------


def default_url(path: Path = DEFAULT_DB) -> str:
    return f"sqlite:///{path}"


def build_store(url: str, users: int, groups: int, memberships: int, seed: int,
                bulk: bool = False, log=print) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Generate and write; returns timings in seconds."""
    from dirsync.store.db import Store
    from dirsync.sync.fixtures import apply_fixtures

    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    log(f"generating snapshot: {users:,} users, {groups:,} groups, {memberships:,} memberships, "
        f"seed {seed}")
    t0 = time.perf_counter()
    snapshot = make_snapshot(users, groups, memberships, seed, log=log)
    timings["generate"] = time.perf_counter() - t0
    store = Store(url)
    store.init_schema()
    log(f"writing into {store.safe_url} with "
        f"{'bench-only bulk_load' if bulk else 'dirsync apply_fixtures'} ...")
    t0 = time.perf_counter()
    if bulk:
        bulk_load(store, "fixtures", snapshot)
        log(f"  bulk_load: {time.perf_counter() - t0:.1f} s")
    else:
        counts = apply_fixtures(store, "fixtures", snapshot)
        log(f"  apply_fixtures: {counts.summary()} in {time.perf_counter() - t0:.1f} s")
    timings["write"] = time.perf_counter() - t0
    store.dispose()
    return timings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10_000)
    parser.add_argument("--memberships", type=int, default=1_000_000,
                        help="direct user memberships (group, user) in total")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=default_url(),
                        help=f"store to write into (default {default_url()})")
    parser.add_argument("--bulk", action="store_true",
                        help="use the bench-only bulk loader instead of apply_fixtures "
                             "(empty store only)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    timings = build_store(args.database_url, args.users, args.groups, args.memberships,
                          args.seed, bulk=args.bulk)
    print(f"done in {time.perf_counter() - t0:.1f} s (generate {timings['generate']:.1f} s, "
          f"write {timings['write']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

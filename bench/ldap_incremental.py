"""Time dirsync's incremental LDAP sync: rounds of 100 changes on a private slapd.

    .venv/bin/python bench/ldap_incremental.py --size large --rounds 5   # issue 4's target
    .venv/bin/python bench/ldap_incremental.py --small                   # CI size, fast, exit 1 if wrong
    .venv/bin/python bench/ldap_incremental.py --size large --rounds 3 --profile cprofile

Target (issue 4, "Speed"): an incremental sync of 100 changes on the large directory (100,000
users / 10,000 groups / ~1,000,000 memberships) in <= 1 s where the server's change log is
available, <= 3 s with an IDs-only deletion scan.

What one run does:

1. Generates the directory with `ldap_generate.py` (seeded, cached in bench/out/; the same
   files as ldap_sync.py) and rebuilds the generator's in-memory model of it (`gen.build`, same
   seed), which this bench keeps up to date as it changes the directory.
2. Starts a private slapd with tests/slapd.py's `SlapdServer(syncprov=True, accesslog=True)` --
   the change tracking the tests use: contextCSN on the suffix, every successful write logged
   with its entryUUID under cn=accesslog -- plus, bench only, `cn=sync-nolog`: a read-only
   account like `cn=sync` that may not read the accesslog database. Loads the LDIF with
   `slapadd -q -w`, every entry's entryCSN set 30 days back, and the accesslog's minCSN 60
   days back (see "Emulated history" below).
3. One full sync (`sync_directory(full=True)`) into a fresh SQLite store, checked against the
   generator's manifest; the store file is copied, so that two stores continue from the same
   full sync and token: one synced as `cn=sync` (deletions from the accesslog), one as
   `cn=sync-nolog` (changes.py finds no accesslog visible to it and scans the ids: "deletions
   by present-scan"). Nothing in dirsync is switched or patched for this.
4. Per round: a seeded batch of exactly 100 LDAP writes, applied with one `ldapmodify` as the
   rootdn (BATCH below: user adds, deletes, renames, moves between OUs, attribute edits, locks,
   member adds and removes in small and in the largest groups, a nesting change, group adds,
   a delete, a rename, description edits); then a wait until slapd is idle again (refint
   rewrites member values in a background task, which at the large size keeps slapd busy for
   about half a minute after a batch; see Barrier). Then `sync_directory` (no `full`) on each store, each in a child process of its
   own, in alternating order; the child fails the step unless the result is ok, the mode
   incremental and the deletions came from the expected source. The time is the call's own,
   in-process (imports and start-up excluded), with phases from bench-only timers around the
   read's and the apply's functions. Before a step the store is copied, so a step disturbed by
   other work can be re-run on the same state (`--retries`).
5. After the last round: a full sync into a third, fresh store; both incrementally synced
   stores must hold exactly what it holds (users, groups, their attributes, user and nested
   memberships, compared by external id in SQL), and its counts must match this bench's own
   model of the directory. Exit 1 otherwise.

Emulated history. A real directory's entries were written over years and a real accesslog has
been running for longer than the settle window. A fresh slapadd gives every entry the same
entryCSN (now) and starts the accesslog at the first write. Left like that, the first
incremental rounds would re-read the *whole* directory (incremental reads re-read the last
SETTLE_SECONDS = 600 s before the newest change; see dirsync/ldap/watermark.py) and changes.py
would refuse the accesslog ("does not reach back" to the window's start). Hence the
backdating, which only shapes the starting point: every change measured is a real write.

The settle window is kept at dirsync's default (600 s), as in production; `--settle` changes
the `settle_seconds` passed to sync_directory (a what-if: correctness here does not depend on
it, since each round waits for refint). The report shows from where each round read.

Options as in ldap_sync.py: --size, --small, --rounds, --at REV, --json, --retries,
--quiet-wait; `--profile py-spy|cprofile` profiles one more round (it is applied and checked
like the others, but not counted). Bench only: tests/ is put on sys.path for the harness;
nothing in dirsync or tests changes. See bench/INCREMENTAL.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/slapd.py, as ldap_sync.py does

import benchlib  # noqa: E402
import ldap_generate as gen  # noqa: E402
import ldap_sync as ls  # noqa: E402

OUT_DIR = benchlib.OUT_DIR
# median seconds per mode (issue 4), for the large directory; other sizes are shown against them
TARGETS = {"accesslog": 1.0, "present-scan": 3.0}
MODES = ("accesslog", "present-scan")
NOLOG_DN = f"cn=sync-nolog,{gen.SUFFIX}"
NOLOG_PASSWORD = "sync-nolog-secret"
HISTORY_DAYS = 30  # entries' entryCSN this far back
LOG_HISTORY_DAYS = 60  # the accesslog's minCSN this far back

# One batch: (operation, count), 100 LDAP writes in all, shuffled.
BATCH = (
    ("add_user", 8),             # a new hire: inetOrgPerson in people or contractors
    ("delete_user", 4),          # a leaver (refint removes the member values)
    ("rename_user", 4),          # modrdn uid=new (the username changes)
    ("move_user", 4),            # people <-> contractors (modrdn with newsuperior)
    ("edit_user", 30),           # mail, displayName, sn or givenName replaced
    ("edit_user_unmapped", 4),   # title or telephoneNumber: a write the mirror ignores
    ("lock_user", 4),            # pwdAccountLockedTime added or removed
    ("add_member_small", 15),    # into a group of <= SMALL_GROUP members
    ("remove_member_small", 12),
    ("add_member_large", 4),     # into one of the LARGE_GROUPS biggest groups ("everyone", ...)
    ("remove_member_large", 3),
    ("nesting", 1),              # a group added to / removed from another group
    ("add_group", 2),
    ("delete_group", 1),
    ("rename_group", 1),
    ("edit_group", 3),           # description replaced
)
SMALL_GROUP = 100
LARGE_GROUPS = 3


def csn_at(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + f".{moment.microsecond:06d}Z#000000#000#000000"


# =============================================================================================
# slapd with syncprov + accesslog, loaded with emulated history
# =============================================================================================


class IncrementalLab(ls.Lab):
    def __init__(self, ldif: Path, page_size: int) -> None:
        super().__init__(ldif, page_size, syncprov=True, accesslog=True)
        now = datetime.now(timezone.utc)
        self.entry_csn = csn_at(now - timedelta(days=HISTORY_DAYS))
        self.log_min_csn = csn_at(now - timedelta(days=LOG_HISTORY_DAYS))

    def configure(self) -> None:
        from slapd import LIMITED_DN, SYNC_DN

        # cn=sync-nolog reads the directory like cn=sync, without limits, and is not named in
        # the accesslog database's ACL (tests/slapd.py), so it cannot see the log at all.
        self.server.modify_config(
            "dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\nadd: olcLimits\n"
            f'olcLimits: {{2}}dn.exact="{NOLOG_DN}" size=unlimited time=unlimited\n-\n'
            "delete: olcAccess\nolcAccess: {1}\n-\nadd: olcAccess\n"
            f'olcAccess: {{1}}to * by dn.exact="{SYNC_DN}" read by dn.exact="{LIMITED_DN}" '
            f'read by dn.exact="{NOLOG_DN}" read by self read by * none\n')

    def load(self) -> None:
        server = self.server
        assert server.base_dir is not None
        slapadd = [server.tools["slapadd"], "-F", str(server.base_dir / "slapd.d")]
        proc = subprocess.Popen([*slapadd, "-b", gen.SUFFIX, "-q", "-w"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                env=ls.ldap_client_env(), cwd="/")
        assert proc.stdin is not None and proc.stderr is not None
        csn_line = f"entryCSN: {self.entry_csn}\n".encode()
        with open(self.ldif, "rb") as fh:
            out = []
            for line in fh:  # unfolded LDIF: an entry's first line is its whole DN
                out.append(line)
                if line.startswith(b"dn:"):
                    out.append(csn_line)
                if len(out) > 20000:
                    proc.stdin.write(b"".join(out))
                    out.clear()
            out.append(f"\ndn: {NOLOG_DN}\nobjectClass: applicationProcess\nobjectClass: "
                       f"simpleSecurityObject\ncn: sync-nolog\nuserPassword: {NOLOG_PASSWORD}\n"
                       f"entryCSN: {self.entry_csn}\n".encode())
            proc.stdin.write(b"".join(out))
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
        if proc.wait() != 0:
            raise SystemExit(f"slapadd failed (exit {proc.returncode}): {err.strip()[-2000:]}")
        # The accesslog database was created (and its root entry written) when slapd first
        # started; start it again with a root entry whose minCSN says it reaches back.
        for stale in (server.base_dir / "log").glob("*.mdb"):
            stale.unlink()
        root = (f"dn: cn=accesslog\nobjectClass: auditContainer\ncn: accesslog\n"
                f"minCSN: {self.log_min_csn}\n")
        done = subprocess.run([*slapadd, "-b", "cn=accesslog", "-q"], input=root,
                              capture_output=True, text=True, env=ls.ldap_client_env(), cwd="/")
        if done.returncode != 0:
            raise SystemExit(f"slapadd (accesslog root) failed: {done.stderr.strip()}")

    def table(self, mode: str = "accesslog") -> dict[str, Any]:
        table = super().table()
        table["full_sync_every"] = 100_000  # every round incremental (default 12)
        if mode == "present-scan":
            table["bind_dn"] = NOLOG_DN
        return table

    def password(self, mode: str) -> str:
        return NOLOG_PASSWORD if mode == "present-scan" else self.sync_password

    def ldapmodify(self, ldif: str, timeout: float = 3600) -> None:
        from slapd import ADMIN_DN, ADMIN_PASSWORD

        proc = subprocess.run([self.server.tools["ldapmodify"], "-x", "-H", self.server.url,
                               "-D", ADMIN_DN, "-w", ADMIN_PASSWORD], input=ldif.encode(),
                              capture_output=True, env=ls.ldap_client_env(), cwd="/",
                              timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"ldapmodify failed (exit {proc.returncode}): "
                               f"{proc.stderr.decode(errors='replace').strip()[-2000:]}")


# =============================================================================================
# The directory as it is now (the generator's model, kept up to date) and the batches
# =============================================================================================


class Model:
    """People and groups as the generator built them, with every change this bench makes."""

    def __init__(self, size: str, seed: int) -> None:
        users, groups, memberships = gen.SIZES[size]
        self.people, teams, _former, self.manifest = gen.build(
            users, groups, memberships, seed, log=lambda *a: None)
        self.alive_people = set(range(len(self.people)))
        self.teams = teams
        self.alive_teams = set(range(len(teams)))
        self.members = [set(t.users) for t in teams]  # person indexes
        self.children = [set(t.groups) for t in teams]  # team indexes (self-loop kept)
        self.extra = [len(t.outside) for t in teams]  # member values outside the scope
        order = sorted(range(len(teams)), key=lambda i: -len(self.members[i]))
        self.large = order[:LARGE_GROUPS]
        self.rng = random.Random()
        self.round = 0
        self.serial = 0

    # -- picking ------------------------------------------------------------------------
    def person(self, test: Callable[[gen.Person], bool] = lambda p: True) -> int:
        alive = self.alive_list
        for _ in range(1000):
            i = alive[self.rng.randrange(len(alive))]
            if i in self.alive_people and test(self.people[i]):
                return i
        raise LookupError("no person fits")

    def small_group(self, test: Callable[[int], bool] = lambda t: True) -> int:
        for _ in range(10000):
            t = self.team_list[self.rng.randrange(len(self.team_list))]
            if t in self.alive_teams and t not in self.large and 1 <= len(self.members[t]) <= SMALL_GROUP and test(t):
                return t
        raise LookupError("no group fits")

    def size_of(self, t: int) -> int:
        return len(self.members[t]) + len(self.children[t]) + self.extra[t]

    def fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-r{self.round}-{self.serial}"

    # -- the batch ------------------------------------------------------------------------
    def batch(self, seed: int, round_no: int) -> tuple[str, Counter[str]]:
        """100 change records as one LDIF for ldapmodify; the model follows each at once."""
        self.rng = random.Random(seed * 7919 + round_no)
        self.round = round_no
        ops = [name for name, count in BATCH for _ in range(count)]
        self.rng.shuffle(ops)
        records: list[str] = []
        done: Counter[str] = Counter()
        self.alive_list = sorted(self.alive_people)  # picks skip the ones gone since
        self.team_list = sorted(self.alive_teams)
        for name in ops:
            records.append(getattr(self, "op_" + name)())
            done[name] += 1
        return "".join(records), done

    def op_add_user(self) -> str:
        first, last = self.rng.choice(gen.FIRST_NAMES), self.rng.choice(gen.LAST_NAMES)
        uid = self.fresh("newhire")
        container = gen.CONTRACTORS if self.rng.random() < 0.1 else gen.PEOPLE
        p = gen.Person(uid=uid, first=first, last=last, rdn_type="uid", rdn_value=uid,
                       container=container, mail=f"{uid}@example.com", display=True,
                       locked=False, entry_uuid="")
        self.people.append(p)
        self.alive_people.add(len(self.people) - 1)
        self.alive_list.append(len(self.people) - 1)
        return (gen.ldif_line("dn", p.dn) + "changetype: add\nobjectClass: inetOrgPerson\n"
                + gen.ldif_line("uid", uid) + gen.ldif_line("cn", f"{first} {last}")
                + gen.ldif_line("sn", last) + gen.ldif_line("givenName", first)
                + gen.ldif_line("displayName", f"{first} {last}") + f"mail: {p.mail}\n\n")

    def op_delete_user(self) -> str:
        # refint removes the member values; a group must keep at least one member.
        def ok(i: int) -> bool:
            return all(self.size_of(t) > 1 for t in self.alive_teams if i in self.members[t])

        i = self.person()
        while not ok(i):
            i = self.person()
        dn = self.people[i].dn
        self.alive_people.discard(i)
        for t in self.alive_teams:
            self.members[t].discard(i)
        return gen.ldif_line("dn", dn) + "changetype: delete\n\n"

    def op_rename_user(self) -> str:
        i = self.person(lambda p: p.rdn_type == "uid" and p.uid.isascii()
                        and p.uid.replace(".", "").replace("-", "").isalnum())
        p = self.people[i]
        old = p.dn
        p.uid = p.rdn_value = self.fresh(p.uid.split("-r")[0])
        return (gen.ldif_line("dn", old) + "changetype: modrdn\n"
                + gen.ldif_line("newrdn", f"uid={p.uid}") + "deleteoldrdn: 1\n\n")

    def op_move_user(self) -> str:
        i = self.person(lambda p: p.rdn_type == "uid")
        p = self.people[i]
        old = p.dn
        p.container = gen.PEOPLE if p.container == gen.CONTRACTORS else gen.CONTRACTORS
        return (gen.ldif_line("dn", old) + "changetype: modrdn\n"
                + gen.ldif_line("newrdn", f"uid={gen.escape_value(p.uid)}")
                + "deleteoldrdn: 1\n" + gen.ldif_line("newsuperior", p.container) + "\n")

    def op_edit_user(self) -> str:
        p = self.people[self.person()]
        attribute = self.rng.choice(["mail", "displayName", "sn", "givenName"])
        value = self.fresh("edited") + ("@example.com" if attribute == "mail" else "")
        return (gen.ldif_line("dn", p.dn) + f"changetype: modify\nreplace: {attribute}\n"
                + gen.ldif_line(attribute, value) + "-\n\n")

    def op_edit_user_unmapped(self) -> str:
        p = self.people[self.person()]
        attribute = self.rng.choice(["title", "telephoneNumber"])
        value = (f"+1 555 {self.rng.randrange(10**6):06d}" if attribute == "telephoneNumber"
                 else self.fresh("title"))
        return (gen.ldif_line("dn", p.dn) + f"changetype: modify\nreplace: {attribute}\n"
                + gen.ldif_line(attribute, value) + "-\n\n")

    def op_lock_user(self) -> str:
        p = self.people[self.person()]
        p.locked = not p.locked
        if p.locked:
            change = f"add: pwdAccountLockedTime\npwdAccountLockedTime: {gen.LOCKED_FOREVER}\n"
        else:
            change = "delete: pwdAccountLockedTime\n"
        return gen.ldif_line("dn", p.dn) + f"changetype: modify\n{change}-\n\n"

    def _add_member(self, t: int) -> str:
        i = self.person(lambda p: True)
        while i in self.members[t]:
            i = self.person()
        self.members[t].add(i)
        return (gen.ldif_line("dn", self.teams[t].dn) + "changetype: modify\nadd: member\n"
                + gen.ldif_line("member", self.people[i].dn) + "-\n\n")

    def _remove_member(self, t: int) -> str:
        i = self.rng.choice(sorted(self.members[t]))
        self.members[t].discard(i)
        return (gen.ldif_line("dn", self.teams[t].dn) + "changetype: modify\ndelete: member\n"
                + gen.ldif_line("member", self.people[i].dn) + "-\n\n")

    def op_add_member_small(self) -> str:
        return self._add_member(self.small_group())

    def op_remove_member_small(self) -> str:
        return self._remove_member(self.small_group(lambda t: len(self.members[t]) >= 2))

    def op_add_member_large(self) -> str:
        return self._add_member(self.rng.choice(self.large))

    def op_remove_member_large(self) -> str:
        return self._remove_member(self.rng.choice(self.large))

    def op_nesting(self) -> str:
        edges = [(p, c) for p in sorted(self.alive_teams) for c in sorted(self.children[p])
                 if c != p and c in self.alive_teams and self.size_of(p) > 1]
        if self.round % 2 == 0 and edges:
            parent, child = self.rng.choice(edges)
            self.children[parent].discard(child)
            change = "delete"
        else:
            parent = self.small_group()
            child = self.small_group(lambda t: t != parent and t not in self.children[parent])
            self.children[parent].add(child)
            change = "add"
        return (gen.ldif_line("dn", self.teams[parent].dn) + f"changetype: modify\n{change}: "
                f"member\n" + gen.ldif_line("member", self.teams[child].dn) + "-\n\n")

    def op_add_group(self) -> str:
        name = self.fresh("team-new")
        team = gen.Team(name=name, container=gen.GROUPS, description=f"Members of {name}",
                        entry_uuid="")
        self.teams.append(team)
        t = len(self.teams) - 1
        self.members.append(set())
        self.children.append(set())
        self.extra.append(0)
        self.alive_teams.add(t)
        self.team_list.append(t)
        for _ in range(self.rng.randint(1, 5)):
            self.members[t].add(self.person())
        return (gen.ldif_line("dn", team.dn) + "changetype: add\nobjectClass: groupOfNames\n"
                + gen.ldif_line("cn", name) + gen.ldif_line("description", team.description or "")
                + "".join(gen.ldif_line("member", self.people[i].dn)
                          for i in sorted(self.members[t])) + "\n")

    def _unnested(self, t: int) -> bool:
        return not self.children[t] and not any(t in self.children[p] for p in self.alive_teams)

    def op_delete_group(self) -> str:
        t = self.small_group(self._unnested)
        self.alive_teams.discard(t)
        return gen.ldif_line("dn", self.teams[t].dn) + "changetype: delete\n\n"

    def op_rename_group(self) -> str:
        t = self.small_group(lambda t: self._unnested(t)
                             and self.teams[t].name.startswith(("team-", "role-", "svc-"))
                             and self.teams[t].name.isascii())
        team = self.teams[t]
        old = team.dn
        team.name = self.fresh(team.name.split("-r")[0])
        return (gen.ldif_line("dn", old) + "changetype: modrdn\n"
                + gen.ldif_line("newrdn", f"cn={gen.escape_value(team.name)}")
                + "deleteoldrdn: 1\n\n")

    def op_edit_group(self) -> str:
        t = self.small_group()
        self.teams[t].description = self.fresh("description")
        return (gen.ldif_line("dn", self.teams[t].dn) + "changetype: modify\nreplace: "
                "description\n" + gen.ldif_line("description", self.teams[t].description)
                + "-\n\n")

    # -- what a full sync must now store ---------------------------------------------------
    def expected(self) -> dict[str, int]:
        teams = sorted(self.alive_teams)
        return {
            "users": len(self.alive_people),
            "groups": len(teams),
            "user_memberships": sum(len(self.members[t] & self.alive_people) for t in teams),
            "group_memberships": sum(len({c for c in self.children[t] if c != t}
                                         & self.alive_teams) for t in teams),
            "inactive_users": sum(1 for i in self.alive_people if self.people[i].locked),
        }


class Barrier:
    """Waits until slapd has finished the work a batch left behind. refint rewrites member
    values after a rename or delete has been answered, in a background task: with the large
    directory slapd keeps one core busy for about half a minute after a batch. (A sentinel
    renamed after the batch does not tell: entries added online carry memberOf, and the memberof
    overlay rewrites their groups at once, while the slapadd-loaded entries wait for refint.)
    So: wait until slapd has used less than IDLE_SHARE of a core for IDLE_SECONDS in a row."""

    IDLE_SECONDS = 3.0
    IDLE_SHARE = 0.03

    def __init__(self, lab: IncrementalLab) -> None:
        self.lab = lab
        self.cpu = 0.0  # slapd CPU seconds used while waiting, last time

    def wait(self, timeout: float = 3600) -> float:
        pid = self.lab.slapd_pid
        t0 = time.perf_counter()
        cpu0 = last_cpu = benchlib.cpu_seconds(pid)
        last_t = quiet_since = t0
        while time.perf_counter() - t0 < timeout:
            time.sleep(0.5)
            now, cpu = time.perf_counter(), benchlib.cpu_seconds(pid)
            if (cpu - last_cpu) > self.IDLE_SHARE * (now - last_t):
                quiet_since = now
            last_cpu, last_t = cpu, now
            if now - quiet_since >= self.IDLE_SECONDS:
                self.cpu = cpu - cpu0
                return quiet_since - t0
        raise RuntimeError(f"slapd was still busy after {timeout:.0f} s")


# =============================================================================================
# The child: one sync_directory call in a fresh interpreter
# =============================================================================================

# (module, attribute, label) timed in the child; nested ones are included in their callers.
TIMED = (
    ("dirsync.ldap.changes", "_context_csns", "read: contextCSN marks"),
    ("dirsync.ldap.changes._Reader", "read_users", "read: changed users (entryCSN>=)"),
    ("dirsync.ldap.changes._Reader", "read_groups", "read: changed groups (entryCSN>=)"),
    ("dirsync.ldap.changes._Reader", "read_log", "read: accesslog records"),
    ("dirsync.ldap.changes._Reader", "find_log", "read: finding the accesslog"),
    ("dirsync.ldap.changes._Reader", "reread_moved", "read: moved subtrees"),
    ("dirsync.ldap.changes._Reader", "check_renamed_containers", "read: renamed containers"),
    ("dirsync.ldap.changes._Reader", "find_parents", "read: groups listing changed entries"),
    ("dirsync.ldap.changes._Reader", "complete_members", "read: member lists or logged values"),
    ("dirsync.ldap.changes._Reader", "scan", "read: id scan (deletions)"),
    ("dirsync.sync.mirror", "_settle_names", "apply: _settle_names"),
    ("dirsync.sync.mirror", "apply_incremental", "apply: apply_incremental"),
    ("dirsync.sync.mirror", "apply_setwise", "apply: apply_setwise (full)"),
    ("dirsync.sync.incremental", "write_entities", "apply: write_entities"),
    ("dirsync.sync.incremental", "_memberships", "apply: _memberships"),
    ("dirsync.store.scoped", "stored_external_ids", "apply: scoped.stored_external_ids"),
    ("dirsync.store.scoped", "external_ids_outside", "apply: scoped.external_ids_outside"),
    ("dirsync.store.scoped", "ids_by_external", "apply: scoped.ids_by_external"),
    ("dirsync.store.scoped", "ids_by_dn_key", "apply: scoped.ids_by_dn_key"),
    ("dirsync.store.scoped", "ids_by_key", "apply: scoped.ids_by_key"),
    ("dirsync.store.scoped", "members_of", "apply: scoped.members_of"),
    ("dirsync.store.scoped", "current_pairs", "apply: scoped.current_pairs"),
    ("dirsync.store.scoped", "replace_pairs", "apply: scoped.replace_pairs"),
    *(("dirsync.store.stage", name, f"apply: stage.{name}") for name in (
        "create", "stage_users_rows", "stage_groups_rows", "mark", "deactivated",
        "stored_count", "counts", "changes_for_journal", "write", "drop")),
    ("dirsync.store.journal.Batch", "write", "apply: journal.Batch.write"),
    ("dirsync.store.runs", "record_run", "record: runs.record_run"),
    ("dirsync.store.runs", "set_sync_state", "record: runs.set_sync_state"),
    ("dirsync.store.runs", "sync_state", "before: runs.sync_state"),
)


def _install(marks: ls.Marks) -> None:
    import importlib

    for path, name, label in TIMED:
        module_path, _, owner = path.rpartition(".")
        try:
            target = importlib.import_module(path)
        except ImportError:
            try:
                target = getattr(importlib.import_module(module_path), owner)
            except (ImportError, AttributeError):
                continue
        if hasattr(target, name):
            marks.timed(target, name, label)


def child_main(job: dict[str, Any]) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from dirsync.ldap.config import parse_directories
    from dirsync.store.db import Store
    from dirsync.sync import mirror

    rss_start = ls.proc_status_kib("VmRSS") / 1024
    config = parse_directories([job["table"]], {ls.PASSWORD_ENV: job["password"]})[0]
    marks = ls.Marks(time.perf_counter())
    _install(marks)
    captured: dict[str, Any] = {}
    original_read = mirror.read_changes

    def read_changes(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        read = original_read(*args, **kwargs)
        d = read.diagnostics
        captured.update(
            read_seconds=time.perf_counter() - t0, deletions=read.deletions,
            changed_users=len(read.changed_users), changed_groups=len(read.changed_groups),
            member_values=sum(len(r.dn_keys) + len(r.name_keys)
                              for r in read.group_members.values()),
            largest_changed_group=max((len(r.dn_keys) for r in read.group_members.values()),
                                      default=0),
            deleted_ids=len(read.deleted_ids), listed_by=len(read.listed_by),
            present_users=None if read.present_user_ids is None else len(read.present_user_ids),
            present_groups=(None if read.present_group_ids is None
                            else len(read.present_group_ids)),
            searches=d.searches, entries_read=d.entries_read, log_records=d.log_records,
            parent_lookups=d.parent_lookups, listings=d.listings, why_scan=d.why_scan,
            member_deltas=getattr(d, "member_deltas", 0), member_lists=getattr(d, "member_lists", 0),
            member_checks=getattr(d, "member_checks", 0),
            logged_values=sum(len(r.dn_keys) + len(r.name_keys)
                              for delta in getattr(read, "member_deltas", {}).values()
                              for r in (delta.added, delta.removed)),
            windows=d.windows, subtrees_reread=len(d.subtrees_reread), skipped=len(d.skipped))
        return read

    mirror.read_changes = read_changes
    profiler = None
    if job.get("profile") == "cprofile":
        import cProfile

        profiler = cProfile.Profile()
    store = Store(job["db_url"])
    import dirsync

    out: dict[str, Any] = {"step": job["step"], "rss_start_mb": rss_start,
                           "dirsync_path": str(Path(dirsync.__file__).parent)}
    extra = {"settle_seconds": job["settle"]} if job.get("settle") is not None else {}
    cpu0 = ls.self_cpu()
    marks.t0 = t0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    try:
        result = mirror.sync_directory(store, config, [config.name], progress=marks.progress,
                                       full=job["step"] == "full", **extra)
    finally:
        if profiler is not None:
            profiler.disable()
    wall = time.perf_counter() - t0
    cpu = ls.self_cpu() - cpu0
    marks.phases.append(marks.point("end"))
    want_mode = "full" if job["step"] == "full" else "incremental"
    error = result.error
    if result.status == "ok" and result.mode != want_mode:
        error = f"the sync ran as {result.mode}: {'; '.join(result.notes)[:500]}"
    elif (result.status == "ok" and job.get("deletions")
          and captured.get("deletions") not in (job["deletions"], "none")):
        error = (f"deletions came from {captured.get('deletions')}, not {job['deletions']}: "
                 f"{captured.get('why_scan')}")
    out.update(ok=result.status == "ok" and not error, status=result.status, mode=result.mode,
               error=error, counts=asdict(result.counts) if result.counts else None,
               notes=result.notes[:3], read=captured, wall=wall, cpu=cpu,
               hwm_mb=ls.proc_status_kib("VmHWM") / 1024, phases=marks.phases,
               calls=marks.calls)
    store.dispose()
    stem = job.get("profile_stem")
    if profiler is not None and stem:
        import pstats

        profiler.dump_stats(stem + ".prof")
        out["profile_text"] = ls.cprofile_report(pstats.Stats(profiler), wall)
    print(ls.RESULT_MARK + json.dumps(out, default=str), flush=True)
    return 0 if out["ok"] else 1


# =============================================================================================
# The parent
# =============================================================================================


def store_path(size: str, label: str) -> Path:
    return OUT_DIR / f"ldap-incremental-{size}-{label}.db"


def store_files(path: Path) -> list[Path]:
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def copy_store(src: Path, dst: Path) -> None:
    for s, d in zip(store_files(src), store_files(dst)):
        if s.exists():
            shutil.copyfile(s, d)
        else:
            d.unlink(missing_ok=True)


def fresh_store(path: Path) -> str:
    for f in store_files(path):
        f.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    ls.init_store(url)
    return url


# What a sync writes, keyed by external id (store ids differ between stores); the same parts as
# tests/test_mirror_incremental.py's contents().
COMPARED = {
    "users": "SELECT external_id, name, first_name, last_name, display_name, email, active, dn "
             "FROM {db}.users",
    "groups": "SELECT external_id, name, description, active, dn FROM {db}.groups",
    "user_attributes": "SELECT u.external_id, a.name, a.position, a.value FROM "
                       "{db}.user_attributes a JOIN {db}.users u ON u.id = a.user_id",
    "group_attributes": "SELECT g.external_id, a.name, a.position, a.value FROM "
                        "{db}.group_attributes a JOIN {db}.groups g ON g.id = a.group_id",
    "user_memberships": "SELECT g.external_id, u.external_id FROM {db}.user_memberships m "
                        "JOIN {db}.groups g ON g.id = m.group_id "
                        "JOIN {db}.users u ON u.id = m.user_id",
    "group_memberships": "SELECT p.external_id, c.external_id FROM {db}.group_memberships m "
                         "JOIN {db}.groups p ON p.id = m.parent_id "
                         "JOIN {db}.groups c ON c.id = m.child_id",
}


def compare_stores(mine: Path, reference: Path) -> dict[str, Any]:
    """Rows in one store and not in the other, per part (0 and 0 everywhere = the same)."""
    conn = sqlite3.connect(f"file:{mine}?mode=ro", uri=True)
    try:
        conn.execute("ATTACH DATABASE ? AS ref", (f"file:{reference}?mode=ro",))
        out: dict[str, Any] = {}
        for part, query in COMPARED.items():
            a, b = query.format(db="main"), query.format(db="ref")
            only_mine = conn.execute(f"SELECT * FROM ({a} EXCEPT {b}) LIMIT 5").fetchall()
            only_ref = conn.execute(f"SELECT * FROM ({b} EXCEPT {a}) LIMIT 5").fetchall()
            n_mine = conn.execute(f"SELECT count(*) FROM ({a} EXCEPT {b})").fetchone()[0]
            n_ref = conn.execute(f"SELECT count(*) FROM ({b} EXCEPT {a})").fetchone()[0]
            rows = conn.execute(f"SELECT count(*) FROM ({a})").fetchone()[0]
            out[part] = {"rows": rows, "only_incremental": n_mine, "only_full": n_ref,
                         "examples": [list(map(str, r)) for r in only_mine[:3] + only_ref[:3]]}
        return out
    finally:
        conn.close()


@dataclass
class Round:
    number: int
    batch_seconds: float = 0.0
    refint_seconds: float = 0.0
    refint_cpu: float = 0.0
    done: dict[str, int] = field(default_factory=dict)
    runs: dict[str, ls.StepRun] = field(default_factory=dict)


def run_sync(lab: IncrementalLab, name: str, round_no: int, url: str, mode: str, step: str,
             settle: float | None, profile: str = "", stem: str = "") -> ls.StepRun:
    job: dict[str, Any] = {"step": step, "db_url": url, "table": lab.table(mode),
                           "password": lab.password(mode), "settle": settle}
    if step == "incremental":
        job["deletions"] = mode
    if profile:
        job.update(profile=profile if profile != "py-spy" else "", profile_stem=stem)
    run = ls.run_child(lab, name, round_no, job, profile=profile,
                       script=Path(__file__).resolve())
    if profile == "py-spy":
        folded = Path(stem + ".folded")
        if folded.exists():
            run.detail["profile_text"] = ls.pyspy_report(only_the_call(folded))
    return run


def only_the_call(folded: Path) -> Path:
    """py-spy samples the whole child, start-up and imports included (longer than an
    incremental round); keep the stacks inside sync_directory."""
    kept = folded.with_suffix(".sync.folded")
    with open(folded, errors="replace") as src, open(kept, "w") as dst:
        for line in src:
            if "sync_directory (" in line:
                dst.write(line)
    return kept


def describe(run: ls.StepRun) -> list[str]:
    r = run.detail.get("read") or {}
    c = run.detail.get("counts") or {}
    lines = []
    if r:
        window = ", ".join(f"{v}" for v in (r.get("windows") or {}).values()) or "none"
        lines.append(
            f"      read {r.get('read_seconds', 0):.2f} s: {r.get('changed_users')} users and "
            f"{r.get('changed_groups')} groups changed ({r.get('member_values'):,} member values, "
            f"largest group {r.get('largest_changed_group'):,}), {r.get('deleted_ids')} ids "
            f"gone, deletions by {r.get('deletions')}; {r.get('searches')} searches, "
            f"{r.get('entries_read'):,} entries, {r.get('log_records')} log records, "
            f"{r.get('parent_lookups')} parent lookups; window from {window}")
        if r.get("member_deltas") or r.get("member_lists"):
            lines.append(
                f"      member lists: {r.get('member_deltas')} changed by logged values "
                f"({r.get('logged_values'):,} values, {r.get('member_checks')} checked), "
                f"{r.get('member_lists')} read whole")
    if c:
        lines.append("      applied: " + ", ".join(f"{k} {v}" for k, v in c.items() if v))
    return lines


def breakdown(run: ls.StepRun) -> list[str]:
    """Where one sync's time went: the read's and the apply's timers, then the rest."""
    wall = run.wall
    lines = [f"  {run.name} (round {run.round}): {wall:.3f} s, CPU {run.client_cpu:.3f} s, "
             f"slapd {run.slapd_cpu:.3f} s, peak RSS {run.peak_rss_mb:.0f} MB"]
    points = run.detail.get("phase_points") or []
    read = (run.detail.get("read") or {}).get("read_seconds", 0.0)
    if points:
        lines.append(f"    first progress point ('{points[0]['label']}') at "
                     f"{points[0]['t']:.3f} s (lock, sync_state, connect + bind, marks)")
    lines.append(f"    read_changes {read:.3f} s; the rest {wall - read:.3f} s (apply, names, "
                 "run record, commit)")
    for label, c in sorted(run.calls.items(), key=lambda kv: -kv[1]["seconds"]):
        lines.append(f"      {c['seconds']:7.3f} s  {int(c['calls']):4d} call(s)  {label}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(gen.SIZES), default="medium")
    parser.add_argument("--small", action="store_true", help="same as --size small (CI)")
    parser.add_argument("--seed", type=int, default=1, help="the directory's seed")
    parser.add_argument("--batch-seed", type=int, default=1, help="the changes' seed")
    parser.add_argument("--rounds", type=int, help="measured rounds (default 5; 3 with --small)")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--settle", type=float,
                        help="settle_seconds for sync_directory (default: dirsync's, 600 s)")
    parser.add_argument("--modes", default=",".join(MODES),
                        help="comma-separated: accesslog, present-scan")
    parser.add_argument("--profile", choices=("py-spy", "cprofile"),
                        help="profile one more round after the measured ones (each mode)")
    parser.add_argument("--retries", type=int,
                        help="re-run a disturbed step on a copy of the store taken before it "
                             "(default 2; 0 with --small)")
    parser.add_argument("--quiet-wait", type=float,
                        help="seconds to wait at most for an idle machine before each step "
                             "(default 90; 5 with --small)")
    parser.add_argument("--json", type=Path,
                        help="default bench/out/ldap-incremental-<size>.json")
    parser.add_argument("--at", metavar="REV", help="measure dirsync as committed at REV")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    size = "small" if args.small else args.size
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - set(MODES) or not modes:
        parser.error(f"--modes: choose from {', '.join(MODES)}")
    rounds = args.rounds if args.rounds is not None else (3 if size == "small" else 5)
    retries = args.retries if args.retries is not None else (0 if size == "small" else 2)
    quiet = args.quiet_wait if args.quiet_wait is not None else (5.0 if size == "small" else 90.0)
    if args.at:
        sys.path.insert(0, str(ls.export_code(args.at)))
    users, groups, memberships = gen.SIZES[size]

    print(f"machine: {benchlib.machine_summary()}")
    print(f"dirsync: {ls.code_state()}")
    print(f"load average now: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    import ldap3

    from dirsync.ldap.changes import SETTLE_SECONDS

    settle = args.settle if args.settle is not None else SETTLE_SECONDS
    print(f"{ls.tool_version(['/usr/sbin/slapd', '-VV'])}, "
          f"{ls.tool_version(['ldapsearch', '-VV'])}, ldap3 {ldap3.__version__}")
    print(f"settle window: {settle:.0f} s ({'dirsync default' if args.settle is None else '--settle'})")
    ldif, manifest, _ = gen.ensure_ldif(users, groups, memberships, args.seed)
    t0 = time.perf_counter()
    model = Model(size, args.seed)
    print(f"directory: {ldif.name}, {manifest.expected_users:,} users, "
          f"{manifest.expected_groups:,} groups, {manifest.expected_user_memberships:,} user "
          f"memberships (model rebuilt in {time.perf_counter() - t0:.1f} s); largest groups: "
          + ", ".join(f"{model.teams[t].name} ({len(model.members[t]):,})" for t in model.large))

    rounds_done: list[Round] = []
    failures: list[str] = []
    profiled: dict[str, ls.StepRun] = {}
    comparison: dict[str, Any] = {}
    full_run = reference_run = None
    paths = {m: store_path(size, m) for m in modes}
    with IncrementalLab(ldif, args.page_size) as lab:
        print(f"slapd on {lab.server.url} (pid {lab.slapd_pid}, syncprov + accesslog); slapadd "
              f"{lab.load_seconds:.1f} s; entries' entryCSN {lab.entry_csn}, accesslog minCSN "
              f"{lab.log_min_csn}")
        barrier = Barrier(lab)

        print("\n--- full sync (the starting point of both stores) ---")
        url = fresh_store(paths[modes[0]])
        full_run = ls.attempt(lambda: _full(lab, url, manifest, settle), 0, quiet)
        if not full_run.ok:
            failures.append(f"full sync: {full_run.error}")
        for m in modes[1:]:
            copy_store(paths[modes[0]], paths[m])

        total = rounds + (1 if args.profile else 0)
        for k in range(1, total + 1) if full_run.ok else ():
            profile = args.profile if k > rounds else ""
            rnd = Round(k)
            ldif_text, done = model.batch(args.batch_seed, k)
            rnd.done = dict(done)
            t1 = time.perf_counter()
            lab.ldapmodify(ldif_text)
            rnd.batch_seconds = time.perf_counter() - t1
            rnd.refint_seconds = barrier.wait()
            rnd.refint_cpu = barrier.cpu
            print(f"\n--- round {k}{' (profiled, not counted)' if profile else ''}: "
                  f"{sum(done.values())} changes applied in {rnd.batch_seconds:.2f} s; slapd "
                  f"busy {rnd.refint_seconds:.1f} s more after that (background work, refint; "
                  f"{barrier.cpu:.1f} s CPU) ---")
            order = modes if k % 2 else list(reversed(modes))
            for mode in order:
                path = paths[mode]
                backup = path.with_name(path.name + ".before")
                copy_store(path, backup)
                tries = {"n": 0}

                def step(mode: str = mode, path: Path = path, backup: Path = backup,
                         tries: dict[str, int] = tries, profile: str = profile) -> ls.StepRun:
                    tries["n"] += 1
                    if tries["n"] > 1:
                        copy_store(backup, path)  # the same state as the first attempt
                    name = f"incremental, {mode}" + (f" [{profile}]" if profile else "")
                    stem = str(OUT_DIR / f"ldap-incremental-{size}-{mode}-{profile}")
                    return run_sync(lab, name, k, f"sqlite:///{path}", mode, "incremental",
                                    args.settle, profile, stem)

                run = ls.attempt(step, 0 if profile else retries, quiet)
                for f in store_files(backup):
                    f.unlink(missing_ok=True)
                for line in describe(run):
                    print(line)
                if not run.ok:
                    failures.append(f"round {k}, {mode}: {run.error}")
                if profile:
                    profiled[mode] = run
                else:
                    rnd.runs[mode] = run
            if not profile:
                rounds_done.append(rnd)
            if failures:
                break

        if full_run.ok:
            print("\n--- check: a full sync into a fresh store, compared with each store ---")
            barrier.wait()
            ref = store_path(size, "fresh")
            ref_url = fresh_store(ref)
            reference_run = ls.run_child(lab, "full sync, fresh store (reference)", 0,
                                         {"step": "full", "db_url": ref_url,
                                          "table": lab.table(), "settle": args.settle},
                                         script=Path(__file__).resolve())
            ls.print_step(reference_run)
            if not reference_run.ok:
                failures.append(f"reference full sync: {reference_run.error}")
            else:
                got = ls.store_figures(ref_url)
                want = model.expected()
                wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
                comparison["model"] = {"store": got, "model": want, "wrong": wrong}
                print(f"  fresh full sync vs this bench's model of the directory: "
                      f"{'same counts' if not wrong else f'DIFFERENT (got, want) {wrong}'} "
                      f"({', '.join(f'{k} {v:,}' for k, v in want.items())})")
                if wrong:
                    failures.append(f"the fresh full sync differs from the model: {wrong}")
                for mode in modes:
                    diff = compare_stores(paths[mode], ref)
                    comparison[mode] = diff
                    bad = {p: d for p, d in diff.items() if d["only_incremental"] or d["only_full"]}
                    print(f"  {mode} store vs fresh full sync: "
                          + ("identical (" + ", ".join(f"{p} {d['rows']:,}" for p, d in
                                                       diff.items()) + ")" if not bad else
                             "DIFFERENT: " + json.dumps(bad)[:2000]))
                    if bad:
                        failures.append(f"{mode} store differs from a fresh full sync")

    # -- report --------------------------------------------------------------------------------
    print("\n=== summary " + "=" * 70)
    print(f"{size}: {manifest.expected_users:,} users / {manifest.expected_groups:,} groups / "
          f"{manifest.expected_user_memberships:,} user memberships, seed {args.seed}, batch "
          f"seed {args.batch_seed}, {len(rounds_done)} round(s) of {sum(n for _, n in BATCH)} "
          f"changes, settle window {settle:.0f} s")
    print(f"dirsync measured: {ls.code_state()}")
    if full_run is not None:
        print(f"full sync (start): {full_run.wall:.2f} s")
    header = (f"{'round':<7}{'refint s':>9}" + "".join(
        f"{m + ' s':>16}{'CPU':>7}{'slapd':>7}{'other':>7}{'read':>7}{'entries':>9}"
        for m in modes))
    print(header)
    for rnd in rounds_done:
        line = f"{rnd.number:<7}{rnd.refint_seconds:>9.2f}"
        for m in modes:
            r = rnd.runs.get(m)
            if r is None:
                line += " " * 59
                continue
            flag = "*" if r.disturbed else " "
            rd = r.detail.get("read") or {}
            line += (f"{r.wall:>15.3f}{flag}{r.client_cpu:>7.2f}{r.slapd_cpu:>7.2f}"
                     f"{r.other_cores:>7.2f}{rd.get('read_seconds', 0):>7.2f}"
                     f"{rd.get('entries_read', 0):>9,}")
        print(line)
    verdicts: list[tuple[str, bool]] = []
    medians: dict[str, float] = {}
    for m in modes:
        walls = [r.runs[m].wall for r in rounds_done if m in r.runs and r.runs[m].ok]
        if not walls:
            continue
        medians[m] = statistics.median(walls)
        note = "" if size == "large" else f"  (for reference: {size} directory, large target)"
        print(f"{m}: median {medians[m]:.3f} s, min {min(walls):.3f}, max {max(walls):.3f} "
              f"over {len(walls)} round(s)")
        verdicts.append((f"incremental, deletions by {m}: median {medians[m]:.2f} s <= "
                         f"{TARGETS[m]:.0f} s{note}", medians[m] <= TARGETS[m]))
    windows = [(rnd.number, rnd.runs[m].detail.get("read", {}).get("windows"))
               for rnd in rounds_done for m in modes[:1] if m in rnd.runs]
    if windows:
        print("windows read (entryCSN >=): " + "; ".join(
            f"round {n}: {', '.join((w or {}).values()) or 'none'}" for n, w in windows))
    disturbed = [f"round {r.number} {m} ({r.runs[m].other_cores:.2f} cores)"
                 for r in rounds_done for m in modes if m in r.runs and r.runs[m].disturbed]
    if disturbed:
        print(f"note: stayed DISTURBED after {retries} re-run(s): {', '.join(disturbed)}")
    for m, run in profiled.items():
        print(f"\n--- profile of round {total}, {m} (not a measurement) ---")
        print("\n".join(breakdown(run)))
        print(run.detail.get("profile_text", "(no profile output)"))
    last = rounds_done[-1] if rounds_done else None
    if last is not None:
        print("\nwhere the time went in the last round (bench timers; nested ones are included "
              "in their callers):")
        for m in modes:
            if m in last.runs:
                print("\n".join(breakdown(last.runs[m])))
    print()
    for f in failures:
        print(f"FAILED: {f}")
    for text, passed in verdicts:
        print(f"target: {text}: {'PASS' if passed else 'FAIL'}")
    out = args.json or OUT_DIR / f"ldap-incremental-{size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "size": size, "seed": args.seed, "batch_seed": args.batch_seed, "settle": settle,
        "batch": dict(BATCH), "machine": benchlib.machine_summary(), "dirsync": ls.code_state(),
        "full": asdict(full_run) if full_run else None,
        "reference": asdict(reference_run) if reference_run else None,
        "rounds": [{"round": r.number, "batch_seconds": r.batch_seconds,
                    "refint_seconds": r.refint_seconds, "refint_cpu": r.refint_cpu,
                    "done": r.done,
                    "runs": {m: asdict(run) for m, run in r.runs.items()}} for r in rounds_done],
        "profiled": {m: asdict(r) for m, r in profiled.items()},
        "medians": medians, "comparison": comparison,
        "verdicts": [{"target": t, "pass": p} for t, p in verdicts],
        "failures": failures, "ok": not failures,
    }, indent=2, default=str))
    print(f"figures written to {out}")
    return 0 if not failures else 1


def _full(lab: IncrementalLab, url: str, manifest: gen.Manifest,
          settle: float | None) -> ls.StepRun:
    run = ls.run_child(lab, "full sync, empty store", 0,
                       {"step": "full", "db_url": url, "table": lab.table(), "settle": settle},
                       script=Path(__file__).resolve())
    ls.check_store(run, url, manifest, first=True)
    return run


if __name__ == "__main__":
    sys.exit(main())

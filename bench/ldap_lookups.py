"""Time the two costs of an incremental read that grow with the directory: the member lookups
(`_Reader.find_parents`: which unchanged groups list a changed entry) and the id scan
(`_Reader.scan_ids`: every user's and group's unique id), on a private slapd loaded with the
generated directory, plus `ldapsearch` running the same scan as the floor.

    .venv/bin/python bench/ldap_lookups.py --size large                 # start slapd, measure
    .venv/bin/python bench/ldap_lookups.py --size large --serve         # keep slapd up, print URL
    .venv/bin/python bench/ldap_lookups.py --url ldap://127.0.0.1:PORT  # measure against it
    .venv/bin/python bench/ldap_lookups.py --url ... --code /tmp/before  # dirsync from elsewhere

The lookups are those of a round of ~100 changes at the large size: `--users` changed users and
`--groups` changed groups (seeded picks), each looked up as find_parents does. Bench only:
private names of changes.py are used, nothing in dirsync is patched.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(BENCH_DIR))


def _code_first(argv: list[str]) -> None:
    # --code must win over the work tree before anything imports dirsync.
    if "--code" in argv:
        sys.path.insert(0, argv[argv.index("--code") + 1])


_code_first(sys.argv)

import ldap_generate as gen  # noqa: E402
import ldap_sync as ls  # noqa: E402


def measure(url: str, args: argparse.Namespace) -> None:
    import dirsync
    from dirsync.ldap.changes import ChangeDiagnostics, _Found, _Reader
    from dirsync.ldap.config import parse_directories
    from dirsync.ldap.connection import bound
    from dirsync.ldap.entries import EntryMapper
    from dirsync.ldap.paging import search_pages
    from slapd import SYNC_DN, SYNC_PASSWORD

    table = {"name": "bench", "preset": "openldap", "urls": [url], "bind_dn": SYNC_DN,
             "bind_password_env": "PW", "user_base_dn": gen.PEOPLE, "group_base_dn": gen.GROUPS,
             "page_size": args.page_size, "operation_timeout": 600}
    config = parse_directories([table], {"PW": SYNC_PASSWORD})[0]
    mapper = EntryMapper(config)
    print(f"dirsync from {Path(dirsync.__file__).parent}; load {os.getloadavg()[0]:.2f}")
    with bound(config) as conn:
        reader = _Reader(conn, config, None, ChangeDiagnostics())
        rng = random.Random(args.seed)
        pages = search_pages(conn, config, config.user_base_dn, reader.user_filter,
                             mapper.user_attributes(), what="users")
        users = [mapper.user(dn, v) for page in pages for dn, v in page]
        pages = search_pages(conn, config, config.group_base_dn, reader.group_filter,
                             mapper.group_attributes()[:-1], what="groups")
        groups = [mapper.group(dn, v) for page in pages for dn, v in page]
        changed_users, changed_groups = _Found(), _Found()
        for user in rng.sample(users, args.users):
            changed_users.entities[user.external_id or ""] = user
        for group in rng.sample(groups, args.groups):
            changed_groups.entities[group.external_id or ""] = group

        def lookups() -> None:
            reader.listed_by.clear()
            reader.find_parents(changed_users, changed_groups)

        def scan() -> None:
            reader.scan_ids(config.user_base_dn, reader.user_filter, "user ids")
            reader.scan_ids(config.group_base_dn, reader.group_filter, "group ids")

        for label, run in (("lookups", lookups), ("id scan", scan)):
            times = []
            for _ in range(args.rounds):
                start, cpu, server = time.perf_counter(), time.process_time(), slapd_cpu(args)
                run()
                times.append((time.perf_counter() - start, time.process_time() - cpu,
                              slapd_cpu(args) - server))
            best = min(times)
            print(f"{label:8}: best {best[0]:.3f} s (client CPU {best[1]:.3f} s, slapd CPU "
                  f"{best[2]:.2f} s) of {', '.join(f'{t[0]:.3f}' for t in times)}; load "
                  f"{os.getloadavg()[0]:.2f}")
        print(f"lookups: {args.users + args.groups} entries, "
              f"{sum(len(p) for p in reader.listed_by.values())} listings")
        if args.profile:
            for label, run in (("lookups", lookups), ("id scan", scan)):
                profile = cProfile.Profile()
                profile.runcall(run)
                print(f"--- cProfile: {label}")
                pstats.Stats(profile).sort_stats("tottime").print_stats(12)
        floor(url, config, reader, args)


def slapd_cpu(args: argparse.Namespace) -> float:
    """slapd's CPU seconds so far (user + system), 0 when its pid is not known."""
    if not args.slapd_pid:
        return 0.0
    fields = Path(f"/proc/{args.slapd_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def floor(url: str, config: object, reader: object, args: argparse.Namespace) -> None:
    from slapd import SYNC_DN, SYNC_PASSWORD

    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        server = slapd_cpu(args)
        for base, search_filter in (
                (gen.PEOPLE, reader.user_filter),  # type: ignore[attr-defined]
                (gen.GROUPS, reader.group_filter)):  # type: ignore[attr-defined]
            subprocess.run(["ldapsearch", "-x", "-LLL", "-H", url, "-D", SYNC_DN,
                            "-w", SYNC_PASSWORD, "-E", f"pr={args.page_size}/noprompt",
                            "-b", base, search_filter, "entryUUID"],
                           stdout=subprocess.DEVNULL, check=True, env=ls.ldap_client_env())
        times.append((time.perf_counter() - start, slapd_cpu(args) - server))
    best = min(times)
    print(f"ldapsearch id scan (floor): best {best[0]:.3f} s (slapd CPU {best[1]:.2f} s) of "
          f"{', '.join(f'{t:.3f}' for t, _ in times)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(gen.SIZES), default="medium")
    parser.add_argument("--ldif", type=Path, help="use this LDIF instead of generating one")
    parser.add_argument("--url", help="measure against this running lab (see --serve)")
    parser.add_argument("--serve", action="store_true", help="start the lab and wait")
    parser.add_argument("--code", help="import dirsync from this directory")
    parser.add_argument("--users", type=int, default=300)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile one more run of each")
    parser.add_argument("--slapd-pid", type=int, help="with --url: report this slapd's CPU")
    args = parser.parse_args()
    if args.url:
        measure(args.url, args)
        return 0
    ldif = args.ldif or gen.ensure_ldif(*gen.SIZES[args.size], 1)[0]
    with ls.Lab(Path(ldif), args.page_size, syncprov=True) as lab:
        print(f"slapd at {lab.server.url} (pid {lab.slapd_pid}), loaded in "
              f"{lab.load_seconds:.0f} s", flush=True)
        args.slapd_pid = lab.slapd_pid
        if args.serve:
            # Stopped with SIGTERM too (a background job ignores SIGINT): slapd goes with it.
            signal.signal(signal.SIGTERM, signal.default_int_handler)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        measure(lab.server.url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

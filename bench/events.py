"""Time the event feed (crowd-protocol §4.3) against `dirsync serve` on a large store.

    .venv/bin/python bench/events.py              # 100,000 users / 10,000 groups / 1,000,000 memberships
    .venv/bin/python bench/events.py --small      # CI size, seconds

Targets (issue 3): on a 100,000-user store an event round carrying 100 changes is served in
<= 0.2 s, and a round with no changes in <= 20 ms.

The store is built once through dirsync's own `apply_fixtures` (so its journal holds the
initial load, as a real store's does for a week) into bench/out/events-<size>.db and reused.
Each run first re-applies the generated snapshot (undoing earlier runs' changes; untimed),
then per round: takes a token, applies 100 changes through `apply_fixtures` (one transaction,
as a sync does), and times `GET /event/{token}` over HTTP with `Accept: application/xml`,
checking the answer carries the expected events. The no-change round is timed by repeating
`GET /event/{current token}`. Times are wall-clock on the client, connection kept alive.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from urllib.parse import quote

import requests

import benchlib
from generate import OUT_DIR, make_snapshot

from dirsync.model import Snapshot, User
from dirsync.names import name_key
from dirsync.store.db import Store
from dirsync.sync.fixtures import apply_fixtures

LARGE = {"users": 100_000, "groups": 10_000, "memberships": 1_000_000, "seed": 1}
SMALL = {"users": 2_000, "groups": 200, "memberships": 20_000, "seed": 1}
TARGET_CHANGES_S = 0.2
TARGET_EMPTY_S = 0.020


def mutate(snap: Snapshot, round_: int, changes: int) -> int:
    """Apply `changes` journalled changes to the snapshot in place; returns the number made.

    A fixed mix: 40 % profile edits, 10 % renames, 10 % deactivations, 10 % new users (each
    added to a group), 10 % deletions, 20 % membership removals (counts rounded)."""
    users = snap.users
    start = (round_ * 997) % max(1, len(users) - changes * 2)
    made = 0
    for i in range(int(changes * 0.4)):
        u = users[start + i]
        users[start + i] = replace(u, display_name=f"{u.display_name} r{round_}")
        made += 1
    base = start + int(changes * 0.4)
    for i in range(int(changes * 0.1)):
        u = users[base + i]
        old, new = name_key(u.name), f"{u.name}.r{round_}"
        users[base + i] = replace(u, name=new)
        snap.user_memberships = {(g, name_key(new) if m == old else m) for g, m in snap.user_memberships}
        made += 1
    base += int(changes * 0.1)
    for i in range(int(changes * 0.1)):
        users[base + i] = replace(users[base + i], active=not users[base + i].active)
        made += 1
    groups = sorted(name_key(g.name) for g in snap.groups)
    for i in range(int(changes * 0.05)):
        name = f"bench-new-{round_}-{i}"
        users.append(User(name, "New", "User", "New User", f"{name}@example.com", external_id=name))
        snap.user_memberships.add((groups[i % len(groups)], name_key(name)))
        made += 2
    base += int(changes * 0.1)
    for _ in range(int(changes * 0.1)):
        gone = users.pop(base)
        snap.user_memberships = {p for p in snap.user_memberships if p[1] != name_key(gone.name)}
        made += 1
    removable = sorted(snap.user_memberships)[round_ * 50 : round_ * 50 + int(changes * 0.2)]
    snap.user_memberships.difference_update(removable)
    made += len(removable)
    return made


def timed_get(session: requests.Session, url: str) -> tuple[float, requests.Response]:
    t0 = time.perf_counter()
    response = session.get(url, headers={"Accept": "application/xml"}, timeout=60)
    _ = response.content
    return time.perf_counter() - t0, response


def token_of(response: requests.Response) -> str:
    return ET.fromstring(response.content).get("newEventToken") or ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="2,000 users (CI size)")
    parser.add_argument("--rounds", type=int, default=5, help="change rounds (default 5)")
    parser.add_argument("--changes", type=int, default=100, help="changes per round (default 100)")
    parser.add_argument("--empty-requests", type=int, default=200)
    args = parser.parse_args(argv)
    size = SMALL if args.small else LARGE
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{OUT_DIR}/events-{size['users']}.db"
    print(f"machine: {benchlib.machine_summary()}")
    print(f"code:    {benchlib.code_version()}")
    print(f"store:   {url} ({size['users']:,} users, {size['groups']:,} groups, "
          f"{size['memberships']:,} memberships, seed {size['seed']})")
    snap = make_snapshot(size["users"], size["groups"], size["memberships"], size["seed"],
                         log=lambda *_: None)
    store = Store(url)
    store.init_schema()
    t0 = time.perf_counter()
    counts = apply_fixtures(store, "fixtures", snap)
    print(f"re-based the store with apply_fixtures in {time.perf_counter() - t0:.1f} s "
          f"({counts.summary()})")
    store.dispose()
    benchlib.ensure_application(url)
    workers, threads = benchlib.dirsync_defaults()
    failures = 0
    with benchlib.running_server(url, workers=workers, threads=threads) as server:
        session = requests.Session()
        session.auth = (benchlib.APP_NAME, benchlib.APP_PASSWORD)
        api = server.api
        head = token_of(session.get(api + "/event", headers={"Accept": "application/xml"}))
        for _ in range(20):  # warm up every worker's connections and caches
            timed_get(session, f"{api}/event/{quote(head, safe='')}")
        empty = []
        for _ in range(args.empty_requests):
            seconds, response = timed_get(session, f"{api}/event/{quote(head, safe='')}")
            if response.status_code != 200 or len(ET.fromstring(response.content)):
                failures += 1
            empty.append(seconds)
        empty.sort()
        p99 = empty[int(len(empty) * 0.99) - 1]
        print(f"\nno-change round: {len(empty)} requests, median {statistics.median(empty) * 1000:.1f} ms, "
              f"p99 {p99 * 1000:.1f} ms, max {empty[-1] * 1000:.1f} ms "
              f"(target <= {TARGET_EMPTY_S * 1000:.0f} ms): "
              f"{'PASS' if p99 <= TARGET_EMPTY_S else 'FAIL'}")
        store = Store(url)
        rounds = []
        for round_ in range(args.rounds):
            token = token_of(session.get(api + "/event", headers={"Accept": "application/xml"}))
            made = mutate(snap, round_, args.changes)
            t0 = time.perf_counter()
            apply_fixtures(store, "fixtures", snap)
            applied = time.perf_counter() - t0
            seconds, response = timed_get(session, f"{api}/event/{quote(token, safe='')}")
            events = list(ET.fromstring(response.content)) if response.status_code == 200 else []
            if response.status_code != 200 or not events:
                failures += 1
            rounds.append(seconds)
            # The same request again: tells the first request's cold caches from the work.
            again, _ = timed_get(session, f"{api}/event/{quote(token, safe='')}")
            print(f"round {round_ + 1}: {made} changes applied in {applied:.2f} s; "
                  f"GET /event/{{token}} -> {response.status_code}, {len(events)} events, "
                  f"{len(response.content):,} bytes in {seconds * 1000:.1f} ms "
                  f"(asked again: {again * 1000:.1f} ms)")
        store.dispose()
        worst = max(rounds)
        print(f"\n{args.changes}-change round: median {statistics.median(rounds) * 1000:.1f} ms, "
              f"worst {worst * 1000:.1f} ms (target <= {TARGET_CHANGES_S * 1000:.0f} ms): "
              f"{'PASS' if worst <= TARGET_CHANGES_S else 'FAIL'}")
    if failures:
        print(f"{failures} calls failed or came back without the expected events", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

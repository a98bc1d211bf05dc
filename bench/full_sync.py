"""Time a Crowd full synchronisation (crowd-protocol §4.2) against `dirsync serve`.

    .venv/bin/python bench/full_sync.py                 # the generated 100k store (bench/out/bench.db)
    .venv/bin/python bench/full_sync.py --small         # CI size, generated on the fly, seconds

Starts `dirsync serve` (gunicorn) on 127.0.0.1 on a free port against the store, creates the
application `bench`, then sends exactly what the Java client sends for a full sync:

    GET  /event                                                       (token; errors ignored)
    POST /search?entity-type=user&start-index=0&max-results=-1&expand=user   <null-search-restriction/>
    POST /search?entity-type=group&start-index=0&max-results=-1&expand=group <null-search-restriction/>
    GET  /group/membership
    GET  /event                                                       (errors ignored)

with `Accept: application/xml`. Bodies are read as streams and counted with an incremental XML
parser (iterparse, elements cleared as they end), so the client holds one entity at a time.
The server's memory (RSS and PSS, summed over the gunicorn master and its workers) is sampled
every 100 ms. Counts are checked against the store.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

import benchlib
from generate import OUT_DIR, build_store, default_url

SMALL = {"users": 2_000, "groups": 200, "memberships": 20_000, "seed": 1}
TARGET_SECONDS = 20.0
TARGET_RSS_MB = 400.0

HEADERS = {
    "Accept": "application/xml",
    "Content-Type": "application/xml; charset=UTF-8",
    "X-Atlassian-Token": "no-check",
}
NULL_RESTRICTION = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                    b"<null-search-restriction/>")


@dataclass
class CallResult:
    name: str
    status: int
    seconds: float
    ttfb: float
    bytes: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    required: bool = True


class _CountingReader:
    """File-like wrapper over the raw response stream that counts the bytes read."""

    def __init__(self, raw) -> None:  # type: ignore[no-untyped-def]
        self.raw = raw
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size and size > 0 else 65536)
        self.bytes += len(data)
        return data


def _count_xml(reader: _CountingReader, wanted: dict[tuple[int, str], str]) -> dict[str, int]:
    """Count elements by (depth, tag) while parsing incrementally; nothing is kept."""
    counts = {label: 0 for label in wanted.values()}
    depth = 0
    root = None
    for event, elem in ET.iterparse(reader, events=("start", "end")):
        if event == "start":
            depth += 1
            if root is None:
                root = elem
            continue
        label = wanted.get((depth, elem.tag))
        if label is not None:
            counts[label] += 1
        if depth == 2 and root is not None:
            root.clear()  # drop the finished top-level entity and everything under it
        depth -= 1
    return counts


def _drain(reader: _CountingReader) -> None:
    while reader.read(65536):
        pass


def run_call(session: requests.Session, sampler: benchlib.RssSampler, name: str, method: str,
             url: str, body: bytes | None, wanted: dict[tuple[int, str], str] | None,
             parse: bool, required: bool = True) -> CallResult:
    cpu0, server0 = time.process_time(), sampler.cpu_seconds()
    t0 = time.perf_counter()
    response = session.request(method, url, data=body, headers=HEADERS, stream=True,
                               timeout=(5, 600))
    ttfb = time.perf_counter() - t0
    response.raw.decode_content = True
    reader = _CountingReader(response.raw)
    counts: dict[str, int] = {}
    if wanted and parse and response.status_code == 200:
        counts = _count_xml(reader, wanted)
    _drain(reader)
    seconds = time.perf_counter() - t0
    response.close()
    return CallResult(name, response.status_code, seconds, ttfb, reader.bytes, counts,
                      sampler.cpu_seconds() - server0, time.process_time() - cpu0, required)


def full_sync(server: benchlib.Server, sampler: benchlib.RssSampler, parse: bool) -> list[CallResult]:
    """The five calls of crowd-protocol §4.2, in order, on one keep-alive session."""
    session = requests.Session()
    session.auth = (benchlib.APP_NAME, benchlib.APP_PASSWORD)
    api = server.api
    search = api + "/search?entity-type={}&start-index=0&max-results=-1&expand={}"
    return [
        run_call(session, sampler, "GET /event", "GET", api + "/event", None, None, parse,
                 required=False),
        run_call(session, sampler, "POST /search users", "POST", search.format("user", "user"),
                 NULL_RESTRICTION, {(2, "user"): "users"}, parse),
        run_call(session, sampler, "POST /search groups", "POST", search.format("group", "group"),
                 NULL_RESTRICTION, {(2, "group"): "groups"}, parse),
        run_call(session, sampler, "GET /group/membership", "GET", api + "/group/membership",
                 None, {(2, "membership"): "groups", (4, "user"): "user_memberships",
                        (4, "group"): "group_memberships"}, parse),
        run_call(session, sampler, "GET /event", "GET", api + "/event", None, None, parse,
                 required=False),
    ]


def _mb(kib: int) -> float:
    return kib / 1024


def report(results: list[CallResult], sampler: benchlib.RssSampler, baseline: benchlib.MemorySample,
           server: benchlib.Server, expected: dict[str, int] | None, parse: bool,
           big: bool) -> dict:
    lines = []
    lines.append(f"{'call':<24}{'status':>7}{'MB':>9}{'TTFB s':>9}{'total s':>9}"
                 f"{'srv CPU s':>11}{'cli CPU s':>11}  entities")
    for r in results:
        ents = ", ".join(f"{k}={v:,}" for k, v in r.counts.items()) or "-"
        lines.append(f"{r.name:<24}{r.status:>7}{r.bytes / 1e6:>9.1f}{r.ttfb:>9.2f}"
                     f"{r.seconds:>9.2f}{r.server_cpu:>11.2f}{r.client_cpu:>11.2f}  {ents}")
    total = sum(r.seconds for r in results)
    required_total = sum(r.seconds for r in results if r.required)
    lines.append(f"{'total (all 5 calls)':<24}{'':>7}{sum(r.bytes for r in results) / 1e6:>9.1f}"
                 f"{'':>9}{total:>9.2f}")
    lines.append(f"{'total (3 data calls)':<24}{'':>7}{'':>9}{'':>9}{required_total:>9.2f}")
    print("\n".join(lines))
    per_process = ", ".join(
        f"{'master' if p == server.pid else 'worker'} {p}: {_mb(k):.0f}"
        for p, k in sampler.peak_process_rss_kib.items()
    )
    print(f"\nserver memory ({server.workers} worker(s) x {server.threads} thread(s)), "
          f"sampled every {sampler.interval * 1000:.0f} ms ({sampler.samples} samples):")
    print(f"  before sync: RSS {_mb(baseline.rss_kib):.0f} MB, PSS {_mb(baseline.pss_kib):.0f} MB "
          f"(master + workers)")
    print(f"  peak:        RSS {_mb(sampler.peak_rss_kib):.0f} MB, PSS "
          f"{_mb(sampler.peak_pss_kib):.0f} MB (master + workers, summed per sample)")
    print(f"  peak RSS per process (MB): {per_process}")
    failures = [r for r in results if r.required and r.status != 200]
    ok = not failures
    if expected is not None and parse:
        got = {
            "users": results[1].counts.get("users", -1),
            "groups": results[2].counts.get("groups", -1),
            "membership groups": results[3].counts.get("groups", -1),
            "user_memberships": results[3].counts.get("user_memberships", -1),
            "group_memberships": results[3].counts.get("group_memberships", -1),
        }
        want = {
            "users": expected["users"], "groups": expected["groups"],
            "membership groups": expected["groups"],
            "user_memberships": expected["user_memberships"],
            "group_memberships": expected["group_memberships"],
        }
        mismatched = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
        print(f"\ncounts vs store: {'all match' if not mismatched else mismatched}")
        ok = ok and not mismatched
    for r in results:
        if not r.required and r.status != 200:
            print(f"note: {r.name} answered {r.status}; the Java client ignores errors there, "
                  "but then never starts incremental sync (crowd-protocol §10.4)")
    if failures:
        print("FAILED calls: " + ", ".join(f"{r.name} -> {r.status}" for r in failures))
    verdict_time = required_total <= TARGET_SECONDS
    verdict_rss = _mb(sampler.peak_rss_kib) <= TARGET_RSS_MB
    label = "" if big else "  (small store: targets are for 100k/10k/1M, shown for reference)"
    print(f"\ntarget A time: 3 data calls {required_total:.2f} s <= {TARGET_SECONDS:.0f} s: "
          f"{'PASS' if verdict_time else 'FAIL'}{label}")
    print(f"target A memory: peak RSS sum {_mb(sampler.peak_rss_kib):.0f} MB <= "
          f"{TARGET_RSS_MB:.0f} MB: {'PASS' if verdict_rss else 'FAIL'}{label}")
    return {
        "calls": [asdict(r) for r in results],
        "total_seconds": total,
        "data_calls_seconds": required_total,
        "baseline_rss_mb": _mb(baseline.rss_kib),
        "peak_rss_mb": _mb(sampler.peak_rss_kib),
        "peak_pss_mb": _mb(sampler.peak_pss_kib),
        "peak_process_rss_mb": {str(p): _mb(k) for p, k in sampler.peak_process_rss_kib.items()},
        "workers": server.workers,
        "threads": server.threads,
        "ok": ok,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time a Crowd full sync against dirsync serve.")
    parser.add_argument("--small", action="store_true",
                        help="CI size: 2,000 users / 200 groups / 20,000 memberships, generated "
                             "into bench/out/small.db when missing")
    parser.add_argument("--database-url", help="store to serve (default bench/out/bench.db, "
                                               "or bench/out/small.db with --small)")
    workers, threads = benchlib.dirsync_defaults()
    parser.add_argument("--workers", type=int, default=workers,
                        help=f"gunicorn workers (default: dirsync's default, {workers})")
    parser.add_argument("--threads", type=int, default=threads,
                        help=f"threads per worker (default: dirsync's default, {threads})")
    parser.add_argument("--rounds", type=int, default=1, help="run the sequence this many times")
    parser.add_argument("--no-parse", action="store_true",
                        help="only count bytes (to check the client parser is not the limit)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    if args.database_url:
        url = args.database_url
    elif args.small:
        path = OUT_DIR / "small.db"
        url = default_url(path)
        if not path.exists():
            build_store(url, SMALL["users"], SMALL["groups"], SMALL["memberships"], SMALL["seed"])
    else:
        url = default_url()
        if not (OUT_DIR / "bench.db").exists():
            print("bench/out/bench.db is missing; create it first with:\n"
                  "  .venv/bin/python bench/generate.py", file=sys.stderr)
            return 2
    benchlib.ensure_application(url)
    expected = benchlib.store_counts(url)
    big = expected["users"] >= 100_000
    print(f"machine: {benchlib.machine_summary()}")
    print(f"store: {url}: {expected['users']:,} users, {expected['groups']:,} groups, "
          f"{expected['user_memberships']:,} user memberships, "
          f"{expected['group_memberships']:,} group memberships")
    outputs = []
    ok = True
    with benchlib.running_server(url, workers=args.workers, threads=args.threads) as server:
        print(f"server: dirsync serve pid {server.pid} on {server.base}, "
              f"{args.workers} worker(s) x {args.threads} thread(s)")
        with benchlib.RssSampler(server.pid) as sampler:
            for round_no in range(1, args.rounds + 1):
                time.sleep(0.3)
                baseline = sampler.sample()
                sampler.reset()
                print(f"\n--- full sync, round {round_no} ---")
                idle = benchlib.wait_quiet()
                if idle > 0.15:
                    print(f"(machine still busy before this round: {idle:.2f} cores)")
                busy0, cpu0, client0 = (benchlib.system_busy_seconds(), sampler.cpu_seconds(),
                                        time.process_time())
                t0 = time.perf_counter()
                results = full_sync(server, sampler, parse=not args.no_parse)
                wall = time.perf_counter() - t0
                other = (benchlib.system_busy_seconds() - busy0 - (sampler.cpu_seconds() - cpu0)
                         - (time.process_time() - client0)) / wall
                time.sleep(0.2)  # one more sample after the last byte
                out = report(results, sampler, baseline, server, expected, not args.no_parse, big)
                out["other_cpu_cores"] = max(other, 0.0)
                print(f"other jobs on the machine during the sync: {max(other, 0.0):.2f} cores"
                      + (" -- DISTURBED, run again" if other > 0.1 else ""))
                ok = ok and out["ok"]
                outputs.append(out)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"store": expected, "rounds": outputs}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

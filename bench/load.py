"""Throughput and latency of single-user lookups under load, with wrk (bench only).

    .venv/bin/python bench/load.py                          # dirsync's default workers x threads
    .venv/bin/python bench/load.py --configs 2x1,3x1,2x4    # try several gunicorn settings
    .venv/bin/python bench/load.py --small --duration 3     # quick check on the CI-size store

For each gunicorn setting (WORKERSxTHREADS) it starts `dirsync serve` on 127.0.0.1 against the
store, checks a few answers with requests, warms up, then runs wrk for a bounded time on

    GET /rest/usermanagement/1/user?username=U
    GET /rest/usermanagement/1/user/group/nested?username=U

with U drawn at random (per request, in the wrk Lua script) from a seeded sample of the store's
users, `Accept: application/xml` and the bench application's Basic auth. It prints requests/s,
the latency distribution (wrk --latency), non-2xx counts (which must be 0) and how much CPU wrk
and the server used: wrk runs on the same 2 cores as the server.

Needs wrk (Debian: apt-get install -y wrk).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus

import requests
from sqlalchemy import select

import benchlib
from generate import OUT_DIR, default_url

ENDPOINTS = {
    "user": "/user?username=",
    "nested-groups": "/user/group/nested?username=",
}
TARGET_RPS = 1500
TARGET_P99_MS = 25.0
LUA = Path(__file__).resolve().parent / "random_user.lua"


def sample_usernames(url: str, count: int, seed: int) -> list[str]:
    from dirsync.store.db import Store
    from dirsync.store.tables import users

    store = Store(url)
    with store.read() as conn:
        names = list(conn.execute(select(users.c.name).order_by(users.c.id)).scalars())
    store.dispose()
    rng = random.Random(seed)
    return rng.sample(names, min(count, len(names)))


def check_answers(server: benchlib.Server, names: list[str]) -> None:
    """A few real requests before the load: right status, right body, right user."""
    auth = (benchlib.APP_NAME, benchlib.APP_PASSWORD)
    with requests.Session() as s:
        for name in names[:20]:
            for path in ENDPOINTS.values():
                r = s.get(server.api + path + quote_plus(name), auth=auth,
                          headers={"Accept": "application/xml"}, timeout=10)
                if r.status_code != 200:
                    raise SystemExit(f"GET {path}{name} answered {r.status_code}: {r.text[:300]}")
                if path.startswith("/user?") and 'name="' not in r.text:
                    raise SystemExit(f"GET {path}{name}: unexpected body {r.text[:300]}")


def run_wrk(server: benchlib.Server, path: str, names_file: Path, duration: float,
            threads: int, connections: int, seed: int) -> dict:
    token = base64.b64encode(f"{benchlib.APP_NAME}:{benchlib.APP_PASSWORD}".encode()).decode()
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{int(duration)}s", "--latency", "--timeout", "10s",
        "-s", str(LUA), server.base,
        "--", benchlib.API + path, str(names_file), f"Basic {token}", str(seed),
    ]
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    sampler = benchlib.RssSampler(server.pid)
    server_cpu0 = sampler.cpu_seconds()
    busy0 = benchlib.system_busy_seconds()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    wall = time.perf_counter() - t0
    server_cpu = sampler.cpu_seconds() - server_cpu0
    busy = benchlib.system_busy_seconds() - busy0
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    line = next((l for l in proc.stdout.splitlines() if l.startswith("WRK_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary:\n{proc.stdout}\n{proc.stderr}")
    result = json.loads(line[len("WRK_JSON "):])
    wrk_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    secs = result["duration_us"] / 1e6
    result.update(
        rps=result["requests"] / secs,
        wrk_cpu_cores=wrk_cpu / wall,
        server_cpu_cores=server_cpu / wall,
        server_cpu_ms_per_request=1000 * server_cpu / max(result["requests"], 1),
        # Everything else that ran on the machine meanwhile (the kernel's network work for
        # both sides is partly in here, and so is any other job sharing the machine).
        other_cpu_cores=max(busy - server_cpu - wrk_cpu, 0.0) / wall,
        non_2xx=result["errors"]["status"],
        socket_errors=sum(v for k, v in result["errors"].items() if k != "status"),
        raw=[l for l in proc.stdout.splitlines() if not l.startswith("WRK_JSON ")],
    )
    return result


def _ms(us: float) -> float:
    return us / 1000


def describe(name: str, r: dict) -> str:
    p = r["latency_us"]["percentiles"]
    return (f"{name:<14}{r['rps']:>9.0f}{_ms(p['50']):>8.1f}{_ms(p['90']):>8.1f}"
            f"{_ms(p['99']):>8.1f}{_ms(p['99.9']):>9.1f}{_ms(r['latency_us']['max']):>8.1f}"
            f"{r['non_2xx']:>8}{r['socket_errors']:>8}{r['server_cpu_cores']:>8.2f}"
            f"{r['wrk_cpu_cores']:>8.2f}{r['other_cpu_cores']:>8.2f}"
            f"{r['server_cpu_ms_per_request']:>11.2f}")


HEADER = (f"{'endpoint':<14}{'req/s':>9}{'p50 ms':>8}{'p90 ms':>8}{'p99 ms':>8}{'p99.9 ms':>9}"
          f"{'max ms':>8}{'non2xx':>8}{'sockerr':>8}{'srv CPU':>8}{'wrk CPU':>8}{'oth CPU':>8}"
          f"{'srv ms/req':>11}")


def parse_config(text: str) -> tuple[int, int]:
    workers, _, threads = text.lower().partition("x")
    return int(workers), int(threads or 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="wrk load on /user and /user/group/nested.")
    parser.add_argument("--database-url", help="store (default bench/out/bench.db; "
                                               "bench/out/small.db with --small)")
    parser.add_argument("--small", action="store_true", help="use the CI-size store")
    default_config = "{}x{}".format(*benchlib.dirsync_defaults())
    parser.add_argument("--configs", default=default_config,
                        help="comma-separated gunicorn settings WORKERSxTHREADS (default "
                             f"{default_config}, dirsync's default)")
    parser.add_argument("--endpoints", default="user,nested-groups",
                        help=f"comma-separated, from {', '.join(ENDPOINTS)}")
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of wrk warm-up per server")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--names", type=int, default=20_000, help="random users to draw from")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--experiment", choices=["prebuilt"],
                        help="serve with a bench-only patch applied (see bench/experiment_*.py)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    if shutil.which("wrk") is None:
        print("wrk is not installed; on Debian: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.database_url:
        url = args.database_url
    else:
        path = OUT_DIR / ("small.db" if args.small else "bench.db")
        url = default_url(path)
        if not path.exists():
            print(f"{path} is missing; create it with bench/generate.py (or run "
                  "bench/full_sync.py --small for the small store)", file=sys.stderr)
            return 2
    if args.duration <= 0 or args.duration > 600:
        print("--duration must be in (0, 600] seconds", file=sys.stderr)
        return 2
    benchlib.ensure_application(url)
    names = sample_usernames(url, args.names, args.seed)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    names_file = OUT_DIR / "usernames.txt"
    names_file.write_text("".join(quote_plus(n) + "\n" for n in names))
    endpoints = [e.strip() for e in args.endpoints.split(",") if e.strip()]
    for e in endpoints:
        if e not in ENDPOINTS:
            parser.error(f"unknown endpoint {e!r}")
    print(f"machine: {benchlib.machine_summary()}")
    print(f"store: {url} ({len(names):,} random users sampled, seed {args.seed})")
    print(f"wrk: {args.wrk_threads} threads, {args.connections} connections, {args.duration:g} s "
          f"per endpoint after {args.warmup:g} s warm-up; CPU columns in cores (of 2): server, wrk, "
          f"everything else on the machine; srv ms/req = server CPU per request")
    results: dict[str, dict] = {}
    ok = True
    for config in args.configs.split(","):
        workers, threads = parse_config(config)
        label = f"{workers}x{threads}"
        kind = "gthread" if threads > 1 else "sync"
        command = None
        if args.experiment:
            command = [sys.executable, str(Path(__file__).resolve().parent
                                           / f"experiment_{args.experiment}.py")]
            label += f" [{args.experiment}]"
        with benchlib.running_server(url, workers=workers, threads=threads,
                                     command=command) as server:
            check_answers(server, names)
            print(f"\n== {label}: {workers} worker(s) x {threads} thread(s) ({kind} worker) ==")
            print(HEADER)
            for e in endpoints:
                if args.warmup > 0:
                    benchlib.wait_quiet()
                    run_wrk(server, ENDPOINTS[e], names_file, args.warmup, args.wrk_threads,
                            args.connections, args.seed)
                idle = benchlib.wait_quiet()
                if idle > 0.15:
                    print(f"   (machine still busy before this run: {idle:.2f} cores)")
                r = run_wrk(server, ENDPOINTS[e], names_file, args.duration, args.wrk_threads,
                            args.connections, args.seed)
                print(describe(e, r))
                if r["other_cpu_cores"] > 0.1:
                    print(f"   !! other jobs used {r['other_cpu_cores']:.2f} cores during this run; "
                          "its figures are disturbed, run again")
                r["disturbed"] = r["other_cpu_cores"] > 0.1
                passed = (r["rps"] >= TARGET_RPS
                          and _ms(r["latency_us"]["percentiles"]["99"]) <= TARGET_P99_MS
                          and r["non_2xx"] == 0 and r["socket_errors"] == 0)
                r["pass"] = passed
                key = f"{label} {e}"
                n = 2
                while key in results:  # the same setting listed twice: keep both runs
                    key = f"{label} {e} (run {n})"
                    n += 1
                results[key] = r
                if r["non_2xx"] or r["socket_errors"]:
                    ok = False
                    print(f"   !! {r['non_2xx']} non-2xx responses, {r['socket_errors']} socket "
                          "errors; see the server log " + str(server.log_path))
    print(f"\ntarget B: >= {TARGET_RPS} req/s and p99 <= {TARGET_P99_MS:g} ms, 0 non-2xx")
    for key, r in results.items():
        print(f"  {key:<24} {r['rps']:>6.0f} req/s, p99 "
              f"{_ms(r['latency_us']['percentiles']['99']):.1f} ms, server "
              f"{r['server_cpu_ms_per_request']:.2f} ms CPU/req: {'PASS' if r['pass'] else 'FAIL'}"
              f"{' (disturbed by other jobs)' if r['disturbed'] else ''}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

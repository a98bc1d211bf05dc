"""Profile one `dirsync serve` worker under load with py-spy (bench only).

    .venv/bin/pip install py-spy        # for your own use; not a dirsync dependency
    .venv/bin/python bench/profile_server.py --endpoint user
    .venv/bin/python bench/profile_server.py --endpoint nested-groups
    .venv/bin/python bench/profile_server.py --endpoint full-sync

Starts the server with 1 worker x 1 thread (so one process does all the work), drives it with
wrk (single-user endpoints) or one full sync (full-sync), samples the worker with `py-spy record
--format raw` and prints where the time goes: inclusive share of a few buckets (application
auth, SQL execution, SQL compilation, rendering, Flask/Werkzeug, gunicorn), then the top frames
by self and inclusive time. The raw folded stacks are kept in bench/out/ for flame graphs.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote_plus

import benchlib
import full_sync
import load
from generate import OUT_DIR, default_url

# (label, substring of a folded frame "function (file:line)") -- first match wins per stack
BUCKETS = [
    ("app auth: find_application (SQL on a connection of its own)", "find_application ("),
    ("app auth: other (HMAC, netacl, throttle)", "authenticate (dirsync/crowd/auth.py"),
    ("SQL: cache key + compile lookup", "_compile_w_cache"),
    ("SQL: sqlite3 execute", "do_execute ("),
    ("SQL: connection checkout/return (pool)", "_checkout"),
    ("SQL: connection close/reset (pool)", "_finalize_fairy"),
    ("SQL: fetching result rows", "fetchone ("),
    ("SQL: fetching result rows", "_fetchall_impl"),
    ("SQL: fetching result rows", "_buffer_rows"),
    ("SQL: other work under dirsync/store/reads.py (building statements, iterating results)",
     "dirsync/store/reads.py"),
    ("render (dirsync/crowd/render.py)", "dirsync/crowd/render.py"),
    ("gunicorn: parse request / write response", "gunicorn/http/"),
    ("gunicorn: write / close socket", "gunicorn/util.py"),
]


def _frames(stack: str) -> list[str]:
    return stack.split(";")


def summarise(raw: Path, top: int = 25) -> str:
    stacks: collections.Counter[str] = collections.Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    total = sum(stacks.values())
    if not total:
        return "no samples"
    # Only samples inside request handling count as "busy"; idle = waiting in accept/select.
    idle_markers = ("select (selectors.py", "wait (gunicorn/workers/", "sleep (gunicorn/",
                    "accept (socket.py", "poll (selectors.py")
    busy = {s: c for s, c in stacks.items() if not any(m in _frames(s)[-1] for m in idle_markers)}
    busy_total = sum(busy.values())
    out = [f"samples: {total}, busy (not waiting for a connection): {busy_total}"]
    buckets: collections.Counter[str] = collections.Counter()
    for stack, count in busy.items():
        for label, marker in BUCKETS:
            if marker in stack:
                buckets[label] += count
                break
        else:
            buckets["other (Flask/Werkzeug routing, views, Python glue)"] += count
    out.append("\nwhere busy time goes (each sample counted once, first bucket that matches):")
    for label, count in buckets.most_common():
        out.append(f"  {100 * count / busy_total:5.1f} %  {label}")
    inclusive: collections.Counter[str] = collections.Counter()
    self_time: collections.Counter[str] = collections.Counter()
    for stack, count in busy.items():
        frames = _frames(stack)
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    out.append(f"\ntop {top} frames by inclusive time (% of busy samples):")
    for frame, count in inclusive.most_common(top + 8)[8:]:  # skip the thread/process roots
        out.append(f"  {100 * count / busy_total:5.1f} %  {frame[:150]}")
    out.append(f"\ntop {top} frames by self time:")
    for frame, count in self_time.most_common(top):
        out.append(f"  {100 * count / busy_total:5.1f} %  {frame[:150]}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="py-spy profile of one dirsync worker.")
    parser.add_argument("--endpoint", choices=[*load.ENDPOINTS, "full-sync"], default="user")
    parser.add_argument("--database-url", default=default_url())
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    benchlib.ensure_application(args.database_url)
    raw = OUT_DIR / f"profile-{args.endpoint}.folded"
    with benchlib.running_server(args.database_url, workers=1, threads=1) as server:
        worker = benchlib._children(server.pid)[0]
        names = load.sample_usernames(args.database_url, 20_000, 1)
        names_file = OUT_DIR / "usernames.txt"
        names_file.write_text("".join(quote_plus(n) + "\n" for n in names))
        spy_seconds = args.duration if args.endpoint != "full-sync" else 30
        spy = subprocess.Popen([py_spy, "record", "--pid", str(worker), "--format", "raw",
                                "--rate", str(args.rate), "--duration", str(spy_seconds),
                                "--output", str(raw), "--nonblocking"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
        if args.endpoint == "full-sync":
            with benchlib.RssSampler(server.pid) as sampler:
                results = full_sync.full_sync(server, sampler, parse=False)
            print("full sync:", ", ".join(f"{r.name} {r.seconds:.2f} s" for r in results))
            spy.send_signal(signal.SIGINT)  # py-spy stops and writes its output on Ctrl-C
        else:
            r = load.run_wrk(server, load.ENDPOINTS[args.endpoint], names_file, args.duration - 2,
                             1, args.connections, 1)
            print(f"wrk -t1 -c{args.connections}: {r['rps']:.0f} req/s under py-spy "
                  f"(profiling slows the worker)")
        spy.wait(timeout=60)
    print(f"raw stacks: {raw}")
    print(summarise(raw))
    return 0


if __name__ == "__main__":
    sys.exit(main())

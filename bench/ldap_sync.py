"""Time dirsync's LDAP full sync against a private slapd, beside the `ldapsearch` floor.

    .venv/bin/python bench/ldap_sync.py --size medium     # 10,000 users / 1,000 groups / 100,000
    .venv/bin/python bench/ldap_sync.py --size large      # 100,000 / 10,000 / 1,000,000
    .venv/bin/python bench/ldap_sync.py --small           # CI size (2,000 / 200 / 20,000), seconds
    .venv/bin/python bench/ldap_sync.py --size large --profile py-spy   # where the time goes

Targets (issue 4, "Speed"): a full sync of the medium directory in <= 3 s; of the large one in
<= 25 s with peak RSS <= 500 MB.

What one run does:

1. Generates the directory with `ldap_generate.py` (seeded, cached in bench/out/).
2. Starts a private slapd on 127.0.0.1 with tests/slapd.py's `SlapdServer` (its cn=config,
   overlays memberof, refint, ppolicy, and the read-only `cn=sync` account), sets
   `olcLogLevel: none` as the lab did, stops it, loads the LDIF with `slapadd -q` and starts
   it again. slapadd runs no overlays, so memberOf is not computed; dirsync reads `member`.
3. Warms up (one untimed pass of both searches), then per round, in this order:
   * the floor: `ldapsearch` of the users and of the groups, paged (`-E pr=<page>/noprompt`),
     asking for exactly the attributes and filters dirsync asks for, output to a file;
   * `read_directory` alone;
   * `sync_directory` into a fresh SQLite store (first sync, empty store);
   * `sync_directory` again (no changes);
   * with `--postgres`, the two syncs again into a fresh PostgreSQL database.
   Each dirsync step runs in a child Python process of its own, so its peak RSS (VmHWM) is
   the step's alone, not the generator's or an earlier step's. The child reports the call's
   own time and CPU (start-up and imports excluded), its phases (connect, users, groups,
   resolving, applying, from the progress callback dirsync already has), where the apply
   phase goes (bench-only timing wrappers around the store functions) and the time the
   garbage collector took.
4. Checks the results: ldapsearch's entry counts, the read's counts and diagnostics and the
   store's rows against the generator's manifest, and that the second sync changed nothing.

The machine is shared: before each step the run waits (bounded) for an idle machine, prints
the 1-minute load average before and after, and measures the CPU other processes used during
the step (`other` = all CPU time on the machine minus this benchmark's processes and slapd).
A step during which others used more than 0.15 cores is DISTURBED and re-run (`--retries`).

Also: `--at REV` measures dirsync as committed at REV (exported with `git archive` into
bench/out/; the work tree is shared with work in progress); `--profile py-spy|cprofile|memory`
profiles one more run; `--experiment` / `--read-variants` time BENCH-ONLY changes patched into
the child (EXPERIMENTS below), to size an idea before anyone changes dirsync.

Exit status 1 when a search or sync fails or any count is wrong (so `--small` can gate CI);
the PASS/FAIL lines for the targets are printed, not enforced. Bench only: tests/ is put on
sys.path for the harness; nothing in dirsync changes. See bench/LDAP.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
# Bench only: the slapd and PostgreSQL control of the test suite, reused as it is.
sys.path.insert(0, str(ROOT / "tests"))

import benchlib  # noqa: E402
import ldap_generate as gen  # noqa: E402

OUT_DIR = benchlib.OUT_DIR
DIRECTORY = "bench"
PASSWORD_ENV = "DIRSYNC_BENCH_BIND_PASSWORD"
RESULT_MARK = "LDAP-SYNC-RESULT "
# size -> (seconds, peak RSS MB or None) of issue 4; small is shown against medium's, for reference
TARGETS: dict[str, tuple[float, float | None]] = {"medium": (3.0, None), "large": (25.0, 500.0)}
DISTURBED_CORES = 0.15


# -- small helpers -----------------------------------------------------------------------------


def proc_status_kib(field_name: str, pid: str | int = "self") -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, the children it has reaped and its live descendants (the
    PostgreSQL postmaster and its backends)."""
    def own(p: int, reaped: bool) -> float:
        try:
            with open(f"/proc/{p}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = int(fields[11]) + int(fields[12])
        if reaped:
            ticks += int(fields[13]) + int(fields[14])
        return ticks / os.sysconf("SC_CLK_TCK")

    return own(pid, True) + sum(own(c, True) for c in benchlib._children(pid))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load1() -> float:
    return os.getloadavg()[0]


def ldap_client_env() -> dict[str, str]:
    """The caller's environment without LDAP* variables, and LDAPNOINIT so ldap.conf and
    ~/.ldaprc cannot redirect the client tools (as tests/slapd.py does)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LDAP")}
    env["LDAPNOINIT"] = "1"
    return env


CODE = {"path": "", "label": ""}  # set by --at: an exported tree the children import dirsync from


def export_code(rev: str) -> Path:
    """`git archive REV dirsync` unpacked under bench/out/ (read-only for the repository), so
    figures belong to a commit even while others edit the work tree."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    sha = subprocess.run(["git", "rev-parse", "--short", rev], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True).stdout.strip()
    dest = OUT_DIR / f"code-{sha}"
    if not (dest / "dirsync" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "dirsync"], cwd=ROOT, env=env,
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    CODE.update(path=str(dest), label=f"{sha} (exported with git archive to {dest})")
    return dest


def code_state() -> str:
    """The dirsync commit measured and the files of dirsync/ that differ from it (read-only
    git calls: the tree is shared with other work in progress)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", "dirsync"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    if CODE["label"]:
        return CODE["label"]
    changed = [line[3:] for line in out.splitlines() if line.strip()]
    version = benchlib.code_version().split(" ")[0]
    return version + (f" + uncommitted: {', '.join(changed)}" if changed else " (clean)")


def tool_version(argv: list[str]) -> str:
    """'slapd 2.5.13+dfsg-5' from `slapd -VV` / `ldapsearch -VV`."""
    import re

    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    found = re.search(r"\b(slapd|ldapsearch) (\d[\w.+~-]*)", out.stdout + out.stderr)
    return f"{found.group(1)} {found.group(2)}" if found else "unknown"


# =============================================================================================
# The child: one dirsync step in a fresh interpreter, so VmHWM is this step's peak alone.
# =============================================================================================


class Marks:
    """Phase changes reported by dirsync's progress callback, and bench-only timers around
    store functions; each with the time and the process's RSS and peak RSS at that point."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.phases: list[dict[str, Any]] = []
        self.calls: dict[str, dict[str, float]] = {}
        self.hooks: list[Callable[[str], None]] = []

    def point(self, label: str) -> dict[str, Any]:
        return {"label": label, "t": time.perf_counter() - self.t0,
                "rss_mb": proc_status_kib("VmRSS") / 1024,
                "hwm_mb": proc_status_kib("VmHWM") / 1024}

    def progress(self, phase: str, _count: int) -> None:
        if not self.phases or self.phases[-1]["label"] != phase:
            self.phases.append(self.point(phase))
            for hook in self.hooks:
                hook(phase)

    def timed(self, module: Any, name: str, label: str | None = None) -> None:
        """Replace module.name by a wrapper that adds up its calls' time (bench only)."""
        original = getattr(module, name)
        label = label or name
        calls = self.calls

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                entry = calls.setdefault(label, {"calls": 0, "seconds": 0.0, "hwm_mb": 0.0})
                entry["calls"] += 1
                entry["seconds"] += time.perf_counter() - t0
                entry["hwm_mb"] = proc_status_kib("VmHWM") / 1024
                for hook in self.hooks:
                    hook("after " + label)

        setattr(module, name, wrapper)


# (module, attribute, label) of the functions the apply phase is broken down into. The code
# moves: whatever is missing at the measured commit is skipped (and so absent from the report).
TIMED = (
    ("dirsync.sync.mirror", "_settle_names", None),
    ("dirsync.sync.mirror", "plan_snapshot", None),  # Python-object apply (before afaa6e4)
    ("dirsync.sync.mirror", "apply_plan", None),
    ("dirsync.sync.mirror", "apply_setwise", None),  # set-wise apply (afaa6e4 on)
    ("dirsync.sync.apply", "diff_entities", None),
    ("dirsync.store.writes", "check_user_names", None),
    ("dirsync.store.writes", "check_group_names", None),
    ("dirsync.store.writes", "name_holders", None),
    ("dirsync.store.writes", "stored_users", None),
    ("dirsync.store.writes", "stored_groups", None),
    ("dirsync.store.writes", "write_users", None),
    ("dirsync.store.writes", "write_groups", None),
    ("dirsync.store.writes", "user_ids_by_key", None),
    ("dirsync.store.writes", "group_ids_by_key", None),
    ("dirsync.store.writes", "sync_user_memberships", None),
    ("dirsync.store.writes", "sync_group_memberships", None),
    ("dirsync.store.writes", "insert_rows", "insert_rows (from writes)"),
    *(("dirsync.store.stage", name, f"stage.{name}") for name in (
        "create", "stage_users_rows", "stage_groups_rows", "mark", "removed", "deactivated",
        "stored_count", "counts", "changes_for_journal", "write", "stage_pairs",
        "pair_changes", "count_of", "write_pairs", "drop")),
    *(("dirsync.store.stage", name, f"stage.{name}") for name in (
        "candidates", "insert_new", "ids_of", "delete_ids")),  # 4dfb0a0 on
    *(("dirsync.store.pairs", name, f"pairs.{name}") for name in (
        "ids_by_name_key", "stored_members", "write", "_insert")),
    *(("dirsync.sync.setwise", name, f"setwise.{name}") for name in (
        "_by_parent", "pair_changes", "write_entities")),
    ("dirsync.store.stage", "insert_rows", "insert_rows (from stage)"),
    ("dirsync.store.journal", "record_entities", "journal.record_entities"),
    ("dirsync.store.journal", "record_pairs", "journal.record_pairs"),
    ("dirsync.store.journal", "insert_rows", "insert_rows (from journal)"),
    ("dirsync.store.journal.Batch", "write", "journal.Batch.write"),
    ("dirsync.store.runs", "record_run", "runs.record_run"),
)


def _install_timers(marks: Marks) -> None:
    import importlib

    for path, name, label in TIMED:
        module_path, _, owner = path.rpartition(".")
        try:
            module = importlib.import_module(path)
        except ImportError:
            try:
                module = getattr(importlib.import_module(module_path), owner)
            except (ImportError, AttributeError):
                continue
        if hasattr(module, name):
            marks.timed(module, name, label)


def _experiment_ldap3_raw_only() -> None:
    """BENCH-ONLY EXPERIMENT, not dirsync: ldap3 turns every value of every entry into text
    ('attributes', via to_unicode, which asks get_config_parameter three times per value) as
    well as keeping the bytes ('raw_attributes'); dirsync's paging.py reads only the bytes.
    This builds the entry dict without the text copy, to size what skipping it would save."""
    from ldap3.operation.search import raw_attributes_to_dict_fast
    from ldap3.strategy import base

    def entry(response: Any, schema: Any, custom_formatter: Any, check_names: Any) -> dict:
        raw_dn = response[0][3]
        return {"raw_dn": raw_dn, "dn": bytes(raw_dn).decode("utf-8"),
                "raw_attributes": raw_attributes_to_dict_fast(response[1][3]), "attributes": {}}

    base.search_result_entry_response_to_dict_fast = entry


def _experiment_ldap3_socket_1m() -> None:
    """BENCH-ONLY EXPERIMENT: ldap3 reads the socket 4 KiB at a time and appends each chunk
    to the bytes received so far (`unprocessed += data`), which copies a large entry (a group
    of 100,000 member DNs is about 5 MB) once per chunk. Reading 1 MiB at a time instead."""
    from ldap3.utils.config import set_config_parameter

    set_config_parameter("SOCKET_SIZE", 1 << 20)


def _experiment_no_gc() -> None:
    """BENCH-ONLY EXPERIMENT: no cyclic garbage collection during the step (each collection of
    the oldest generation walks every object the read has built so far)."""
    import gc

    gc.disable()


EXPERIMENTS = {"ldap3-raw-only": _experiment_ldap3_raw_only,
               "ldap3-socket-1m": _experiment_ldap3_socket_1m,
               "no-gc": _experiment_no_gc}


def child_main(job: dict[str, Any]) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # Everything a sync imports, before the baseline is taken.
    from dirsync.ldap.config import parse_directories
    from dirsync.ldap.read import read_directory
    from dirsync.store.db import Store
    from dirsync.sync.mirror import sync_directory

    for name in job.get("experiments") or ():
        EXPERIMENTS[name]()
    rss_start = proc_status_kib("VmRSS") / 1024
    config = parse_directories([job["table"]], {PASSWORD_ENV: job["password"]})[0]
    profile = job.get("profile") or ""
    marks = Marks(time.perf_counter())
    _install_timers(marks)
    profiler = None
    snapshots: list[tuple[str, float]] = []
    largest: dict[str, Any] = {"mb": 0.0, "label": "", "top": []}
    if profile == "cprofile":
        import cProfile

        profiler = cProfile.Profile()
    elif profile == "memory":
        import tracemalloc

        tracemalloc.start(1)

        def take(label: str) -> None:
            # Traced memory at every point (cheap); the allocation sites only when it has
            # grown by 10 % over the last look (a snapshot of millions of blocks is slow and
            # big, so it is summarised at once and dropped).
            mb = tracemalloc.get_traced_memory()[0] / 2**20
            snapshots.append((label, mb))
            if mb > largest["mb"] * 1.1:
                snap = tracemalloc.take_snapshot()
                largest.update(mb=mb, label=label, top=[
                    (stat.size, stat.count, stat.traceback[0].filename, stat.traceback[0].lineno)
                    for stat in snap.statistics("lineno")[:15]])
                del snap

        marks.hooks.append(take)
    # Time spent in the cyclic garbage collector, per generation (bench-only hook; py-spy and
    # cProfile charge it to whichever line happened to allocate).
    import gc

    collections: dict[str, list[float]] = {}
    started: list[float] = []

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            entry = collections.setdefault(f"gen{info['generation']}", [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started.pop()

    gc.callbacks.append(on_gc)
    store = None
    if job["step"] != "read":
        store = Store(job["db_url"])
    import dirsync

    out: dict[str, Any] = {"step": job["step"], "rss_start_mb": rss_start,
                           "dirsync_path": str(Path(dirsync.__file__).parent)}
    cpu0 = self_cpu()
    marks.t0 = t0 = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    try:
        if job["step"] == "read":
            read = read_directory(config, marks.progress)
            snap, diag = read.snapshot, read.diagnostics
            out.update(ok=True, users=len(snap.users), groups=len(snap.groups),
                       user_memberships=len(snap.user_memberships),
                       group_memberships=len(snap.group_memberships),
                       inactive_users=sum(1 for u in snap.users if not u.active),
                       out_of_scope=diag.members_out_of_scope.count,
                       self_memberships=diag.self_memberships.count,
                       unresolvable=diag.members_unresolvable.count,
                       skipped=len(diag.skipped), duplicates=len(diag.duplicates),
                       diagnostics=diag.summary())
        else:
            assert store is not None
            # Since incremental sync exists, a second sync would be incremental by default:
            # ask for the full one, which is what this benchmark times.
            import inspect

            full = ({"full": True} if "full" in inspect.signature(sync_directory).parameters
                    else {})
            result = sync_directory(store, config, [config.name], progress=marks.progress,
                                    **full)
            mode = getattr(result, "mode", "full")
            out.update(ok=result.status == "ok" and mode == "full", status=result.status,
                       mode=mode, error=result.error or (None if mode == "full" else
                                                         f"the sync ran as {mode}"),
                       counts=asdict(result.counts) if result.counts else None,
                       notes=result.notes[:3])
    finally:
        if profiler is not None:
            profiler.disable()
    wall = time.perf_counter() - t0
    marks.phases.append(marks.point("end"))
    if profile == "memory":
        import tracemalloc

        take("end")
        out["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    gc.callbacks.remove(on_gc)
    out.update(wall=wall, cpu=self_cpu() - cpu0, hwm_mb=proc_status_kib("VmHWM") / 1024,
               phases=marks.phases, calls=marks.calls, gc=collections)
    if store is not None:
        store.dispose()
    stem = job.get("profile_stem")
    if profiler is not None and stem:
        import pstats

        profiler.dump_stats(stem + ".prof")
        out["profile_text"] = cprofile_report(pstats.Stats(profiler), wall)
    if snapshots:
        out["profile_text"] = memory_report(snapshots, largest, out.get("traced_peak_mb", 0.0))
    print(RESULT_MARK + json.dumps(out), flush=True)
    return 0 if out.get("ok") else 1


# -- profile summaries ---------------------------------------------------------------------------


def area_of(filename: str, function: str) -> str:
    """Which part of the stack a function belongs to, for the 'where the time goes' table."""
    f = filename.replace("\\", "/")
    if not f.startswith("/"):
        f = "/" + f  # py-spy shortens paths to package-relative ones
    if "/ldap3/" in f:
        if any(part in f for part in ("/ldap3/utils/asn1.py", "/ldap3/operation/search.py",
                                      "/ldap3/protocol/")):
            return "ldap3: decoding responses (BER -> dicts)"
        if "/ldap3/strategy/" in f:
            return "ldap3: receiving + splitting messages"
        return "ldap3: other"
    if "/pyasn1/" in f:
        return "pyasn1 (ldap3's BER codec)"
    if "/sqlalchemy/" in f:
        if function.rsplit(".", 1)[-1] in ("do_execute", "do_executemany", "do_commit",
                                           "do_execute_no_params"):
            return "database driver (SQLite / psycopg, in C)"
        return "SQLAlchemy (Python)"
    if "sqlite3" in function or "sqlite3" in f or "psycopg" in f:
        return "database driver (SQLite / psycopg, in C)"
    if "/dirsync/ldap/" in f:
        return "dirsync.ldap (entries, members, paging)"
    if "/dirsync/store/" in f:
        return "dirsync.store (rows, journal)"
    if "/dirsync/sync/" in f:
        return "dirsync.sync (diff, apply)"
    if "/dirsync/" in f:
        return "dirsync (dn, names, model, ...)"
    if (f.endswith(("socket.py", "ssl.py", "selectors.py")) or "recv" in function
            or "'_socket" in function):
        return "socket I/O (waiting for slapd)"
    if "/bench/" in f or f.endswith(("/ldap_sync.py", "/benchlib.py")):
        return "bench harness"
    return "Python builtins + stdlib (dataclasses, unicodedata, re, ...)"


def cprofile_report(stats: Any, wall: float, top: int = 25) -> str:
    rows = []
    areas: Counter[str] = Counter()
    for (filename, line, function), (_cc, ncalls, tottime, cumtime, _) in stats.stats.items():
        label = function if filename == "~" else f"{function} ({_short(filename)}:{line})"
        areas[area_of(filename, function)] += tottime
        rows.append((tottime, cumtime, ncalls, label))
    lines = [f"cProfile (wall {wall:.2f} s under the profiler; it slows Python code several times "
             "over, so use shares, not seconds):", "  self time by area:"]
    total = sum(areas.values()) or 1.0
    for area, seconds in areas.most_common():
        lines.append(f"    {seconds:8.2f} s {100 * seconds / total:5.1f} %  {area}")
    lines.append(f"  top {top} functions by self time:   self s    cum s      calls")
    for tottime, cumtime, ncalls, label in sorted(rows, reverse=True)[:top]:
        lines.append(f"    {tottime:8.2f} {cumtime:8.2f} {ncalls:10d}  {label}")
    lines.append(f"  top {top} dirsync functions by cumulative time:")
    ours = [r for r in rows if "dirsync/" in r[3]]
    for tottime, cumtime, ncalls, label in sorted(ours, key=lambda r: -r[1])[:top]:
        lines.append(f"    {cumtime:8.2f} {tottime:8.2f} {ncalls:10d}  {label}")
    return "\n".join(lines)


def memory_report(points: list[tuple[str, float]], largest: dict[str, Any],
                  traced_peak_mb: float) -> str:
    lines = [f"tracemalloc (Python allocations only, not SQLite's or ldap3's C buffers; traced "
             f"peak {traced_peak_mb:.0f} MB):", "  traced memory at each point:"]
    for label, mb in points:
        lines.append(f"    {mb:8.1f} MB  {label}")
    lines.append(f"  largest allocation sites at '{largest['label']}' ({largest['mb']:.0f} MB "
                 "traced):")
    for size, count, filename, lineno in largest["top"]:
        lines.append(f"    {size / 2**20:8.1f} MB {count:10d} blocks  {_short(filename)}:{lineno}")
    return "\n".join(lines)


def pyspy_report(folded: Path, top: int = 25) -> str:
    """Self and inclusive shares from py-spy's raw (folded) output, by function; the hottest
    lines too (a stack frame names the line that is running)."""
    self_by: Counter[str] = Counter()
    lines_by: Counter[str] = Counter()
    incl_by: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for raw in folded.read_text(errors="replace").splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        function, _, where = leaf.partition(" (")
        filename = where.rsplit(":", 1)[0]
        self_by[_frame_label(leaf, line=False)] += count
        lines_by[_frame_label(leaf)] += count
        areas[area_of(filename, function)] += count
        for label in {_frame_label(f, line=False) for f in frames}:
            if "dirsync/" in label or label.startswith("Connection.search (ldap3/"):
                incl_by[label] += count
    if not total:
        return f"py-spy: no samples in {folded}"
    out = [f"py-spy ({total} samples at 200/s, idle included; {folded}):",
           "  self samples by area:"]
    for area, count in areas.most_common():
        out.append(f"    {100 * count / total:5.1f} %  {area}")
    out.append(f"  top {top} functions by self samples:")
    for label, count in self_by.most_common(top):
        out.append(f"    {100 * count / total:5.1f} %  {label}")
    out.append("  hottest lines (self):")
    for label, count in lines_by.most_common(12):
        out.append(f"    {100 * count / total:5.1f} %  {label}")
    out.append(f"  top {top} dirsync functions (and ldap3's search) by inclusive samples:")
    for label, count in incl_by.most_common(top):
        out.append(f"    {100 * count / total:5.1f} %  {label}")
    return "\n".join(out)


def _frame_label(frame: str, line: bool = True) -> str:
    function, _, where = frame.partition(" (")
    filename, _, number = where.rstrip(")").rpartition(":")
    where = f"{_short(filename)}:{number}" if line else _short(filename)
    return f"{function} ({where})"


def _short(filename: str) -> str:
    for marker in ("/site-packages/", "/work/main/bench/out/", "/work/main/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# =============================================================================================
# The parent: slapd, the floor, the children, the checks and the report.
# =============================================================================================


@dataclass
class StepRun:
    name: str
    round: int
    wall: float = 0.0
    ok: bool = True
    error: str = ""
    client_cpu: float = 0.0  # the child's (or ldapsearch's) CPU seconds
    slapd_cpu: float = 0.0
    other_cores: float = 0.0
    load1_before: float = 0.0
    load1_after: float = 0.0
    attempts: int = 1
    peak_rss_mb: float = 0.0
    entries: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    calls: dict[str, dict[str, float]] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def disturbed(self) -> bool:
        return self.other_cores > DISTURBED_CORES


class Lab:
    """A private slapd loaded with the generated LDIF. `server_options` go to SlapdServer
    (ldap_incremental.py asks for syncprov and accesslog); subclasses may add configuration
    (`configure`, slapd running) and change how the LDIF is loaded (`load`, slapd stopped)."""

    def __init__(self, ldif: Path, page_size: int, **server_options: Any) -> None:
        from slapd import SUFFIX, SYNC_DN, SYNC_PASSWORD, SlapdServer

        if SUFFIX != gen.SUFFIX:
            raise SystemExit(f"tests/slapd.py serves {SUFFIX}, the generator writes {gen.SUFFIX}")
        self.ldif = ldif
        self.page_size = page_size
        self.sync_dn, self.sync_password = SYNC_DN, SYNC_PASSWORD
        self.server = SlapdServer(tls=False, startup_timeout=60, **server_options)
        self.password_file = Path()  # in slapd's own temp dir: concurrent runs must not share it
        self.load_seconds = 0.0

    def __enter__(self) -> Lab:
        server = self.server
        server.start()
        try:
            # As in the lab: no logging; more tool threads and room for the large directory
            # (the harness's 1 GiB map is sized for the test seeds).
            server.modify_config("dn: cn=config\nchangetype: modify\nreplace: olcLogLevel\n"
                                 "olcLogLevel: none\n-\nreplace: olcToolThreads\n"
                                 "olcToolThreads: 2\n")
            server.modify_config("dn: olcDatabase={1}mdb,cn=config\nchangetype: modify\n"
                                 "replace: olcDbMaxSize\nolcDbMaxSize: 8589934592\n")
            self.configure()
            server.stop()
            t0 = time.perf_counter()
            self.load()
            self.load_seconds = time.perf_counter() - t0
            server.start()
        except BaseException:
            server.close()
            raise
        assert server.base_dir is not None
        self.password_file = server.base_dir / "sync.pw"
        self.password_file.write_text(self.sync_password)  # -y reads the whole file: no newline
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()  # removes its temp dir, the password file with it

    def configure(self) -> None:
        """More cn=config changes while slapd runs, before the load (none here)."""

    def load(self) -> None:
        """Load the LDIF with slapd stopped. tests/slapd.py's load_ldif(offline=True) reads
        the file into memory and has a 60 s timeout; slapadd -l reads the file itself."""
        server = self.server
        proc = subprocess.run(
            [server.tools["slapadd"], "-F", str(server.base_dir / "slapd.d"), "-b",
             gen.SUFFIX, "-q", "-l", str(self.ldif)],
            capture_output=True, text=True, env=ldap_client_env(), cwd="/", timeout=1800)
        if proc.returncode != 0:
            raise SystemExit(f"slapadd failed (exit {proc.returncode}): "
                             f"{proc.stderr.strip()[-2000:]}")

    @property
    def slapd_pid(self) -> int:
        base = self.server.base_dir
        assert base is not None
        return int((base / "slapd.pid").read_text().split()[0])

    def mdb_mb(self) -> float:
        base = self.server.base_dir
        assert base is not None
        path = base / "data" / "data.mdb"
        return path.stat().st_blocks * 512 / 2**20 if path.exists() else 0.0

    def table(self) -> dict[str, Any]:
        return {
            "name": DIRECTORY, "preset": "openldap", "urls": [self.server.url],
            "bind_dn": self.sync_dn, "bind_password_env": PASSWORD_ENV,
            "user_base_dn": gen.PEOPLE, "group_base_dn": gen.GROUPS,
            "page_size": self.page_size, "operation_timeout": 600,
        }

    def searches(self) -> list[tuple[str, list[str]]]:
        """(label, ldapsearch argv) for the users and the groups: dirsync's own bases,
        filters and attribute lists, paged with its page size."""
        from dirsync.ldap.config import parse_directories
        from dirsync.ldap.entries import EntryMapper
        from dirsync.ldap.filters import entry_filter

        config = parse_directories([self.table()], {PASSWORD_ENV: self.sync_password})[0]
        mapper = EntryMapper(config)
        common = ["ldapsearch", "-x", "-LLL", "-o", "ldif-wrap=no", "-H", self.server.url,
                  "-D", self.sync_dn, "-y", str(self.password_file),
                  "-E", f"pr={self.page_size}/noprompt"]
        return [
            ("users", common + ["-b", config.user_base_dn,
                                entry_filter(config.user_object_class, config.user_filter),
                                *mapper.user_attributes()]),
            ("groups", common + ["-b", config.group_base_dn,
                                 entry_filter(config.group_object_class, config.group_filter),
                                 *mapper.group_attributes()]),
        ]


# pid of the PostgreSQL postmaster when --postgres runs: its CPU is ours, not "other work".
SERVERS: dict[str, int] = {}


def servers_cpu() -> float:
    return sum(tree_cpu(pid) for pid in SERVERS.values())


@contextlib.contextmanager
def measured(run: StepRun, lab: Lab) -> Iterator[None]:
    """Wall time, CPU of our children and of slapd, and other work on the machine."""
    run.load1_before = load1()
    busy0, kids0, mine0 = benchlib.system_busy_seconds(), children_cpu(), self_cpu()
    slapd0, servers0 = benchlib.cpu_seconds(lab.slapd_pid), servers_cpu()
    t0 = time.perf_counter()
    yield
    run.wall = time.perf_counter() - t0
    run.client_cpu = children_cpu() - kids0
    run.slapd_cpu = benchlib.cpu_seconds(lab.slapd_pid) - slapd0
    server_cpu = servers_cpu() - servers0
    if SERVERS:
        run.detail["database_server_cpu"] = server_cpu
    ours = run.client_cpu + run.slapd_cpu + server_cpu + (self_cpu() - mine0)
    run.other_cores = max(0.0, (benchlib.system_busy_seconds() - busy0 - ours) / run.wall)
    run.load1_after = load1()


def run_ldapsearch(lab: Lab, label: str, argv: list[str], round_no: int,
                   expected: int) -> StepRun:
    run = StepRun(f"ldapsearch {label}", round_no)
    out_path = OUT_DIR / f"ldap-floor-{label}.ldif"
    with open(out_path, "wb") as fh, measured(run, lab):
        proc = subprocess.run(argv, stdout=fh, stderr=subprocess.PIPE, env=ldap_client_env(),
                              cwd="/", timeout=600)
    with open(out_path, "rb") as fh:
        run.entries = sum(1 for line in fh if line.startswith((b"dn: ", b"dn:: ")))
    run.detail["bytes"] = out_path.stat().st_size
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip()
        run.ok, run.error = False, f"exit {proc.returncode}: {message}"
    elif run.entries != expected:
        run.ok, run.error = False, f"{run.entries} entries, expected {expected}"
    return run


def run_child(lab: Lab, name: str, round_no: int, job: dict[str, Any],
              profile: str = "", script: Path | None = None) -> StepRun:
    """Run `script` (this file by default) with --child JOB; the job's table and password
    default to the lab's."""
    run = StepRun(name, round_no)
    job = {"table": lab.table(), "password": lab.sync_password, **job}
    argv = [sys.executable, str(script or Path(__file__).resolve()), "--child", json.dumps(job)]
    folded = None
    if profile == "py-spy":
        py_spy = Path(sys.executable).with_name("py-spy")
        folded = Path(job["profile_stem"] + ".folded")
        argv = [str(py_spy if py_spy.exists() else "py-spy"), "record", "--idle", "--rate", "200",
                "--format", "raw", "--output", str(folded), "--", *argv]
    with measured(run, lab):
        env = dict(os.environ)
        if CODE["path"]:
            env["PYTHONPATH"] = CODE["path"] + os.pathsep + env.get("PYTHONPATH", "")
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=str(ROOT), timeout=3600,
                              env=env)
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK):])
    if result is None:
        run.ok = False
        run.error = (f"child exited {proc.returncode} without a result: "
                     f"{(proc.stderr or proc.stdout).strip()[-3000:]}")
        return run
    run.ok = bool(result.get("ok")) and proc.returncode == 0
    if CODE["path"] and not result["dirsync_path"].startswith(CODE["path"]):
        run.ok = False
        result["error"] = f"the child imported dirsync from {result['dirsync_path']}"
    if not run.ok:
        run.error = str(result.get("error") or proc.stderr.strip()[-3000:])
    run.peak_rss_mb = result["hwm_mb"]
    # The figure is dirsync's own time (the call, in-process), as a scheduled sync in a
    # running server would see it; interpreter start-up and imports are not part of it.
    run.detail["process_wall"] = run.wall
    run.detail["process_cpu"] = run.client_cpu
    run.wall = result["wall"]
    run.client_cpu = result["cpu"]  # CPU of the call alone: steadier than wall on a busy machine
    run.detail.update({k: v for k, v in result.items()
                       if k not in ("phases", "calls", "profile_text")})
    run.phases = phase_durations(result["phases"], result["wall"])
    run.detail["phase_points"] = result["phases"]
    run.calls = result["calls"]
    if result.get("profile_text"):
        run.detail["profile_text"] = result["profile_text"]
    if folded is not None and folded.exists():
        run.detail["profile_text"] = pyspy_report(folded)
    return run


def phase_durations(points: list[dict[str, Any]], wall: float) -> dict[str, float]:
    """Seconds per phase from the progress points; 'connect' is before the first point."""
    out: dict[str, float] = {}
    if points:
        out["connect+bind"] = points[0]["t"]
    for here, there in zip(points, points[1:]):
        out[here["label"]] = there["t"] - here["t"]
    out["total"] = wall
    read = sum(v for k, v in out.items() if k in ("connect+bind", "users", "groups", "resolving"))
    out["read"] = read
    if "applying" in out:
        out["apply"] = out["applying"]
    return out


def fresh_sqlite(label: str) -> str:
    path = OUT_DIR / f"ldap-sync-{label}.db"
    for stale in OUT_DIR.glob(path.name + "*"):
        stale.unlink()
    url = f"sqlite:///{path}"
    init_store(url)
    return url


def init_store(url: str) -> None:
    from dirsync.store.db import Store

    store = Store(url)
    store.init_schema()
    store.dispose()


def store_figures(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from dirsync.store.db import Store
    from dirsync.store.tables import journal, users

    counts = benchlib.store_counts(url)
    store = Store(url)
    with store.read() as conn:
        counts["inactive_users"] = int(conn.execute(
            select(func.count()).select_from(users).where(users.c.active.is_(False))).scalar() or 0)
        counts["journal_rows"] = int(conn.execute(
            select(func.count()).select_from(journal)).scalar() or 0)
    store.dispose()
    return counts


def check_read(run: StepRun, m: gen.Manifest) -> None:
    want = {"users": m.expected_users, "groups": m.expected_groups,
            "user_memberships": m.expected_user_memberships,
            "group_memberships": m.expected_group_memberships,
            "inactive_users": m.expected_inactive_users,
            "out_of_scope": m.expected_members_out_of_scope,
            "self_memberships": m.expected_self_memberships,
            "unresolvable": 0, "skipped": 0, "duplicates": 0}
    wrong = {k: (run.detail.get(k), v) for k, v in want.items() if run.detail.get(k) != v}
    if wrong:
        run.ok = False
        run.error = "read differs from the generator's manifest (got, want): " + str(wrong)


def check_store(run: StepRun, url: str, m: gen.Manifest, first: bool) -> None:
    if not run.ok:
        return
    got = store_figures(url)
    run.detail["store"] = got
    want = {"users": m.expected_users, "groups": m.expected_groups,
            "user_memberships": m.expected_user_memberships,
            "group_memberships": m.expected_group_memberships,
            "inactive_users": m.expected_inactive_users}
    wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
    counts = run.detail.get("counts") or {}
    changed = sum(counts.values()) if counts else -1
    if not first and changed != 0:
        wrong["changes on the second sync"] = (changed, 0)
    if first and counts.get("users_added") != m.expected_users:
        wrong["users_added"] = (counts.get("users_added"), m.expected_users)
    if wrong:
        run.ok = False
        run.error = "store differs from the generator's manifest (got, want): " + str(wrong)


def attempt(make: Callable[[], StepRun], retries: int, quiet_wait: float) -> StepRun:
    """Run a step; re-run it (up to `retries` times) when other work disturbed it, keeping
    the least disturbed attempt."""
    best: StepRun | None = None
    for n in range(1, retries + 2):
        if quiet_wait > 0:
            benchlib.wait_quiet(limit_cores=DISTURBED_CORES, max_wait=quiet_wait)
        run = make()
        run.attempts = n
        print_step(run)
        if best is None or run.other_cores < best.other_cores or not best.ok:
            best = run
        if not run.disturbed or not run.ok:
            break
        if n <= retries:
            print(f"    ^ DISTURBED ({run.other_cores:.2f} cores of other work): running it again")
    assert best is not None
    return best


def print_step(run: StepRun) -> None:
    extra = ""
    if run.phases:
        ph = run.phases
        parts = [f"{k} {ph[k]:.2f}" for k in ("connect+bind", "users", "groups", "resolving",
                                              "applying") if k in ph]
        extra = "  [" + ", ".join(parts) + "]"
    if run.entries:
        extra = f"  [{run.entries:,} entries, {run.detail.get('bytes', 0) / 1e6:.1f} MB]"
    rss = f"{run.peak_rss_mb:6.0f}" if run.peak_rss_mb else "     -"
    flag = " DISTURBED" if run.disturbed else ""
    status = "ok" if run.ok else "FAILED"
    print(f"  {run.name:<28} {run.wall:8.2f} s  rss {rss} MB  cpu {run.client_cpu:6.2f}  slapd "
          f"{run.slapd_cpu:5.2f}  load1 {run.load1_before:4.2f}->{run.load1_after:4.2f}  other "
          f"{run.other_cores:4.2f}{flag}  {status}{extra}")
    if not run.ok:
        print(f"    error: {run.error}")


def median_of(runs: list[StepRun], name: str, attr: str = "wall") -> float | None:
    values = [getattr(r, attr) for r in runs if r.name == name and r.ok]
    return statistics.median(values) if values else None


def summary(runs: list[StepRun], size: str) -> tuple[list[str], list[tuple[str, bool]]]:
    lines = []
    names = list(dict.fromkeys(r.name for r in runs))
    lines.append(f"{'step':<30}{'wall s (median)':>16}{'min-max':>16}{'peak RSS MB':>13}"
                 f"{'CPU s':>8}{'slapd s':>9}{'load1':>7}{'other':>7}")
    for name in names:
        mine = [r for r in runs if r.name == name]
        walls = sorted(r.wall for r in mine)
        rss = max((r.peak_rss_mb for r in mine), default=0.0)
        lines.append(
            f"{name:<30}{statistics.median(walls):>16.2f}{f'{walls[0]:.2f}-{walls[-1]:.2f}':>16}"
            f"{(f'{rss:.0f}' if rss else '-'):>13}"
            f"{statistics.median(r.client_cpu for r in mine):>8.2f}"
            f"{statistics.median(r.slapd_cpu for r in mine):>9.2f}"
            f"{max(r.load1_before for r in mine):>7.2f}{max(r.other_cores for r in mine):>7.2f}")
    floor = [sum(r.wall for r in runs if r.round == k and r.name.startswith("ldapsearch"))
             for k in sorted({r.round for r in runs})]
    if floor:
        lines.append(f"{'floor: ldapsearch users+groups':<30}{statistics.median(floor):>16.2f}")
    verdicts: list[tuple[str, bool]] = []
    target_size = size if size in TARGETS else "medium"
    seconds, rss_limit = TARGETS[target_size]
    note = "" if size in TARGETS else f"  (for reference: {size} directory, {target_size} target)"
    for name in names:
        if not name.startswith("sync"):
            continue
        wall = median_of(runs, name)
        if wall is None:
            continue
        verdicts.append((f"{name}: {wall:.2f} s <= {seconds:.0f} s{note}", wall <= seconds))
        if rss_limit is not None:
            rss = max(r.peak_rss_mb for r in runs if r.name == name and r.ok)
            verdicts.append((f"{name}: peak RSS {rss:.0f} MB <= {rss_limit:.0f} MB{note}",
                             rss <= rss_limit))
    return lines, verdicts


def print_breakdown(run: StepRun) -> None:
    ph = run.phases
    print(f"\n{run.name} (round {run.round}): total {ph.get('total', run.wall):.2f} s = "
          f"read {ph.get('read', 0):.2f} s + apply {ph.get('apply', 0):.2f} s; "
          f"peak RSS {run.peak_rss_mb:.0f} MB "
          f"(at start {run.detail.get('rss_start_mb', 0):.0f} MB)")
    points = run.detail.get("phase_points") or []
    for p in points:
        print(f"    at {p['t']:7.2f} s  {p['label']:<10} RSS {p['rss_mb']:6.0f} MB  peak so far "
              f"{p['hwm_mb']:6.0f} MB")
    collected = run.detail.get("gc") or {}
    if collected:
        print("    garbage collector: " + ", ".join(
            f"{gen} {int(n)} runs {secs:.2f} s" for gen, (n, secs) in sorted(collected.items()))
            + f"; {sum(secs for _, secs in collected.values()):.2f} s in all")
    if run.calls:
        print("    bench timers around store/apply functions (nested ones are included in "
              "their callers):")
        for label, c in sorted(run.calls.items(), key=lambda kv: -kv[1]["seconds"]):
            print(f"      {c['seconds']:7.2f} s  {int(c['calls']):4d} call(s)  peak so far "
                  f"{c['hwm_mb']:5.0f} MB  {label}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(gen.SIZES), default="medium")
    parser.add_argument("--small", action="store_true", help="same as --size small (CI)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="measured rounds (median shown)")
    parser.add_argument("--page-size", type=int, default=1000,
                        help="page size for dirsync and ldapsearch (dirsync's default 1000)")
    parser.add_argument("--postgres", action="store_true",
                        help="also sync into PostgreSQL (tests/servers.py PostgresServer)")
    parser.add_argument("--steps", default="read,first,again",
                        help="dirsync steps to time, comma-separated from read, first, again, "
                             "or none (the floor always runs)")
    parser.add_argument("--experiment", choices=sorted(EXPERIMENTS), action="append",
                        help="BENCH-ONLY: time the dirsync steps with this change patched in "
                             "(see the function's docstring); the step names say so")
    parser.add_argument("--profile", choices=("py-spy", "cprofile", "memory"),
                        help="after the measured rounds, profile one more run of --profile-step")
    parser.add_argument("--profile-step", choices=("read", "first", "again"), default="first")
    parser.add_argument("--read-variants", metavar="LIST",
                        help="BENCH-ONLY: time read_directory once per variant, ';'-separated, "
                             "each 'none' or experiments joined by '+' (e.g. "
                             "'none;no-gc;ldap3-raw-only+no-gc'), in each round")
    parser.add_argument("--retries", type=int,
                        help="re-run a step disturbed by other work up to this many times "
                             "(default 2; 0 with --small)")
    parser.add_argument("--quiet-wait", type=float,
                        help="seconds to wait at most for an idle machine before each step "
                             "(default 90; 5 with --small, which is for CI, not for figures)")
    parser.add_argument("--json", type=Path, help="figures as JSON (default bench/out/"
                                                  "ldap-sync-<size>.json)")
    parser.add_argument("--at", metavar="REV",
                        help="measure dirsync as committed at REV (exported with git archive) "
                             "instead of the work tree")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(json.loads(args.child))
    steps = {s.strip() for s in args.steps.split(",") if s.strip() and s.strip() != "none"}
    if not steps <= {"read", "first", "again"}:
        unknown = ", ".join(sorted(steps - {"read", "first", "again"}))
        parser.error(f"--steps: unknown step(s) {unknown}")
    extra = {"experiments": args.experiment} if args.experiment else {}
    variants: list[list[str]] = []
    for text in (args.read_variants or "").split(";"):
        names = [n.strip() for n in text.split("+") if n.strip() and n.strip() != "none"]
        if text.strip():
            if set(names) - set(EXPERIMENTS):
                parser.error(f"--read-variants: unknown experiment in {text!r}; known: "
                             f"{', '.join(sorted(EXPERIMENTS))}")
            variants.append(names)
    suffix = f" [EXPERIMENT {'+'.join(args.experiment)}]" if args.experiment else ""
    # A plain SIGTERM would skip the clean-up below and leave slapd running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    size = "small" if args.small else args.size
    if args.retries is None:
        args.retries = 0 if size == "small" else 2
    if args.quiet_wait is None:
        args.quiet_wait = 5.0 if size == "small" else 90.0
    if args.at:
        sys.path.insert(0, str(export_code(args.at)))  # before anything imports dirsync
    users, groups, memberships = gen.SIZES[size]

    print(f"machine: {benchlib.machine_summary()}")
    print(f"dirsync: {code_state()}")
    print(f"load average now: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    import ldap3

    print(f"{tool_version(['/usr/sbin/slapd', '-VV'])}, {tool_version(['ldapsearch', '-VV'])}, "
          f"ldap3 {ldap3.__version__}")
    t0 = time.perf_counter()
    ldif, manifest, generated = gen.ensure_ldif(users, groups, memberships, args.seed)
    print(f"directory: {ldif.name} ({'generated' if generated else 'cached'}, "
          f"{manifest.ldif_bytes / 1e6:.0f} MB, {manifest.entries:,} entries; generation took "
          f"{manifest.seconds:.1f} s): {manifest.expected_users:,} users, "
          f"{manifest.expected_groups:,} groups, {manifest.expected_user_memberships:,} user and "
          f"{manifest.expected_group_memberships} group memberships, "
          f"{manifest.expected_members_out_of_scope} out-of-scope member values, largest group "
          f"{manifest.largest_group:,}")
    if generated:
        print(f"  (generated in {time.perf_counter() - t0:.1f} s)")

    runs: list[StepRun] = []
    profiled: StepRun | None = None
    ok = True
    pg = None
    with Lab(ldif, args.page_size) as lab, contextlib.ExitStack() as stack:
        print(f"slapd on {lab.server.url} (pid {lab.slapd_pid}, base {lab.server.base_dir}); "
              f"slapadd {lab.load_seconds:.1f} s; MDB {lab.mdb_mb():.0f} MB")
        searches = lab.searches()
        print("floor commands (the password file holds the harness's sync password):")
        for label, cmd in searches:
            print(f"  {label}: " + " ".join(_quote(a) for a in cmd) + " > out.ldif")
        if args.postgres:
            from servers import PostgresServer

            pg = PostgresServer()
            pg.start()
            stack.callback(pg.close)
            SERVERS["postgres"] = int((pg.data_dir / "postmaster.pid").read_text().split()[0])
            print(f"PostgreSQL on 127.0.0.1:{pg.port}")
        expected = {"users": manifest.expected_users, "groups": manifest.expected_groups}
        print("\nwarm-up (untimed):")
        for label, cmd in searches:
            print_step(run_ldapsearch(lab, label, cmd, 0, expected[label]))

        sqlite_url = ""
        for round_no in range(1, args.rounds + 1):
            print(f"\n--- round {round_no} ---")
            for label, cmd in searches:
                runs.append(attempt(lambda label=label, cmd=cmd: run_ldapsearch(
                    lab, label, cmd, round_no, expected[label]), args.retries, args.quiet_wait))
            if "read" in steps:
                run = attempt(lambda: _read(lab, round_no, manifest, extra), args.retries,
                              args.quiet_wait)
                runs.append(run)
            for variant in variants:
                more = {"experiments": variant} if variant else {}
                runs.append(attempt(lambda more=more: _read(lab, round_no, manifest, more),
                                    args.retries, args.quiet_wait))
            stores = [("SQLite", lambda: fresh_sqlite(size))]
            if pg is not None:
                stores.append(("PostgreSQL", lambda: _fresh_pg(pg)))
            for kind, fresh in stores:
                holder: dict[str, str] = {}

                def first(kind: str = kind, fresh: Callable[[], str] = fresh,
                          holder: dict[str, str] = holder) -> StepRun:
                    holder["url"] = fresh()
                    run = run_child(lab, f"sync {kind}, empty store{suffix}", round_no,
                                    {"step": "sync", "db_url": holder["url"], **extra})
                    check_store(run, holder["url"], manifest, first=True)
                    return run

                if "first" not in steps:
                    continue
                runs.append(attempt(first, args.retries, args.quiet_wait))

                def again(kind: str = kind, holder: dict[str, str] = holder) -> StepRun:
                    run = run_child(lab, f"sync {kind}, no changes{suffix}", round_no,
                                    {"step": "sync", "db_url": holder["url"], **extra})
                    check_store(run, holder["url"], manifest, first=False)
                    return run

                if "again" in steps:
                    runs.append(attempt(again, args.retries, args.quiet_wait))
                if kind == "SQLite":
                    sqlite_url = holder["url"]

        if args.profile:
            print(f"\n--- profile ({args.profile}) of '{args.profile_step}': not a measurement ---")
            stem = str(OUT_DIR / f"ldap-sync-{size}-{args.profile_step}-{args.profile}")
            if args.profile_step == "read":
                job = {"step": "read"}
            else:
                reuse = args.profile_step == "again" and sqlite_url
                url = sqlite_url if reuse else fresh_sqlite(size)
                if args.profile_step == "again" and not sqlite_url:
                    run_child(lab, "sync (setup)", 0, {"step": "sync", "db_url": url})
                job = {"step": "sync", "db_url": url}
            job.update(profile=args.profile if args.profile != "py-spy" else "",
                       profile_stem=stem, **extra)
            profiled = run_child(lab, f"profiled {args.profile_step}", 0, job,
                                 profile=args.profile)
            print_step(profiled)
            print(profiled.detail.get("profile_text", "(no profile output)"))

    print("\n=== summary " + "=" * 70)
    print(f"{size}: {manifest.expected_users:,} users / {manifest.expected_groups:,} groups / "
          f"{manifest.expected_user_memberships:,} user memberships, seed {args.seed}, page size "
          f"{args.page_size}, {args.rounds} round(s)")
    print(f"dirsync measured: {code_state()}")
    for run in runs:
        if run.name.startswith(("sync", "read")) and run.round == args.rounds:
            print_breakdown(run)
    lines, verdicts = summary(runs, size)
    print()
    print("\n".join(lines))
    failures = [r for r in runs if not r.ok]
    for r in failures:
        print(f"FAILED: {r.name} (round {r.round}): {r.error}")
    ok = not failures
    print()
    for text, passed in verdicts:
        print(f"target: {text}: {'PASS' if passed else 'FAIL'}")
    disturbed = [r for r in runs if r.disturbed]
    if disturbed:
        print(f"note: {len(disturbed)} step(s) stayed DISTURBED after {args.retries} re-run(s): "
              + ", ".join(f"{r.name} ({r.other_cores:.2f} cores)" for r in disturbed))
    out = args.json or OUT_DIR / f"ldap-sync-{size}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "size": size, "seed": args.seed, "page_size": args.page_size,
        "machine": benchlib.machine_summary(), "dirsync": code_state(),
        "manifest": asdict(manifest),
        "runs": [asdict(r) for r in runs],
        "profile": asdict(profiled) if profiled else None,
        "verdicts": [{"target": t, "pass": p} for t, p in verdicts], "ok": ok,
    }, indent=2, default=str))
    print(f"figures written to {out}")
    return 0 if ok else 1


def _read(lab: Lab, round_no: int, manifest: gen.Manifest, extra: dict[str, Any]) -> StepRun:
    label = " [EXPERIMENT " + "+".join(extra["experiments"]) + "]" if extra else ""
    run = run_child(lab, "read_directory" + label, round_no, {"step": "read", **extra})
    if run.ok:
        check_read(run, manifest)
    return run


def _fresh_pg(pg: Any) -> str:
    url = pg.create_database()
    init_store(url)
    return url


def _quote(arg: str) -> str:
    return arg if all(c.isalnum() or c in "-_=/.,:" for c in arg) else "'" + arg + "'"


if __name__ == "__main__":
    sys.exit(main())

"""Background jobs of a serving process: the only place APScheduler is imported.

Every worker process runs its own scheduler (gunicorn forks workers, and a scheduler's threads
do not survive a fork). The jobs are safe to run from several processes and replicas at once:
a directory sync first takes that directory's lock (dirsync/store/locks.py) and steps aside
when another process holds it; trimming takes the store's write lock and is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler

from dirsync import feed
from dirsync.ldap.config import DirectoryConfig
from dirsync.settings import Settings
from dirsync.store.db import Store
from dirsync.sync.mirror import sync_directory

log = logging.getLogger(__name__)
# APScheduler logs every job start and end at INFO, once per worker: the jobs log what matters.
logging.getLogger("apscheduler").setLevel(logging.WARNING)


def trim_events(settings: Settings, store: Store) -> None:
    try:
        feed.trim(store, days=settings.events_retention_days, keep=settings.events_retention_count)
    except Exception:  # a job that raises is only logged by APScheduler; say what failed
        log.exception("trimming the event journal failed; it will be retried")


def sync_job(settings: Settings, store: Store, config: DirectoryConfig) -> None:
    try:
        result = sync_directory(store, config, [d.name for d in settings.directories],
                                journal_limit=settings.events_max_journal_rows)
    except Exception:
        log.exception("scheduled sync of directory %r failed unexpectedly", config.name)
        return
    if result.status == "busy":
        log.debug("scheduled sync of %r skipped: %s", config.name, result.error)


def start(settings: Settings, store: Store, *, first_run_in: float | None = None) -> BackgroundScheduler:
    interval = settings.events_trim_interval_seconds
    scheduler = BackgroundScheduler(daemon=True, timezone=dt.timezone.utc)
    # Spread the workers' runs so they do not all queue on the write lock at once.
    delay = interval if first_run_in is None else first_run_in
    scheduler.add_job(
        trim_events, "interval", seconds=interval, args=(settings, store), id="trim-events",
        max_instances=1, coalesce=True, jitter=max(1, interval // 10),
        next_run_time=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=delay),
    )
    for config in settings.directories:
        every = config.sync_interval_seconds
        scheduler.add_job(
            sync_job, "interval", seconds=every, args=(settings, store, config),
            id=f"sync-{config.name}", max_instances=1, coalesce=True, jitter=max(1, every // 20),
            # soon after start, so a new deployment or a restarted replica is not stale for long
            next_run_time=dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=min(delay, 5)),
        )
    scheduler.start()
    return scheduler

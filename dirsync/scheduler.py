"""Background jobs of a serving process: the only place APScheduler is imported.

Every worker process runs its own scheduler (gunicorn forks workers, and a scheduler's threads
do not survive a fork). The jobs are safe to run from several processes and replicas at once:
a directory sync first takes that directory's lock (dirsync/store/locks.py) and steps aside
when another process holds it; trimming takes the store's write lock and is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from dirsync import feed
from dirsync.cron import crontab_fields
from dirsync.ldap.config import DirectoryConfig
from dirsync.settings import Settings
from dirsync.store.db import Store
from dirsync.sync.mirror import directory_status, sync_directory

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


def full_sync_job(settings: Settings, store: Store, config: DirectoryConfig, *,
                  due: dt.datetime | None = None, retry_seconds: float = 15.0) -> None:
    """The `full_sync_cron` job. Every worker of every replica fires it at the same minute:
    the first to take the directory's lock runs the full sync, and the others, finding the
    lock taken, wait for it and then see a full sync that started in this minute and stop.
    Waiting also covers an incremental round that happened to be running. Gives up (and
    says so) after one sync interval; the next tick or `full_sync_every` comes later. `due`:
    the tick (cron fires on the minute; a test passes its own)."""
    due = due or dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    give_up = time.monotonic() + max(config.sync_interval_seconds, 60)
    while True:
        good = directory_status(store, config.name).last_good
        if good is not None and good.mode == "full" and _utc(good.started_at) >= due:
            return
        try:
            result = sync_directory(store, config, [d.name for d in settings.directories],
                                    full=True, journal_limit=settings.events_max_journal_rows)
        except Exception:
            log.exception("scheduled full sync of directory %r failed unexpectedly", config.name)
            return
        if result.status != "busy":
            return
        if time.monotonic() >= give_up:
            log.warning("scheduled full sync of directory %r (full_sync_cron, due %s) did not "
                        "run: the directory stayed busy for %d s", config.name,
                        f"{due:%Y-%m-%d %H:%M}Z", config.sync_interval_seconds)
            return
        time.sleep(retry_seconds)


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def cron_trigger(expression: str) -> CronTrigger:
    """A crontab expression as cron reads it (Sunday = 0; see dirsync.cron), in UTC."""
    return CronTrigger(**crontab_fields(expression), timezone=dt.timezone.utc)


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
        if config.full_sync_cron:
            scheduler.add_job(
                full_sync_job, cron_trigger(config.full_sync_cron), args=(settings, store, config),
                id=f"full-sync-{config.name}", max_instances=1, coalesce=True,
                misfire_grace_time=max(60, every),
            )
    scheduler.start()
    return scheduler

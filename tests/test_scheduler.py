"""Scheduled full syncs (`full_sync_cron`): cron's reading of the expression, and one full
sync per tick however many workers fire it, against a real slapd and store."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest

from dirsync import scheduler
from dirsync.cron import crontab_fields
from dirsync.errors import ConfigError
from dirsync.settings import Settings
from dirsync.store import runs
from dirsync.store.locks import directory_lock
from ldap_fixtures import *  # noqa: F403

UTC = dt.timezone.utc
SATURDAY = dt.datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def next_fire(expression: str, after: dt.datetime = SATURDAY) -> dt.datetime:
    return scheduler.cron_trigger(expression).get_next_fire_time(None, after)


@pytest.mark.parametrize(("expression", "expected"), [
    ("0 3 * * 0", dt.datetime(2026, 11, 22, 3, 0, tzinfo=UTC)),  # cron: 0 is Sunday
    ("0 3 * * 7", dt.datetime(2026, 11, 22, 3, 0, tzinfo=UTC)),  # and so is 7
    ("0 3 * * 1-5", dt.datetime(2026, 11, 23, 3, 0, tzinfo=UTC)),  # Monday, not Sunday
    ("15 13 * * sat", dt.datetime(2026, 11, 21, 13, 15, tzinfo=UTC)),
    ("0 0 * * */2", dt.datetime(2026, 11, 21, 0, 0, tzinfo=UTC) + dt.timedelta(days=1)),
    ("*/20 * * * *", dt.datetime(2026, 11, 21, 12, 0, tzinfo=UTC)),
    ("30 2 1 jan-mar *", dt.datetime(2027, 1, 1, 2, 30, tzinfo=UTC)),
])
def test_expressions_mean_what_cron_means(expression: str, expected: dt.datetime) -> None:
    assert next_fire(expression) == expected


@pytest.mark.parametrize(("expression", "reason"), [
    ("0 3 * *", "five fields"),
    ("@daily", "five fields"),
    ("61 * * * *", "minute field's 61 is outside 0-59"),
    ("0 24 * * *", "hour field's 24"),
    ("0 0 * * 8", "day of week field's 8"),
    ("0 0 * smarch *", "not a number or one of jan"),
    ("5-1 * * * *", "runs backwards"),
    ("*/0 * * * *", "at least 1"),
    ("0 0 1 * 1", "not both"),
    ("0 0 L * *", "not a number"),
])
def test_bad_expressions_say_why(expression: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        crontab_fields(expression)


def test_the_config_key_is_checked(directory_config: Any) -> None:
    assert directory_config(full_sync_cron="30 2 * * *").full_sync_cron == "30 2 * * *"
    assert directory_config().full_sync_cron is None
    with pytest.raises(ConfigError, match=r"full_sync_cron.*minute field's 75"):
        directory_config(full_sync_cron="75 2 * * *")


def test_start_schedules_the_full_sync(store: Any, directory_config: Any,
                                       settings: Settings) -> None:
    config = directory_config(full_sync_cron="0 3 * * 0")
    jobs = scheduler.start(type(settings)(**{**settings.__dict__, "directories": (config,)}),
                           store, first_run_in=3600)
    try:
        job = jobs.get_job("full-sync-corp")
        assert job is not None and job.next_run_time.weekday() == 6  # Sunday
        assert (job.next_run_time.hour, job.next_run_time.minute) == (3, 0)
    finally:
        jobs.shutdown(wait=False)


def full_runs(store: Any) -> list[runs.Run]:
    with store.read() as conn:
        return [r for r in runs.history(conn, "corp", limit=50) if r.mode == "full"]


def test_one_full_sync_per_tick_however_many_workers_fire_it(
        store: Any, directory_config: Any, settings: Settings) -> None:
    config = directory_config(full_sync_cron="* * * * *")
    settings = type(settings)(**{**settings.__dict__, "directories": (config,)})
    due = dt.datetime.now(UTC).replace(microsecond=0)
    workers = [threading.Thread(target=scheduler.full_sync_job, args=(settings, store, config),
                                kwargs={"due": due, "retry_seconds": 0.05}) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [r.status for r in full_runs(store)] == ["ok"]
    # The next tick runs again.
    scheduler.full_sync_job(settings, store, config, due=dt.datetime.now(UTC))
    assert [r.status for r in full_runs(store)] == ["ok", "ok"]


def test_a_tick_waits_for_the_sync_in_progress(store: Any, directory_config: Any,
                                               settings: Settings) -> None:
    config = directory_config(full_sync_cron="* * * * *")
    settings = type(settings)(**{**settings.__dict__, "directories": (config,)})
    job = threading.Thread(target=scheduler.full_sync_job, args=(settings, store, config),
                           kwargs={"due": dt.datetime.now(UTC), "retry_seconds": 0.05})
    with directory_lock(store, "corp") as held:
        assert held
        job.start()
        time.sleep(0.5)
        assert job.is_alive() and not full_runs(store)
    job.join(60)
    assert not job.is_alive()
    assert [r.status for r in full_runs(store)] == ["ok"]

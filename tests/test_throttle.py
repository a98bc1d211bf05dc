"""Tests for dirsync.throttle.FailureThrottle, driven by a clock the test sets by hand."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from dirsync.throttle import FailureThrottle


class Clock:
    """A settable clock to pass as `clock=`; time moves only when a test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# Scripts of steps against one key, with limit=3 and window=60 s:
#   ("fail", crossed)       record_failure returns `crossed`
#   ("wait", seconds)       the clock moves forward
#   ("retry", seconds)      retry_after returns `seconds`
#   ("reset", None)         reset
SCRIPTS = [
    ("below the limit is not blocked", [
        ("fail", False), ("retry", 0.0), ("fail", False), ("retry", 0.0),
    ]),
    ("the failure that reaches the limit crosses it, once", [
        ("fail", False), ("fail", False), ("fail", True), ("retry", 60.0),
        ("fail", False), ("fail", False),
    ]),
    ("retry_after counts down from the oldest failure in the window", [
        ("fail", False), ("wait", 10), ("fail", False), ("wait", 10), ("fail", True),
        ("retry", 40.0), ("wait", 39.5), ("retry", 0.5),
    ]),
    ("a failure expires exactly one window after it happened", [
        ("fail", False), ("fail", False), ("fail", True), ("wait", 59.999), ("retry", 0.001),
        ("wait", 0.001), ("retry", 0.0),
    ]),
    ("the window slides: one expiry unblocks, the next failure re-blocks and crosses again", [
        ("fail", False), ("wait", 20), ("fail", False), ("wait", 20), ("fail", True),
        ("wait", 20), ("retry", 0.0), ("fail", True), ("retry", 20.0),
    ]),
    ("spread-out failures never add up", [
        ("fail", False), ("wait", 30), ("fail", False), ("wait", 30), ("fail", False),
        ("wait", 30), ("fail", False), ("retry", 0.0),
    ]),
    ("a failure while blocked extends the block", [
        ("fail", False), ("fail", False), ("fail", True), ("wait", 50), ("fail", False),
        ("retry", 10.0), ("wait", 10), ("retry", 0.0), ("fail", False), ("fail", True),
        ("retry", 50.0),
    ]),
    ("reset forgets everything", [
        ("fail", False), ("fail", False), ("fail", True), ("reset", None), ("retry", 0.0),
        ("fail", False), ("fail", False), ("fail", True),
    ]),
    ("reset of an unknown key is harmless", [
        ("reset", None), ("retry", 0.0), ("fail", False),
    ]),
    ("everything expired starts afresh", [
        ("fail", False), ("fail", False), ("fail", True), ("wait", 600), ("retry", 0.0),
        ("fail", False), ("fail", False), ("fail", True),
    ]),
]


@pytest.mark.parametrize("steps", [s[1] for s in SCRIPTS], ids=[s[0] for s in SCRIPTS])
def test_script(steps: list[tuple[str, float | bool | None]]) -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=3, window_seconds=60, clock=clock)
    for number, (action, value) in enumerate(steps, start=1):
        where = f"step {number} ({action})"
        if action == "fail":
            assert throttle.record_failure("10.0.0.1") is value, where
        elif action == "wait":
            assert isinstance(value, (int, float))
            clock.advance(value)
        elif action == "retry":
            assert throttle.retry_after("10.0.0.1") == pytest.approx(value), where
        elif action == "reset":
            throttle.reset("10.0.0.1")
        else:
            raise AssertionError(f"unknown action {action!r}")


def test_limit_of_one_blocks_on_the_first_failure() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=1, window_seconds=5, clock=clock)
    assert throttle.record_failure("a") is True
    assert throttle.retry_after("a") == 5.0


def test_keys_are_independent() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=2, window_seconds=60, clock=clock)
    assert [throttle.record_failure(("app", "10.0.0.1")) for _ in range(2)] == [False, True]
    assert throttle.retry_after(("app", "10.0.0.2")) == 0.0
    assert throttle.retry_after(("other-app", "10.0.0.1")) == 0.0
    throttle.reset(("app", "10.0.0.2"))
    assert throttle.retry_after(("app", "10.0.0.1")) == 60.0


def test_memory_per_key_is_bounded_by_the_limit() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=3, window_seconds=60, clock=clock)
    for _ in range(10_000):
        throttle.record_failure("hammer")
    # Private on purpose: the bound is about memory, which no public method shows.
    assert len(throttle._failures["hammer"]) == 3


def test_eviction_drops_the_key_with_the_oldest_last_failure() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=1, window_seconds=60, clock=clock, max_keys=3)
    for key in ("a", "b", "c"):
        throttle.record_failure(key)
        clock.advance(1)
    throttle.record_failure("a")  # "a" failed again: now "b" is the stalest
    clock.advance(1)
    throttle.record_failure("d")
    assert len(throttle) == 3
    assert throttle.retry_after("b") == 0.0
    assert [throttle.retry_after(key) > 0 for key in ("a", "c", "d")] == [True, True, True]


def test_retry_after_does_not_count_as_activity_for_eviction() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=1, window_seconds=60, clock=clock, max_keys=2)
    throttle.record_failure("a")
    throttle.record_failure("b")
    throttle.retry_after("a")
    throttle.record_failure("c")
    assert throttle.retry_after("a") == 0.0
    assert throttle.retry_after("b") > 0


def test_expired_keys_are_dropped_before_live_ones_are_evicted() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=2, window_seconds=60, clock=clock, max_keys=1000)
    for number in range(500):
        throttle.record_failure(f"old-{number}")
    clock.advance(60)
    throttle.record_failure("new")
    assert len(throttle) == 1


def test_retry_after_drops_an_expired_key() -> None:
    clock = Clock()
    throttle = FailureThrottle(limit=2, window_seconds=60, clock=clock)
    throttle.record_failure("a")
    clock.advance(61)
    assert throttle.retry_after("a") == 0.0
    assert len(throttle) == 0


BAD_ARGUMENTS = [
    ({"limit": 0, "window_seconds": 60}, "limit must be"),
    ({"limit": 2.5, "window_seconds": 60}, "limit must be"),
    ({"limit": True, "window_seconds": 60}, "limit must be"),
    ({"limit": 3, "window_seconds": 0}, "window_seconds must be"),
    ({"limit": 3, "window_seconds": -1}, "window_seconds must be"),
    ({"limit": 3, "window_seconds": float("inf")}, "window_seconds must be"),
    ({"limit": 3, "window_seconds": float("nan")}, "window_seconds must be"),
    ({"limit": 3, "window_seconds": 60, "max_keys": 0}, "max_keys must be"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_ARGUMENTS)
def test_bad_arguments(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FailureThrottle(**arguments)  # type: ignore[arg-type]


def test_defaults_to_the_monotonic_clock() -> None:
    throttle = FailureThrottle(limit=1, window_seconds=3600)
    throttle.record_failure("a")
    assert 3599 < throttle.retry_after("a") <= 3600


@pytest.fixture
def eager_thread_switching() -> Iterator[None]:
    # Switch threads every few microseconds instead of every 5 ms, so that a missing lock shows
    # up as a race in a test this short rather than once in a blue moon.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_in_threads(count: int, work: Callable[[int], None]) -> None:
    """Start `count` threads at once on `work(index)` and re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    if errors:
        raise errors[0]


@pytest.mark.usefixtures("eager_thread_switching")
def test_threads_cross_the_limit_exactly_once() -> None:
    # A smoke test: without the lock, two threads can both see limit-1 and both report a
    # crossing (or neither). The clock stands still so that nothing expires meanwhile.
    throttle = FailureThrottle(limit=500, window_seconds=60, clock=Clock())
    crossings: list[bool] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        for _ in range(250):
            crossed = throttle.record_failure("shared")
            throttle.retry_after("shared")
            if crossed:
                with lock:
                    crossings.append(crossed)

    run_in_threads(8, work)
    assert crossings == [True]
    assert throttle.retry_after("shared") == 60.0


@pytest.mark.usefixtures("eager_thread_switching")
def test_threads_keep_the_key_bound() -> None:
    # Without the lock this fails with "OrderedDict mutated during iteration" or a broken bound.
    throttle = FailureThrottle(limit=2, window_seconds=60, clock=Clock(), max_keys=50)

    def work(index: int) -> None:
        for number in range(2000):
            key = f"{index}-{number}"
            throttle.record_failure(key)
            throttle.retry_after(key)
            if number % 7 == 0:
                throttle.reset(key)
            assert len(throttle) <= 50

    run_in_threads(8, work)
    assert len(throttle) == 50

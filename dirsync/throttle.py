"""Counting failed application logins per key (usually the client address). Pure: no I/O.

`FailureThrottle` keeps, for each key, the times of its recent failures and says how long the key
must wait once `limit` of them fall inside a sliding window of `window_seconds`. The caller owns
the policy around it: check `retry_after` before verifying a password (and answer 429 with
Retry-After when it is positive), `record_failure` on a wrong password (and log a warning when it
returns True), `reset` on success.

Memory is bounded twice over: per key, only the newest `limit` timestamps are kept (older ones
cannot change the answer); across keys, at most `max_keys` are kept, dropping the key whose last
failure is oldest. The second bound is a trade-off an attacker with many addresses (an IPv6 /64)
can exploit to push a blocked key out; it is there so that the same attacker cannot exhaust the
worker's memory instead. Keys whose failures have all expired are dropped as we go, so the bound
is only reached under real pressure.

One lock guards everything: gunicorn threads in a worker share one throttle, and each operation
is a few dictionary and deque steps. Counts are per process; with several workers a client gets
up to `limit` attempts from each. This module must not log, sleep or import Flask.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable


class FailureThrottle:
    """Sliding-window count of failures per key; blocked once `limit` fall within the window.

    `clock` returns seconds and must never go backwards (hence `time.monotonic`, not
    `time.time`, which jumps when the system clock is set); tests pass their own.
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a whole number of at least 1, got {limit!r}")
        if not (window_seconds > 0 and math.isfinite(window_seconds)):
            raise ValueError(f"window_seconds must be a positive number, got {window_seconds!r}")
        if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
            raise ValueError(f"max_keys must be a whole number of at least 1, got {max_keys!r}")
        self.limit = limit
        self.window_seconds = float(window_seconds)
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # Ordered by last failure, oldest first: the front is both the eviction victim and the
        # first key to expire completely. Each deque holds at most `limit` timestamps, oldest
        # first.
        self._failures: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def retry_after(self, key: Hashable) -> float:
        """Seconds until `key` may try again; 0.0 when it is not blocked.

        When blocked, this is the time until the oldest of the last `limit` failures leaves the
        window, which is exactly when the count drops below the limit. Always > 0 when blocked.
        """
        with self._lock:
            now = self._clock()
            failures = self._failures.get(key)
            if failures is None:
                return 0.0
            self._prune(failures, now)
            if not failures:
                del self._failures[key]
                return 0.0
            if len(failures) < self.limit:
                return 0.0
            return failures[0] + self.window_seconds - now

    def record_failure(self, key: Hashable) -> bool:
        """Count one failure for `key`; True only for the failure that reaches the limit.

        The True is the moment to log a warning: once per crossing, not once per refused
        attempt. A failure recorded while already blocked still counts and so extends the block;
        callers that check `retry_after` first never record one.
        """
        with self._lock:
            # Read the clock under the lock so that the order of keys matches the order of
            # their timestamps even when threads race.
            now = self._clock()
            self._drop_expired_keys(now)
            failures = self._failures.get(key)
            if failures is None:
                failures = deque(maxlen=self.limit)
                self._failures[key] = failures
                while len(self._failures) > self.max_keys:
                    self._failures.popitem(last=False)
            else:
                self._prune(failures, now)
                self._failures.move_to_end(key)
            crossed = len(failures) == self.limit - 1
            failures.append(now)
            return crossed

    def reset(self, key: Hashable) -> None:
        """Forget every failure of `key`, e.g. after it authenticated successfully."""
        with self._lock:
            self._failures.pop(key, None)

    def __len__(self) -> int:
        """The number of keys currently remembered (expired ones may linger until next use)."""
        with self._lock:
            return len(self._failures)

    def _prune(self, failures: deque[float], now: float) -> None:
        # A failure at time t counts during [t, t + window): it has expired once now reaches
        # t + window, which keeps retry_after strictly positive while blocked.
        horizon = now - self.window_seconds
        while failures and failures[0] <= horizon:
            failures.popleft()

    def _drop_expired_keys(self, now: float) -> None:
        # The front key has the oldest last failure; if even that one has expired, the key is
        # dead weight. Each key is dropped at most once, so this is amortised O(1) per call.
        horizon = now - self.window_seconds
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if oldest and oldest[-1] > horizon:
                break
            self._failures.popitem(last=False)

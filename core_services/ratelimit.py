"""Per-caller token buckets, one set per worker process."""

from __future__ import annotations

import math
import threading
import time

from core_services.problems import Problem


class RateLimiter:
    def __init__(self, per_second: float, burst: int) -> None:
        self._rate = per_second
        self._burst = float(burst)
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def admit(self, caller: str) -> None:
        """Take one token for `caller`, or raise 429 with the seconds until one is free."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(caller, (self._burst, now))
            tokens = min(self._burst, tokens + (now - last) * self._rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                retry_after = max(1, math.ceil((1.0 - tokens) / self._rate))
                raise Problem("rate_limited", headers={"Retry-After": str(retry_after)})
            self._buckets[caller] = (tokens - 1.0, now)

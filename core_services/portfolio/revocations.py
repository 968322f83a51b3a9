"""The customers whose tokens payments has revoked, as this portfolio worker knows them.

The portfolio checks tokens by their MAC alone (it stores none), so a revocation made
at payments (`DELETE /v1/customers/{id}/tokens`) reaches it through this list: each
revoked customer with the instant before which its tokens were issued. A worker asks
payments again, in the background, once its copy is older than `FRESH_SECONDS`;
requests go on with the copy meanwhile, and wait for the answer (one fetch shared by
every request that needs it) only once the copy is older than `FRESH_SECONDS +
GRACE_SECONDS`. So a revoked token stops working here within 0.75 s, and no request
pays for the fetch while it keeps up: when each one waited, a slow payments database
(100 ms) gave a sixth of all requests a second payments round trip. If payments
cannot answer quickly, the last list stays in use: quotes must not wait on payments.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from core_services.auth import Principal, is_revoked
from core_services.problems import Problem

log = logging.getLogger("nova.portfolio.revocations")

FRESH_SECONDS = 0.5
GRACE_SECONDS = 0.25


class RevocationList:
    def __init__(
        self,
        fetch: Callable[[], dict[str, int]],
        fresh_seconds: float = FRESH_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`fetch` asks payments for every revoked customer's instant (ms); it raises if payments does not answer."""
        self._fetch = fetch
        self._fresh_seconds = fresh_seconds
        self._grace_seconds = grace_seconds
        self._monotonic = monotonic
        self._revoked: dict[str, int] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self._in_flight: Future[None] | None = None
        self._failing = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="revocations")

    async def check(self, principal: Principal) -> None:
        """401 if the caller's token was revoked; refreshes the list when this copy is stale,
        waiting for it only past the grace."""
        if principal.customer_id is None:
            return
        age = self._monotonic() - self._fetched_at
        if age > self._fresh_seconds:
            refresh = self._refresh()
            if age > self._fresh_seconds + self._grace_seconds:
                await asyncio.wrap_future(refresh)
        if is_revoked(principal, self._revoked.get(principal.customer_id)):
            raise Problem("unauthorized", "this token was revoked")

    def _refresh(self) -> Future[None]:
        with self._lock:
            if self._in_flight is None or self._in_flight.done():
                self._in_flight = self._executor.submit(self._fetch_now)
            return self._in_flight

    def _fetch_now(self) -> None:
        started = self._monotonic()
        try:
            self._revoked = self._fetch()
        except Exception as exc:  # payments down or slow: keep what we knew, ask again later
            if not self._failing:  # once per outage, not twice a second
                log.warning("token revocations not refreshed, keeping the last list: %s", exc)
            self._failing = True
        else:
            if self._failing:
                log.warning("token revocations refreshed again")
            self._failing = False
        self._fetched_at = started

"""The customers whose tokens payments has revoked, as this portfolio worker knows them.

The portfolio checks tokens by their MAC alone (it stores none), so a revocation made
at payments (`DELETE /v1/customers/{id}/tokens`) reaches it through this list: each
revoked customer with the instant before which its tokens were issued. A worker asks
payments again once its copy is older than `FRESH_SECONDS`, and a request waits for
that answer (one fetch shared by every request that needs it), so a revoked token
stops working here within about one second. If payments cannot answer quickly, the
last list stays in use: quotes must not wait on payments.
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


class RevocationList:
    def __init__(self, fetch: Callable[[], dict[str, int]], fresh_seconds: float = FRESH_SECONDS) -> None:
        """`fetch` asks payments for every revoked customer's instant (ms); it raises if payments does not answer."""
        self._fetch = fetch
        self._fresh_seconds = fresh_seconds
        self._revoked: dict[str, int] = {}
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()
        self._in_flight: Future[None] | None = None
        self._failing = False
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="revocations")

    async def check(self, principal: Principal) -> None:
        """401 if the caller's token was revoked; fetches the list first when this copy is stale."""
        if principal.customer_id is None:
            return
        if time.monotonic() - self._fetched_at > self._fresh_seconds:
            await asyncio.wrap_future(self._refresh())
        if is_revoked(principal, self._revoked.get(principal.customer_id)):
            raise Problem("unauthorized", "this token was revoked")

    def _refresh(self) -> Future[None]:
        with self._lock:
            if self._in_flight is None or self._in_flight.done():
                self._in_flight = self._executor.submit(self._fetch_now)
            return self._in_flight

    def _fetch_now(self) -> None:
        started = time.monotonic()
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

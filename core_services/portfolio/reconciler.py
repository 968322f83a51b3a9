"""Reconciliation: pending orders whose payment outcome is unknown are driven to an end.

An order stays `pending` when payments could not be reached or its answer was lost.
Re-sending the same payment (same derived key, same amount) either makes it or
replays the one already made, so the order is filled or rejected exactly once and the
customer is never charged twice. Each worker runs a pass every few seconds; claims in
the database keep two workers off the same order.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from core_services.portfolio.domain import FILLED
from core_services.portfolio.service import PortfolioService
from core_services.problems import Problem

log = logging.getLogger("nova.portfolio.reconciler")

RECONCILE_EVERY_SECONDS = 5.0
# Younger orders are most likely still being settled by the request that made them.
RECONCILE_OLDER_THAN_SECONDS = 5.0
RECONCILE_BATCH = 100


@dataclass(frozen=True, slots=True)
class ReconciliationReport:
    examined: int = 0
    filled: int = 0
    rejected: int = 0
    still_pending: int = 0


def reconcile_pending(
    service: PortfolioService,
    older_than_seconds: float = RECONCILE_OLDER_THAN_SECONDS,
    limit: int = RECONCILE_BATCH,
) -> ReconciliationReport:
    """One pass over the oldest pending orders nobody else is driving."""
    order_ids = service.stale_pending(older_than_seconds, limit)
    if not order_ids:
        return ReconciliationReport()
    try:
        house = service.house()
    except Problem as problem:
        log.warning("reconciliation postponed, %d orders pending: %s", len(order_ids), problem)
        return ReconciliationReport(examined=len(order_ids), still_pending=len(order_ids))
    filled = rejected = pending = 0
    for order_id in order_ids:
        order = service.claim(order_id)
        if order is None:
            continue
        answer = service.settle(order, house)
        if answer is None:
            pending += 1
        elif answer.status == 201 and answer.body.get("status") == FILLED:
            filled += 1
        else:
            rejected += 1
    report = ReconciliationReport(len(order_ids), filled, rejected, pending)
    if filled or rejected:
        log.info("reconciled orders: %s", report)
    return report


class Reconciler:
    """A daemon thread that runs `reconcile_pending` every few seconds until stopped."""

    def __init__(
        self,
        service: PortfolioService,
        every_seconds: float = RECONCILE_EVERY_SECONDS,
        older_than_seconds: float = RECONCILE_OLDER_THAN_SECONDS,
    ) -> None:
        self._service = service
        self._every = every_seconds
        self._older_than = older_than_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="portfolio-reconciler", daemon=True)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.wait(self._every):
            try:
                reconcile_pending(self._service, self._older_than)
            except Problem as problem:
                # The database or payments is away: expected, and the next pass retries. One line.
                log.warning("reconciliation pass skipped: %s", problem.code)
            except Exception:
                # Anything else is a bug worth its traceback; still, the loop must not end.
                log.exception("reconciliation pass failed")

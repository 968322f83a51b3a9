"""A slow payments service holds orders, never readiness or quotes: they do not share its threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient

from core_services.faults import FaultBoard, PaymentsLatency
from tests.core_services.portfolio.conftest import Market

ORDERS = 60  # more than the shared pool's 40 threads


def timed_get(portfolio: TestClient, path: str, headers: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = portfolio.get(path, headers=headers)
    return response, time.perf_counter() - started


def test_readiness_and_quotes_answer_at_once_while_orders_wait_on_slow_payments(
    make_market: Callable[..., Market],
) -> None:
    market = make_market(NOVA_ENABLE_FAULTS="1")
    trader = market.customer()
    assert market.order(trader, "buy", 1, key="warm-up").status_code == 201  # the house account is open
    FaultBoard(market.settings.data_dir, "portfolio").put("payments_latency", PaymentsLatency(ms=3000, ttl_seconds=60))
    with TestClient(market.app) as portfolio:  # one event loop, one shared pool, as in a worker
        orders = [
            threading.Thread(target=market.order, args=(trader, "buy", 1), kwargs={"client": portfolio})
            for _ in range(ORDERS)
        ]
        for order in orders:
            order.start()
        time.sleep(0.3)  # every thread of the shared pool is waiting on payments now
        try:
            ready, ready_seconds = timed_get(portfolio, "/readyz", {})
            quote, quote_seconds = timed_get(portfolio, "/v1/quotes/NOVA", trader.headers)
        finally:
            for order in orders:
                order.join(30)
    assert (ready.status_code, quote.status_code) == (200, 200)
    # Queued behind the orders they would wait at least 2.7 s; a busy CI machine adds up to a second.
    assert ready_seconds < 1.5, ready_seconds
    assert quote_seconds < 1.5, quote_seconds

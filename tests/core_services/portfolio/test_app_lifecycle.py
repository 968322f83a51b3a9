"""How a portfolio worker starts and stops: without its database or payments, and with its reconciler."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient

from core_services.portfolio.api import create_app
from core_services.portfolio.service import PortfolioService
from core_services.settings import ServiceSettings
from tests.core_services.portfolio.conftest import ADMIN, Market, payments_via

UNREACHABLE_DB = "postgresql://postgres@127.0.0.1:1/nowhere"


def thread_names() -> list[str]:
    return [thread.name for thread in threading.enumerate()]


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def test_a_worker_boots_while_its_database_is_down_and_says_so(make_settings: Callable[..., ServiceSettings]) -> None:
    app = create_app(make_settings(NOVA_PORTFOLIO_DB=UNREACHABLE_DB), payments_via(unreachable), migrate=False)
    client = TestClient(app)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503
    quote = client.get("/v1/quotes/NOVA", headers=ADMIN)
    assert (quote.status_code, quote.json()["code"]) == (503, "database_unavailable")


def test_quotes_are_served_while_payments_is_down(make_settings: Callable[..., ServiceSettings]) -> None:
    client = TestClient(create_app(make_settings(), payments_via(unreachable)))
    assert client.get("/v1/quotes/NOVA", headers=ADMIN).status_code == 200


def test_every_worker_quotes_the_same_price_at_the_same_moment(market: Market) -> None:
    market.portfolio.get("/v1/quotes/KSTR", headers=ADMIN)
    other: PortfolioService = market.worker(market.payments).state.service
    moment = time.time() + 3600
    assert other.market.quote("KSTR", moment) == market.service.market.quote("KSTR", moment)


def test_the_lifespan_runs_and_stops_the_reconciler(market: Market) -> None:
    app = create_app(market.settings, market.payments, reconcile_every_seconds=0.05)
    with TestClient(app) as client:
        assert client.get("/v1/quotes/NOVA", headers=ADMIN).status_code == 200
        assert "portfolio-reconciler" in thread_names()
    assert "portfolio-reconciler" not in thread_names()

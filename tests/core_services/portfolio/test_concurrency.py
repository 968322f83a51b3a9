"""Orders racing each other: shares are never oversold and a duplicate never pays twice."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from core_services.portfolio.reconciler import reconcile_pending
from tests.core_services.portfolio.conftest import (
    STARTING_CASH_MINOR,
    Market,
    lossy_worker_app,
    refuse_payment_connections,
)


@pytest.fixture
def market(make_market: Callable[..., Market], database_url: str) -> Market:
    return make_market(NOVA_PORTFOLIO_DB=database_url)


def test_concurrent_sells_never_sell_more_than_is_held(market: Market) -> None:
    trader = market.customer()
    assert market.order(trader, "buy", 5).status_code == 201
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(lambda _: market.order(trader, "sell", 1).status_code, range(8)))
    assert statuses == [201] * 5 + [422] * 3
    assert market.portfolio_of(trader)["positions"] == []


def test_concurrent_duplicates_of_one_order_pay_once(market: Market) -> None:
    trader = market.customer()
    with ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: market.order(trader, "buy", 3, key="dup"), range(4)))
    filled = [response for response in responses if response.status_code == 201]
    assert filled and all(response.status_code in (201, 409) for response in responses)
    assert len({response.json()["id"] for response in filled}) == 1
    assert market.balance(trader.account_id) == STARTING_CASH_MINOR - filled[0].json()["amount_minor"]


def test_a_retry_while_another_worker_settles_the_order_is_request_in_progress(market: Market) -> None:
    trader = market.customer()
    lossy = TestClient(lossy_worker_app(market, refuse_payment_connections))
    pending = market.order(trader, "buy", 3, key="busy", client=lossy).json()
    assert market.service.claim(pending["order_id"]) is not None
    retry = market.order(trader, "buy", 3, key="busy")
    assert (retry.status_code, retry.json()["code"]) == (409, "request_in_progress")
    assert reconcile_pending(market.service, older_than_seconds=0).examined == 0

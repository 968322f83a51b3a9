"""Orders whose payment outcome is unknown stay pending and are reconciled: never lost, never paid twice."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from core_services.portfolio.reconciler import Reconciler, reconcile_pending
from tests.core_services.portfolio.conftest import (
    ADMIN,
    STARTING_CASH_MINOR,
    Customer,
    Market,
    PaymentsHandler,
    lose_payment_answers,
    lossy_worker_app,
    payments_via,
    refuse_payment_connections,
)


@pytest.fixture
def market(make_market: Callable[..., Market], database_url: str) -> Market:
    """The portfolio on SQLite and on PostgreSQL (payments stays on SQLite)."""
    return make_market(NOVA_PORTFOLIO_DB=database_url)


def lossy_worker(market: Market, failure: Callable[[TestClient], PaymentsHandler]) -> TestClient:
    return TestClient(lossy_worker_app(market, failure))


def order_payments(market: Market, trader: Customer) -> list[int]:
    """The amounts of the trader's ledger entries other than the initial deposit."""
    return [
        entry["amount_minor"]
        for entry in market.entries(trader.account_id)
        if entry["amount_minor"] != STARTING_CASH_MINOR
    ]


def test_a_lost_payment_answer_leaves_the_order_pending_with_503(market: Market) -> None:
    trader = market.customer()
    response = market.order(trader, "buy", 5, client=lossy_worker(market, lose_payment_answers))
    assert response.status_code == 503
    assert response.json()["code"] == "payments_unavailable"
    assert "order_id" in response.json(), response.json()
    assert response.headers["Retry-After"]
    assert market.portfolio_of(trader)["positions"] == []


def test_reconciling_a_lost_answer_fills_the_order_and_charges_once(market: Market) -> None:
    trader = market.customer()
    pending = market.order(trader, "buy", 5, key="lost", client=lossy_worker(market, lose_payment_answers)).json()
    report = reconcile_pending(market.service, older_than_seconds=0)
    assert (report.filled, report.still_pending) == (1, 0)
    final = market.order(trader, "buy", 5, key="lost")
    assert final.status_code == 201 and final.headers["Idempotent-Replayed"] == "true"
    assert final.json()["id"] == pending["order_id"]
    assert order_payments(market, trader) == [-final.json()["amount_minor"]]
    assert market.portfolio_of(trader)["positions"][0]["quantity"] == 5


def test_reconciling_an_undelivered_payment_fills_the_order_and_charges_once(market: Market) -> None:
    trader = market.customer()
    response = market.order(trader, "buy", 5, key="never-sent", client=lossy_worker(market, refuse_payment_connections))
    assert response.status_code == 503
    assert market.balance(trader.account_id) == STARTING_CASH_MINOR
    assert reconcile_pending(market.service, older_than_seconds=0).filled == 1
    amount = market.order(trader, "buy", 5, key="never-sent").json()["amount_minor"]
    assert order_payments(market, trader) == [-amount]
    assert market.balance(trader.account_id) == STARTING_CASH_MINOR - amount


def test_a_client_retry_after_payments_recovers_settles_the_pending_order(market: Market) -> None:
    trader = market.customer()
    market.order(trader, "buy", 5, key="retry", client=lossy_worker(market, lose_payment_answers))
    retried = market.order(trader, "buy", 5, key="retry")
    assert retried.status_code == 201 and retried.json()["status"] == "filled"
    assert order_payments(market, trader) == [-retried.json()["amount_minor"]]
    assert reconcile_pending(market.service, older_than_seconds=0).examined == 0


def test_a_pending_sell_holds_its_shares_until_reconciled(market: Market) -> None:
    trader = market.customer()
    bought = market.order(trader, "buy", 10).json()
    assert market.order(trader, "sell", 4, client=lossy_worker(market, refuse_payment_connections)).status_code == 503
    assert market.portfolio_of(trader)["positions"][0]["quantity"] == 6
    assert market.order(trader, "sell", 7).json()["code"] == "insufficient_position"
    assert reconcile_pending(market.service, older_than_seconds=0).filled == 1
    [position] = market.portfolio_of(trader)["positions"]
    assert (position["quantity"], position["cost_basis_minor"]) == (6, bought["amount_minor"] * 6 // 10)


def test_a_pending_order_is_rejected_if_the_money_is_gone_by_reconciliation(market: Market) -> None:
    trader, payee = market.customer(), market.customer(cash_minor=0)
    market.order(trader, "buy", 5, key="late", client=lossy_worker(market, refuse_payment_connections))
    spend = {
        "from_account": trader.account_id,
        "to_account": payee.account_id,
        "amount_minor": STARTING_CASH_MINOR,
        "currency": "USD",
    }
    assert (
        market.payments.post(
            "/v1/payments", json=spend, headers={**trader.headers, "Idempotency-Key": "spend"}
        ).status_code
        == 201
    )
    assert reconcile_pending(market.service, older_than_seconds=0).rejected == 1
    final = market.order(trader, "buy", 5, key="late")
    assert (final.status_code, final.json()["code"]) == (422, "insufficient_funds")
    assert market.portfolio_of(trader)["positions"] == []


def test_the_reconciler_leaves_alone_an_order_another_driver_holds(market: Market) -> None:
    trader = market.customer()
    pending = market.order(trader, "buy", 5, client=lossy_worker(market, refuse_payment_connections)).json()
    assert market.service.claim(pending["order_id"]) is not None
    report = reconcile_pending(market.service, older_than_seconds=0)
    assert (report.examined, report.filled) == (0, 0)
    assert market.balance(trader.account_id) == STARTING_CASH_MINOR


def test_the_reconciler_skips_orders_younger_than_asked(market: Market) -> None:
    trader = market.customer()
    market.order(trader, "buy", 5, client=lossy_worker(market, refuse_payment_connections))
    assert reconcile_pending(market.service, older_than_seconds=60).examined == 0


def test_a_reconciliation_pass_while_payments_is_down_changes_nothing(market: Market) -> None:
    trader = market.customer()
    lossy = lossy_worker(market, refuse_payment_connections)
    market.order(trader, "buy", 5, client=lossy)
    worker = lossy.app.state.service  # type: ignore[attr-defined]
    report = reconcile_pending(worker, older_than_seconds=0)
    assert (report.examined, report.still_pending) == (1, 1)
    assert reconcile_pending(market.service, older_than_seconds=0).filled == 1


def test_the_background_reconciler_fills_pending_orders(market: Market) -> None:
    trader = market.customer()
    pending = market.order(trader, "buy", 5, key="bg", client=lossy_worker(market, lose_payment_answers)).json()
    reconciler = Reconciler(market.service, every_seconds=0.05, older_than_seconds=0)
    reconciler.start()
    try:
        deadline = time.monotonic() + 10
        while market.portfolio_of(trader)["positions"] == [] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        reconciler.stop()
    assert not reconciler.running
    assert market.order(trader, "buy", 5, key="bg").json()["id"] == pending["order_id"]
    assert market.payments.get("/v1/ledger/verify", headers=ADMIN).json()["balanced"] is True


def test_orders_are_refused_with_503_and_nothing_kept_while_payments_is_unreachable(market: Market) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    trader = market.customer()
    response = market.order(trader, "buy", 5, client=TestClient(market.worker(payments_via(unreachable))))
    assert (response.status_code, response.json()["code"]) == (503, "payments_unavailable")
    assert reconcile_pending(market.service, older_than_seconds=0).examined == 0

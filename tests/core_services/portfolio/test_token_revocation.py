"""Revoking a customer's tokens at payments stops them on both services within 1 s; a new token works."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from core_services.auth import TokenAuthority
from core_services.payments.api import create_app as create_payments_app
from core_services.settings import ServiceSettings
from tests.conftest import ADMIN_TOKEN
from tests.core_services.portfolio.conftest import ADMIN, Customer, Market

EFFECTIVE_WITHIN_SECONDS = 1.0
ALL_SERVED = {"payments account": 200, "portfolio quote": 200, "portfolio order": 201}


@pytest.fixture
def both_databases_market(make_market: Callable[..., Market], database_url: str) -> Market:
    """Payments (where tokens and revocations are stored) on SQLite or PostgreSQL."""
    return make_market(NOVA_PAYMENTS_DB=database_url)


def calls(market: Market, customer: Customer, headers: dict[str, str]) -> dict[str, int]:
    """What the customer does on each service, and the status each call gets."""
    order = {"account_id": customer.account_id, "symbol": "NOVA", "side": "buy", "quantity": 1}
    return {
        "payments account": market.payments.get(f"/v1/accounts/{customer.account_id}", headers=headers).status_code,
        "portfolio quote": market.portfolio.get("/v1/quotes/NOVA", headers=headers).status_code,
        "portfolio order": market.portfolio.post(
            "/v1/orders", json=order, headers={**headers, "Idempotency-Key": str(time.monotonic_ns())}
        ).status_code,
    }


def test_a_revoked_token_stops_working_on_both_services_within_a_second_and_a_new_one_works(
    both_databases_market: Market,
) -> None:
    market = both_databases_market
    trader = market.customer()
    assert calls(market, trader, trader.headers) == ALL_SERVED

    revoked = market.payments.delete(f"/v1/customers/{trader.id}/tokens", headers=ADMIN)
    assert revoked.status_code == 204
    time.sleep(EFFECTIVE_WITHIN_SECONDS)
    assert set(calls(market, trader, trader.headers).values()) == {401}

    issued = market.payments.post(f"/v1/customers/{trader.id}/tokens", headers=ADMIN)
    assert issued.status_code == 201
    fresh = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert calls(market, trader, fresh) == ALL_SERVED
    assert set(calls(market, trader, trader.headers).values()) == {401}


def test_a_token_is_refused_at_once_by_the_payments_worker_that_revoked_it(market: Market) -> None:
    trader = market.customer()
    account = f"/v1/accounts/{trader.account_id}"
    assert market.payments.get(account, headers=trader.headers).status_code == 200  # now cached as known
    assert market.payments.delete(f"/v1/customers/{trader.id}/tokens", headers=ADMIN).status_code == 204
    assert market.payments.get(account, headers=trader.headers).status_code == 401


@pytest.mark.parametrize("method", ["DELETE", "POST"])
def test_token_calls_on_a_customer_that_does_not_exist_are_404(market: Market, method: str) -> None:
    for customer_id in ("cus_00000000000000000000", "not-an-id", "cus_%00"):
        response = market.payments.request(method, f"/v1/customers/{customer_id}/tokens", headers=ADMIN)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")


@pytest.mark.parametrize("method", ["DELETE", "POST"])
def test_only_the_admin_revokes_or_issues_tokens(market: Market, method: str) -> None:
    trader = market.customer(cash_minor=0)
    response = market.payments.request(method, f"/v1/customers/{trader.id}/tokens", headers=trader.headers)
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")


def test_the_portfolio_calls_payments_as_itself_with_a_rate_limit_bucket_of_its_own(
    make_settings: Callable[..., ServiceSettings],
) -> None:
    app = create_payments_app(make_settings(NOVA_RATE_LIMIT="1", NOVA_RATE_BURST="3"))
    service = {"Authorization": f"Bearer {TokenAuthority(ADMIN_TOKEN).service_token('portfolio')}"}
    with TestClient(app) as client:
        statuses = [client.get("/v1/ledger/verify", headers=service).status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses
        assert client.get("/v1/ledger/verify", headers=ADMIN).status_code == 200  # the operator is not starved
    app.state.service.db.dispose()


def test_another_payments_worker_that_trusted_the_token_refuses_it_within_a_second(
    both_databases_market: Market,
) -> None:
    market = both_databases_market
    trader = market.customer()
    account = f"/v1/accounts/{trader.account_id}"
    other_worker = create_payments_app(market.settings)
    try:
        with TestClient(other_worker) as other:
            assert other.get(account, headers=trader.headers).status_code == 200  # trusted there from now on
            assert market.payments.delete(f"/v1/customers/{trader.id}/tokens", headers=ADMIN).status_code == 204
            time.sleep(EFFECTIVE_WITHIN_SECONDS)
            assert other.get(account, headers=trader.headers).status_code == 401
    finally:
        other_worker.state.service.db.dispose()

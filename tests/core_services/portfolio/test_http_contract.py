"""Authentication, bad input and the documented error shapes of the portfolio API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tests.core_services.portfolio.conftest import ADMIN, Market


def test_quotes_answer_any_valid_token(market: Market) -> None:
    trader = market.customer(cash_minor=0)
    for headers in (ADMIN, trader.headers):
        response = market.portfolio.get("/v1/quotes/NOVA", headers=headers)
        assert response.status_code == 200
        assert set(response.json()) == {"symbol", "price_minor", "currency", "as_of"}


def test_quotes_of_every_symbol_are_listed(market: Market) -> None:
    symbols = [quote["symbol"] for quote in market.portfolio.get("/v1/quotes", headers=ADMIN).json()["data"]]
    assert symbols == sorted(symbols) and "NOVA" in symbols and len(symbols) == 10


def test_an_unknown_symbol_quote_is_not_found(market: Market) -> None:
    response = market.portfolio.get("/v1/quotes/NOPE", headers=ADMIN)
    assert (response.status_code, response.json()["code"]) == (404, "unknown_symbol")
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer nvt_cus_0123_nonce_forgedmac"}]
)
def test_a_missing_or_bad_token_is_unauthorized(market: Market, headers: dict[str, str]) -> None:
    for response in (
        market.portfolio.get("/v1/quotes/NOVA", headers=headers),
        market.portfolio.get("/v1/portfolios/acc_x", headers=headers),
        market.portfolio.post("/v1/orders", json={}, headers={**headers, "Idempotency-Key": "k"}),
    ):
        assert (response.status_code, response.json()["code"]) == (401, "unauthorized")


def test_a_token_payments_does_not_know_is_unauthorized(market: Market) -> None:
    trader = market.customer()
    forged = replace(trader, token=market.service.tokens.issue(trader.id))
    response = market.order(forged, "buy", 1)
    assert (response.status_code, response.json()["code"]) == (401, "unauthorized")


def test_an_order_without_idempotency_key_is_refused(market: Market) -> None:
    trader = market.customer()
    body = {"account_id": trader.account_id, "symbol": "NOVA", "side": "buy", "quantity": 1}
    response = market.portfolio.post("/v1/orders", json=body, headers=trader.headers)
    assert (response.status_code, response.json()["code"]) == (400, "idempotency_key_missing")


@pytest.mark.parametrize(
    "change",
    [
        {"quantity": 0},
        {"quantity": 1_000_001},
        {"quantity": "3"},
        {"quantity": 1.5},
        {"side": "short"},
        {"symbol": ""},
        {"account_id": ""},
        {"extra": 1},
        {"quantity": None},
    ],
)
def test_a_bad_order_body_is_a_validation_problem(market: Market, change: dict[str, Any]) -> None:
    trader = market.customer(cash_minor=0)
    body = {"account_id": trader.account_id, "symbol": "NOVA", "side": "buy", "quantity": 1, **change}
    response = market.portfolio.post("/v1/orders", json=body, headers={**trader.headers, "Idempotency-Key": "k"})
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("content", [b"{not json", b"[]", b""])
def test_a_body_that_is_not_an_order_object_is_a_client_error(market: Market, content: bytes) -> None:
    trader = market.customer(cash_minor=0)
    response = market.portfolio.post(
        "/v1/orders",
        content=content,
        headers={**trader.headers, "Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert response.json()["code"] in {"malformed_json", "validation_error"}


def test_an_oversized_body_is_refused(market: Market) -> None:
    trader = market.customer(cash_minor=0)
    response = market.portfolio.post(
        "/v1/orders",
        content=b"{" + b" " * 70_000 + b"}",
        headers={**trader.headers, "Idempotency-Key": "k", "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["code"]) == (413, "payload_too_large")


def test_the_admin_cannot_read_a_portfolio(market: Market) -> None:
    trader = market.customer(cash_minor=0)
    response = market.portfolio.get(f"/v1/portfolios/{trader.account_id}", headers=ADMIN)
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")


def test_a_new_account_has_an_empty_portfolio(market: Market) -> None:
    trader = market.customer(cash_minor=500)
    assert market.portfolio_of(trader) == {
        "account_id": trader.account_id,
        "currency": "USD",
        "cash_minor": 500,
        "positions": [],
        "market_value_minor": 0,
        "unrealised_pnl_minor": 0,
        "total_value_minor": 500,
    }


def test_health_and_readiness_answer(market: Market) -> None:
    assert market.portfolio.get("/healthz").json() == {"status": "ok"}
    assert market.portfolio.get("/readyz").json() == {"status": "ready"}


def test_rate_limit_answers_429_with_retry_after(make_market: Callable[..., Market]) -> None:
    market = make_market(NOVA_RATE_LIMIT="1", NOVA_RATE_BURST="2")
    statuses = [market.portfolio.get("/v1/quotes/NOVA", headers=ADMIN) for _ in range(3)]
    assert [response.status_code for response in statuses] == [200, 200, 429]
    assert statuses[-1].headers["Retry-After"] == "1"


def test_openapi_describes_every_error_of_every_route(market: Market) -> None:
    schema = market.portfolio.get("/openapi.json").json()
    orders = schema["paths"]["/v1/orders"]["post"]["responses"]
    assert {"201", "400", "401", "403", "404", "409", "413", "422", "429", "500", "503"} <= set(orders)
    codes = " ".join(response["description"] for response in orders.values())
    for code in ("insufficient_funds", "insufficient_position", "payments_unavailable", "idempotency_key_reused"):
        assert f"`{code}`" in codes
    assert "Problem" in schema["components"]["schemas"]
    assert "404" in schema["paths"]["/v1/quotes/{symbol}"]["get"]["responses"]
    assert "404" in schema["paths"]["/v1/portfolios/{account_id}"]["get"]["responses"]


@pytest.mark.parametrize(
    ("service", "path"),
    [("payments", "/v1/accounts/acc_00000000000000000000"), ("portfolio", "/v1/quotes/NOVA")],
)
def test_a_non_ascii_token_over_http_is_401_on_both_services(market: Market, service: str, path: str) -> None:
    client = market.payments if service == "payments" else market.portfolio
    response = client.get(path, headers={"Authorization": b"Bearer nvt_a_b_c_\xe9"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "unauthorized"

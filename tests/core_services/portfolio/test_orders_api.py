"""Orders through the HTTP API, settled for real by an in-process payments service."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.core_services.portfolio.conftest import ADMIN, STARTING_CASH_MINOR, Market


def test_a_buy_fills_at_the_quoted_price_and_pays_the_house(market: Market) -> None:
    trader = market.customer()
    response = market.order(trader, "buy", 10)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "filled"
    assert order["id"].startswith("ord_") and order["payment_id"].startswith("pay_")
    assert order["amount_minor"] == order["price_minor"] * 10
    assert market.balance(trader.account_id) == STARTING_CASH_MINOR - order["amount_minor"]
    latest = market.entries(market.service.house().account_id)[0]
    assert (latest["payment_id"], latest["amount_minor"]) == (order["payment_id"], order["amount_minor"])


def test_a_buy_shows_up_as_a_position_at_cost(market: Market) -> None:
    trader = market.customer()
    order = market.order(trader, "buy", 10).json()
    portfolio = market.portfolio_of(trader)
    assert portfolio["cash_minor"] == STARTING_CASH_MINOR - order["amount_minor"]
    [position] = portfolio["positions"]
    assert (position["symbol"], position["quantity"], position["cost_basis_minor"]) == (
        "NOVA",
        10,
        order["amount_minor"],
    )
    assert position["market_value_minor"] == 10 * position["price_minor"]
    assert portfolio["total_value_minor"] == portfolio["cash_minor"] + portfolio["market_value_minor"]


def test_a_sell_is_paid_by_the_house_and_reduces_the_position(market: Market) -> None:
    trader = market.customer()
    bought = market.order(trader, "buy", 10).json()
    response = market.order(trader, "sell", 4)
    assert response.status_code == 201, response.text
    sold = response.json()
    assert market.balance(trader.account_id) == STARTING_CASH_MINOR - bought["amount_minor"] + sold["amount_minor"]
    [position] = market.portfolio_of(trader)["positions"]
    assert (position["quantity"], position["cost_basis_minor"]) == (6, bought["amount_minor"] * 6 // 10)


def test_insufficient_funds_rejects_the_order_and_holds_nothing(market: Market) -> None:
    trader = market.customer(cash_minor=100)
    response = market.order(trader, "buy", 1000)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "insufficient_funds"
    assert market.balance(trader.account_id) == 100
    assert market.portfolio_of(trader)["positions"] == []


def test_selling_more_than_held_is_insufficient_position(market: Market) -> None:
    trader = market.customer()
    market.order(trader, "buy", 2)
    response = market.order(trader, "sell", 3)
    assert response.status_code == 422
    assert response.json()["code"] == "insufficient_position"
    assert market.portfolio_of(trader)["positions"][0]["quantity"] == 2


def test_selling_a_symbol_never_held_is_insufficient_position(market: Market) -> None:
    response = market.order(market.customer(), "sell", 1, symbol="ACME")
    assert (response.status_code, response.json()["code"]) == (422, "insufficient_position")


def test_a_retry_replays_the_first_answer_and_pays_once(market: Market) -> None:
    trader = market.customer()
    first = market.order(trader, "buy", 3, key="retry-me")
    again = market.order(trader, "buy", 3, key="retry-me")
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert market.balance(trader.account_id) == STARTING_CASH_MINOR - first.json()["amount_minor"]


def test_a_retry_of_a_refused_order_is_refused_the_same_way(market: Market) -> None:
    trader = market.customer()
    first = market.order(trader, "sell", 5, key="oversell")
    market.order(trader, "buy", 10)
    again = market.order(trader, "sell", 5, key="oversell")
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_key_reused_for_another_order_is_refused(market: Market) -> None:
    trader = market.customer()
    market.order(trader, "buy", 3, key="one-key")
    response = market.order(trader, "buy", 4, key="one-key")
    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")


def test_the_same_key_from_two_customers_is_two_orders(market: Market) -> None:
    alice, bob = market.customer(), market.customer()
    first, second = market.order(alice, "buy", 1, key="shared"), market.order(bob, "buy", 1, key="shared")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]


def test_ordering_on_another_customers_account_is_not_found(market: Market) -> None:
    alice, mallory = market.customer(), market.customer()
    intruder = replace(mallory, account_id=alice.account_id)
    response = market.order(intruder, "buy", 1)
    assert (response.status_code, response.json()["code"]) == (404, "account_not_found")
    assert market.balance(alice.account_id) == STARTING_CASH_MINOR


def test_an_account_confirmed_for_its_owner_stays_closed_to_others(market: Market) -> None:
    alice, mallory = market.customer(), market.customer()
    market.order(alice, "buy", 1)
    intruder = replace(mallory, account_id=alice.account_id)
    assert market.order(intruder, "buy", 1).status_code == 404
    assert market.portfolio.get(f"/v1/portfolios/{alice.account_id}", headers=mallory.headers).status_code == 404


def test_an_unknown_account_is_not_found(market: Market) -> None:
    trader = market.customer()
    response = market.order(replace(trader, account_id="acc_missing"), "buy", 1)
    assert (response.status_code, response.json()["code"]) == (404, "account_not_found")


def test_a_malformed_account_id_is_not_found(market: Market) -> None:
    trader = market.customer()
    response = market.order(replace(trader, account_id="../etc"), "buy", 1)
    assert (response.status_code, response.json()["code"]) == (404, "account_not_found")
    assert market.portfolio.get("/v1/portfolios/ACC%20x", headers=trader.headers).status_code == 404


def test_orders_need_a_usd_account(market: Market) -> None:
    trader = market.customer(cash_minor=0, currency="EUR")
    response = market.order(trader, "buy", 1)
    assert (response.status_code, response.json()["code"]) == (422, "currency_mismatch")


def test_an_unknown_symbol_cannot_be_ordered(market: Market) -> None:
    response = market.order(market.customer(), "buy", 1, symbol="NOPE")
    assert (response.status_code, response.json()["code"]) == (404, "unknown_symbol")


def test_the_admin_cannot_place_orders(market: Market) -> None:
    trader = market.customer()
    body = {"account_id": trader.account_id, "symbol": "NOVA", "side": "buy", "quantity": 1}
    response = market.portfolio.post("/v1/orders", json=body, headers={**ADMIN, "Idempotency-Key": "k"})
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")


def test_the_house_account_is_opened_once_and_funded(market: Market) -> None:
    market.order(market.customer(), "buy", 1)
    market.order(market.customer(), "buy", 1)
    house = market.service.house()
    deposits = [entry for entry in market.entries(house.account_id) if entry["amount_minor"] == 10**13]
    assert len(deposits) == 1
    assert market.payments.get("/v1/ledger/verify", headers=ADMIN).json()["balanced"] is True


def test_a_portfolio_view_reads_the_portfolio_database_in_one_transaction(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    trader = market.customer()
    assert market.order(trader, "buy", 2).status_code == 201
    database = market.service.db
    reads = []
    real_read = database.read

    def counted_read(**kwargs: Any) -> Any:
        reads.append(kwargs)
        return real_read(**kwargs)

    monkeypatch.setattr(database, "read", counted_read)
    view = market.portfolio_of(trader)

    assert len(reads) == 1
    assert [position["quantity"] for position in view["positions"]] == [2]

"""The trading load's routes answered without FastAPI's layers, exactly as the routes answer them.

A request carrying a header twice is declined by the fast lane and served by the route
itself, so the two answers can be put side by side.
"""

from __future__ import annotations

from tests.core_services.portfolio.conftest import Market


def test_a_portfolio_read_answers_through_the_lane_as_through_the_route(market: Market) -> None:
    trader = market.customer(cash_minor=500)
    path = f"/v1/portfolios/{trader.account_id}"
    auth = ("Authorization", f"Bearer {trader.token}")
    by_lane = market.portfolio.get(path, headers=[auth])
    by_route = market.portfolio.get(path, headers=[auth, auth])
    assert (by_lane.status_code, by_lane.headers["content-type"], by_lane.json()) == (
        by_route.status_code,
        by_route.headers["content-type"],
        by_route.json(),
    )


def test_an_order_answers_through_the_lane_as_through_the_route(market: Market) -> None:
    trader = market.customer()
    body = {"account_id": trader.account_id, "symbol": "NOVA", "side": "buy", "quantity": 1}
    auth = ("Authorization", f"Bearer {trader.token}")
    by_lane = market.portfolio.post("/v1/orders", json=body, headers=[auth, ("Idempotency-Key", "lane")])
    by_route = market.portfolio.post("/v1/orders", json=body, headers=[auth, auth, ("Idempotency-Key", "route")])
    assert by_lane.status_code == by_route.status_code == 201
    assert by_lane.json().keys() == by_route.json().keys()
    assert {by_lane.json()["status"], by_route.json()["status"]} == {"filled"}


def test_a_refusal_on_the_lane_is_the_routes_problem(market: Market) -> None:
    trader = market.customer(cash_minor=0)
    body = {"account_id": trader.account_id, "symbol": "NOVA", "side": "buy", "quantity": 1}
    headers = {**trader.headers, "Idempotency-Key": "broke"}
    refused = market.portfolio.post("/v1/orders", json=body, headers=headers)
    assert (refused.status_code, refused.headers["content-type"], refused.json()["code"]) == (
        422,
        "application/problem+json",
        "insufficient_funds",
    )


def test_an_account_id_longer_than_the_route_allows_is_a_validation_problem(market: Market) -> None:
    trader = market.customer(cash_minor=0)
    response = market.portfolio.get("/v1/portfolios/" + "a" * 65, headers=trader.headers)
    assert (response.status_code, response.json()["code"]) == (422, "validation_error")

"""Order, position and valuation rules, without web or database."""

from __future__ import annotations

import pytest

from core_services.fingerprint import request_fingerprint
from core_services.portfolio.domain import (
    PENDING,
    Order,
    OrderRecord,
    PaymentRefused,
    PaymentSettled,
    PortfolioRuleViolation,
    Position,
    Side,
    StoredResponse,
    order_amount,
    payment_for,
    payment_outcome,
    replay,
    value_portfolio,
)


def order(side: Side = "buy") -> Order:
    return Order(
        id="ord_1",
        customer_id="cus_1",
        account_id="acc_c",
        symbol="NOVA",
        side=side,
        quantity=3,
        price_minor=1000,
        amount_minor=3000,
        status=PENDING,
        created_at="t",
    )


def test_buys_add_up_to_an_average_cost() -> None:
    position = Position("NOVA", 0, 0).bought(10, 1000).bought(10, 3000)
    assert position == Position("NOVA", 20, 4000)


def test_a_sale_takes_its_proportional_share_of_the_cost() -> None:
    left, cost = Position("NOVA", 20, 4000).sold(5)
    assert (left, cost) == (Position("NOVA", 15, 3000), 1000)


def test_selling_every_share_takes_all_the_cost_left_after_rounding() -> None:
    position = Position("NOVA", 3, 1000)
    first, first_cost = position.sold(1)
    rest, rest_cost = first.sold(2)
    assert (first_cost, rest_cost, rest) == (333, 667, Position("NOVA", 0, 0))


def test_selling_more_than_held_is_refused() -> None:
    with pytest.raises(PortfolioRuleViolation) as refused:
        Position("NOVA", 2, 100).sold(3)
    assert refused.value.code == "insufficient_position"


def test_a_refused_sale_restores_the_position_exactly() -> None:
    position = Position("NOVA", 7, 1234)
    left, cost = position.sold(4)
    assert left.restored(4, cost) == position


def test_valuation_reports_market_value_and_unrealised_pnl() -> None:
    valuation = value_portfolio(
        "acc_1", "USD", 5000, [Position("NOVA", 10, 10_000), Position("ACME", 4, 2_000)], {"NOVA": 1_200, "ACME": 400}
    )
    body = valuation.as_json()
    assert [position["symbol"] for position in body["positions"]] == ["ACME", "NOVA"]
    assert body["positions"][1] == {
        "symbol": "NOVA",
        "quantity": 10,
        "cost_basis_minor": 10_000,
        "price_minor": 1_200,
        "market_value_minor": 12_000,
        "unrealised_pnl_minor": 2_000,
    }
    assert (body["market_value_minor"], body["unrealised_pnl_minor"], body["total_value_minor"]) == (
        13_600,
        1_600,
        18_600,
    )


def test_valuation_leaves_out_positions_sold_to_zero() -> None:
    valuation = value_portfolio("acc_1", "USD", 0, [Position("NOVA", 0, 0)], {})
    assert valuation.as_json()["positions"] == []


def test_order_amount_is_price_times_quantity() -> None:
    assert order_amount(12_345, 7) == 86_415


def test_order_amount_over_the_payment_limit_is_refused() -> None:
    with pytest.raises(PortfolioRuleViolation):
        order_amount(10**10, 1_000_000)


def test_a_buy_pays_the_house_and_a_sell_is_paid_by_it() -> None:
    buy, sell = payment_for(order("buy"), "acc_house"), payment_for(order("sell"), "acc_house")
    assert (buy.from_account, buy.to_account) == ("acc_c", "acc_house")
    assert (sell.from_account, sell.to_account) == ("acc_house", "acc_c")


def test_the_payment_key_and_body_are_the_same_every_time_an_order_is_driven() -> None:
    assert payment_for(order(), "acc_house") == payment_for(order(), "acc_house")
    assert payment_for(order(), "acc_house").idempotency_key == "order-ord_1"


def test_a_created_payment_settles_the_order() -> None:
    assert payment_outcome(201, {"id": "pay_1", "status": "settled"}) == PaymentSettled("pay_1")


def test_insufficient_funds_at_payments_refuses_the_order_with_that_code() -> None:
    outcome = payment_outcome(422, {"code": "insufficient_funds", "detail": "cannot pay"})
    assert outcome == PaymentRefused("insufficient_funds", "cannot pay")


def test_other_refusals_from_payments_become_payment_rejected() -> None:
    assert isinstance(outcome := payment_outcome(404, {"code": "account_not_found"}), PaymentRefused)
    assert outcome.code == "payment_rejected"


@pytest.mark.parametrize("status", [500, 503, 409, 429, 401])
def test_answers_that_may_still_change_leave_the_outcome_unknown(status: int) -> None:
    assert payment_outcome(status, {"code": "whatever"}) is None


def test_fingerprint_ignores_key_order() -> None:
    assert request_fingerprint("order", {"a": 1, "b": 2}) == request_fingerprint("order", {"b": 2, "a": 1})


def test_replay_with_another_body_is_refused() -> None:
    record = OrderRecord(order(), request_fingerprint("order", {"quantity": 3}), StoredResponse(201, {}))
    with pytest.raises(PortfolioRuleViolation) as refused:
        replay(record, request_fingerprint("order", {"quantity": 4}))
    assert refused.value.code == "idempotency_key_reused"

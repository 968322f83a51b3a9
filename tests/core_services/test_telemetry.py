"""Business telemetry: payments and orders are counted by outcome and their spans say what happened."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from core_services.settings import ServiceSettings
from tests.conftest import ADMIN_TOKEN
from tests.instrumentation.conftest import value
from tests.instrumentation.traced import TracedServices, server_spans, traced_services

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def services(make_settings: Callable[..., ServiceSettings]) -> Iterator[TracedServices]:
    with traced_services(make_settings()) as running:
        yield running


def scrape(services: TracedServices, service: str = "payments") -> str:
    client = services.payments if service == "payments" else services.portfolio
    return str(client.get("/metrics").text)


def test_payments_are_counted_by_outcome_and_replays_apart(services: TracedServices) -> None:
    alice, bob = services.trader(cash_minor=1_000), services.trader(cash_minor=1)
    before = scrape(services)
    body = {"from_account": alice.account_id, "to_account": bob.account_id, "amount_minor": 600, "currency": "USD"}

    for key in ("first", "first", "second"):
        services.payments.post("/v1/payments", json=body, headers={**alice.headers, "Idempotency-Key": key})

    after = scrape(services)
    settled = {"kind": "payment", "outcome": "settled"}
    refused = {"kind": "payment", "outcome": "insufficient_funds"}
    assert value(after, "nova_payments_total", **settled) - value(before, "nova_payments_total", **settled) == 2
    assert value(after, "nova_payments_total", **refused) - value(before, "nova_payments_total", **refused) == 1
    replays = value(after, "nova_idempotent_replays_total", service="payments")
    assert replays - value(before, "nova_idempotent_replays_total", service="payments") == 1


def test_a_payment_span_names_the_payment_its_outcome_and_whether_it_was_replayed(
    services: TracedServices,
) -> None:
    alice, bob = services.trader(), services.trader(cash_minor=1)
    services.clear()
    body = {"from_account": alice.account_id, "to_account": bob.account_id, "amount_minor": 5, "currency": "USD"}

    paid = services.payments.post("/v1/payments", json=body, headers={**alice.headers, "Idempotency-Key": "k"})
    services.payments.post("/v1/payments", json=body, headers={**alice.headers, "Idempotency-Key": "k"})

    first, replay = server_spans(services.spans(), "payments")
    assert first.attributes is not None and replay.attributes is not None
    assert first.attributes["nova.payment.id"] == paid.json()["id"]
    assert (first.attributes["nova.outcome"], first.attributes["nova.idempotent_replay"]) == ("settled", False)
    assert (replay.attributes["nova.outcome"], replay.attributes["nova.idempotent_replay"]) == ("settled", True)


def test_orders_are_counted_and_their_spans_carry_the_order_and_its_payment(services: TracedServices) -> None:
    trader = services.trader()
    before = scrape(services, "portfolio")
    services.clear()

    order = services.order(trader, quantity=2).json()

    after = scrape(services, "portfolio")
    filled = {"side": "buy", "outcome": "filled"}
    assert value(after, "nova_orders_total", **filled) - value(before, "nova_orders_total", **filled) == 1
    [span] = [span for span in server_spans(services.spans(), "portfolio") if span.name == "POST /v1/orders"]
    assert span.attributes is not None
    assert (span.attributes["nova.order.id"], span.attributes["nova.payment.id"]) == (order["id"], order["payment_id"])


def test_every_problem_answered_is_counted_by_its_code(services: TracedServices) -> None:
    """A 503 database_unavailable must be told from an injected 503 by its code (the latency runbooks do)."""
    before = value(scrape(services), "nova_problems_total", code="unauthorized")

    answers = [services.payments.get("/v1/accounts/acc_x").status_code for _ in range(3)]

    assert answers == [401] * 3
    assert value(scrape(services), "nova_problems_total", code="unauthorized") - before == 3

"""The admin fault API as a game day drives it, against the services in-process, one behaviour per test."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core_services import fault_api
from core_services.faults import ErrorRate, FaultBoard, PaymentsLatency
from core_services.payments.api import create_app as create_payments_app
from core_services.portfolio.api import create_app as create_portfolio_app
from core_services.portfolio.payments_client import PaymentsClient, PaymentsUnavailable
from core_services.settings import ServiceSettings
from tests.conftest import ADMIN_TOKEN
from tests.core_services.payments.conftest import Customer, PaymentsApi, assert_problem
from tests.core_services.portfolio.conftest import Market
from tests.instrumentation.conftest import value
from tests.instrumentation.traced import server_spans, traced_services

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
LOOPBACK = ("127.0.0.1", 50000)
ROUTES = [("GET", "/admin/faults"), ("PUT", "/admin/faults/latency"), ("DELETE", "/admin/faults/latency")]


@contextmanager
def payments_service(settings: ServiceSettings, client: tuple[str, int] = LOOPBACK) -> Iterator[PaymentsApi]:
    app = create_payments_app(settings)
    try:
        with TestClient(app, client=client, raise_server_exceptions=False) as http:
            yield PaymentsApi(app, http, ADMIN)
    finally:
        app.state.service.db.dispose()


@pytest.fixture
def faulty_settings(make_settings: Callable[..., ServiceSettings]) -> ServiceSettings:
    return make_settings(NOVA_ENABLE_FAULTS="1")


@pytest.fixture
def payments(faulty_settings: ServiceSettings) -> Iterator[PaymentsApi]:
    with payments_service(faulty_settings) as api:
        yield api


def put_fault(api: PaymentsApi | TestClient, name: str, **settings: Any) -> httpx.Response:
    client = api.client if isinstance(api, PaymentsApi) else api
    response: httpx.Response = client.put(f"/admin/faults/{name}", json=settings, headers=ADMIN)
    return response


def active_faults(api: PaymentsApi) -> list[dict[str, Any]]:
    response = api.client.get("/admin/faults", headers=ADMIN)
    assert response.status_code == 200, response.text
    faults: list[dict[str, Any]] = response.json()["faults"]
    return faults


def funded_pair(api: PaymentsApi) -> tuple[Customer, str, str]:
    """A payer with 1,000.00 in one account and a payee's account."""
    payer, payee = api.create_customer("payer"), api.create_customer("payee")
    source, target = api.open_account(payer), api.open_account(payee)
    api.fund(source, 100_000)
    return payer, source, target


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = call()
    return response, time.perf_counter() - started


# -- existence and access --------------------------------------------------------------------------


def test_without_faults_enabled_the_fault_api_does_not_exist(make_settings: Callable[..., ServiceSettings]) -> None:
    with payments_service(make_settings()) as api:
        listed = api.client.get("/admin/faults", headers=ADMIN)
        put = put_fault(api, "latency", ms=100, ttl_seconds=60)
        paths = api.client.get("/openapi.json").json()["paths"]

    assert_problem(listed, 404, "not_found")
    assert_problem(put, 404, "not_found")
    assert not [path for path in paths if path.startswith("/admin")]


def test_with_faults_enabled_openapi_describes_the_fault_api(payments: PaymentsApi) -> None:
    paths = payments.client.get("/openapi.json").json()["paths"]

    assert {"/admin/faults", "/admin/faults/{name}", "/admin/faults/worker_kill"} <= set(paths)
    assert "5XX" in paths["/v1/payments"]["post"]["responses"]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_call_without_the_admin_token_is_401(payments: PaymentsApi, method: str, path: str) -> None:
    response = payments.client.request(method, path, json={"ms": 1, "ttl_seconds": 60})

    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_a_customer_token_is_403(payments: PaymentsApi, method: str, path: str) -> None:
    customer = payments.create_customer()

    response = payments.client.request(method, path, json={"ms": 1, "ttl_seconds": 60}, headers=customer.headers)

    assert_problem(response, 403, "forbidden")


@pytest.mark.parametrize("client", [("10.1.2.3", 50000), ("192.168.0.7", 50000), ("testclient", 50000)])
def test_a_client_not_on_loopback_is_403_even_with_the_admin_token(
    faulty_settings: ServiceSettings, client: tuple[str, int]
) -> None:
    with payments_service(faulty_settings, client=client) as api:
        response = put_fault(api, "error_rate", rate=1.0, ttl_seconds=60)

    assert_problem(response, 403, "forbidden")


def test_an_ipv6_loopback_client_is_let_in(faulty_settings: ServiceSettings) -> None:
    with payments_service(faulty_settings, client=("::1", 50000)) as api:
        response = api.client.get("/admin/faults", headers=ADMIN)

    assert response.status_code == 200


# -- turning faults on and off ---------------------------------------------------------------------


def test_a_fault_put_is_listed_with_its_settings_and_seconds_left(payments: PaymentsApi) -> None:
    put = put_fault(payments, "latency", ms=100, jitter_ms=20, route="/v1/payments", ttl_seconds=60)

    [listed] = active_faults(payments)
    assert put.status_code == 200, put.text
    assert put.json()["name"] == "latency"
    assert listed["settings"] == {"ms": 100, "jitter_ms": 20, "route": "/v1/payments", "probability": 1.0} | {
        "ttl_seconds": 60
    }
    assert 59 < listed["seconds_left"] <= 60
    assert listed["expires_at"].endswith("Z")


def test_putting_a_fault_again_replaces_it(payments: PaymentsApi) -> None:
    put_fault(payments, "error_rate", rate=0.5, ttl_seconds=60)
    put_fault(payments, "error_rate", rate=0.1, status=500, ttl_seconds=5)

    [listed] = active_faults(payments)
    assert listed["settings"]["rate"] == 0.1
    assert listed["seconds_left"] <= 5


def test_delete_turns_one_fault_off_and_leaves_the_others(payments: PaymentsApi) -> None:
    put_fault(payments, "latency", ms=1, ttl_seconds=60)
    put_fault(payments, "cpu_burn", share=0.01, ttl_seconds=60)

    deleted = payments.client.delete("/admin/faults/latency", headers=ADMIN)

    assert deleted.status_code == 204
    assert [fault["name"] for fault in active_faults(payments)] == ["cpu_burn"]


def test_delete_all_turns_every_fault_off(payments: PaymentsApi) -> None:
    put_fault(payments, "latency", ms=1, ttl_seconds=60)
    put_fault(payments, "db_latency", ms=1, ttl_seconds=60)

    cleared = payments.client.delete("/admin/faults", headers=ADMIN)

    assert cleared.status_code == 204
    assert active_faults(payments) == []


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("latency", {"ms": 100}),
        ("latency", {"ms": 100, "ttl_seconds": 0}),
        ("latency", {"ms": 100, "ttl_seconds": 3601}),
        ("latency", {"ms": "100", "ttl_seconds": 60}),
        ("latency", {"ms": 100, "ttl_seconds": 60, "colour": "red"}),
        ("latency", {"ms": 100, "ttl_seconds": 60, "route": "/v1/paymnts"}),
        ("latency", {"ms": 100, "ttl_seconds": 60, "route": "/healthz"}),
        ("error_rate", {"rate": 2, "ttl_seconds": 60}),
        ("error_rate", {"rate": 1.0, "status": 404, "ttl_seconds": 60}),
        ("cpu_burn", {"share": 0, "ttl_seconds": 60}),
        ("db_unavailable", {"ttl_seconds": 60, "ms": 5}),
        ("db_unavailable", [60]),
        ("worker_kill", {"signal": "SIGSTOP"}),
        ("worker_kill", {"signal": "SIGKILL", "ttl_seconds": 60}),
    ],
)
def test_a_bad_body_is_422_and_changes_nothing(payments: PaymentsApi, name: str, body: object) -> None:
    response = payments.client.put(f"/admin/faults/{name}", json=body, headers=ADMIN)

    assert_problem(response, 422, "validation_error")
    assert response.json()["errors"]
    assert active_faults(payments) == []


def test_a_body_that_is_not_json_is_400(payments: PaymentsApi) -> None:
    response = payments.client.put(
        "/admin/faults/latency", content=b"{ms: 1", headers={**ADMIN, "Content-Type": "application/json"}
    )

    assert_problem(response, 400, "malformed_json")


@pytest.mark.parametrize(
    "raw", [b"[" * 60_000, b'{"ms": 5, "ttl_seconds": 60, "ms": 5000}'], ids=["nested-60000-deep", "duplicate-key"]
)
def test_a_body_nested_too_deep_or_naming_a_key_twice_is_422(payments: PaymentsApi, raw: bytes) -> None:
    response = payments.client.put(
        "/admin/faults/latency", content=raw, headers={**ADMIN, "Content-Type": "application/json"}
    )

    assert_problem(response, 422, "validation_error")
    assert active_faults(payments) == []


@pytest.mark.parametrize(("method", "name"), [("PUT", "gremlins"), ("PUT", "payments_errors"), ("DELETE", "gremlins")])
def test_a_fault_the_service_does_not_have_is_404(payments: PaymentsApi, method: str, name: str) -> None:
    response = payments.client.request(method, f"/admin/faults/{name}", json={"ttl_seconds": 60}, headers=ADMIN)

    assert_problem(response, 404, "fault_not_found")


# -- what the faults do ----------------------------------------------------------------------------


def test_latency_on_one_route_delays_that_route_only(payments: PaymentsApi) -> None:
    owner = payments.create_customer()
    account = payments.open_account(owner)
    put_fault(payments, "latency", ms=300, route="/v1/accounts/{account_id}", ttl_seconds=60)

    slowed, slow_seconds = timed(lambda: payments.client.get(f"/v1/accounts/{account}", headers=owner.headers))
    other, other_seconds = timed(lambda: payments.client.get(f"/v1/accounts/{account}/entries", headers=owner.headers))

    assert (slowed.status_code, other.status_code) == (200, 200)
    assert slow_seconds >= 0.3
    assert other_seconds < 0.2


def test_latency_without_a_route_delays_every_api_route_but_not_health(payments: PaymentsApi) -> None:
    owner = payments.create_customer()
    put_fault(payments, "latency", ms=200, jitter_ms=50, ttl_seconds=60)

    _, api_seconds = timed(
        lambda: payments.client.post("/v1/accounts", json={"currency": "EUR"}, headers=owner.headers)
    )
    _, health_seconds = timed(lambda: payments.client.get("/healthz"))

    assert api_seconds >= 0.15
    assert health_seconds < 0.1


def test_error_rate_one_refuses_payments_with_fault_injected_and_writes_nothing(payments: PaymentsApi) -> None:
    payer, source, target = funded_pair(payments)
    before = payments.stored_state()
    put_fault(payments, "error_rate", rate=1.0, ttl_seconds=60)

    refused = payments.pay(payer, source, target, 500)

    assert_problem(refused, 503, "fault_injected")
    assert payments.stored_state() == before
    payments.client.delete("/admin/faults", headers=ADMIN)
    verification = payments.verify()
    assert verification["balanced"] is True
    assert verification["payments"] == 1  # the deposit only


def test_error_rate_answers_with_its_status_on_its_route_only(payments: PaymentsApi) -> None:
    payer, source, target = funded_pair(payments)
    put_fault(payments, "error_rate", rate=1.0, status=500, route="/v1/payments", ttl_seconds=60)

    refused = payments.pay(payer, source, target, 500)
    read = payments.client.get(f"/v1/accounts/{source}", headers=payer.headers)

    assert_problem(refused, 500, "fault_injected")
    assert read.status_code == 200


def test_error_rate_spares_health_metrics_and_the_fault_api(payments: PaymentsApi) -> None:
    put_fault(payments, "error_rate", rate=1.0, ttl_seconds=60)

    answers = [payments.client.get(path).status_code for path in ("/healthz", "/readyz", "/metrics")]
    cleared = payments.client.delete("/admin/faults", headers=ADMIN)

    assert answers == [200, 200, 200]
    assert cleared.status_code == 204


def test_a_partial_error_rate_fails_about_that_share(payments: PaymentsApi) -> None:
    put_fault(payments, "error_rate", rate=0.5, ttl_seconds=60)

    statuses = [payments.client.get("/v1/ledger/verify", headers=ADMIN).status_code for _ in range(200)]

    assert set(statuses) == {200, 503}
    assert 60 <= statuses.count(503) <= 140


def test_a_fault_ends_by_itself_after_its_ttl(payments: PaymentsApi) -> None:
    put_fault(payments, "error_rate", rate=1.0, ttl_seconds=1)
    during = payments.client.get("/v1/ledger/verify", headers=ADMIN).status_code

    time.sleep(1.05)

    assert during == 503
    assert payments.client.get("/v1/ledger/verify", headers=ADMIN).status_code == 200
    assert active_faults(payments) == []


def test_db_unavailable_answers_503_with_retry_after_and_not_ready_until_cleared(
    make_settings: Callable[..., ServiceSettings], database_url: str
) -> None:
    with payments_service(make_settings(NOVA_ENABLE_FAULTS="1", NOVA_PAYMENTS_DB=database_url)) as api:
        payer, source, target = funded_pair(api)
        before = api.stored_state()
        put_fault(api, "db_unavailable", ttl_seconds=60)

        payment = api.pay(payer, source, target, 500, key="during-outage")
        read = api.client.get(f"/v1/accounts/{source}", headers=payer.headers)
        ready_during = api.client.get("/readyz")
        unchanged = api.stored_state() == before
        api.client.delete("/admin/faults/db_unavailable", headers=ADMIN)
        ready_after = api.client.get("/readyz")
        retried = api.pay(payer, source, target, 500, key="during-outage")
        verification = api.verify()

    assert_problem(payment, 503, "database_unavailable")
    assert payment.headers["Retry-After"] == "1"
    assert_problem(read, 503, "database_unavailable")
    assert_problem(ready_during, 503, "database_unavailable")
    assert unchanged
    assert ready_after.status_code == 200
    assert retried.status_code == 201, retried.text
    assert verification["balanced"] is True


def test_db_latency_delays_requests_that_use_the_database_only(payments: PaymentsApi) -> None:
    owner = payments.create_customer()
    account = payments.open_account(owner)
    put_fault(payments, "db_latency", ms=200, ttl_seconds=60)

    read, read_seconds = timed(lambda: payments.client.get(f"/v1/accounts/{account}", headers=owner.headers))
    _, health_seconds = timed(lambda: payments.client.get("/healthz"))

    assert read.status_code == 200
    assert read_seconds >= 0.2
    assert health_seconds < 0.1


def test_active_faults_are_reported_as_the_nova_fault_active_gauge(payments: PaymentsApi) -> None:
    put_fault(payments, "db_latency", ms=1, ttl_seconds=60)
    during = payments.client.get("/metrics").text
    payments.client.delete("/admin/faults", headers=ADMIN)
    after = payments.client.get("/metrics").text

    assert value(during, "nova_fault_active", service="payments", fault="db_latency") == 1
    assert value(during, "nova_fault_active", service="payments", fault="latency") == 0
    assert value(after, "nova_fault_active", service="payments", fault="db_latency") == 0


def test_a_request_a_fault_touched_says_so_on_its_span(faulty_settings: ServiceSettings) -> None:
    with traced_services(faulty_settings) as services:
        # Another worker of payments turns the fault on: this one learns it from the shared file.
        FaultBoard(faulty_settings.data_dir, "payments").put("error_rate", ErrorRate(rate=1.0, ttl_seconds=60))
        time.sleep(0.2)
        services.clear()

        refused = services.payments.get("/v1/ledger/verify", headers=ADMIN)
        [span] = server_spans(services.spans(), "payments")

    assert refused.status_code == 503
    assert span.attributes is not None
    assert span.attributes["nova.fault"] == "error_rate"


def test_worker_kill_answers_202_then_signals_the_worker_that_received_it(
    payments: PaymentsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    signalled: list[tuple[int, int]] = []
    monkeypatch.setattr(fault_api, "kill", lambda pid, signum: signalled.append((pid, signum)))

    answer = put_fault(payments, "worker_kill", signal="SIGKILL")
    at_answer = list(signalled)
    time.sleep(fault_api.KILL_DELAY_SECONDS + 0.2)

    assert answer.status_code == 202
    assert answer.json() == {"name": "worker_kill", "pid": os.getpid(), "signal": "SIGKILL"}
    assert at_answer == []
    assert signalled == [(os.getpid(), signal.SIGKILL)]


# -- portfolio, as payments looks from it ----------------------------------------------------------


@pytest.fixture
def market(faulty_settings: ServiceSettings) -> Iterator[Market]:
    payments = TestClient(create_payments_app(faulty_settings), base_url="http://payments")
    app = create_portfolio_app(faulty_settings, payments, reconcile_every_seconds=None)
    try:
        with TestClient(app, client=LOOPBACK, raise_server_exceptions=False) as portfolio:
            yield Market(payments, portfolio, app, faulty_settings)
    finally:
        app.state.service.db.dispose()
        payments.app.state.service.db.dispose()  # type: ignore[attr-defined]


def test_payments_faults_exist_on_portfolio_only(market: Market) -> None:
    listed = market.portfolio.get("/openapi.json").json()["paths"]["/admin/faults/{name}"]["put"]

    assert "payments_errors" in listed["description"]
    assert "payments_latency" in listed["description"]


def test_payments_errors_make_orders_503_payments_unavailable_without_losing_them(market: Market) -> None:
    trader = market.customer()
    market.order(trader, "buy", 1, key="warm-up")  # the house account is opened on the first order
    cash_before = market.balance(trader.account_id)
    put_fault(market.portfolio, "payments_errors", rate=1.0, ttl_seconds=60)

    refused = market.order(trader, "buy", 2, key="during-outage")
    market.portfolio.delete("/admin/faults", headers=ADMIN)
    retried = market.order(trader, "buy", 2, key="during-outage")

    assert_problem(refused, 503, "payments_unavailable")
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] == refused.json()["order_id"]
    assert retried.json()["status"] == "filled"
    assert market.balance(trader.account_id) == cash_before - retried.json()["amount_minor"]


def test_payments_latency_slows_orders_by_the_latency(market: Market) -> None:
    trader = market.customer()
    market.order(trader, "buy", 1, key="warm-up")
    put_fault(market.portfolio, "payments_latency", ms=250, ttl_seconds=60)

    order, seconds = timed(lambda: market.order(trader, "buy", 1, key="slow"))

    assert order.status_code == 201, order.text
    assert seconds >= 0.25


def test_payments_latency_past_the_timeout_is_a_timeout_and_nothing_reaches_payments(
    faulty_settings: ServiceSettings,
) -> None:
    sent: list[httpx.Request] = []
    waits: list[float] = []

    def payments_answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(201, json={})

    http = httpx.Client(
        transport=httpx.MockTransport(payments_answer),
        base_url="http://payments",
        timeout=httpx.Timeout(2.0, connect=1.0),
    )
    board = FaultBoard(faulty_settings.data_dir, "portfolio")
    board.put("payments_latency", PaymentsLatency(ms=5000, ttl_seconds=60))
    payments = PaymentsClient(http, ADMIN_TOKEN, sleep=waits.append, faults=board)

    with pytest.raises(PaymentsUnavailable, match="ReadTimeout"):
        payments.pay("order-ord_1", {"amount_minor": 1})

    assert sent == []
    assert waits == [2.0, 0.05, 2.0, 0.2, 2.0]  # three attempts timing out, with the backoff between them

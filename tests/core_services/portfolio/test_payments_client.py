"""The payments client: bounded retries that reuse one Idempotency-Key, and honest 'unknown' outcomes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from core_services.portfolio.payments_client import PaymentsClient, PaymentsUnavailable, new_payments_http

PAYMENT = {"from_account": "acc_a", "to_account": "acc_b", "amount_minor": 100, "currency": "USD"}


class Script:
    """A payments stand-in that answers each attempt from a script and records what it was sent."""

    def __init__(self, *answers: int | type[httpx.TransportError]) -> None:
        self._answers: Iterator[int | type[httpx.TransportError]] = iter(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = next(self._answers)
        if isinstance(answer, int):
            return httpx.Response(answer, json={"id": "pay_1", "code": "whatever"})
        raise answer("scripted failure", request=request)


def client(script: Script) -> PaymentsClient:
    http = httpx.Client(transport=httpx.MockTransport(script), base_url="http://payments")
    return PaymentsClient(http, "admin-token", sleep=lambda _seconds: None)


def test_retries_after_connection_failures_reuse_the_idempotency_key() -> None:
    script = Script(httpx.ConnectError, httpx.ReadTimeout, 201)
    answer = client(script).pay("order-ord_1", PAYMENT)
    assert answer.status == 201
    assert [request.headers["Idempotency-Key"] for request in script.seen] == ["order-ord_1"] * 3
    assert {request.content for request in script.seen} == {script.seen[0].content}


def test_server_errors_are_retried() -> None:
    script = Script(503, 500, 201)
    assert client(script).pay("k", PAYMENT).status == 201
    assert len(script.seen) == 3


def test_after_three_failed_attempts_the_outcome_is_unknown() -> None:
    script = Script(httpx.ReadTimeout, 502, httpx.ConnectError, 201)
    with pytest.raises(PaymentsUnavailable):
        client(script).pay("k", PAYMENT)
    assert len(script.seen) == 3


def test_a_refusal_is_answered_without_retrying() -> None:
    script = Script(422)
    assert client(script).pay("k", PAYMENT).status == 422
    assert len(script.seen) == 1


def test_payments_are_made_with_the_admin_token_and_account_reads_with_the_customers() -> None:
    script = Script(201, 200)
    payments = client(script)
    payments.pay("k", PAYMENT)
    payments.account("acc_1/../x", "customer-token")
    assert script.seen[0].headers["Authorization"] == "Bearer admin-token"
    assert script.seen[1].headers["Authorization"] == "Bearer customer-token"
    assert script.seen[1].url.raw_path == b"/v1/accounts/acc_1%2F..%2Fx"


def test_the_default_pool_bounds_connect_and_read_waits() -> None:
    timeout = new_payments_http("http://127.0.0.1:8001").timeout
    assert (timeout.connect, timeout.read) == (1.0, 2.0)

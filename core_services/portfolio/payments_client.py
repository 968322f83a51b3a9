"""The portfolio's client for the payments API: bounded waits, and retries that cannot pay twice.

Every retry re-sends the same request with the same Idempotency-Key, so a payment
whose answer was lost (a timeout after payments committed) is replayed by payments,
never made again. When no attempt gets a definitive answer the caller is told so
(`PaymentsUnavailable`) and must treat the outcome as unknown.

With fault injection on, the `payments_latency` and `payments_errors` faults act here,
on each attempt, exactly as a slow or failing payments service would look from
portfolio: a wait (a wait past the read timeout is a timeout), or a 503 answer. The
request is then not sent, so the retries and the reconciler meet the same outcomes as
in a real outage.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from core_services.faults import FaultBoard
from core_services.problems import Problem
from core_services.telemetry import record_fault
from instrumentation.http_client import HttpClientSpans

# A slow payments service must not hold a portfolio worker for long: p99 < 200 ms is the goal.
PAYMENTS_TIMEOUT = httpx.Timeout(2.0, connect=1.0)
ATTEMPTS = 3
BACKOFF_SECONDS = (0.05, 0.2)
# The revocation list is asked for on the request path: one quick attempt, else the last list stands.
REVOCATIONS_TIMEOUT = httpx.Timeout(0.3, connect=0.2)
# Answers that a later attempt may change: in-flight duplicate, rate limit, timeout at a proxy.
_RETRYABLE_STATUSES = {408, 409, 425, 429}


class PaymentsUnavailable(Exception):
    """No attempt got a definitive answer: whatever was sent may or may not have happened."""


@dataclass(frozen=True, slots=True)
class PaymentsAnswer:
    status: int
    body: dict[str, Any]


def new_payments_http(base_url: str) -> httpx.Client:
    """The connection pool a worker uses for payments, sized above the worker's thread pool."""
    return httpx.Client(
        base_url=base_url,
        timeout=PAYMENTS_TIMEOUT,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
    )


class PaymentsClient:
    """Calls payments as the platform (the portfolio's service token) or on behalf of a customer (their token)."""

    def __init__(
        self,
        http: httpx.Client,
        platform_token: str,
        *,
        attempts: int = ATTEMPTS,
        backoff_seconds: tuple[float, ...] = BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        faults: FaultBoard | None = None,
    ) -> None:
        self.http = http
        self.faults = faults
        self._platform_token = platform_token
        self._attempts = attempts
        self._backoff = backoff_seconds
        self._sleep = sleep
        self._spans = HttpClientSpans(str(http.base_url))

    def account(self, account_id: str, customer_token: str) -> PaymentsAnswer:
        """Read an account as its owner would: payments answers 404 for anyone else's."""
        path = f"/v1/accounts/{quote(account_id, safe='')}"
        return self._send("GET", path, customer_token, template="/v1/accounts/{account_id}")

    def pay(self, idempotency_key: str, body: dict[str, Any]) -> PaymentsAnswer:
        return self._send("POST", "/v1/payments", self._platform_token, body, idempotency_key)

    def create_customer(self, name: str) -> PaymentsAnswer:
        return self._send("POST", "/v1/customers", self._platform_token, {"name": name})

    def open_account(self, customer_token: str, currency: str) -> PaymentsAnswer:
        return self._send("POST", "/v1/accounts", customer_token, {"currency": currency})

    def deposit(self, idempotency_key: str, account_id: str, amount_minor: int) -> PaymentsAnswer:
        body = {"account_id": account_id, "amount_minor": amount_minor}
        return self._send("POST", "/v1/deposits", self._platform_token, body, idempotency_key)

    def revocations(self) -> dict[str, int]:
        """Every revoked customer's instant (ms since the epoch), from payments; raises on any failure."""
        response = self.http.get(
            "/v1/tokens/revocations",
            headers={"Authorization": f"Bearer {self._platform_token}"},
            extensions={"timeout": REVOCATIONS_TIMEOUT.as_dict()},
        )
        response.raise_for_status()
        revoked = response.json()["revoked_before_ms"]
        return {str(customer): int(before_ms) for customer, before_ms in revoked.items()}

    def close(self) -> None:
        self.http.close()

    def _send(
        self,
        method: str,
        path: str,
        token: str,
        body: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        *,
        template: str | None = None,
    ) -> PaymentsAnswer:
        """`template` is the path's shape when it holds an id (`/v1/accounts/{account_id}`): spans are named by it."""
        headers = {"Authorization": f"Bearer {token}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        failure = "no attempt made"
        for attempt in range(self._attempts):
            if attempt:
                self._sleep(self._backoff[min(attempt, len(self._backoff)) - 1])
            # Each attempt is its own client span, so its headers carry its own span id.
            attempt_headers = dict(headers)
            call = self._spans.start(method, template or path, path, attempt_headers, resend=attempt)
            try:
                injected = self._injected_answer(method, path)
                if injected is not None:
                    response = injected
                else:
                    response = self.http.request(method, path, headers=attempt_headers, json=body)
            except httpx.RequestError as exc:
                call.end(error=exc)
                failure = f"{type(exc).__name__}: {exc}"
                continue
            except BaseException as exc:
                call.end(error=exc)
                raise
            call.end(response.status_code, protocol=response.http_version)
            if response.status_code >= 500 or response.status_code in _RETRYABLE_STATUSES:
                failure = f"payments answered {response.status_code}"
                continue
            return PaymentsAnswer(response.status_code, _json_object(response))
        raise PaymentsUnavailable(f"{method} {path}: {failure} after {self._attempts} attempts")

    def _injected_answer(self, method: str, path: str) -> httpx.Response | None:
        """Act out the payments faults that are on: wait, time out, or answer 503 in payments' place.

        None when the attempt should go to payments for real.
        """
        if self.faults is None:
            return None
        faults = self.faults.current()
        if not faults:
            return None
        latency = faults.payments_latency
        if latency is not None:
            record_fault("payments_latency")
            delay = latency.delay_seconds(self.faults.random)
            timeout = self.http.timeout.read
            if timeout is not None and delay >= timeout:
                self._sleep(timeout)
                raise httpx.ReadTimeout("payments_latency fault: no answer within the timeout")
            self._sleep(delay)
        errors = faults.payments_errors
        if errors is not None and self.faults.random.random() < errors.rate:
            record_fault("payments_errors")
            problem = Problem("fault_injected", "the payments_errors fault is on")
            return httpx.Response(
                problem.status, json=problem.body(), request=httpx.Request(method, self.http.base_url.join(path))
            )
        return None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}

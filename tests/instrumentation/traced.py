"""Payments and portfolio in-process, traced into memory: what the tracing and log tests drive."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from core_services.payments.api import create_app as create_payments_app
from core_services.portfolio.api import create_app as create_portfolio_app
from core_services.settings import ServiceSettings
from instrumentation.tracing import TracingSetup, configure_tracing
from tests.conftest import ADMIN_TOKEN
from tests.core_services.portfolio.conftest import Customer as Trader

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REVOCATIONS_SPAN = "GET /v1/tokens/revocations"


@dataclass
class TracedServices:
    """Both services, each tracing into its own in-memory exporter; portfolio reaches payments over HTTP."""

    payments_app: FastAPI
    portfolio_app: FastAPI
    payments: TestClient
    portfolio: TestClient
    exporters: dict[str, InMemorySpanExporter] = field(default_factory=dict)

    def spans(self) -> list[ReadableSpan]:
        """Every span exported so far by both services, oldest first."""
        for app in (self.payments_app, self.portfolio_app):
            tracing: TracingSetup = app.state.tracing
            assert tracing.force_flush()
        spans = [span for exporter in self.exporters.values() for span in exporter.get_finished_spans()]
        # The portfolio's look at payments' token revocations (at most every half second, a trace
        # of its own) is left out: the tests follow the requests they make.
        lookups = {span.context.trace_id for span in spans if span.name == REVOCATIONS_SPAN}
        return sorted((s for s in spans if s.context.trace_id not in lookups), key=lambda span: span.start_time or 0)

    def clear(self) -> None:
        self.spans()
        for exporter in self.exporters.values():
            exporter.clear()

    def trader(self, cash_minor: int = 1_000_000) -> Trader:
        created = self.payments.post("/v1/customers", json={"name": "trader"}, headers=ADMIN)
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        account = self.payments.post(
            "/v1/accounts", json={"currency": "USD"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert account.status_code == 201, account.text
        account_id = account.json()["id"]
        deposit = self.payments.post(
            "/v1/deposits",
            json={"account_id": account_id, "amount_minor": cash_minor},
            headers={**ADMIN, "Idempotency-Key": f"fund-{account_id}"},
        )
        assert deposit.status_code == 201, deposit.text
        return Trader(created.json()["id"], token, account_id)

    def order(self, trader: Trader, quantity: int = 1, headers: Mapping[str, str] | None = None) -> httpx.Response:
        body = {"account_id": trader.account_id, "symbol": "NOVA", "side": "buy", "quantity": quantity}
        response: httpx.Response = self.portfolio.post(
            "/v1/orders",
            json=body,
            headers={**trader.headers, "Idempotency-Key": uuid.uuid4().hex, **(headers or {})},
        )
        return response


@contextmanager
def traced_services(
    settings: ServiceSettings, env: Mapping[str, str] | None = None, payments_http: httpx.Client | None = None
) -> Iterator[TracedServices]:
    """The two services with tracing configured from `env` (none of the process's OTEL_* variables)."""
    env = dict(env or {})
    payments_app = create_payments_app(settings)
    payments = TestClient(payments_app, base_url="http://payments", raise_server_exceptions=False)
    portfolio_app = create_portfolio_app(settings, payments_http or payments, reconcile_every_seconds=None)
    portfolio = TestClient(portfolio_app, raise_server_exceptions=False)
    services = TracedServices(payments_app, portfolio_app, payments, portfolio)
    for name, app in (("payments", payments_app), ("portfolio", portfolio_app)):
        exporter = services.exporters[name] = InMemorySpanExporter()
        app.state.tracing = configure_tracing(name, settings.data_dir, env, exporter=exporter)
    try:
        yield services
    finally:
        for app in (payments_app, portfolio_app):
            app.state.tracing.shutdown()
            app.state.service.db.dispose()


def service_of(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


def server_spans(spans: list[ReadableSpan], service: str | None = None) -> list[ReadableSpan]:
    return [span for span in spans if span.kind is SpanKind.SERVER and (service is None or service_of(span) == service)]


def by_id(spans: list[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in spans}


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects of a stream of lines, skipping any line that is not one (pytest's own output)."""
    lines = []
    for line in text.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            lines.append(parsed)
    return lines

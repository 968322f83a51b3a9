"""No credential ever reaches a trace or a log line: everything a full session exports is searched."""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from core_services.payments.api import create_app as create_payments_app
from core_services.portfolio.api import create_app as create_portfolio_app
from core_services.settings import ServiceSettings
from tests.conftest import ADMIN_TOKEN
from tests.instrumentation.traced import ADMIN, json_lines


def test_a_full_session_exports_no_token(
    make_settings: Callable[..., ServiceSettings],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)  # the embedded default: every span goes to the trace files
    settings = make_settings()
    secrets = [ADMIN_TOKEN]

    payments_app = create_payments_app(settings)
    payments = TestClient(payments_app, base_url="http://payments", raise_server_exceptions=False)

    def through_payments(request: httpx.Request) -> httpx.Response:
        """Portfolio's calls, passed on whole; tokens payments hands out (the house's) are noted."""
        answer = payments.request(
            request.method, request.url.path, headers=dict(request.headers), content=request.content
        )
        _note_tokens(answer, secrets)
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    portfolio_http = httpx.Client(transport=httpx.MockTransport(through_payments), base_url="http://payments")
    portfolio_app = create_portfolio_app(settings, portfolio_http, reconcile_every_seconds=None)
    portfolio = TestClient(portfolio_app, raise_server_exceptions=False)
    try:
        _session(payments, portfolio, payments_app, secrets, monkeypatch)
    finally:
        for app in (payments_app, portfolio_app):
            assert app.state.tracing.force_flush()
            app.state.service.db.dispose()

    traces = "".join(path.read_text() for path in sorted((settings.data_dir / "traces").glob("*.jsonl")))
    exported = [json.loads(line) for line in traces.splitlines()]
    names = {span["name"] for span in _spans(exported)}
    assert {"POST /v1/customers", "POST /v1/payments", "POST /v1/orders", "INSERT customers"} <= names, names
    logged = capsys.readouterr()
    log_lines = json_lines(logged.err) + json_lines(logged.out)
    assert any("trace_id" in line for line in log_lines), "the session logged nothing inside a request"
    everything = {
        "traces": traces,
        "logs": logged.err + logged.out + "\n".join(record.getMessage() for record in caplog.records),
    }
    assert len(secrets) >= 4  # the admin's, two customers', the house's
    for where, text in everything.items():
        assert "Bearer" not in text, where
        for secret in secrets:
            assert secret not in text, (where, secret[:6])


def _session(
    payments: TestClient,
    portfolio: TestClient,
    payments_app: Any,
    secrets: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customers = []
    for name in ("alice", "bob"):
        created = payments.post("/v1/customers", json={"name": name}, headers=ADMIN)
        assert created.status_code == 201, created.text
        secrets.append(created.json()["token"])
        headers = {"Authorization": f"Bearer {created.json()['token']}"}
        account = payments.post("/v1/accounts", json={"currency": "USD"}, headers=headers).json()
        funded = payments.post(
            "/v1/deposits",
            json={"account_id": account["id"], "amount_minor": 500_000},
            headers={**ADMIN, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert funded.status_code == 201
        customers.append((headers, account["id"]))
    (alice, alice_account), (_bob, bob_account) = customers

    trace_id, span_id = random.getrandbits(128), random.getrandbits(64)
    paid = payments.post(
        "/v1/payments",
        json={"from_account": alice_account, "to_account": bob_account, "amount_minor": 1234, "currency": "USD"},
        headers={**alice, "Idempotency-Key": uuid.uuid4().hex, "uber-trace-id": f"{trace_id:x}:{span_id:x}:0:1"},
    )
    assert paid.status_code == 201, paid.text
    assert payments.get(f"/v1/payments/{paid.json()['id']}", headers=alice).status_code == 200
    assert payments.get(f"/v1/accounts/{alice_account}/entries?limit=5", headers=alice).status_code == 200
    assert payments.get("/v1/ledger/verify", headers=ADMIN).json()["balanced"]

    for side, quantity in (("buy", 3), ("sell", 1)):
        order = portfolio.post(
            "/v1/orders",
            json={"account_id": alice_account, "symbol": "NOVA", "side": side, "quantity": quantity},
            headers={
                **alice,
                "Idempotency-Key": uuid.uuid4().hex,
                "traceparent": f"00-{trace_id:032x}-{span_id:016x}-01",
            },
        )
        assert order.status_code == 201, order.text
    assert portfolio.get(f"/v1/portfolios/{alice_account}", headers=alice).status_code == 200

    # what goes wrong is traced and logged too
    assert (
        payments.get(f"/v1/accounts/{alice_account}", headers={"Authorization": "Bearer not-a-token"}).status_code
        == 401
    )
    assert portfolio.get(f"/v1/portfolios/{bob_account}", headers=alice).status_code == 404

    def crash(*_args: Any) -> None:
        raise RuntimeError("the ledger is on fire")

    monkeypatch.setattr(payments_app.state.service, "entries", crash)
    assert payments.get(f"/v1/accounts/{alice_account}/entries", headers=alice).status_code == 500


def _note_tokens(answer: httpx.Response, secrets: list[str]) -> None:
    try:
        body = answer.json()
    except ValueError:
        return
    if isinstance(body, dict) and isinstance(body.get("token"), str):
        secrets.append(body["token"])


def _spans(exported: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        span
        for request in exported
        for resource_spans in request["resourceSpans"]
        for scope_spans in resource_spans["scopeSpans"]
        for span in scope_spans["spans"]
    ]

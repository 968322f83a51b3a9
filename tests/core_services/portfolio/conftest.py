"""A payments service and a portfolio service wired together in-process, and funded customers."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core_services.payments.api import create_app as create_payments_app
from core_services.portfolio.api import create_app as create_portfolio_app
from core_services.portfolio.service import PortfolioService
from core_services.settings import ServiceSettings
from tests.conftest import ADMIN_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
STARTING_CASH_MINOR = 1_000_000
_keys = itertools.count()


@dataclass(frozen=True)
class Customer:
    id: str
    token: str
    account_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Market:
    """Payments and portfolio as two in-process services; portfolio reaches payments over HTTP."""

    payments: TestClient
    portfolio: TestClient
    app: FastAPI
    settings: ServiceSettings

    @property
    def service(self) -> PortfolioService:
        service: PortfolioService = self.app.state.service
        return service

    def customer(self, cash_minor: int = STARTING_CASH_MINOR, currency: str = "USD") -> Customer:
        created = self.payments.post("/v1/customers", json={"name": "trader"}, headers=ADMIN).json()
        headers = {"Authorization": f"Bearer {created['token']}"}
        account = self.payments.post("/v1/accounts", json={"currency": currency}, headers=headers).json()
        if cash_minor:
            deposit = self.payments.post(
                "/v1/deposits",
                json={"account_id": account["id"], "amount_minor": cash_minor},
                headers={**ADMIN, "Idempotency-Key": f"fund-{account['id']}"},
            )
            assert deposit.status_code == 201, deposit.text
        return Customer(created["id"], created["token"], account["id"])

    def order(
        self,
        customer: Customer,
        side: str,
        quantity: int,
        symbol: str = "NOVA",
        key: str | None = None,
        client: TestClient | None = None,
    ) -> httpx.Response:
        body = {"account_id": customer.account_id, "symbol": symbol, "side": side, "quantity": quantity}
        headers = {**customer.headers, "Idempotency-Key": key or f"order-key-{next(_keys)}"}
        response: httpx.Response = (client or self.portfolio).post("/v1/orders", json=body, headers=headers)
        return response

    def balance(self, account_id: str) -> int:
        return int(self.payments.get(f"/v1/accounts/{account_id}", headers=ADMIN).json()["balance_minor"])

    def entries(self, account_id: str) -> list[dict[str, Any]]:
        page = self.payments.get(f"/v1/accounts/{account_id}/entries", headers=ADMIN).json()
        return list(page["data"])

    def portfolio_of(self, customer: Customer) -> dict[str, Any]:
        response = self.portfolio.get(f"/v1/portfolios/{customer.account_id}", headers=customer.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def worker(self, payments_http: httpx.Client) -> FastAPI:
        """Another portfolio worker on the same database, reaching payments through `payments_http`."""
        return create_portfolio_app(self.settings, payments_http, reconcile_every_seconds=None)


PaymentsHandler = Callable[[httpx.Request], httpx.Response]


def forward_to(payments: TestClient) -> PaymentsHandler:
    """An httpx transport handler that passes each request on to the in-process payments app."""

    def forward(request: httpx.Request) -> httpx.Response:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name in ("authorization", "idempotency-key", "content-type")
        }
        answer = payments.request(request.method, request.url.path, headers=headers, content=request.content)
        return httpx.Response(
            answer.status_code, headers={"content-type": answer.headers["content-type"]}, content=answer.content
        )

    return forward


def payments_via(handler: PaymentsHandler) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler), base_url="http://payments")


@pytest.fixture
def make_market(make_settings: Callable[..., ServiceSettings]) -> Iterator[Callable[..., Market]]:
    """Build the two services; env overrides pick the portfolio database (`NOVA_PORTFOLIO_DB`)."""
    built: list[Market] = []

    def make(**env: str) -> Market:
        settings = make_settings(**env)
        payments = TestClient(create_payments_app(settings), base_url="http://payments")
        app = create_portfolio_app(settings, payments, reconcile_every_seconds=None)
        market = Market(payments, TestClient(app), app, settings)
        built.append(market)
        return market

    yield make
    for market in built:
        market.service.db.dispose()


@pytest.fixture
def market(make_market: Callable[..., Market]) -> Market:
    return make_market()


def lose_payment_answers(payments: TestClient) -> PaymentsHandler:
    """Payments makes each payment, but its answer never arrives: the outcome is unknown to the caller."""
    forward = forward_to(payments)

    def handle(request: httpx.Request) -> httpx.Response:
        answer = forward(request)
        if request.url.path == "/v1/payments":
            raise httpx.ReadTimeout("answer lost", request=request)
        return answer

    return handle


def refuse_payment_connections(payments: TestClient) -> PaymentsHandler:
    """Account reads get through; payments are never delivered."""
    forward = forward_to(payments)

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/payments":
            raise httpx.ConnectError("connection refused", request=request)
        return forward(request)

    return handle


def lossy_worker_app(market: Market, failure: Callable[[TestClient], PaymentsHandler]) -> FastAPI:
    """Another portfolio worker whose calls to payments fail the way `failure` says."""
    return market.worker(payments_via(failure(market.payments)))

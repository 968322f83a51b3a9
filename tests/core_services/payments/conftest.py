"""A payments service in-process and a client that speaks its API, for the test rings.

`PaymentsApi` reads like what callers do (an operator creates customers and funds
accounts, customers open accounts and pay); every call goes through HTTP, so the
tests exercise the real routes, auth, idempotency and storage.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from core_services.payments.api import create_app
from core_services.payments.schema import accounts, metadata
from core_services.problems import PROBLEM_MEDIA_TYPE
from core_services.settings import ServiceSettings

PROBLEM_FIELDS = {"type", "title", "status", "code"}


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(frozen=True, slots=True)
class StoredState:
    """Everything the service has written: row counts per table and every balance."""

    rows: dict[str, int]
    balances: dict[str, int]


class PaymentsApi:
    """The payments API as its callers use it, over one `TestClient`."""

    def __init__(self, app: FastAPI, client: TestClient, admin_headers: dict[str, str]) -> None:
        self.app = app
        self.client = client
        self.admin_headers = admin_headers

    # -- the operator ------------------------------------------------------------------------------

    def create_customer(self, name: str = "Ada Lovelace") -> Customer:
        response = self.client.post("/v1/customers", json={"name": name}, headers=self.admin_headers)
        assert response.status_code == 201, response.text
        body = response.json()
        return Customer(body["id"], body["token"])

    def deposit(self, account_id: str, amount_minor: int, *, key: str | None = None) -> httpx.Response:
        response: httpx.Response = self.client.post(
            "/v1/deposits",
            json={"account_id": account_id, "amount_minor": amount_minor},
            headers={**self.admin_headers, "Idempotency-Key": key or new_key()},
        )
        return response

    def fund(self, account_id: str, amount_minor: int) -> None:
        response = self.deposit(account_id, amount_minor)
        assert response.status_code == 201, response.text

    def verify(self) -> dict[str, Any]:
        response = self.client.get("/v1/ledger/verify", headers=self.admin_headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    # -- customers ---------------------------------------------------------------------------------

    def open_account(self, owner: Customer, currency: str = "USD") -> str:
        response = self.client.post("/v1/accounts", json={"currency": currency}, headers=owner.headers)
        assert response.status_code == 201, response.text
        account_id: str = response.json()["id"]
        return account_id

    def pay(
        self,
        payer: Customer,
        from_account: str,
        to_account: str,
        amount_minor: int,
        *,
        currency: str = "USD",
        key: str | None = None,
        reference: str | None = None,
    ) -> httpx.Response:
        body: dict[str, Any] = {
            "from_account": from_account,
            "to_account": to_account,
            "amount_minor": amount_minor,
            "currency": currency,
        }
        if reference is not None:
            body["reference"] = reference
        response: httpx.Response = self.client.post(
            "/v1/payments", json=body, headers={**payer.headers, "Idempotency-Key": key or new_key()}
        )
        return response

    def balance(self, account_id: str) -> int:
        """The balance as the operator reads it (the admin may read any customer account)."""
        response = self.client.get(f"/v1/accounts/{account_id}", headers=self.admin_headers)
        assert response.status_code == 200, response.text
        balance: int = response.json()["balance_minor"]
        return balance

    # -- what is stored ----------------------------------------------------------------------------

    def stored_state(self) -> StoredState:
        engine = self.app.state.service.db.engine
        with engine.connect() as conn:
            rows = {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in metadata.sorted_tables
            }
            balances = dict(conn.execute(select(accounts.c.id, accounts.c.balance_minor)).tuples().all())
        return StoredState(rows, {account: int(balance) for account, balance in balances.items()})


def new_key() -> str:
    return uuid.uuid4().hex


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    """An RFC 9457 problem document with the given status and stable code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_MEDIA_TYPE, response.headers
    body = response.json()
    assert set(body) >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["type"] == f"https://nova.dev/problems/{code.replace('_', '-')}"


@contextmanager
def running_service(settings: ServiceSettings, admin_headers: dict[str, str]) -> Iterator[PaymentsApi]:
    """The service in-process; its engine is disposed when the block ends, as a stopped worker's is."""
    app = create_app(settings)
    try:
        # Server errors are answered, not raised, so a test sees the 500 a client would.
        with TestClient(app, raise_server_exceptions=False) as client:
            yield PaymentsApi(app, client, admin_headers)
    finally:
        app.state.service.db.dispose()


@pytest.fixture
def settings(make_settings: Callable[..., ServiceSettings]) -> ServiceSettings:
    """The embedded default: a SQLite file in a fresh data dir."""
    return make_settings()


@pytest.fixture
def api(settings: ServiceSettings, admin_headers: dict[str, str]) -> Iterator[PaymentsApi]:
    with running_service(settings, admin_headers) as payments_api:
        yield payments_api


class FakeClock:
    """A clock that moves only when a test moves `now`."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

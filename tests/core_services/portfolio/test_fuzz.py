"""Fuzz ring: every operation of the portfolio's OpenAPI document, driven by schemathesis in-process.

The portfolio reaches a real in-process payments service, so fuzzed orders really settle.
What must hold: no server error, responses conform to the documented statuses, media
types and schemas, and the payments ledger stays balanced whatever the fuzzer ordered.
"""

from __future__ import annotations

import json
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import Case

from core_services.payments.api import create_app as create_payments_app
from core_services.portfolio.api import create_app as create_portfolio_app
from core_services.settings import ServiceSettings
from tests.conftest import ADMIN_TOKEN
from tests.core_services.payments.test_fuzz import CHECKS

EXAMPLES_PER_OPERATION = 25
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ADMIN_OPERATIONS = {("GET", "/v1/quotes"), ("GET", "/v1/quotes/{symbol}")}

SERVICE_DATA = tempfile.TemporaryDirectory(prefix="nova-portfolio-fuzz-")
SETTINGS = ServiceSettings.from_env({"NOVA_DATA_DIR": SERVICE_DATA.name, "NOVA_ADMIN_TOKEN": ADMIN_TOKEN})
PAYMENTS = TestClient(create_payments_app(SETTINGS), base_url="http://payments")
SERVICE = create_portfolio_app(SETTINGS, PAYMENTS, reconcile_every_seconds=None)

schema = schemathesis.openapi.from_asgi("/openapi.json", SERVICE)
schema.config.generation.update(max_examples=EXAMPLES_PER_OPERATION, deterministic=True, database="none")


@dataclass(frozen=True, slots=True)
class FuzzTarget:
    """A customer with a funded USD account, the account every steered request aims at."""

    customer_headers: dict[str, str]
    account_id: str

    def headers_for(self, case: Case[Any]) -> dict[str, str]:
        return ADMIN if (case.method.upper(), case.operation.path) in ADMIN_OPERATIONS else self.customer_headers

    def aim_at_real_state(self, case: Case[Any]) -> None:
        """Steer half of the valid requests at the real account, a real symbol and a fresh key."""
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return
        generated = json.dumps([case.path_parameters, case.body], sort_keys=True, default=str)
        if zlib.crc32(generated.encode()) % 2:
            return
        if case.path_parameters and "account_id" in case.path_parameters:
            case.path_parameters["account_id"] = self.account_id
        if case.path_parameters and "symbol" in case.path_parameters:
            case.path_parameters["symbol"] = "NOVA"
        if isinstance(case.body, dict):
            if isinstance(case.body.get("account_id"), str):
                case.body["account_id"] = self.account_id
            if isinstance(case.body.get("symbol"), str):
                case.body["symbol"] = "ACME"
        if case.operation.path == "/v1/orders":
            case.headers["Idempotency-Key"] = uuid.uuid4().hex


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    created = PAYMENTS.post("/v1/customers", json={"name": "fuzzed trader"}, headers=ADMIN).json()
    headers = {"Authorization": f"Bearer {created['token']}"}
    account = PAYMENTS.post("/v1/accounts", json={"currency": "USD"}, headers=headers).json()
    funded = PAYMENTS.post(
        "/v1/deposits",
        json={"account_id": account["id"], "amount_minor": 100_000_000},
        headers={**ADMIN, "Idempotency-Key": "fuzz-funding"},
    )
    assert funded.status_code == 201, funded.text
    yield FuzzTarget(headers, account["id"])
    SERVICE.state.service.db.dispose()
    SERVICE_DATA.cleanup()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_operation_answers_a_server_error_or_breaks_its_documented_contract(
    case: Case[Any], fuzz_target: FuzzTarget
) -> None:
    fuzz_target.aim_at_real_state(case)

    case.call_and_validate(headers=fuzz_target.headers_for(case), checks=CHECKS)

    if case.method.upper() == "POST":
        report = PAYMENTS.get("/v1/ledger/verify", headers=ADMIN).json()
        assert report["balanced"], report

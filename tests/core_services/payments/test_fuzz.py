"""Fuzz ring: every operation of the OpenAPI document, driven by schemathesis in-process.

What must hold for any request the document allows, and for many it does not: no
server error, every response conforms to the documented status codes, media types and
schemas, and whatever the fuzzer manages to write leaves the ledger balanced.
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
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from core_services.payments.api import create_app
from core_services.settings import ServiceSettings
from tests.conftest import ADMIN_TOKEN
from tests.core_services.payments.conftest import PaymentsApi

EXAMPLES_PER_OPERATION = 25

# The response contract plus request handling. `unsupported_method` is left to
# test_api.test_an_undeclared_method_is_405_with_an_allow_header: its failure on every
# operation would stop each operation's run before the fuzzing phase looks for 5xx.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
    missing_required_header,
    ignored_auth,
]

CUSTOMER_OPERATIONS = {("POST", "/v1/accounts"), ("POST", "/v1/payments")}
IDEMPOTENT_PATHS = {"/v1/payments", "/v1/deposits"}


# The service under fuzzing: one in-process instance over a SQLite file, shared by every
# operation's examples as a real service is shared by its callers. The folder goes with the module.
SERVICE_DATA = tempfile.TemporaryDirectory(prefix="nova-payments-fuzz-")
SERVICE = create_app(ServiceSettings.from_env({"NOVA_DATA_DIR": SERVICE_DATA.name, "NOVA_ADMIN_TOKEN": ADMIN_TOKEN}))

schema = schemathesis.openapi.from_asgi("/openapi.json", SERVICE)
schema.config.generation.update(max_examples=EXAMPLES_PER_OPERATION, deterministic=True, database="none")


@dataclass(frozen=True, slots=True)
class FuzzTarget:
    """The operator and a customer holding real, funded accounts on the fuzzed service."""

    admin_headers: dict[str, str]
    customer_headers: dict[str, str]
    funded_account: str
    other_account: str

    def headers_for(self, case: Case[Any]) -> dict[str, str]:
        # Customer-only calls are refused to the admin before they reach any logic worth fuzzing.
        if (case.method.upper(), case.operation.path) in CUSTOMER_OPERATIONS:
            return self.customer_headers
        return self.admin_headers

    def aim_at_real_state(self, case: Case[Any]) -> None:
        """Steer half of the valid requests at real accounts, a real currency and a fresh key.

        Random ids and currencies stop at 404 and 422; steered requests reach the ledger
        (settled payments, insufficient funds, replays). Only requests generated as valid
        are steered: rewriting an invalid one could make it valid.
        """
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return
        generated = json.dumps([case.path_parameters, case.query, case.body], sort_keys=True, default=str)
        if zlib.crc32(generated.encode()) % 2:
            return
        if case.path_parameters and "account_id" in case.path_parameters:
            case.path_parameters["account_id"] = self.funded_account
        if isinstance(case.body, dict):
            for name, account in (
                ("from_account", self.funded_account),
                ("to_account", self.other_account),
                ("account_id", self.funded_account),
            ):
                if isinstance(case.body.get(name), str):
                    case.body[name] = account
            if isinstance(case.body.get("currency"), str):
                case.body["currency"] = "USD"
        if case.operation.path in IDEMPOTENT_PATHS:
            case.headers["Idempotency-Key"] = uuid.uuid4().hex

    def ledger_report(self) -> dict[str, Any]:
        with TestClient(SERVICE) as client:
            report: dict[str, Any] = client.get("/v1/ledger/verify", headers=self.admin_headers).json()
        return report


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    admin_headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with TestClient(SERVICE) as client:
        api = PaymentsApi(SERVICE, client, admin_headers)
        alice = api.create_customer("Alice")
        funded, other = api.open_account(alice), api.open_account(alice)
        api.fund(funded, 1_000_000)
    yield FuzzTarget(admin_headers, alice.headers, funded, other)
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
        report = fuzz_target.ledger_report()
        assert report["balanced"], report

"""Bad input ring: every malformed or unauthorised write is a 4xx problem and writes nothing.

Each case starts from a valid request and breaks one thing; the service must refuse it
with the stated status and code, never a 5xx, and leave every table and balance as it was.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from core_services.auth import TokenAuthority
from core_services.payments.domain import MAX_AMOUNT_MINOR
from tests.core_services.payments.conftest import Customer, PaymentsApi, StoredState, assert_problem, new_key

MISSING: Any = object()
"""Marks a body field or header the request leaves out."""

ONE_MEGABYTE = b'{"padding": "' + b"x" * (1 << 20) + b'"}'


@dataclass(frozen=True, slots=True)
class World:
    """Alice with a funded and an empty account, the operator, and tokens that must not work."""

    api: PaymentsApi
    alice: Customer
    funded: str
    empty: str
    admin_token: str

    def token(self, caller: str) -> str | None:
        """The bearer credentials (the Authorization value) a case's caller sends."""
        forged_mac = self.alice.token[:-4] + ("0000" if not self.alice.token.endswith("0000") else "1111")
        return {
            "owner": f"Bearer {self.alice.token}",
            "admin": f"Bearer {self.admin_token}",
            "none": None,
            "scheme-only": "Bearer",
            "garbage": "Bearer garbage",
            "basic": "Basic YWxpY2U6c2VjcmV0",
            "forged-mac": f"Bearer {forged_mac}",
            "unknown-customer": f"Bearer {TokenAuthority(self.admin_token).issue('cus_00000000000000000000')}",
            "other-admin-key": f"Bearer {TokenAuthority('another-admin').issue(self.alice.id)}",
        }[caller]

    def stored(self) -> tuple[StoredState, dict[str, Any]]:
        return self.api.stored_state(), self.api.verify()


@dataclass(frozen=True, slots=True)
class Bad:
    """One way to break a valid request, and the problem the service must answer."""

    status: int
    code: str
    changes: dict[str, Any] = field(default_factory=dict)
    body: Any = MISSING
    raw: bytes | None = None
    caller: str | None = None
    key: Any = "fresh"

    def send(self, world: World, path: str, valid_body: dict[str, Any], default_caller: str) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        authorization = world.token(self.caller or default_caller)
        if authorization is not None:
            headers["Authorization"] = authorization
        if self.key is not MISSING:
            headers["Idempotency-Key"] = new_key() if self.key == "fresh" else self.key
        if self.raw is not None:
            content = self.raw
        else:
            body = valid_body if self.body is MISSING else self.body
            if isinstance(body, dict):
                body = {name: value for name, value in {**body, **self.changes}.items() if value is not MISSING}
            content = json.dumps(body).encode()
        response: httpx.Response = world.api.client.post(path, content=content, headers=headers)
        return response


def cases(**named: Bad) -> list[Any]:
    return [pytest.param(bad, id=name) for name, bad in named.items()]


BAD_TOKENS = {
    "no-token": Bad(401, "unauthorized", caller="none"),
    "bearer-without-token": Bad(401, "unauthorized", caller="scheme-only"),
    "garbage-token": Bad(401, "unauthorized", caller="garbage"),
    "basic-auth": Bad(401, "unauthorized", caller="basic"),
    "forged-mac": Bad(401, "unauthorized", caller="forged-mac"),
    "token-of-a-customer-that-does-not-exist": Bad(401, "unauthorized", caller="unknown-customer"),
    "token-minted-with-another-admin-key": Bad(401, "unauthorized", caller="other-admin-key"),
}

BAD_BODIES = {
    "malformed-json": Bad(400, "malformed_json", raw=b'{"amount_minor": '),
    "empty-body": Bad(422, "validation_error", raw=b""),
    "body-is-a-list": Bad(422, "validation_error", body=[{"amount_minor": 100}]),
    "body-is-null": Bad(422, "validation_error", body=None),
    "body-is-a-string": Bad(422, "validation_error", body="pay me"),
    "unknown-field": Bad(422, "validation_error", changes={"memo": "surprise"}),
    "one-megabyte-body": Bad(413, "payload_too_large", raw=ONE_MEGABYTE),
    "nested-60000-deep": Bad(422, "validation_error", raw=b"[" * 60_000),
}

BAD_AMOUNTS = {
    "amount-as-string": Bad(422, "validation_error", changes={"amount_minor": "100"}),
    "amount-as-bool": Bad(422, "validation_error", changes={"amount_minor": True}),
    "amount-null": Bad(422, "validation_error", changes={"amount_minor": None}),
    "amount-missing": Bad(422, "validation_error", changes={"amount_minor": MISSING}),
    "amount-negative": Bad(422, "validation_error", changes={"amount_minor": -100}),
    "amount-zero": Bad(422, "validation_error", changes={"amount_minor": 0}),
    "amount-fractional": Bad(422, "validation_error", changes={"amount_minor": 1.5}),
    "amount-whole-float": Bad(422, "validation_error", changes={"amount_minor": 100.0}),
    "amount-10e15": Bad(422, "validation_error", changes={"amount_minor": MAX_AMOUNT_MINOR}),
    "amount-10e30": Bad(422, "validation_error", changes={"amount_minor": 10**30}),
}

BAD_KEYS = {
    "idempotency-key-missing": Bad(400, "idempotency_key_missing", key=MISSING),
    "idempotency-key-empty": Bad(422, "validation_error", key=""),
    "idempotency-key-256-chars": Bad(422, "validation_error", key="k" * 256),
}

BAD_CURRENCIES = {
    "currency-xxx": Bad(422, "validation_error", changes={"currency": "XXX"}),
    "currency-lowercase": Bad(422, "validation_error", changes={"currency": "usd"}),
    "currency-two-letters": Bad(422, "validation_error", changes={"currency": "US"}),
    "currency-numeric-code": Bad(422, "validation_error", changes={"currency": 840}),
    "currency-missing": Bad(422, "validation_error", changes={"currency": MISSING}),
}


@pytest.fixture
def world(api: PaymentsApi, admin_headers: dict[str, str]) -> World:
    alice = api.create_customer("Alice")
    funded, empty = api.open_account(alice), api.open_account(alice)
    api.fund(funded, 10_000)
    return World(api, alice, funded, empty, admin_headers["Authorization"].removeprefix("Bearer "))


def assert_refused_and_nothing_written(
    world: World, response: httpx.Response, bad: Bad, before: tuple[StoredState, dict[str, Any]]
) -> None:
    assert response.status_code < 500, response.text
    assert_problem(response, bad.status, bad.code)
    assert world.stored() == before


@pytest.mark.parametrize(
    "bad",
    cases(
        **BAD_BODIES,
        **BAD_AMOUNTS,
        **BAD_KEYS,
        **BAD_CURRENCIES,
        **BAD_TOKENS,
        from_account_as_number=Bad(422, "validation_error", changes={"from_account": 7}),
        to_account_missing=Bad(422, "validation_error", changes={"to_account": MISSING}),
        to_account_too_long=Bad(422, "validation_error", changes={"to_account": "acc_" + "0" * 40}),
        reference_over_140_chars=Bad(422, "validation_error", changes={"reference": "r" * 141}),
        reference_as_number=Bad(422, "validation_error", changes={"reference": 42}),
    ),
)
def test_a_bad_payment_request_is_refused_and_writes_nothing(world: World, bad: Bad) -> None:
    valid = {"from_account": world.funded, "to_account": world.empty, "amount_minor": 100, "currency": "USD"}
    before = world.stored()

    response = bad.send(world, "/v1/payments", valid, default_caller="owner")

    assert_refused_and_nothing_written(world, response, bad, before)


@pytest.mark.parametrize(
    "bad",
    cases(
        **BAD_BODIES,
        **BAD_AMOUNTS,
        **BAD_KEYS,
        **BAD_TOKENS,
        customer_token=Bad(403, "forbidden", caller="owner"),
        account_id_missing=Bad(422, "validation_error", changes={"account_id": MISSING}),
        account_id_as_number=Bad(422, "validation_error", changes={"account_id": 12}),
        account_id_empty=Bad(422, "validation_error", changes={"account_id": ""}),
    ),
)
def test_a_bad_deposit_request_is_refused_and_writes_nothing(world: World, bad: Bad) -> None:
    before = world.stored()

    response = bad.send(
        world, "/v1/deposits", {"account_id": world.funded, "amount_minor": 100}, default_caller="admin"
    )

    assert_refused_and_nothing_written(world, response, bad, before)


@pytest.mark.parametrize(
    "bad",
    cases(
        **BAD_BODIES,
        **BAD_CURRENCIES,
        **BAD_TOKENS,
        admin_token=Bad(403, "forbidden", caller="admin"),
        currency_empty=Bad(422, "validation_error", changes={"currency": ""}),
    ),
)
def test_a_bad_account_request_is_refused_and_writes_nothing(world: World, bad: Bad) -> None:
    before = world.stored()

    response = bad.send(world, "/v1/accounts", {"currency": "USD"}, default_caller="owner")

    assert_refused_and_nothing_written(world, response, bad, before)


@pytest.mark.parametrize(
    "bad",
    cases(
        **BAD_BODIES,
        **BAD_TOKENS,
        customer_token=Bad(403, "forbidden", caller="owner"),
        name_missing=Bad(422, "validation_error", changes={"name": MISSING}),
        name_empty=Bad(422, "validation_error", changes={"name": ""}),
        name_over_200_chars=Bad(422, "validation_error", changes={"name": "n" * 201}),
        name_as_number=Bad(422, "validation_error", changes={"name": 42}),
        name_null=Bad(422, "validation_error", changes={"name": None}),
    ),
)
def test_a_bad_customer_request_is_refused_and_writes_nothing(world: World, bad: Bad) -> None:
    before = world.stored()

    response = bad.send(world, "/v1/customers", {"name": "Bob"}, default_caller="admin")

    assert_refused_and_nothing_written(world, response, bad, before)


def test_a_payment_naming_a_key_twice_is_422_and_pays_neither_amount(world: World) -> None:
    before = world.stored()
    raw = (
        f'{{"from_account": "{world.funded}", "to_account": "{world.empty}", "currency": "USD",'
        ' "amount_minor": 1, "amount_minor": 5000}'
    )
    response = Bad(422, "validation_error", raw=raw.encode()).send(world, "/v1/payments", {}, default_caller="owner")

    assert_refused_and_nothing_written(world, response, Bad(422, "validation_error"), before)
    assert "amount_minor" in response.json()["detail"]


def test_a_one_megabyte_body_streamed_without_a_length_is_413_and_writes_nothing(world: World) -> None:
    before = world.stored()

    def chunks() -> Iterator[bytes]:
        for offset in range(0, len(ONE_MEGABYTE), 64 * 1024):
            yield ONE_MEGABYTE[offset : offset + 64 * 1024]

    response = world.api.client.post(
        "/v1/customers", content=chunks(), headers={**world.api.admin_headers, "Content-Type": "application/json"}
    )

    assert_problem(response, 413, "payload_too_large")
    assert world.stored() == before


def cursor_for(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 501},
        {"limit": -1},
        {"limit": "ten"},
        {"cursor": "!!!"},
        {"cursor": "c" * 65},
        {"cursor": cursor_for("not a number")},
        {"cursor": cursor_for(str(2**63))},
        {"cursor": cursor_for("9" * 40)},
    ],
    ids=[
        "limit-0",
        "limit-501",
        "limit-negative",
        "limit-word",
        "cursor-not-base64",
        "cursor-65-chars",
        "cursor-not-a-number",
        "cursor-past-int64",
        "cursor-40-digits",
    ],
)
def test_a_bad_entries_query_is_422_never_a_server_error(world: World, params: dict[str, Any]) -> None:
    response = world.api.client.get(f"/v1/accounts/{world.funded}/entries", params=params, headers=world.alice.headers)

    assert_problem(response, 422, "validation_error")

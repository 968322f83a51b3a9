"""HTTP entry point of the payments service: translates requests to use cases and back."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.responses import Response
from starlette.types import Scope

from core_services.auth import Principal, TokenAuthority
from core_services.currencies import ISO_4217
from core_services.database import Database
from core_services.fast_lane import add_fast_lane, bearer_in
from core_services.fault_api import add_fault_routes
from core_services.faults import FaultBoard
from core_services.http import (
    IdempotencyKey,
    StrictBody,
    add_health_routes,
    bearer,
    bearer_token,
    build_app,
    idempotent_response,
    instrument,
)
from core_services.idempotency import check_idempotency_key
from core_services.ids import WELL_FORMED
from core_services.payments.domain import MAX_AMOUNT_MINOR, StoredResponse
from core_services.payments.service import PaymentsService
from core_services.problems import ALWAYS_ERRORS, BODY_ERRORS, IDEMPOTENCY_ERRORS, error_responses
from core_services.ratelimit import RateLimiter
from core_services.settings import ServiceSettings
from core_services.telemetry import record_payment
from instrumentation.metrics import observe_database_pool

# Identifiers and free text never carry control characters (PostgreSQL refuses NUL in text).
AccountId = Annotated[str, Field(pattern=f"^{WELL_FORMED.pattern}$", description="An account id, acc_…")]
PrintableText = r"^[^\x00-\x1f\x7f]*$"
AmountMinor = Annotated[int, Field(gt=0, lt=MAX_AMOUNT_MINOR, description="Integer minor units, e.g. cents")]


class CurrencyCode(StrictBody):
    currency: Annotated[str, Field(description="ISO 4217 code", json_schema_extra={"enum": sorted(ISO_4217)})]

    @field_validator("currency")
    @classmethod
    def _iso_4217(cls, value: str) -> str:
        if value not in ISO_4217:
            raise ValueError(f"{value} is not an ISO 4217 currency code")
        return value


class NewCustomer(StrictBody):
    name: Annotated[str, Field(min_length=1, max_length=200, pattern=PrintableText)]


class Customer(BaseModel):
    id: str
    name: str
    token: str = Field(description="Shown once; only its hash is stored")


class NewAccount(CurrencyCode):
    pass


class NewToken(BaseModel):
    token: str = Field(description="Shown once; only its hash is stored")


class RevocationsOut(BaseModel):
    revoked_before_ms: dict[str, int] = Field(
        description="Per revoked customer: its tokens issued at or before this instant (ms since the epoch) fail"
    )


class AccountOut(BaseModel):
    id: str
    currency: str
    balance_minor: int


class NewDeposit(StrictBody):
    account_id: AccountId
    amount_minor: AmountMinor


class DepositOut(BaseModel):
    id: str
    status: str
    account_id: str
    amount_minor: int
    currency: str
    created_at: str


class NewPayment(CurrencyCode):
    from_account: AccountId
    to_account: AccountId
    amount_minor: AmountMinor
    reference: Annotated[str | None, Field(max_length=140, pattern=PrintableText)] = None


class PaymentOut(BaseModel):
    id: str
    status: str
    from_account: str
    to_account: str
    amount_minor: int
    currency: str
    reference: str | None
    created_at: str
    kind: str | None = None


class EntryOut(BaseModel):
    id: int
    payment_id: str
    amount_minor: int
    currency: str
    created_at: str


class EntriesPage(BaseModel):
    data: list[EntryOut]
    next_cursor: str | None


class LedgerVerificationOut(BaseModel):
    balanced: bool
    sum_minor: dict[str, int]
    negative_accounts: int
    payments: int
    entries: int
    mismatched_balances: int


async def _caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    return await _principal(request.app.state.service, request.app.state.limiter, bearer_token(credentials))


async def _principal(service: PaymentsService, limiter: RateLimiter, token: str | None) -> Principal:
    """The authenticated caller, admitted by the rate limiter."""
    principal = service.known_caller(token)
    if principal is None:
        principal = await service.db.offload(service.authenticate, token)
    if service.revocations_refresh_due():
        _in_background(service.db.offload(service.refresh_revocations))
    limiter.admit(principal.rate_bucket)
    return principal


_BACKGROUND: set[asyncio.Task[None]] = set()


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` beside the request. A failure is dropped: the next request past the grace reads
    the database itself and answers for it."""
    task = asyncio.get_running_loop().create_task(work)
    _BACKGROUND.add(task)  # the loop keeps only a weak reference
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[None]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


Caller = Annotated[Principal, Depends(_caller)]


def worker_app() -> FastAPI:
    """The app of one server worker: settings from the environment, schema already migrated."""
    return create_app(migrate=False)


def create_app(settings: ServiceSettings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or ServiceSettings.from_env()
    faults = FaultBoard(settings.data_dir, "payments") if settings.enable_faults else None
    db = Database(settings.payments_db, pool_size=settings.db_pool_size, faults=faults)
    service = PaymentsService(db, TokenAuthority(settings.admin_token))
    if migrate:
        service.prepare()
    limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app = build_app(
        "Nova Payments",
        "Accounts, a double-entry ledger and idempotent payments.",
        settings.max_body_bytes,
        service="payments",
        telemetry=settings.telemetry,
        faults=faults,
    )
    observe_database_pool("payments", db.engine)
    instrument(app, "payments", settings.data_dir, settings.telemetry)
    app.state.service = service
    app.state.limiter = limiter

    @app.post(
        "/v1/customers",
        status_code=201,
        response_model=Customer,
        tags=["customers"],
        summary="Create a customer (admin); the token is shown once",
        responses=error_responses(*ALWAYS_ERRORS, *BODY_ERRORS, "forbidden"),
    )
    async def create_customer(body: NewCustomer, principal: Caller) -> Any:
        return await db.offload(service.create_customer, principal, body.name)

    @app.delete(
        "/v1/customers/{customer_id}/tokens",
        status_code=204,
        response_class=Response,
        tags=["customers"],
        summary="Revoke every token of a customer (admin); both services refuse them within 1 s",
        responses=error_responses(*ALWAYS_ERRORS, "forbidden", "not_found"),
    )
    async def revoke_tokens(customer_id: str, principal: Caller) -> Response:
        await db.offload(service.revoke_tokens, principal, customer_id)
        return Response(status_code=204)

    @app.post(
        "/v1/customers/{customer_id}/tokens",
        status_code=201,
        response_model=NewToken,
        tags=["customers"],
        summary="Issue the customer a new token (admin); shown once",
        responses=error_responses(*ALWAYS_ERRORS, "forbidden", "not_found"),
    )
    async def issue_token(customer_id: str, principal: Caller) -> Any:
        return await db.offload(service.issue_token, principal, customer_id)

    @app.get(
        "/v1/tokens/revocations",
        response_model=RevocationsOut,
        tags=["customers"],
        summary="Revoked customers and since when (admin, services): what the portfolio honours",
        responses=error_responses(*ALWAYS_ERRORS, "forbidden"),
    )
    async def revocations(principal: Caller) -> Any:
        return await db.offload(service.revocations, principal)

    @app.post(
        "/v1/accounts",
        status_code=201,
        response_model=AccountOut,
        tags=["accounts"],
        summary="Open an account for the calling customer",
        responses=error_responses(*ALWAYS_ERRORS, *BODY_ERRORS, "forbidden"),
    )
    async def open_account(body: NewAccount, principal: Caller) -> Any:
        return await db.offload(service.open_account, principal, body.currency)

    @app.get(
        "/v1/accounts/{account_id}",
        response_model=AccountOut,
        tags=["accounts"],
        responses=error_responses(*ALWAYS_ERRORS, "account_not_found", "validation_error"),
    )
    async def get_account(account_id: str, principal: Caller) -> Any:
        return await db.offload(service.account, principal, account_id)

    @app.get(
        "/v1/accounts/{account_id}/entries",
        response_model=EntriesPage,
        tags=["accounts"],
        summary="Ledger entries, newest first",
        responses=error_responses(*ALWAYS_ERRORS, "account_not_found", "validation_error"),
    )
    async def list_entries(
        account_id: str,
        principal: Caller,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Any:
        return await db.offload(service.entries, principal, account_id, cursor, limit)

    @app.post(
        "/v1/deposits",
        status_code=201,
        response_model=DepositOut,
        tags=["payments"],
        summary="Fund an account from the platform's funding account (admin)",
        responses=error_responses(
            *ALWAYS_ERRORS,
            *BODY_ERRORS,
            *IDEMPOTENCY_ERRORS,
            "forbidden",
            "account_not_found",
            "balance_limit_exceeded",
        ),
    )
    async def deposit(body: NewDeposit, principal: Caller, idempotency_key: IdempotencyKey) -> Any:
        key = check_idempotency_key(idempotency_key)
        return _answer("deposit", *await db.offload(service.deposit, principal, key, body.model_dump()))

    @app.post(
        "/v1/payments",
        status_code=201,
        response_model=PaymentOut,
        tags=["payments"],
        summary="Move money from an account the caller owns",
        responses=error_responses(
            *ALWAYS_ERRORS,
            *BODY_ERRORS,
            *IDEMPOTENCY_ERRORS,
            "account_not_found",
            "insufficient_funds",
            "balance_limit_exceeded",
            "currency_mismatch",
            "same_account",
        ),
    )
    async def pay(body: NewPayment, principal: Caller, idempotency_key: IdempotencyKey) -> Any:
        key = check_idempotency_key(idempotency_key)
        return _answer("payment", *await db.offload(service.pay, principal, key, body.model_dump()))

    @app.get(
        "/v1/payments/{payment_id}",
        response_model=PaymentOut,
        tags=["payments"],
        responses=error_responses(*ALWAYS_ERRORS, "payment_not_found", "validation_error"),
    )
    async def get_payment(payment_id: str, principal: Caller) -> Any:
        return await db.offload(service.payment, principal, payment_id)

    @app.get(
        "/v1/ledger/verify",
        response_model=LedgerVerificationOut,
        tags=["ledger"],
        summary="Check the double-entry invariants (admin)",
        responses=error_responses(*ALWAYS_ERRORS, "forbidden"),
    )
    async def verify(principal: Caller) -> Any:
        return (await db.offload(service.verify, principal)).as_json()

    async def pay_lane(_scope: Scope, headers: dict[bytes, str], document: Any) -> Response | None:
        """POST /v1/payments without FastAPI's dependency solving: the same checks, in the same functions."""
        token = bearer_in(headers)
        if token is None:
            return None
        try:
            body = NewPayment.model_validate(document)
        except ValidationError:
            return None
        principal = await _principal(service, limiter, token)
        key = check_idempotency_key(headers[b"idempotency-key"])
        return _answer("payment", *await db.offload(service.pay, principal, key, body.model_dump()))

    async def account_lane(scope: Scope, headers: dict[bytes, str], _document: Any) -> Response | None:
        """GET /v1/accounts/{account_id}, the read behind every portfolio view, without FastAPI's layers."""
        token = bearer_in(headers)
        if token is None:
            return None
        principal = await _principal(service, limiter, token)
        account = await db.offload(service.account, principal, scope["path_params"]["account_id"])
        return JSONResponse(account)

    add_fast_lane(app, "POST", "/v1/payments", (b"authorization", b"idempotency-key"), pay_lane)
    add_fast_lane(app, "GET", "/v1/accounts/{account_id}", (b"authorization",), account_lane, json_body=False)
    add_health_routes(app, service.db.ping)
    if faults is not None:
        add_fault_routes(app, faults, settings.admin_token)
    return app


def _answer(kind: str, response: StoredResponse, replayed: bool) -> JSONResponse:
    record_payment(kind, response.status, response.body, replayed)
    return idempotent_response(response.status, response.body, replayed)

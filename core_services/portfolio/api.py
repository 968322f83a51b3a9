"""HTTP entry point of the portfolio service: translates requests to use cases and back."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, Literal, NamedTuple

import httpx
from fastapi import Depends, FastAPI, Path, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Scope

from core_services.auth import Principal, TokenAuthority
from core_services.database import Database
from core_services.fast_lane import add_fast_lane, bearer_in
from core_services.fault_api import add_fault_routes
from core_services.faults import FaultBoard
from core_services.http import (
    IdempotencyKey,
    StrictBody,
    ThreadLane,
    add_health_routes,
    bearer,
    bearer_token,
    build_app,
    idempotent_response,
    instrument,
)
from core_services.idempotency import check_idempotency_key
from core_services.portfolio.domain import MAX_QUANTITY, StoredResponse
from core_services.portfolio.payments_client import PaymentsClient, new_payments_http
from core_services.portfolio.reconciler import RECONCILE_EVERY_SECONDS, Reconciler
from core_services.portfolio.revocations import RevocationList
from core_services.portfolio.service import PortfolioService
from core_services.problems import (
    ALWAYS_ERRORS,
    BODY_ERRORS,
    IDEMPOTENCY_ERRORS,
    Problem,
    error_responses,
)
from core_services.ratelimit import RateLimiter
from core_services.settings import ServiceSettings
from core_services.telemetry import record_order
from instrumentation.metrics import observe_database_pool

log = logging.getLogger("nova.portfolio")

AccountId = Annotated[str, Field(min_length=1, max_length=32)]
ACCOUNT_PATH_MAX = 64
# Quotes never call payments: they get threads of their own, never stuck behind orders (which do).
QUOTES_LANE = ThreadLane("quotes", 4)


class NewOrder(StrictBody):
    account_id: AccountId
    symbol: Annotated[str, Field(min_length=1, max_length=12, description="A symbol from GET /v1/quotes")]
    side: Literal["buy", "sell"]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY, description="Whole shares")]


class QuoteOut(BaseModel):
    symbol: str
    price_minor: int = Field(description="Integer minor units, e.g. cents")
    currency: str
    as_of: str


class QuotesOut(BaseModel):
    data: list[QuoteOut]


class OrderOut(BaseModel):
    id: str
    status: str
    account_id: str
    symbol: str
    side: str
    quantity: int
    price_minor: int
    amount_minor: int
    payment_id: str | None
    created_at: str


class PositionOut(BaseModel):
    symbol: str
    quantity: int
    cost_basis_minor: int
    price_minor: int
    market_value_minor: int
    unrealised_pnl_minor: int


class PortfolioOut(BaseModel):
    account_id: str
    currency: str
    cash_minor: int
    positions: list[PositionOut]
    market_value_minor: int
    unrealised_pnl_minor: int
    total_value_minor: int


class Caller(NamedTuple):
    """The authenticated caller and its token, which account reads forward to payments."""

    principal: Principal
    token: str


async def _caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    return await _admitted(request.app, bearer_token(credentials))


async def _admitted(app: FastAPI, token: str | None) -> Caller:
    """No database, no network: checked on the event loop, so no caller waits for a thread to be told 401."""
    principal: Principal = app.state.service.authenticate(token)
    await app.state.revocations.check(principal)
    app.state.limiter.admit(principal.rate_bucket)
    return Caller(principal, token or "")


Authenticated = Annotated[Caller, Depends(_caller)]


def worker_app() -> FastAPI:
    """The app of one server worker: settings from the environment, schema already migrated."""
    return create_app(migrate=False)


def create_app(
    settings: ServiceSettings | None = None,
    payments_http: httpx.Client | None = None,
    *,
    migrate: bool = True,
    reconcile_every_seconds: float | None = RECONCILE_EVERY_SECONDS,
) -> FastAPI:
    """The portfolio app; `payments_http` reaches payments (a pool to `settings.payments_url` if None).

    `reconcile_every_seconds=None` runs no background reconciler (tests drive it by hand).
    """
    settings = settings or ServiceSettings.from_env()
    faults = FaultBoard(settings.data_dir, "portfolio") if settings.enable_faults else None
    owns_http = payments_http is None
    http = payments_http if payments_http is not None else new_payments_http(settings.payments_url)
    tokens = TokenAuthority(settings.admin_token)
    payments = PaymentsClient(http, tokens.service_token("portfolio"), faults=faults)
    service = PortfolioService(
        Database(settings.portfolio_db, pool_size=settings.db_pool_size, faults=faults),
        tokens,
        payments,
        settings.market_seed,
    )
    if migrate:
        service.prepare()
    app = build_app(
        "Nova Portfolio",
        "Quotes, orders settled through the payments API, and portfolios.",
        settings.max_body_bytes,
        service="portfolio",
        telemetry=settings.telemetry,
        faults=faults,
    )
    observe_database_pool("portfolio", service.db.engine)
    instrument(app, "portfolio", settings.data_dir, settings.telemetry)
    app.state.service = service
    app.state.limiter = RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
    app.state.revocations = RevocationList(payments.revocations)
    app.router.lifespan_context = _lifespan(service, reconcile_every_seconds, owns_http)
    _add_routes(app, service)
    _add_fast_lanes(app, service)
    add_health_routes(app, service.db.ping)
    if faults is not None:  # after the lifespan is set: the fault API wraps it
        add_fault_routes(app, faults, settings.admin_token)
    return app


def _add_routes(app: FastAPI, service: PortfolioService) -> None:
    @app.get(
        "/v1/quotes",
        response_model=QuotesOut,
        tags=["quotes"],
        summary="Every symbol's current price",
        responses=error_responses(*ALWAYS_ERRORS),
    )
    async def list_quotes(caller: Authenticated) -> Any:
        return {"data": await QUOTES_LANE.run(service.quotes)}

    @app.get(
        "/v1/quotes/{symbol}",
        response_model=QuoteOut,
        tags=["quotes"],
        summary="A symbol's current price from the market simulator",
        responses=error_responses(*ALWAYS_ERRORS, "unknown_symbol"),
    )
    async def get_quote(symbol: str, caller: Authenticated) -> Any:
        return await QUOTES_LANE.run(service.quote, symbol)

    @app.post(
        "/v1/orders",
        status_code=201,
        response_model=OrderOut,
        tags=["orders"],
        summary="Buy or sell at the current price; cash moves through the payments API",
        responses=error_responses(
            *ALWAYS_ERRORS,
            *BODY_ERRORS,
            *IDEMPOTENCY_ERRORS,
            "forbidden",
            "account_not_found",
            "unknown_symbol",
            "currency_mismatch",
            "insufficient_funds",
            "insufficient_position",
            "payment_rejected",
            "payments_unavailable",
        ),
    )
    def place_order(body: NewOrder, caller: Authenticated, idempotency_key: IdempotencyKey) -> Any:
        key = check_idempotency_key(idempotency_key)
        return _answer(body.side, *service.place_order(caller.principal, caller.token, key, body.model_dump()))

    @app.get(
        "/v1/portfolios/{account_id}",
        response_model=PortfolioOut,
        tags=["portfolios"],
        summary="Positions, cash, market value and unrealised P&L of an account the caller owns",
        responses=error_responses(
            *ALWAYS_ERRORS, "forbidden", "account_not_found", "validation_error", "payments_unavailable"
        ),
    )
    def get_portfolio(
        account_id: Annotated[str, Path(min_length=1, max_length=ACCOUNT_PATH_MAX)], caller: Authenticated
    ) -> Any:
        return service.portfolio(caller.principal, caller.token, account_id)


def _add_fast_lanes(app: FastAPI, service: PortfolioService) -> None:
    """The trading load's two routes without FastAPI's dependency solving and response model:
    the same checks, in the same functions, in the same thread pool as the routes."""

    async def order_lane(_scope: Scope, headers: dict[bytes, str], document: Any) -> Response | None:
        token = bearer_in(headers)
        if token is None:
            return None
        try:
            body = NewOrder.model_validate(document)
        except ValidationError:
            return None
        caller = await _admitted(app, token)
        key = check_idempotency_key(headers[b"idempotency-key"])
        placed = await run_in_threadpool(service.place_order, caller.principal, caller.token, key, body.model_dump())
        return _answer(body.side, *placed)

    async def portfolio_lane(scope: Scope, headers: dict[bytes, str], _document: Any) -> Response | None:
        token = bearer_in(headers)
        account_id = scope["path_params"]["account_id"]
        if token is None or len(account_id) > ACCOUNT_PATH_MAX:
            return None
        caller = await _admitted(app, token)
        return JSONResponse(await run_in_threadpool(service.portfolio, caller.principal, caller.token, account_id))

    add_fast_lane(app, "POST", "/v1/orders", (b"authorization", b"idempotency-key"), order_lane)
    add_fast_lane(app, "GET", "/v1/portfolios/{account_id}", (b"authorization",), portfolio_lane, json_body=False)


def _lifespan(
    service: PortfolioService, reconcile_every_seconds: float | None, owns_http: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Warmed aside: the worker answers at once, and a symbol still warming only waits for itself.
        threading.Thread(target=_warm_market, args=(service,), name="market-warm-up", daemon=True).start()
        reconciler = Reconciler(service, reconcile_every_seconds) if reconcile_every_seconds else None
        if reconciler:
            reconciler.start()
        try:
            yield
        finally:
            if reconciler:
                reconciler.stop()
            if owns_http:
                service.payments.close()
            service.db.dispose()

    return lifespan


def _warm_market(service: PortfolioService) -> None:
    try:
        service.market.warm()
    except Problem as problem:
        # The database is down; the first quote will start the market instead.
        log.warning("market not warmed: %s", problem)


def _answer(side: str, response: StoredResponse, replayed: bool) -> JSONResponse:
    record_order(side, response.status, response.body, replayed)
    return idempotent_response(response.status, response.body, replayed)

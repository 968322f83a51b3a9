"""What both services' HTTP entry points share: body limits, error shapes, OpenAPI, health, injected faults."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI, Header, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core_services.faults import FaultBoard
from core_services.problems import PROBLEM_MEDIA_TYPE, Problem, install_problem_handlers, problem_schema
from core_services.telemetry import record_fault
from instrumentation.asgi import ServerSpans
from instrumentation.asgi_metrics import RequestMetrics
from instrumentation.metrics import exposition
from instrumentation.tracing import configure_tracing

log = logging.getLogger("nova.http")
T = TypeVar("T")

IdempotencyKey = Annotated[
    str, Header(alias="Idempotency-Key", description="1 to 255 printable ASCII characters, one per intended operation")
]


class StrictBody(BaseModel):
    """Request bodies: unknown fields and loose types (\"10\" for 10, 1.0 for 1) are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return document


def parse_json_body(raw: bytes) -> Any:
    """A request body as JSON, held to what the API promises its callers.

    A key twice in one object is refused (json.loads would keep the last, so
    `"amount_minor":1,"amount_minor":999999` would pay the second), and so is nesting
    deeper than the parser's recursion limit (`[` x 60,000): both 422. Other broken
    JSON raises `json.JSONDecodeError` (a ValueError), as json.loads does.
    """
    try:
        return json.loads(raw, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as duplicate:
        raise Problem("validation_error", f"key {duplicate.key!r} appears twice in one object") from None
    except RecursionError:
        raise Problem("validation_error", "the body is nested too deeply") from None


class _RefusedBody(StarletteHTTPException):
    """A body `parse_json_body` refused; FastAPI lets HTTP exceptions through its body reading untouched."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status)
        self.problem = problem


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json_body(await self.body())
            except Problem as problem:
                raise _RefusedBody(problem) from None
        return self._json


class StrictJsonRoute(APIRoute):
    """Every route of the services reads its JSON body through `parse_json_body`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJsonRequest(request.scope, request.receive))

        return strict


bearer = HTTPBearer(auto_error=False, description="Admin token or a customer token from POST /v1/customers")


def bearer_token(credentials: HTTPAuthorizationCredentials | None) -> str | None:
    return credentials.credentials if credentials else None


class BodySizeLimit:
    """Refuse bodies over `max_bytes` with 413 before the app reads them into memory."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            problem = Problem("payload_too_large", f"bodies are limited to {self.max_bytes} bytes")
            await problem.response(scope.get("path"))(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise StarletteHTTPException(413)
            return message

        await self.app(scope, limited, send)


# Faults touch the API only: health, metrics and the fault API itself must keep answering.
API_PREFIX = "/v1/"


class FaultInjection:
    """Injected request latency and errors (`latency`, `error_rate`), before the route runs.

    An injected error is answered before the request reaches its handler, so it never
    leaves half a write. It sits inside the metrics and tracing middlewares: what it
    injects is measured and traced like real trouble, and the SLOs see it.
    """

    def __init__(self, app: ASGIApp, board: FaultBoard) -> None:
        self.app = app
        self.board = board

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        faults = self.board.current()
        if not faults or scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        rng = self.board.random
        latency = faults.latency
        if latency is not None and latency.applies_to(path) and rng.random() < latency.probability:
            record_fault("latency")
            await asyncio.sleep(latency.delay_seconds(rng))
        error = faults.error_rate
        if error is not None and error.applies_to(path) and rng.random() < error.rate:
            record_fault("error_rate")
            problem = Problem("fault_injected", "the error_rate fault is on", status=error.status)
            await problem.response(path)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def build_app(
    title: str,
    description: str,
    max_body_bytes: int,
    *,
    service: str,
    telemetry: str = "suite",
    faults: FaultBoard | None = None,
) -> FastAPI:
    """The shared app; `service` ("payments", "portfolio") labels its metrics.

    `telemetry` other than "suite" leaves the suite's middlewares out (see `instrument`).
    `faults` (only with fault injection enabled) adds the request fault hooks.
    """
    app = FastAPI(title=title, description=description, version="1.0.0", docs_url=None, redoc_url=None)
    app.router.route_class = StrictJsonRoute
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    if faults is not None:
        app.add_middleware(FaultInjection, board=faults)
    # Outside the body limit (a 413 is a request served), inside tracing (its span is the exemplar).
    if telemetry == "suite":
        app.add_middleware(RequestMetrics, service=service)
        app.add_middleware(ServerSpans)  # added last: the outermost, so every layer runs inside the request's span
    _add_metrics_route(app)

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return Problem("internal_error").response(request.url.path)

    async def on_refused_body(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, _RefusedBody)
        return exc.problem.response(request.url.path)

    app.add_exception_handler(_RefusedBody, on_refused_body)
    app.add_exception_handler(Exception, on_crash)
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    return app


class ThreadLane:
    """A few threads of its own for blocking work that must not queue behind the shared pool.

    Sync routes share one pool (anyio's, 40 threads); orders waiting on a slow payments
    service can fill it. What operators and traders need meanwhile (readiness, quotes)
    runs here instead. The request's context (its trace) goes along.
    """

    def __init__(self, name: str, threads: int) -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=name)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, functools.partial(context.run, work, *args)
        )


HEALTH_LANE = ThreadLane("health", 2)


def add_health_routes(app: FastAPI, ready: Callable[[], bool]) -> None:
    unavailable: dict[int | str, dict[str, Any]] = {
        503: {
            "description": "`database_unavailable`",
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    }

    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: the database answers", responses=unavailable)
    async def readyz() -> Any:
        if not await HEALTH_LANE.run(ready):
            raise Problem("database_unavailable", headers={"Retry-After": "1"})
        return {"status": "ready"}


def idempotent_response(status: int, body: dict[str, Any], replayed: bool) -> JSONResponse:
    """The stored answer to an idempotent request, marked when it is a replay of the first."""
    headers = {"Idempotent-Replayed": "true"} if replayed else {}
    media_type = PROBLEM_MEDIA_TYPE if status >= 400 else "application/json"
    return JSONResponse(body, status_code=status, headers=headers, media_type=media_type)


def instrument(app: FastAPI, service: str, data_dir: Path, telemetry: str) -> None:
    """Set up the process's tracing for the app: the suite's, none, or the stock FastAPI one."""
    if telemetry == "off":
        return
    app.state.tracing = configure_tracing(service, data_dir)
    if telemetry == "stock":
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, tracer_provider=app.state.tracing.provider)


def _add_metrics_route(app: FastAPI) -> None:
    exposition_formats: dict[int | str, dict[str, Any]] = {
        200: {
            "description": "Text format 0.0.4, or OpenMetrics 1.0 (with trace-id exemplars) when Accept asks for it",
            "content": {
                "text/plain": {"schema": {"type": "string"}},
                "application/openmetrics-text": {"schema": {"type": "string"}},
            },
        }
    }

    # Not async: in multiprocess mode a scrape reads every worker's files, off the event loop.
    @app.get(
        "/metrics",
        tags=["health"],
        summary="Prometheus metrics of every worker of the service",
        response_class=Response,
        responses=exposition_formats,
    )
    def metrics(request: Request) -> Response:
        body, content_type = exposition(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)


def _openapi_with_problems(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = problem_schema()
        app.openapi_schema = schema
    return app.openapi_schema

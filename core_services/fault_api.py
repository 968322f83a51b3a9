"""The admin fault API: what game days and load tests call to turn a service's faults on and off.

It exists only when the service runs with fault injection enabled (`nova serve
--enable-faults`, `NOVA_ENABLE_FAULTS=1`), answers only loopback clients, and needs the
admin token. Chaos experiments reach it over HTTP, never by importing the services:

- `PUT /admin/faults/{name}` with the fault's settings turns it on, or replaces it,
  until `ttl_seconds` from now; 200 with the fault as `GET` shows it.
- `PUT /admin/faults/worker_kill` (`{"signal": "SIGKILL"}`) kills the worker that
  receives it, just after answering 202; the supervisor starts a replacement.
- `DELETE /admin/faults/{name}` turns one off, `DELETE /admin/faults` all; 204 either way.
- `GET /admin/faults`: the faults on now, each with its settings and seconds left.

The model and the shared state are `core_services.faults`; this module only translates.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field, ValidationError

from core_services.auth import TokenAuthority, require_admin
from core_services.faults import WORKER_KILL, ActiveFault, CpuBurner, FaultBoard, LastingFault, WorkerKill
from core_services.http import API_PREFIX, bearer, bearer_token, parse_json_body
from core_services.problems import PROBLEM_MEDIA_TYPE, Problem, error_responses
from core_services.telemetry import FAULTS_ACTIVE

# Long enough for the 202 to leave the socket before the worker dies.
KILL_DELAY_SECONDS = 0.1
# Looked up at call time, so tests can stand in for it.
kill: Callable[[int, int], None] = os.kill

_OPERATOR_ERRORS = ("unauthorized", "forbidden")


class FaultOut(BaseModel):
    name: str
    settings: dict[str, Any] = Field(description="The settings as given, defaults filled in")
    expires_at: str = Field(description="RFC 3339, UTC: when the fault ends by itself")
    seconds_left: float


class FaultsOut(BaseModel):
    service: str
    faults: list[FaultOut]


class WorkerKillOut(BaseModel):
    name: str
    pid: int = Field(description="The worker process that will be killed")
    signal: str


def add_fault_routes(app: FastAPI, board: FaultBoard, admin_token: str) -> None:
    """Serve the fault API on `app`, report the board as `nova_fault_active`, and run the CPU burner."""
    tokens = TokenAuthority(admin_token)

    async def operator(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> None:
        client = request.client
        if client is None or not _is_loopback(client.host):
            raise Problem("forbidden", "the fault API answers loopback clients only")
        require_admin(tokens.authenticate(bearer_token(credentials))[0])

    operators_only = [Depends(operator)]
    names = sorted(board.kinds)

    @app.get(
        "/admin/faults",
        response_model=FaultsOut,
        tags=["faults"],
        summary="The faults on now, with the seconds each has left",
        dependencies=operators_only,
        responses=error_responses(*_OPERATOR_ERRORS),
    )
    def list_faults() -> Any:
        now = board.now()
        return {"service": board.service, "faults": [fault.as_json(now) for fault in board.current()]}

    @app.put(
        f"/admin/faults/{WORKER_KILL}",
        status_code=202,
        response_model=WorkerKillOut,
        tags=["faults"],
        summary="Kill the worker that receives this, just after answering; the supervisor replaces it",
        dependencies=operators_only,
        responses=error_responses(*_OPERATOR_ERRORS, "malformed_json", "validation_error"),
    )
    async def worker_kill(body: WorkerKill) -> Any:
        pid = os.getpid()
        asyncio.get_running_loop().call_later(KILL_DELAY_SECONDS, _kill, pid, signal.Signals[body.signal])
        return {"name": WORKER_KILL, "pid": pid, "signal": body.signal}

    @app.put(
        "/admin/faults/{name}",
        response_model=FaultOut,
        tags=["faults"],
        summary="Turn a fault on (or replace it) until ttl_seconds from now",
        description=f"`name` is one of {', '.join(f'`{name}`' for name in names)}; the body is its settings.",
        dependencies=operators_only,
        responses=error_responses(*_OPERATOR_ERRORS, "fault_not_found", "malformed_json", "validation_error"),
        openapi_extra={"requestBody": _settings_schema(board)},
    )
    async def put_fault(name: str, request: Request) -> Any:
        kind = _kind(board, name)
        settings = _parse(kind, await request.body())
        _check_route(app, settings)
        fault: ActiveFault = board.put(name, settings)
        return fault.as_json(board.now())

    @app.delete(
        "/admin/faults/{name}",
        status_code=204,
        response_class=Response,
        tags=["faults"],
        summary="Turn one fault off (whether or not it was on)",
        dependencies=operators_only,
        responses=error_responses(*_OPERATOR_ERRORS, "fault_not_found"),
    )
    def delete_fault(name: str) -> Response:
        _kind(board, name)
        board.remove(name)
        return Response(status_code=204)

    @app.delete(
        "/admin/faults",
        status_code=204,
        response_class=Response,
        tags=["faults"],
        summary="Turn every fault off",
        dependencies=operators_only,
        responses=error_responses(*_OPERATOR_ERRORS),
    )
    def clear_faults() -> Response:
        board.clear()
        return Response(status_code=204)

    FAULTS_ACTIVE.observe(board.service, board.gauge_samples)
    app.router.lifespan_context = _burning_cpu(board, app.router.lifespan_context)
    _document_injected_errors(app)


def _kill(pid: int, signum: int) -> None:
    kill(pid, signum)


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _kind(board: FaultBoard, name: str) -> type[LastingFault]:
    kind = board.kinds.get(name)
    if kind is None:
        known = ", ".join([*sorted(board.kinds), WORKER_KILL])
        raise Problem("fault_not_found", f"{board.service} has no lasting fault {name!r}; it has {known}")
    return kind


def _parse(kind: type[LastingFault], raw: bytes) -> LastingFault:
    """The body as `kind`'s settings; errors in the shape every other route gives them."""
    try:
        document = parse_json_body(raw)
    except ValueError:
        raise Problem("malformed_json") from None
    try:
        return kind.model_validate(document)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


def _check_route(app: FastAPI, settings: LastingFault) -> None:
    """A fault aimed at a route must name one of the service's API routes: a typo would silently do nothing."""
    route = getattr(settings, "route", None)
    if route is None:
        return
    templates = sorted({r.path for r in app.routes if isinstance(r, APIRoute) and r.path.startswith(API_PREFIX)})
    if route not in templates:
        message = f"route: must be one of {', '.join(templates)}"
        raise Problem(
            "validation_error", message, errors=[{"field": "route", "message": message, "type": "value_error"}]
        )


def _settings_schema(board: FaultBoard) -> dict[str, Any]:
    """The request body in OpenAPI: one of the service's fault settings."""
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [{**kind.model_json_schema(), "title": name} for name, kind in sorted(board.kinds.items())]
                }
            }
        },
    }


def _burning_cpu(
    board: FaultBoard, inner: Callable[[FastAPI], AbstractAsyncContextManager[Any]]
) -> Callable[[FastAPI], AbstractAsyncContextManager[Any]]:
    """The app's lifespan, with the CPU burner running while the worker serves."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        burner = CpuBurner(board)
        burner.start()
        try:
            async with inner(app) as state:
                yield state
        finally:
            burner.stop()

    return lifespan


def _document_injected_errors(app: FastAPI) -> None:
    """With faults on, any API route may answer `fault_injected` with a 5xx: say so in /openapi.json."""
    build = app.openapi
    injected = {
        "description": "`fault_injected`: refused on purpose by the error_rate fault (the status it names)",
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }

    def openapi() -> dict[str, Any]:
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            if path.startswith(API_PREFIX):
                for operation in operations.values():
                    operation.setdefault("responses", {}).setdefault("5XX", injected)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

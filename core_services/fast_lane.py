"""A short way through FastAPI for the requests that make up the load, and the long way for the rest.

On the payment path FastAPI's dependency solving, parameter extraction and body
handling cost more CPU than the payment's SQL. A fast lane answers a route's
well-formed requests itself: JSON object body, the headers it needs present once,
the body valid for the route's model (validated exactly as FastAPI does: `json.loads`,
then the model in Python mode). Any request it does not take (a missing or repeated
header, a body that does not parse or validate, another content type) goes to the
route's own FastAPI handler with its body replayed, so every refusal is answered by
FastAPI exactly as before, and the OpenAPI document, routing, middlewares and
exception handlers are the same for both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core_services.http import parse_json_body
from core_services.problems import Problem

# The lane's answer, or None to hand the request to the route's FastAPI handler. It gets
# the scope (path parameters included), the headers it asked for, and the JSON body if any.
Lane = Callable[[Scope, dict[bytes, str], Any], Awaitable[Response | None]]


def add_fast_lane(
    app: FastAPI, method: str, path: str, headers: tuple[bytes, ...], lane: Lane, *, json_body: bool = True
) -> None:
    """Put `lane` in front of the route `method path`.

    `headers` (lower-case) are the ones the lane reads; a request must carry each
    exactly once to be taken, and with `json_body` a JSON object body too. Without
    `json_body` the lane gets None for the body, which it does not read.
    """
    for route in app.router.routes:
        if isinstance(route, APIRoute) and route.path == path and method in (route.methods or ()):
            wanted = frozenset(headers)
            route.app = _in_front_of(route.app, wanted, lane) if json_body else _bodiless(route.app, wanted, lane)
            return
    raise LookupError(f"no route {method} {path}")


def bearer_in(headers: dict[bytes, str]) -> str | None:
    """The token of the lane's `Authorization: Bearer <token>`, read as FastAPI's HTTPBearer reads it.

    None where HTTPBearer would find none: the lane then hands the request to FastAPI, which answers 401.
    """
    scheme, _, token = headers[b"authorization"].partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _in_front_of(general: ASGIApp, wanted: frozenset[bytes], lane: Lane) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        messages, body = await _read_body(receive)
        response = None
        if body is not None:
            headers = _headers(scope, wanted, json=True)
            document = _json_object(body) if headers is not None else None
            if headers is not None and document is not None:
                response = await lane(scope, headers, document)
        if response is None:
            await general(scope, _replay(messages, receive), send)
        else:
            await response(scope, receive, send)

    return app


def _bodiless(general: ASGIApp, wanted: frozenset[bytes], lane: Lane) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope, wanted, json=False)
        response = await lane(scope, headers, None) if headers is not None else None
        if response is None:
            await general(scope, receive, send)
        else:
            await response(scope, receive, send)

    return app


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages as received, and its body (None if the stream ended otherwise)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _headers(scope: Scope, wanted: frozenset[bytes], *, json: bool) -> dict[bytes, str] | None:
    """The wanted headers (latin-1, as Starlette decodes them), if each is there once (and the body is JSON)."""
    found: dict[bytes, str] = {}
    content_type = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if content_type is not None:
                return None
            content_type = value
        elif name in wanted:
            if name in found:
                return None
            found[name] = value.decode("latin-1")
    if len(found) != len(wanted):
        return None
    if json and (content_type is None or content_type.split(b";")[0].strip() != b"application/json"):
        return None
    return found


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The body's JSON object; None for anything else (FastAPI answers those), refused bodies included."""
    try:
        document = parse_json_body(body)
    except (ValueError, Problem):
        return None
    return document if isinstance(document, dict) else None

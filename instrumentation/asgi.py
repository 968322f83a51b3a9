"""One SERVER span per HTTP request, as a pure ASGI middleware.

The span continues the caller's trace (W3C `traceparent` or Jaeger `uber-trace-id`),
is current while the app runs (so log lines and child spans join it), and is named
`{method} {route template}` once routing has chosen a route (`POST /v1/payments`,
`GET /v1/accounts/{account_id}`), or just the method when none matched. Attributes
follow the OpenTelemetry HTTP server conventions; the query string, request and
response bodies and every header except `User-Agent` and `Host` stay out.

The tracing comes from `app.state.tracing` (a `TracingSetup`); without one, or with
tracing off, requests pass straight through. A sampled-out request costs only the
context it propagates.
"""

from __future__ import annotations

from contextvars import Token

from opentelemetry import context
from opentelemetry.context import Context
from opentelemetry.propagate import get_global_textmap
from opentelemetry.propagators.textmap import Getter, TextMapPropagator
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
from opentelemetry.util import types
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from instrumentation.spans import RecordingSpan, SpanRecorder, qualified_name
from instrumentation.tracing import TracingSetup

# The methods HTTP semantic conventions name; any other is recorded as "_OTHER".
KNOWN_METHODS = frozenset({"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "QUERY", "TRACE"})
_EMPTY = Context()
_ERROR = Status(StatusCode.ERROR)
_UNSET = Status(StatusCode.UNSET)
_MAX_CACHED = 512
_MAX_CACHED_HOST = 256


class _AsgiHeaders(Getter[dict[bytes, bytes]]):
    """Reads propagation headers from the request's headers, lowercase bytes as ASGI gives them."""

    def get(self, carrier: dict[bytes, bytes], key: str) -> list[str] | None:
        value = carrier.get(key.encode("latin-1"))
        return None if value is None else [value.decode("latin-1")]

    def keys(self, carrier: dict[bytes, bytes]) -> list[str]:
        return [key.decode("latin-1") for key in carrier]


_HEADERS = _AsgiHeaders()


class _Responder:
    """The app's `send`, noting the response status on the way."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 0

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class ServerSpans:
    """The tracing middleware; add it last, so it is the outermost one and every other layer is inside its span."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._names: dict[tuple[str, str], str] = {}
        self._hosts: dict[tuple[bytes | None, object], tuple[str, int] | None] = {}
        self._propagator: TextMapPropagator | None = None
        self._fields: frozenset[bytes] = frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, _flushing_at_shutdown(scope, send))
            return
        recorder = _recorder(scope) if scope["type"] == "http" else None
        if recorder is None:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        parent = self._parent(headers)
        method = scope["method"]
        if method not in KNOWN_METHODS:
            method = "_OTHER"
        attributes = self._attributes(scope, headers, method, recorder.max_value_length)
        span = recorder.start("HTTP" if method == "_OTHER" else method, SpanKind.SERVER, parent, attributes)
        token = context.attach(set_span_in_context(span, parent or _EMPTY))
        if not isinstance(span, RecordingSpan):  # sampled out: the context is all there is to carry
            await self._serve(scope, receive, send, token)
            return
        responder = _Responder(send)
        try:
            await self._serve(scope, receive, responder, token)
        except Exception as exc:
            span.record_exception(exc, escaped=True)
            self._finish(span, scope, method, responder.status or 500, qualified_name(type(exc)))
            raise
        except BaseException as exc:  # cancelled: the client went away, or the server is stopping
            self._finish(span, scope, method, responder.status, qualified_name(type(exc)))
            raise
        self._finish(span, scope, method, responder.status)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, token: Token[Context]) -> None:
        """Run the app in the request's context, and leave it as the app found it."""
        try:
            await self.app(scope, receive, send)
        except Exception:
            # The context stays attached on purpose: the outer error handler logs this
            # failure next, in this request's own task, and that line must carry the trace.
            raise
        except BaseException:
            context.detach(token)
            raise
        context.detach(token)

    def _parent(self, headers: dict[bytes, bytes]) -> Context | None:
        """The caller's trace context, when the request carries one."""
        propagator = get_global_textmap()
        if propagator is not self._propagator:
            self._propagator = propagator
            self._fields = frozenset(field.lower().encode("latin-1") for field in propagator.fields)
        fields = self._fields
        for name in headers:
            if name in fields:
                return propagator.extract(headers, _EMPTY, _HEADERS)
        return None

    def _attributes(
        self, scope: Scope, headers: dict[bytes, bytes], method: str, max_length: int
    ) -> dict[str, types.AttributeValue]:
        """The request's attributes; what the client chose (path, method, agent) cut to `max_length`."""
        attributes: dict[str, types.AttributeValue] = {
            "http.request.method": method,
            "url.path": scope["path"][:max_length],
            "url.scheme": scope["scheme"],
            "network.protocol.version": scope["http_version"],
        }
        if method == "_OTHER":
            attributes["http.request.method_original"] = scope["method"][:max_length]
        server = self._server(headers.get(b"host"), scope.get("server"))
        if server is not None:
            attributes["server.address"], attributes["server.port"] = server[0][:max_length], server[1]
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        agent = headers.get(b"user-agent")
        if agent is not None:
            attributes["user_agent.original"] = agent[:max_length].decode("latin-1")
        return attributes

    def _server(self, host: bytes | None, server: object) -> tuple[str, int] | None:
        """`server.address` and `server.port`: the Host header's, else the listening socket's."""
        key = (host, tuple(server) if isinstance(server, list) else server)
        known = self._hosts.get(key, False)
        if known is not False:
            return known  # type: ignore[return-value]
        found = _parse_host(host, server)
        # A client names any Host it likes: only the short ones are worth keeping.
        if len(self._hosts) < _MAX_CACHED and (host is None or len(host) <= _MAX_CACHED_HOST):
            self._hosts[key] = found
        return found

    def _finish(self, span: RecordingSpan, scope: Scope, method: str, status: int, error: str | None = None) -> None:
        """Name the span by its route, record the answer, end it. `error`: the exception's type, if one escaped."""
        route = scope.get("route")
        template = getattr(route, "path_format", None) or getattr(route, "path", None)
        name = None
        answer: dict[str, types.AttributeValue] = {}
        if isinstance(template, str):
            name = self._name(method, template)
            answer["http.route"] = template
        if status:
            answer["http.response.status_code"] = status
        if error is None and status >= 500:
            error = str(status)
        if error is not None or not status:
            answer["error.type"] = error or "_OTHER"
            span.end_with(name, answer, _ERROR)
        else:
            span.end_with(name, answer, _UNSET)

    def _name(self, method: str, template: str) -> str:
        key = (method, template)
        name = self._names.get(key)
        if name is None:
            name = f"{method if method != '_OTHER' else 'HTTP'} {template}"
            if len(self._names) < _MAX_CACHED:
                self._names[key] = name
        return name


def _tracing(scope: Scope) -> TracingSetup | None:
    tracing = getattr(getattr(scope.get("app"), "state", None), "tracing", None)
    return tracing if isinstance(tracing, TracingSetup) else None


def _recorder(scope: Scope) -> SpanRecorder | None:
    tracing = _tracing(scope)
    return tracing.recorder if tracing is not None else None


def _flushing_at_shutdown(scope: Scope, send: Send) -> Send:
    """The lifespan's `send`, exporting the spans still queued once the app has shut down.

    A worker's exit handlers are no place for it: uvicorn ends its graceful shutdown
    by raising the stop signal again, and the default action ends the process there.
    """

    async def send_then_flush(message: Message) -> None:
        if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
            tracing = _tracing(scope)
            if tracing is not None:
                tracing.force_flush()  # blocks the loop, which has nothing left to serve
        await send(message)

    return send_then_flush


def _parse_host(host: bytes | None, server: object) -> tuple[str, int] | None:
    if host:
        text = host.decode("latin-1")
        if text.startswith("["):  # an IPv6 literal, [::1]:8001
            address, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            address, _, port = text.partition(":")
        if port.isdigit():
            return address, int(port)
        if isinstance(server, (tuple, list)) and len(server) == 2 and isinstance(server[1], int):
            return address, server[1]
    if isinstance(server, (tuple, list)) and len(server) == 2 and server[1] is not None:
        return str(server[0]), int(server[1])
    return None

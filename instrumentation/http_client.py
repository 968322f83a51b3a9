"""CLIENT spans and trace headers for one service's calls to another over HTTP.

One span per attempt, named `{method} {path template}` (`POST /v1/payments`), a
child of the current request span, with the OpenTelemetry HTTP client attributes.
The call's headers get the trace context (W3C and Jaeger) whether or not the span
records, so a sampled-out trace stays sampled out downstream. The URL is recorded
without credentials or query; no header is recorded.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util import types

from instrumentation.propagation import inject_headers
from instrumentation.spans import RecordingSpan, qualified_name, recording_parent

_DEFAULT_PORTS = {"http": 80, "https": 443}
_ERROR = Status(StatusCode.ERROR)


class ClientCall:
    """One attempt in flight; `end` records how it went."""

    __slots__ = ("_span",)

    def __init__(self, span: RecordingSpan) -> None:
        self._span = span

    def end(self, status_code: int | None = None, error: BaseException | None = None, protocol: str = "") -> None:
        """`status_code` of the answer, or the `error` that left none; `protocol` as httpx gives it (HTTP/1.1)."""
        span = self._span
        if status_code is not None:
            span.set_attribute("http.response.status_code", status_code)
            if status_code >= 400:
                span.set_attribute("error.type", str(status_code))
                span.set_status(_ERROR)
        if error is not None:
            span.set_attribute("error.type", qualified_name(type(error)))
            span.set_status(Status(StatusCode.ERROR, qualified_name(type(error))))
        if protocol.startswith("HTTP/"):
            span.set_attribute("network.protocol.version", protocol[5:])
        span.end()


class _NoCall:
    __slots__ = ()

    def end(self, status_code: int | None = None, error: BaseException | None = None, protocol: str = "") -> None:
        pass


NO_CALL = _NoCall()


class HttpClientSpans:
    """The spans of calls to one server, whose address is worked out once from its base URL."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(str(base_url))
        self.scheme = parts.scheme or "http"
        self.address = parts.hostname or ""
        self.port = parts.port or _DEFAULT_PORTS.get(self.scheme, 80)
        # Rebuilt from its parts: user:password@ must not reach a span.
        host = f"[{self.address}]" if ":" in self.address else self.address
        self._base = f"{self.scheme}://{host}:{self.port}{parts.path.rstrip('/')}"

    def start(
        self, method: str, template: str, path: str, headers: dict[str, str], resend: int = 0
    ) -> ClientCall | _NoCall:
        """Begin an attempt of `method path` (`template` names the path's shape); adds trace headers to `headers`."""
        parent = recording_parent()
        if parent is None:
            inject_headers(headers)
            return NO_CALL
        attributes: dict[str, types.AttributeValue] = {
            "http.request.method": method,
            "server.address": self.address,
            "server.port": self.port,
            "url.full": self._base + path.split("?", 1)[0],
            "url.template": template,
        }
        if resend:
            attributes["http.request.resend_count"] = resend
        span = parent.recorder.start_child(parent, f"{method} {template}", SpanKind.CLIENT, attributes)
        inject_headers(headers, trace.set_span_in_context(span, context.get_current()))
        return ClientCall(span)

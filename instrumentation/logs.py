"""Structured logs: one JSON object per line, joined to the trace of the request that wrote it.

    {"timestamp": "2026-11-25T10:00:00.123Z", "level": "WARNING", "logger": "nova.portfolio",
     "message": "...", "service": "portfolio", "trace_id": "4bf9...", "span_id": "00f0..."}

`trace_id` and `span_id` (lowercase hex, as in W3C traceparent) are present while a
span is current, which is the whole of a traced request; Loki's derived fields and
Grafana's trace-to-logs links match them as they are. `exception` holds the
formatted traceback when one is logged. Credentials that slip into a message
(`Bearer …`, `Authorization: …`) are blanked before the line is written. A message
is cut at `MAX_MESSAGE_CHARS` (a library quoting a client's header in full, as the
W3C baggage extractor does, must not write what the client sent), a traceback at
`MAX_EXCEPTION_CHARS`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from opentelemetry import trace

from instrumentation.redaction import redact

# Loggers that uvicorn configures with their own handlers (and no propagation).
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
MAX_MESSAGE_CHARS = 2048
MAX_EXCEPTION_CHARS = 32 * 1024


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line with the service and the current trace and span ids."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": _utc_timestamp(record.created, record.msecs),
            "level": record.levelname,
            "logger": record.name,
            "message": _cut(redact(record.getMessage()), MAX_MESSAGE_CHARS),
            "service": self.service,
        }
        span = trace.get_current_span()
        context = span.get_span_context()
        if context.is_valid:
            # A request of another service in the same process (tests) names its own service.
            resource = getattr(span, "resource", None)
            if resource is not None:
                line["service"] = resource.attributes.get("service.name", self.service)
            line["trace_id"] = f"{context.trace_id:032x}"
            line["span_id"] = f"{context.span_id:016x}"
        if record.exc_info:
            line["exception"] = _cut(redact(self.formatException(record.exc_info)), MAX_EXCEPTION_CHARS)
        elif record.exc_text:
            line["exception"] = _cut(redact(record.exc_text), MAX_EXCEPTION_CHARS)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(service_name: str, level: int | str | None = None) -> logging.Handler:
    """Send the process's logs to stderr as JSON lines; safe to call again (the handler is replaced).

    Handlers that others added to the root logger (a test runner's capture) stay.
    uvicorn's own loggers keep their handlers and get the JSON format too.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _StderrHandler):
            root.removeHandler(handler)
    formatter = JsonFormatter(service_name)
    handler = _StderrHandler()
    handler.setFormatter(formatter)
    root.addHandler(handler)
    if level is not None:
        root.setLevel(level)
    others = set(root.handlers)  # a test runner's capture may sit on uvicorn's loggers too: it stays as it is
    for name in SERVER_LOGGERS:
        for server_handler in logging.getLogger(name).handlers:
            if server_handler not in others:
                server_handler.setFormatter(formatter)
    return handler


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters not logged]"


def _utc_timestamp(created: float, msecs: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(msecs):03d}Z"

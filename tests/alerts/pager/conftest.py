"""Fixtures of the pager tests: real Alertmanager payloads, loopback stand-ins for Prometheus,
webhooks and PagerDuty, and trace files written by the suite's own exporter."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from alerts.pager.page import Page
from alerts.pager.webhook import Notification, parse_notification
from instrumentation.file_exporter import FileSpanExporter
from loadtests.processes import OwnedProcess
from tests.nova.conftest import free_port

PAYLOADS = Path(__file__).parent / "payloads"


def payload(name: str) -> bytes:
    """A notification exactly as a real Alertmanager 0.25 sent it (see payloads/README.md)."""
    return (PAYLOADS / f"{name}.json").read_bytes()


def notification(name: str) -> Notification:
    return parse_notification(payload(name))


def edited(name: str, change: Callable[[dict[str, Any]], None]) -> bytes:
    document = json.loads(payload(name))
    change(document)
    return json.dumps(document).encode()


@dataclass
class RecordingDestination:
    """A destination that keeps what it was handed, and fails while `failing` is set."""

    name: str = "recording"
    pages: list[Page] = field(default_factory=list)
    failing: bool = False

    def deliver(self, page: Page) -> None:
        from alerts.pager.errors import DeliveryError

        if self.failing:
            raise DeliveryError(f"{self.name}: refused")
        self.pages.append(page)

    @property
    def events(self) -> list[str]:
        return [page.event for page in self.pages]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LoopbackServer:
    """An HTTP server on 127.0.0.1 answering with `respond`, keeping every request it got."""

    url: str
    requests: list[Received]
    respond: Callable[[str, str], tuple[int, dict[str, Any]]]


def _serve(respond: Callable[[str, str], tuple[int, dict[str, Any]]]) -> Iterator[LoopbackServer]:
    loopback = LoopbackServer("", [], respond)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            loopback.requests.append(Received(self.path, dict(self.headers), body))
            status, document = loopback.respond(self.command, self.path)
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    loopback.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield loopback
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# What the stand-in Prometheus records for payments-availability: a 0.205% error ratio over
# 5m against a 0.01% budget is a 20.5x burn; 62.3% of a 30-day budget lasts 21.9 hours at it.
SERIES = {
    "slo:current_burn_rate:ratio": 20.5,
    "slo:period_error_budget_remaining:ratio": 0.623,
    "slo:sli_error:ratio_rate5m": 0.00205,
    "slo:sli_error:ratio_rate1h": 0.00161,
    "slo:error_budget:ratio": 0.0001,
    "slo:time_period:days": 30.0,
}


def _exemplar(trace_id: str, seconds: float, at: str) -> dict[str, Any]:
    moment = datetime.fromisoformat(at).timestamp()
    return {"labels": {"trace_id": trace_id}, "value": repr(seconds), "timestamp": moment}


# As Prometheus answers /api/v1/query_exemplars (one entry per bucket series) for the payments histogram.
EXEMPLARS = [
    {
        "seriesLabels": {
            "__name__": "http_server_request_duration_seconds_bucket",
            "service": "payments",
            "route": "/v1/payments",
            "method": "POST",
            "le": "1.0",
        },
        "exemplars": [
            _exemplar("4bf92f3577b34da6a3ce929d0e0e4736", 0.85, "2026-11-25T16:01:00+00:00"),
            _exemplar("00f067aa0ba902b700f067aa0ba902b7", 0.61, "2026-11-25T16:02:00+00:00"),
        ],
    },
    {
        "seriesLabels": {
            "__name__": "http_server_request_duration_seconds_bucket",
            "service": "payments",
            "route": "/v1/accounts/{account_id}",
            "method": "GET",
            "le": "0.5",
        },
        "exemplars": [
            _exemplar("a3ce929d0e0e47364bf92f3577b34da6", 0.42, "2026-11-25T16:03:00+00:00"),
            _exemplar("b7ad6b7169203331b7ad6b7169203331", 0.03, "2026-11-25T16:04:00+00:00"),
        ],
    },
]


@pytest.fixture
def prometheus() -> Iterator[LoopbackServer]:
    """A stand-in Prometheus answering `/api/v1/query_range` for payments-availability's recorded series."""

    def respond(_method: str, path: str) -> tuple[int, dict[str, Any]]:
        query = parse_qs(urlsplit(path).query)
        promql, at = query["query"][0], float(query["start"][0])
        if urlsplit(path).path == "/api/v1/query_exemplars":
            return 200, {"status": "success", "data": EXEMPLARS if 'service="payments"' in promql else []}
        name, _, selector = promql.partition("{")
        result = []
        if name in SERIES and 'sloth_id="payments-availability"' in selector:
            labels = {"__name__": name, "sloth_id": "payments-availability"}
            result.append({"metric": labels, "values": [[at, repr(SERIES[name])]]})
        return 200, {"status": "success", "data": {"resultType": "matrix", "result": result}}

    yield from _serve(respond)


@pytest.fixture
def webhook() -> Iterator[LoopbackServer]:
    """A receiver that takes everything with 202, like PagerDuty's Events API."""
    yield from _serve(lambda _method, _path: (202, {"status": "success", "message": "Event processed"}))


def write_traces(
    path: Path, service: str, spans: list[tuple[str, SpanKind, datetime, float, int | None, bool]]
) -> None:
    """Spans `(name, kind, end, duration_ms, http status, error)` through the SDK and the suite's file exporter."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.pager")
    for name, kind, end, duration_ms, status, error in spans:
        end_ns = int(end.timestamp() * 1e9)
        attributes = {"http.response.status_code": status} if status is not None else {}
        span = tracer.start_span(name, kind=kind, start_time=end_ns - int(duration_ms * 1e6), attributes=attributes)
        if error:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        span.end(end_time=end_ns)
    finished = list(memory.get_finished_spans())
    exporter = FileSpanExporter(path)
    # Two batches, as a worker writes them a few seconds apart.
    exporter.export(finished[: len(finished) // 2])
    exporter.export(finished[len(finished) // 2 :])
    provider.shutdown()


@contextmanager
def running_pager(
    tmp_path: Path, *options: str, env: dict[str, str] | None = None
) -> Iterator[tuple[str, OwnedProcess]]:
    """`nova pager serve` as a real subprocess on a free loopback port; its URL and process."""
    port = free_port()
    command = [
        sys.executable,
        "-c",
        "from nova.pager_cli import pager_app; pager_app()",
        "serve",
        f"--listen=127.0.0.1:{port}",
        f"--data-dir={tmp_path / 'data'}",
        *options,
    ]
    environment = {**os.environ, **(env or {})}
    with OwnedProcess("nova pager serve", command, tmp_path / "pager.log", environment) as process:
        url = f"http://127.0.0.1:{port}"
        process.wait_ready(f"{url}/healthz")
        yield url, process

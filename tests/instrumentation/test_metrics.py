"""Request, latency, pool and process metrics of one in-process service (prometheus-client's single-process mode).

Metric values live for the whole test process, so tests either label their app with a
service name of their own or compare scrapes taken before and after.
"""

from __future__ import annotations

import math
import uuid
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Receive, Scope, Send

from core_services.http import build_app
from core_services.payments.api import create_app
from core_services.settings import ServiceSettings
from instrumentation.metrics import BUCKETS, counter, exposition
from tests.conftest import ADMIN_TOKEN
from tests.instrumentation.conftest import OPENMETRICS, promtool_check_metrics, samples, value

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
REQUESTS = "http_server_requests_total"
BUCKET = "http_server_request_duration_seconds_bucket"
COUNT = "http_server_request_duration_seconds_count"


@pytest.fixture
def payments(make_settings: Callable[..., ServiceSettings]) -> Iterator[TestClient]:
    app = create_app(make_settings())
    with TestClient(app) as client:
        yield client
    app.state.service.db.dispose()


def small_app(**routes: Callable[..., Any]) -> tuple[FastAPI, str]:
    """An app built like the services', labelled with a service name no other test uses."""
    service = f"test-{uuid.uuid4().hex[:8]}"
    app = build_app("Test", "A test app", 1024, service=service)
    for path, endpoint in routes.items():
        app.get(f"/{path}")(endpoint)
    return app, service


def test_requests_are_counted_by_route_template_method_and_code(payments: TestClient) -> None:
    before = payments.get("/metrics").text
    customer = payments.post("/v1/customers", json={"name": "Ada"}, headers=ADMIN).json()
    mine = {"Authorization": f"Bearer {customer['token']}"}
    account = payments.post("/v1/accounts", json={"currency": "USD"}, headers=mine).json()["id"]
    sent = [
        ("/v1/accounts/{account_id}", "GET", payments.get(f"/v1/accounts/{account}", headers=mine)),
        ("/v1/accounts/{account_id}", "GET", payments.get(f"/v1/accounts/{account}", headers=mine)),
        ("/v1/accounts/{account_id}", "GET", payments.get("/v1/accounts/acc_nobody", headers=mine)),
        ("/v1/accounts/{account_id}", "GET", payments.get(f"/v1/accounts/{account}")),
        ("/v1/accounts/{account_id}/entries", "GET", payments.get(f"/v1/accounts/{account}/entries", headers=mine)),
        ("/v1/accounts/{account_id}", "DELETE", payments.delete(f"/v1/accounts/{account}", headers=mine)),
        ("unmatched", "GET", payments.get(f"/v2/accounts/{account}")),
    ]
    after = payments.get("/metrics").text

    expected = Tally((route, method, str(response.status_code)) for route, method, response in sent)
    assert {code for _route, _method, code in expected} == {"200", "401", "404", "405"}
    for (route, method, code), times in expected.items():
        labels = {"service": "payments", "route": route, "method": method, "code": code}
        assert value(after, REQUESTS, **labels) - value(before, REQUESTS, **labels) == times, labels
    # Route templates only: no account id ever becomes a label value.
    assert not [s for s in samples(after) if any(account in label for label in s.labels.values())]


def test_each_request_is_observed_once_in_its_latency_bucket(payments: TestClient) -> None:
    labels = {"service": "payments", "route": "/healthz", "method": "GET"}
    before = payments.get("/metrics").text
    for _ in range(5):
        payments.get("/healthz")
    after = payments.get("/metrics").text

    buckets = {s.labels["le"]: s.value for s in samples(after) if s.name == BUCKET and _has(s.labels, labels)}
    assert [float(le) for le in buckets] == list(BUCKETS)  # 0.2 is an edge: the latency objective
    assert value(after, COUNT, **labels) - value(before, COUNT, **labels) == 5
    assert buckets["+Inf"] == value(after, COUNT, **labels)
    assert list(buckets.values()) == sorted(buckets.values())  # cumulative


def test_a_request_that_crashes_is_counted_as_a_500() -> None:
    def crash() -> None:
        raise RuntimeError("boom")

    app, service = small_app(crash=crash)
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/crash").status_code == 500
        scraped = client.get("/metrics").text
    assert value(scraped, REQUESTS, service=service, route="/crash", code="500") == 1


def test_a_body_refused_before_routing_is_counted_under_its_route() -> None:
    app, service = small_app()

    @app.post("/upload")
    def upload() -> None:
        raise AssertionError("never reached")

    with TestClient(app) as client:
        assert client.post("/upload", content=b"x" * 2048).status_code == 413
        scraped = client.get("/metrics").text
    assert value(scraped, REQUESTS, service=service, route="/upload", method="POST", code="413") == 1


def test_clients_cannot_add_series_with_made_up_methods_or_paths() -> None:
    app, service = small_app(healthz=lambda: {"status": "ok"})
    with TestClient(app) as client:
        client.request("BREW", "/healthz")
        client.request("PROPFIND", "/healthz")
        client.get(f"/made-up/{uuid.uuid4()}")
        scraped = client.get("/metrics").text

    ours = [s for s in samples(scraped) if s.name == REQUESTS and s.labels["service"] == service]
    assert sorted((s.labels["route"], s.labels["method"], s.labels["code"], s.value) for s in ours) == [
        ("/healthz", "_OTHER", "405", 2.0),
        ("unmatched", "GET", "404", 1.0),
    ]


def test_scrapes_are_not_measured_but_requests_in_flight_are() -> None:
    in_flight: list[float] = []
    app, service = small_app()

    @app.get("/slow")
    def slow() -> dict[str, str]:
        in_flight.append(value(exposition("")[0].decode(), "http_server_active_requests", service=service))
        return {"status": "ok"}

    with TestClient(app) as client:
        client.get("/slow")
        client.get("/metrics")
        scraped = client.get("/metrics").text
    assert in_flight == [1.0]
    assert value(scraped, "http_server_active_requests", service=service) == 0
    assert value(scraped, REQUESTS, service=service, route="/metrics") == 0
    assert value(scraped, REQUESTS, service=service) == 1


def test_pool_gauges_read_the_database_pool_at_scrape_time(
    make_settings: Callable[..., ServiceSettings],
) -> None:
    app = create_app(make_settings(NOVA_DB_POOL_SIZE="4"))
    with TestClient(app) as client:
        with app.state.service.db.engine.connect(), app.state.service.db.engine.connect():
            busy = client.get("/metrics").text
        idle = client.get("/metrics").text
    app.state.service.db.dispose()
    assert value(busy, "db_client_connections_in_use", service="payments") == 2
    assert value(idle, "db_client_connections_in_use", service="payments") == 0
    assert value(idle, "db_client_connections_max", service="payments") == 4 + 4 // 2


def test_metrics_speak_text_0_0_4_unless_openmetrics_is_asked_for(payments: TestClient) -> None:
    payments.get("/healthz")
    plain = payments.get("/metrics")
    open_metrics = payments.get("/metrics", headers={"Accept": f"{OPENMETRICS},text/plain;version=0.0.4;q=0.5"})

    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert open_metrics.text.endswith("# EOF\n")
    names = {s.name for s in samples(open_metrics.text, openmetrics=True)}  # the strict OpenMetrics parser
    assert {REQUESTS, BUCKET, "process_cpu_seconds_total", "process_resident_memory_bytes"} <= names


def test_the_exposition_passes_promtool(payments: TestClient) -> None:
    payments.get("/healthz")
    payments.get("/v1/accounts/acc_1")
    payments.get("/nowhere")
    promtool_check_metrics(payments.get("/metrics").text)


# -- exemplars -------------------------------------------------------------------------------------


@pytest.fixture
def exported_spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exported_spans: InMemorySpanExporter) -> Tracer:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported_spans))
    return provider.get_tracer("tests.instrumentation")


def with_server_span(app: ASGIApp, tracer: Tracer) -> ASGIApp:
    """What the tracing middleware does for the metrics: the request's server span is current around the app.

    The span continues the caller's `traceparent`, so the trace id is the same whether this
    wrapper's span or one the services' own tracing middleware starts inside it is current.
    """

    async def traced(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        carrier = {name.decode("latin-1"): raw.decode("latin-1") for name, raw in scope["headers"]}
        parent = TraceContextTextMapPropagator().extract(carrier)
        with tracer.start_as_current_span(f"{scope['method']} {scope['path']}", context=parent, kind=SpanKind.SERVER):
            await app(scope, receive, send)

    return traced


def traced_get(client: TestClient, tracer: Tracer, path: str, *, sampled: bool = True) -> str:
    """GET `path` as a traced caller would; returns the trace id."""
    with tracer.start_as_current_span("client", kind=SpanKind.CLIENT) as span:
        headers: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(headers)
    if not sampled:
        headers["traceparent"] = headers["traceparent"][:-2] + "00"
    client.get(path, headers=headers)
    return f"{span.get_span_context().trace_id:032x}"


def exemplars(client: TestClient, service: str) -> dict[str, tuple[str, float]]:
    """The latency buckets' exemplars of `service`: le -> (trace id, seconds)."""
    scraped = client.get("/metrics", headers={"Accept": OPENMETRICS}).text
    return {
        s.labels["le"]: (s.exemplar.labels["trace_id"], s.exemplar.value)
        for s in samples(scraped, openmetrics=True)
        if s.name == BUCKET and s.labels["service"] == service and s.exemplar is not None
    }


def server_spans(exported: InMemorySpanExporter, path: str) -> list[ReadableSpan]:
    return [span for span in exported.get_finished_spans() if span.kind is SpanKind.SERVER and path in span.name]


def test_a_latency_bucket_carries_the_trace_id_of_an_exported_server_span(
    tracer: Tracer, exported_spans: InMemorySpanExporter
) -> None:
    app, service = small_app(healthz=lambda: {"status": "ok"})
    with TestClient(with_server_span(app, tracer)) as client:
        trace_id = traced_get(client, tracer, "/healthz")
        found = exemplars(client, service)

    [server_span] = server_spans(exported_spans, "/healthz")
    assert server_span.context is not None
    assert f"{server_span.context.trace_id:032x}" == trace_id
    [(le, (exemplar_trace, seconds))] = found.items()
    assert exemplar_trace == trace_id
    upper = float(le)
    lower = max([bound for bound in BUCKETS if bound < upper], default=0.0)
    assert lower < seconds <= upper or (upper == math.inf and seconds > BUCKETS[-2])


def test_the_newest_sampled_request_is_the_exemplar_and_unsampled_ones_are_ignored(tracer: Tracer) -> None:
    app, service = small_app(healthz=lambda: {"status": "ok"})
    with TestClient(with_server_span(app, tracer)) as client:
        traced_get(client, tracer, "/healthz")
        newest = traced_get(client, tracer, "/healthz")
        unsampled = traced_get(client, tracer, "/healthz", sampled=False)
        found = {trace_id for trace_id, _seconds in exemplars(client, service).values()}
    # Fast requests share a bucket (a slow machine may spread them; the newest sampled is still in one).
    assert newest in found
    assert unsampled not in found


def test_text_format_0_0_4_carries_no_exemplars(tracer: Tracer) -> None:
    app, _service = small_app(healthz=lambda: {"status": "ok"})
    with TestClient(with_server_span(app, tracer)) as client:
        trace_id = traced_get(client, tracer, "/healthz")
        assert trace_id not in client.get("/metrics").text


# -- counters defined by the services --------------------------------------------------------------


def test_a_service_defined_counter_is_exposed_and_defined_once() -> None:
    widgets = counter("nova_test_widgets_total", "Widgets made in tests.", ["colour"])
    widgets.labels("blue").inc(3)
    assert counter("nova_test_widgets", "Widgets made in tests.", ["colour"]) is widgets
    with pytest.raises(ValueError, match="already has labels"):
        counter("nova_test_widgets_total", "Widgets made in tests.", ["size"])
    scraped = exposition("")[0].decode()
    assert value(scraped, "nova_test_widgets_total", colour="blue") == 3


def _has(labels: dict[str, str], wanted: dict[str, str]) -> bool:
    return all(labels.get(name) == wanted_value for name, wanted_value in wanted.items())

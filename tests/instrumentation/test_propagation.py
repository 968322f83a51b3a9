"""Trace headers in and out: W3C traceparent and baggage, and Jaeger's uber-trace-id."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import httpx
import pytest
from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from core_services.settings import ServiceSettings
from instrumentation.propagation import DEFAULT_PROPAGATORS, install_propagator, propagator_from_env
from tests.instrumentation.traced import TracedServices, server_spans, traced_services


@pytest.fixture
def settings(make_settings: Callable[..., ServiceSettings]) -> ServiceSettings:
    return make_settings()


@pytest.fixture
def services(settings: ServiceSettings) -> Iterator[TracedServices]:
    with traced_services(settings) as traced:
        yield traced


@pytest.fixture(autouse=True)
def default_propagator() -> Iterator[None]:
    """Whatever a test sets, the next one starts from the suite's default propagator."""
    yield
    install_propagator({})


def _ids() -> tuple[int, int]:
    return random.getrandbits(128), random.getrandbits(64)


def test_a_jaeger_client_trace_is_continued(services: TracedServices) -> None:
    trace_id, span_id = _ids()
    headers = {"uber-trace-id": f"{trace_id:032x}:{span_id:016x}:0:1"}
    assert services.payments.get("/healthz", headers=headers).status_code == 200
    [span] = services.spans()
    assert span.context.trace_id == trace_id
    assert span.parent is not None and span.parent.span_id == span_id and span.parent.is_remote


def test_a_jaeger_trace_id_of_16_hex_digits_is_continued(services: TracedServices) -> None:
    trace_id, span_id = random.getrandbits(64), random.getrandbits(64)
    headers = {"uber-trace-id": f"{trace_id:x}:{span_id:x}:0:1"}
    assert services.payments.get("/healthz", headers=headers).status_code == 200
    [span] = services.spans()
    assert (span.context.trace_id, span.parent and span.parent.span_id) == (trace_id, span_id)


def test_a_w3c_trace_is_continued(services: TracedServices) -> None:
    trace_id, span_id = _ids()
    headers = {"traceparent": f"00-{trace_id:032x}-{span_id:016x}-01", "tracestate": "vendor=opaque"}
    assert services.payments.get("/healthz", headers=headers).status_code == 200
    [span] = services.spans()
    assert span.context.trace_id == trace_id
    assert span.parent is not None and span.parent.span_id == span_id
    assert span.context.trace_state.get("vendor") == "opaque"


def test_when_both_formats_arrive_w3c_wins(services: TracedServices) -> None:
    w3c_trace, w3c_span = _ids()
    jaeger_trace, jaeger_span = _ids()
    headers = {
        "traceparent": f"00-{w3c_trace:032x}-{w3c_span:016x}-01",
        "uber-trace-id": f"{jaeger_trace:032x}:{jaeger_span:016x}:0:1",
    }
    assert services.payments.get("/healthz", headers=headers).status_code == 200
    [span] = services.spans()
    assert span.context.trace_id == w3c_trace


def test_a_malformed_header_starts_a_new_trace(services: TracedServices) -> None:
    for headers in ({"traceparent": "00-zz-yy-01"}, {"uber-trace-id": "not:a:jaeger"}, {"traceparent": ""}):
        assert services.payments.get("/healthz", headers=headers).status_code == 200
    spans = services.spans()
    assert len(spans) == 3 and all(span.parent is None for span in spans)


def _recording_payments(services: TracedServices, seen: list[httpx.Request]) -> httpx.Client:
    """A payments client that keeps every request it passes on to the in-process payments app."""

    def forward(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = services.payments.request(
            request.method, request.url.path, headers=dict(request.headers), content=request.content
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return httpx.Client(transport=httpx.MockTransport(forward), base_url="http://payments")


def test_calls_to_payments_carry_both_formats_and_the_baggage(settings: ServiceSettings) -> None:
    seen: list[httpx.Request] = []
    with traced_services(settings) as plain:
        trader = plain.trader()
    with traced_services(settings) as probe:
        with traced_services(settings, payments_http=_recording_payments(probe, seen)) as services:
            services.order(trader)  # opens the house account
            seen.clear()
            services.clear()
            probe.clear()
            trace_id, span_id = _ids()
            inbound = {"traceparent": f"00-{trace_id:032x}-{span_id:016x}-01", "baggage": "tenant=acme"}
            assert services.order(trader, headers=inbound).status_code == 201
            spans = services.spans()
        [payment] = [request for request in seen if request.url.path == "/v1/payments"]
        [call] = [span for span in spans if span.kind is SpanKind.CLIENT and span.name == "POST /v1/payments"]
        ids = f"{call.context.trace_id:032x}-{call.context.span_id:016x}"
        assert payment.headers["traceparent"] == f"00-{ids}-{call.context.trace_flags:02x}"
        jaeger_trace, jaeger_span, jaeger_parent, jaeger_flags = payment.headers["uber-trace-id"].split(":")
        assert (int(jaeger_trace, 16), int(jaeger_span, 16)) == (trace_id, call.context.span_id)
        assert call.parent is not None and int(jaeger_parent, 16) == call.parent.span_id
        assert int(jaeger_flags, 16) & 1
        assert payment.headers["baggage"] == "tenant=acme"
        assert call.context.trace_id == trace_id
        # and payments continued it
        [payment_span] = server_spans(probe.spans(), "payments")
        assert payment_span.parent is not None and payment_span.parent.span_id == call.context.span_id


def test_a_sampled_out_trace_stays_sampled_out_downstream(settings: ServiceSettings) -> None:
    seen: list[httpx.Request] = []
    with traced_services(settings) as plain:
        trader = plain.trader()
    with traced_services(settings) as probe:
        with traced_services(settings, payments_http=_recording_payments(probe, seen)) as services:
            services.order(trader)
            seen.clear()
            services.clear()
            probe.clear()
            trace_id, span_id = _ids()
            inbound = {"traceparent": f"00-{trace_id:032x}-{span_id:016x}-00"}
            assert services.order(trader, headers=inbound).status_code == 201
            assert services.spans() == []
            assert probe.spans() == []
        [payment] = [request for request in seen if request.url.path == "/v1/payments"]
        assert payment.headers["traceparent"].startswith(f"00-{trace_id:032x}-")
        assert payment.headers["traceparent"].endswith("-00")


def test_otel_propagators_chooses_the_formats() -> None:
    context = trace.set_span_in_context(
        NonRecordingSpan(SpanContext(*_ids(), is_remote=False, trace_flags=TraceFlags(1))),
        baggage.set_baggage("tenant", "acme", Context()),
    )
    w3c_only: dict[str, str] = {}
    propagator_from_env({"OTEL_PROPAGATORS": "tracecontext"}).inject(w3c_only, context)
    assert set(w3c_only) == {"traceparent"}
    everything: dict[str, str] = {}
    propagator_from_env({}).inject(everything, context)
    assert set(everything) == {"traceparent", "baggage", "uber-trace-id", "uberctx-tenant"}
    assert DEFAULT_PROPAGATORS == ("jaeger", "tracecontext", "baggage")
    unknown: dict[str, str] = {}
    propagator_from_env({"OTEL_PROPAGATORS": "b3multi,tracecontext"}).inject(unknown, context)
    assert set(unknown) == {"traceparent"}


def test_configuring_tracing_installs_the_global_propagator(settings: ServiceSettings) -> None:
    with traced_services(settings, {"OTEL_PROPAGATORS": "tracecontext,baggage"}):
        assert propagate.get_global_textmap().fields == {"traceparent", "tracestate", "baggage"}
    with traced_services(settings):
        assert "uber-trace-id" in propagate.get_global_textmap().fields

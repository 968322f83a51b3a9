"""Traces of the services: one trace per order across both services, span shapes, sampling, exporters."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import DEFAULT_ON, ParentBasedTraceIdRatio, TraceIdRatioBased
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import DBAPIError

from core_services.database import Database, Sql
from core_services.payments.api import create_app as create_payments_app
from core_services.settings import ServiceSettings
from instrumentation.db import summarise
from instrumentation.file_exporter import FileSpanExporter
from instrumentation.tracing import (
    DEFAULT_ATTRIBUTE_VALUE_LENGTH,
    TracingSettings,
    configure_tracing,
    sampler_from_env,
)
from tests.instrumentation.traced import ADMIN, TracedServices, by_id, server_spans, service_of, traced_services

OTEL_DISABLED = {"OTEL_SDK_DISABLED": "true"}


@pytest.fixture
def settings(make_settings: Callable[..., ServiceSettings]) -> ServiceSettings:
    return make_settings()


@pytest.fixture
def services(settings: ServiceSettings) -> Iterator[TracedServices]:
    with traced_services(settings) as traced:
        yield traced


@pytest.fixture
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment without OTEL_* variables: the services' embedded defaults."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def _db_spans(spans: list[ReadableSpan], service: str) -> list[ReadableSpan]:
    return [
        span
        for span in spans
        if service_of(span) == service and span.kind is SpanKind.CLIENT and "db.system.name" in (span.attributes or {})
    ]


# -- one trace across both services ----------------------------------------------------------------


def test_an_order_is_one_trace_through_portfolio_and_payments(services: TracedServices) -> None:
    trader = services.trader()
    services.order(trader)  # the first order opens the house account; the next one is the steady state
    services.clear()

    response = services.order(trader, quantity=2)
    assert response.status_code == 201, response.text
    spans = services.spans()

    assert len({span.context.trace_id for span in spans}) == 1, [span.name for span in spans]
    spans_by_id = by_id(spans)
    [order] = server_spans(spans, "portfolio")
    assert order.name == "POST /v1/orders" and order.parent is None
    [payment_call] = [span for span in spans if span.kind is SpanKind.CLIENT and span.name == "POST /v1/payments"]
    assert service_of(payment_call) == "portfolio"
    assert payment_call.parent is not None and payment_call.parent.span_id == order.context.span_id
    [payment] = server_spans(spans, "payments")
    assert payment.name == "POST /v1/payments"
    # The payments span continues the portfolio's call: its parent is that CLIENT span, from another process.
    assert payment.parent is not None and payment.parent.span_id == payment_call.context.span_id
    assert payment.parent.is_remote
    for service, server in (("portfolio", order), ("payments", payment)):
        statements = _db_spans(spans, service)
        assert statements, f"no database spans from {service}"
        for statement in statements:
            assert statement.parent is not None and statement.parent.span_id == server.context.span_id
            assert spans_by_id[statement.parent.span_id] is server
            assert server.start_time is not None and statement.start_time is not None
            assert server.start_time <= statement.start_time <= (statement.end_time or 0) <= (server.end_time or 0)
    assert payment_call.attributes is not None and payment_call.attributes["http.response.status_code"] == 201


def test_server_spans_carry_the_http_conventions(services: TracedServices) -> None:
    trader = services.trader()
    services.clear()
    response = services.payments.get(
        f"/v1/accounts/{trader.account_id}", headers={**trader.headers, "User-Agent": "nova-tests/1"}
    )
    assert response.status_code == 200
    [span] = server_spans(services.spans())
    assert span.name == "GET /v1/accounts/{account_id}"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": f"/v1/accounts/{trader.account_id}",
        "url.scheme": "http",
        "network.protocol.version": "1.1",
        "server.address": "payments",
        "server.port": 80,
        "client.address": "testclient",
        "user_agent.original": "nova-tests/1",
        "http.route": "/v1/accounts/{account_id}",
        "http.response.status_code": 200,
    }
    assert span.status.status_code is StatusCode.UNSET


def test_a_request_no_route_matches_is_named_by_its_method(services: TracedServices) -> None:
    assert services.payments.get("/no/such/thing").status_code == 404
    [span] = server_spans(services.spans())
    assert span.name == "GET"
    assert "http.route" not in (span.attributes or {})
    assert (span.attributes or {})["http.response.status_code"] == 404
    assert span.status.status_code is StatusCode.UNSET  # a 4xx is the client's error, not the server's


def test_a_crash_is_an_error_span_with_the_exception(services: TracedServices, monkeypatch: pytest.MonkeyPatch) -> None:
    trader = services.trader()
    services.clear()

    def crash(*_args: Any) -> None:
        raise RuntimeError("ledger on fire")

    monkeypatch.setattr(services.payments_app.state.service, "account", crash)
    assert services.payments.get(f"/v1/accounts/{trader.account_id}", headers=trader.headers).status_code == 500
    [span] = server_spans(services.spans())
    assert span.status.status_code is StatusCode.ERROR
    attributes = span.attributes or {}
    assert attributes["http.response.status_code"] == 500
    assert attributes["error.type"] == "RuntimeError"
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes is not None and event.attributes["exception.message"] == "ledger on fire"
    assert "RuntimeError" in str(event.attributes["exception.stacktrace"])


def test_database_spans_hold_the_statement_and_never_its_values(services: TracedServices) -> None:
    trader = services.trader()
    services.clear()
    other = services.trader()
    body = {"from_account": trader.account_id, "to_account": other.account_id, "amount_minor": 4242, "currency": "USD"}
    paid = services.payments.post(
        "/v1/payments", json=body, headers={**trader.headers, "Idempotency-Key": "the-key-4242"}
    )
    assert paid.status_code == 201, paid.text
    statements = _db_spans(services.spans(), "payments")
    assert statements
    for span in statements:
        attributes = span.attributes or {}
        assert attributes["db.system.name"] == "sqlite"
        assert attributes["db.namespace"] == "payments.db"
        query = str(attributes["db.query.text"])
        assert attributes["db.operation.name"] == query.split()[0].upper() or query.startswith("WITH")
        assert span.name == attributes["db.query.summary"]
        for value in (trader.account_id, other.account_id, "4242", "the-key-4242", trader.id):
            assert value not in json.dumps(dict(attributes)), (span.name, value)
    names = {span.name for span in statements}
    assert {"SELECT accounts", "UPDATE accounts", "INSERT payments", "INSERT entries"} <= names


def test_statement_summaries_name_operations_and_tables() -> None:
    assert summarise("SELECT id FROM accounts WHERE id IN (:a, :b) ORDER BY id")[2] == "SELECT accounts"
    assert summarise('INSERT INTO "entries" (a) VALUES (?), (?)')[2] == "INSERT entries"
    operations, tables, summary = summarise(
        "WITH moved AS (UPDATE accounts SET b = b + 1 RETURNING id), paid AS (INSERT INTO payments (id) VALUES (1))"
        " SELECT (SELECT count(*) FROM moved)"
    )
    assert (operations[0], tables, summary) == (
        "UPDATE",
        ["accounts", "payments"],
        "UPDATE accounts INSERT payments SELECT",
    )


def test_a_failing_statement_is_an_error_span_without_its_message(services: TracedServices) -> None:
    services.clear()
    database = services.payments_app.state.service.db
    tracing = services.payments_app.state.tracing
    recorder = tracing.recorder
    assert recorder is not None
    request = recorder.start("GET", SpanKind.SERVER, trace.set_span_in_context(trace.INVALID_SPAN), {})
    with trace.use_span(request, end_on_exit=True), pytest.raises(DBAPIError), database.read() as conn:
        Sql("SELECT no_such_column FROM accounts WHERE id = :id").run(conn, {"id": "acc_secret_value"})
    with database.read() as conn:
        conn.execute(text("SELECT 1"))  # outside a request: no span
    [span] = _db_spans(services.spans(), "payments")
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "sqlite3.OperationalError"
    assert "acc_secret_value" not in str(span.attributes) + str(span.status.description)


# -- sampling ----------------------------------------------------------------------------------------


def test_parentbased_traceidratio_follows_a_sampled_parent(settings: ServiceSettings) -> None:
    env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    with traced_services(settings, env) as services:
        assert services.payments.get("/healthz").status_code == 200
        assert services.spans() == []  # a ratio of 0 samples no new trace

        trace_id, parent_id = random.getrandbits(128), random.getrandbits(64)
        sampled = {"traceparent": f"00-{trace_id:032x}-{parent_id:016x}-01"}
        assert services.payments.get("/healthz", headers=sampled).status_code == 200
        [span] = services.spans()
        assert span.context.trace_id == trace_id
        assert span.context.trace_flags.sampled

        services.clear()
        unsampled = {"traceparent": f"00-{trace_id:032x}-{parent_id:016x}-00"}
        assert services.payments.get("/healthz", headers=unsampled).status_code == 200
        assert services.spans() == []


def test_a_sampled_out_request_makes_no_spans_anywhere(settings: ServiceSettings) -> None:
    with traced_services(
        settings, {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    ) as services:
        trader = services.trader()
        assert services.order(trader).status_code == 201
        assert services.spans() == []


def test_samplers_come_from_the_environment() -> None:
    assert sampler_from_env({}) is DEFAULT_ON
    ratio = sampler_from_env({"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    assert isinstance(ratio, ParentBasedTraceIdRatio)
    assert "0.25" in ratio.get_description()  # type: ignore[no-untyped-call]
    bad = sampler_from_env({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "lots"})
    assert isinstance(bad, TraceIdRatioBased) and bad.rate == 1.0
    assert sampler_from_env({"OTEL_TRACES_SAMPLER": "no_such_sampler"}) is DEFAULT_ON


# -- configuration -------------------------------------------------------------------------------------


def test_the_resource_comes_from_the_environment(tmp_path: Path) -> None:
    env = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=game%20day,service.name=ignored"}
    setup = configure_tracing("payments", tmp_path, env, exporter=FileSpanExporter(tmp_path / "x.jsonl"))
    assert setup.recorder is not None
    attributes = setup.recorder.resource.attributes
    assert attributes["service.name"] == "ignored"  # OTEL_RESOURCE_ATTRIBUTES overrides the code's name
    assert attributes["deployment.environment.name"] == "game day"
    named = configure_tracing("payments", tmp_path, {**env, "OTEL_SERVICE_NAME": "payments-canary"})
    assert named.service_name == "payments-canary"
    setup.shutdown()


def test_configuring_twice_gives_the_same_tracing(tmp_path: Path) -> None:
    first = configure_tracing("payments", tmp_path, {})
    assert configure_tracing("payments", tmp_path, {}) is first
    assert configure_tracing("portfolio", tmp_path, {}) is not first


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, [FileSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "console"}, [ConsoleSpanExporter]),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["opentelemetry.exporter.otlp.proto.http.trace_exporter"]),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            ["opentelemetry.exporter.otlp.proto.grpc.trace_exporter"],
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp,file"},
            ["opentelemetry.exporter.otlp.proto.http.trace_exporter", FileSpanExporter],
        ),
    ],
)
def test_exporters_come_from_the_environment(tmp_path: Path, env: dict[str, str], expected: list[Any]) -> None:
    setup = configure_tracing("payments", tmp_path, env)
    assert setup.enabled
    for exporter, wanted in zip(setup.exporters, expected, strict=True):
        if isinstance(wanted, str):
            assert type(exporter).__module__.startswith(wanted)
        else:
            assert isinstance(exporter, wanted)
    assert TracingSettings.from_env(env).exporters == tuple(
        name for name in env.get("OTEL_TRACES_EXPORTER", "file").split(",")
    )


@pytest.mark.parametrize("env", [OTEL_DISABLED, {"OTEL_TRACES_EXPORTER": "none"}])
def test_tracing_off_records_nothing_and_writes_nothing(
    env: dict[str, str], make_settings: Callable[..., ServiceSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = make_settings()
    app = create_payments_app(settings)
    seen: list[bool] = []

    @app.get("/probe")
    def probe() -> dict[str, bool]:
        span = trace.get_current_span()
        seen.append(span.is_recording())
        return {"recording": span.is_recording()}

    tracing = app.state.tracing
    assert not tracing.enabled and tracing.provider is None
    assert not tracing.tracer.start_span("anything").is_recording()
    try:
        with TestClient(app) as client:
            assert client.post("/v1/customers", json={"name": "quiet"}, headers=ADMIN).status_code == 201
            assert client.get("/probe").json() == {"recording": False}
    finally:
        app.state.service.db.dispose()
    assert seen == [False]
    assert tracing.force_flush()
    assert not (settings.data_dir / "traces").exists()


# -- the file exporter -------------------------------------------------------------------------------


def test_the_embedded_default_writes_otlp_json_lines(
    make_settings: Callable[..., ServiceSettings], clean_otel_env: None
) -> None:
    settings = make_settings()
    app = create_payments_app(settings)
    try:
        with TestClient(app) as client:
            customer = client.post("/v1/customers", json={"name": "filed"}, headers=ADMIN)
            assert customer.status_code == 201
            token = customer.json()["token"]
            account = client.post(
                "/v1/accounts", json={"currency": "EUR"}, headers={"Authorization": f"Bearer {token}"}
            )
            assert account.status_code == 201
    finally:
        app.state.service.db.dispose()
    assert app.state.tracing.force_flush()
    path = settings.data_dir / "traces" / "payments.jsonl"
    lines = path.read_text().splitlines()
    assert lines
    spans = []
    for line in lines:
        request = json.loads(line)  # each line one ExportTraceServiceRequest
        for resource_spans in request["resourceSpans"]:
            resource = {item["key"]: item["value"] for item in resource_spans["resource"]["attributes"]}
            assert resource["service.name"] == {"stringValue": "payments"}
            for scope_spans in resource_spans["scopeSpans"]:
                assert scope_spans["scope"]["name"] == "nova.instrumentation"
                spans.extend(scope_spans["spans"])
    servers = [span for span in spans if span["kind"] == 2]
    assert sorted(span["name"] for span in servers) == ["POST /v1/accounts", "POST /v1/customers"]
    accounts = next(span for span in servers if span["name"] == "POST /v1/accounts")
    attributes = {item["key"]: item["value"] for item in accounts["attributes"]}
    assert attributes["http.response.status_code"] == {"intValue": "201"}
    assert attributes["http.route"] == {"stringValue": "/v1/accounts"}
    assert len(accounts["traceId"]) == 32 and len(accounts["spanId"]) == 16
    assert int(accounts["endTimeUnixNano"]) >= int(accounts["startTimeUnixNano"]) > 0
    statements = [span for span in spans if span["kind"] == 3 and span.get("parentSpanId") == accounts["spanId"]]
    assert {span["name"] for span in statements} >= {"INSERT accounts"}
    assert all(span["traceId"] == accounts["traceId"] for span in statements)
    [insert] = [span for span in statements if span["name"] == "INSERT accounts"]
    insert_attributes = {item["key"]: item["value"] for item in insert["attributes"]}
    assert insert_attributes["db.system.name"] == {"stringValue": "sqlite"}
    assert "?" in insert_attributes["db.query.text"]["stringValue"]


def _export_batches(path: str, worker: int, batches: int) -> None:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan as Span
    from opentelemetry.trace import SpanContext, TraceFlags

    exporter = FileSpanExporter(Path(path))
    resource = Resource({"service.name": "payments", "worker": worker})
    for batch in range(batches):
        spans = [
            Span(
                f"span {worker}/{batch}/{index}",
                SpanContext(random.getrandbits(128), random.getrandbits(64), False, TraceFlags(1)),
                resource=resource,
                attributes={"padding": "x" * 2000, "index": index},
                kind=SpanKind.INTERNAL,
                start_time=1,
                end_time=2,
            )
            for index in range(40)
        ]
        exporter.export(spans)


def test_processes_appending_to_one_file_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "traces" / "payments.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_export_batches, args=(str(path), worker, 25)) for worker in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    lines = path.read_text().splitlines()
    assert len(lines) == 4 * 25
    for line in lines:
        spans = json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]
        assert len(spans) == 40


def test_a_request_served_while_another_is_traced_is_its_own_trace(services: TracedServices) -> None:
    first = services.payments.get("/healthz")
    second = services.payments.get("/healthz")
    assert first.status_code == second.status_code == 200
    spans = services.spans()
    assert len(spans) == 2
    assert spans[0].context.trace_id != spans[1].context.trace_id
    assert all(span.parent is None for span in spans)


# -- database spans on both databases -------------------------------------------------------------------


def test_statements_are_spans_on_either_database(database_url: str, tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    setup = configure_tracing("payments", tmp_path, {}, exporter=exporter)
    assert setup.recorder is not None
    notes = Table("notes", MetaData(), Column("id", Integer, primary_key=True), Column("body", String(50)))
    database = Database(database_url, pool_size=2)
    try:
        database.migrate(notes.metadata, [])
        request = setup.recorder.start("POST", SpanKind.SERVER, Context(), {})
        with trace.use_span(request, end_on_exit=True):
            with database.write() as conn:
                conn.execute(insert(notes).values(id=1, body="value-never-recorded"))
                Sql("UPDATE notes SET body = :body WHERE id = :id").run(conn, {"body": "also-secret", "id": 1})
            with database.read() as conn:
                assert conn.execute(select(notes.c.body)).scalar() == "also-secret"
        setup.force_flush()
    finally:
        database.dispose()
        setup.shutdown()
    spans = [span for span in exporter.get_finished_spans() if span.kind is SpanKind.CLIENT]
    assert [span.name for span in spans] == ["INSERT notes", "UPDATE notes", "SELECT notes"]
    system = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    for span in spans:
        attributes = dict(span.attributes or {})
        assert attributes["db.system.name"] == system
        assert attributes["db.collection.name"] == "notes"
        assert span.parent is not None and span.parent.span_id == request.get_span_context().span_id
        assert "secret" not in json.dumps(attributes) and "value-never" not in json.dumps(attributes)
        if system == "postgresql":
            assert attributes["db.namespace"] == database_url.rsplit("/", 1)[1]
            assert (attributes["server.address"], attributes["server.port"]) == ("127.0.0.1", 5432)
            assert "%(" in str(attributes["db.query.text"]) or "SELECT" in str(attributes["db.query.text"])
        else:
            assert attributes["db.namespace"] == "ledger.db"


# -- real servers -----------------------------------------------------------------------------------


def test_the_lifespan_shutdown_exports_what_is_queued(make_settings: Callable[..., ServiceSettings]) -> None:
    app = create_payments_app(make_settings())
    exporter = InMemorySpanExporter()
    app.state.tracing = configure_tracing("payments", Path("unused"), {}, exporter=exporter)
    try:
        with TestClient(app) as client:
            assert client.get("/healthz").status_code == 200
            assert exporter.get_finished_spans() == ()  # still queued in the batch processor
        [span] = exporter.get_finished_spans()  # exported when the app shut down, no flush asked
        assert span.name == "GET /healthz"
    finally:
        app.state.service.db.dispose()


def test_real_servers_trace_an_order_through_both_services(run_platform: Any, clean_otel_env: None) -> None:
    with run_platform(workers=1) as platform:
        with httpx.Client(base_url=platform.options.url("payments"), headers=ADMIN, timeout=10) as payments:
            token = payments.post("/v1/customers", json={"name": "e2e"}).json()["token"]
            customer = {"Authorization": f"Bearer {token}"}
            account = payments.post("/v1/accounts", json={"currency": "USD"}, headers=customer).json()["id"]
            funded = payments.post(
                "/v1/deposits",
                json={"account_id": account, "amount_minor": 1_000_000},
                headers={"Idempotency-Key": "e2e-fund"},
            )
            assert funded.status_code == 201
        with httpx.Client(base_url=platform.options.url("portfolio"), timeout=10) as portfolio:
            order = portfolio.post(
                "/v1/orders",
                json={"account_id": account, "symbol": "NOVA", "side": "buy", "quantity": 1},
                headers={**customer, "Idempotency-Key": "e2e-order"},
            )
            assert order.status_code == 201, order.text
    # Stopped: each worker exported what it still held when its app shut down.
    spans: list[tuple[str, dict[str, Any]]] = []
    for service in ("payments", "portfolio"):
        for line in (platform.options.data_dir / "traces" / f"{service}.jsonl").read_text().splitlines():
            for resource_spans in json.loads(line)["resourceSpans"]:
                for scope_spans in resource_spans["scopeSpans"]:
                    spans.extend((service, span) for span in scope_spans["spans"])
    [(_, order_span)] = [(s, span) for s, span in spans if s == "portfolio" and span["name"] == "POST /v1/orders"]
    in_trace = [(s, span) for s, span in spans if span["traceId"] == order_span["traceId"]]
    [call] = [
        span for s, span in in_trace if s == "portfolio" and span["kind"] == 3 and span["name"] == "POST /v1/payments"
    ]
    # (the first order also opens the house account: more calls, in the same trace)
    [payment] = [span for s, span in in_trace if s == "payments" and span["name"] == "POST /v1/payments"]
    assert payment["kind"] == 2
    assert payment["parentSpanId"] == call["spanId"]
    assert any(s == "payments" and span.get("parentSpanId") == payment["spanId"] for s, span in in_trace)


def test_client_chosen_attribute_values_are_cut_to_the_length_limit(services: TracedServices) -> None:
    services.clear()
    agent = "a" * 100_000
    response = services.payments.get("/healthz", headers={"User-Agent": agent, "Host": "h" * 10_000})
    assert response.status_code == 200
    [span] = server_spans(services.spans())
    attributes = dict(span.attributes or {})
    assert attributes["user_agent.original"] == agent[:DEFAULT_ATTRIBUTE_VALUE_LENGTH]
    assert len(str(attributes["server.address"])) == DEFAULT_ATTRIBUTE_VALUE_LENGTH


def test_the_attribute_length_limit_comes_from_the_standard_variables() -> None:
    assert TracingSettings.from_env({}).attribute_value_length == DEFAULT_ATTRIBUTE_VALUE_LENGTH
    assert TracingSettings.from_env({"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "64"}).attribute_value_length == 64
    both = {"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "64", "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "32"}
    assert TracingSettings.from_env(both).attribute_value_length == 32


def _spans_with(attributes: list[dict[str, Any]]) -> list[ReadableSpan]:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import SpanContext, TraceFlags

    resource = Resource({"service.name": "payments"})
    return [
        ReadableSpan(
            "GET /healthz",
            SpanContext(random.getrandbits(128), random.getrandbits(64), False, TraceFlags(1)),
            resource=resource,
            attributes=attributes_of_one,
            kind=SpanKind.SERVER,
            start_time=1,
            end_time=2,
        )
        for attributes_of_one in attributes
    ]


def test_the_file_exporter_keeps_no_long_attribute_sets_in_its_cache(tmp_path: Path) -> None:
    exporter = FileSpanExporter(tmp_path / "payments.jsonl")
    exporter.export(_spans_with([{"user_agent.original": f"{index}" + "a" * 4000} for index in range(200)]))
    exporter.export(_spans_with([{"url.path": "/healthz"}] * 3))
    cached = exporter._attributes
    assert sum(len(encoded) for encoded in cached.values()) < 10_000
    assert len(cached) == 1


def test_a_trace_file_past_its_size_is_rotated_once_and_both_parts_hold_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "payments.jsonl"
    exporter = FileSpanExporter(path, max_bytes=20_000)
    for _ in range(30):
        exporter.export(_spans_with([{"padding": "x" * 1000}] * 2))
    rotated = path.with_name("payments.jsonl.1")
    assert path.stat().st_size <= 20_000 and rotated.stat().st_size <= 20_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payments.jsonl", "payments.jsonl.1"]
    for part in (path, rotated):
        for line in part.read_text().splitlines():
            assert len(json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]) == 2

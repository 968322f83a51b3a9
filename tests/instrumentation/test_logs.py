"""JSON log lines, joined to the trace of the request that wrote them."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core_services.settings import ServiceSettings
from instrumentation.logs import MAX_MESSAGE_CHARS, SERVER_LOGGERS, JsonFormatter, configure_logging
from tests.instrumentation.traced import TracedServices, json_lines, server_spans, traced_services

log = logging.getLogger("nova.tests.logs")


@pytest.fixture
def services(make_settings: Callable[..., ServiceSettings]) -> Iterator[TracedServices]:
    with traced_services(make_settings()) as traced:
        yield traced


def _lines(capsys: pytest.CaptureFixture[str], message: str) -> list[dict[str, Any]]:
    return [line for line in json_lines(capsys.readouterr().err) if message in str(line.get("message"))]


def test_a_line_logged_while_serving_a_request_has_its_trace(
    services: TracedServices, capsys: pytest.CaptureFixture[str]
) -> None:
    @services.payments_app.get("/probe/sync")
    def sync_probe() -> dict[str, str]:  # runs in a worker thread
        log.warning("probe from a thread")
        return {}

    @services.payments_app.get("/probe/async")
    async def async_probe() -> dict[str, str]:  # runs on the event loop
        log.warning("probe from the loop")
        return {}

    capsys.readouterr()
    assert services.payments.get("/probe/sync").status_code == 200
    assert services.payments.get("/probe/async").status_code == 200
    lines = json_lines(capsys.readouterr().err)
    spans = {span.name: span for span in server_spans(services.spans())}
    for message, route in (("probe from a thread", "/probe/sync"), ("probe from the loop", "/probe/async")):
        [line] = [line for line in lines if line["message"] == message]
        span = spans[f"GET {route}"]
        assert line["trace_id"] == f"{span.context.trace_id:032x}"
        assert line["span_id"] == f"{span.context.span_id:016x}"
        assert line["service"] == "payments"
        assert (line["level"], line["logger"]) == ("WARNING", "nova.tests.logs")


def test_the_crash_report_of_a_request_has_its_trace(
    services: TracedServices, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    trader = services.trader()
    services.clear()

    def crash(*_args: Any) -> None:
        raise RuntimeError("ledger on fire")

    monkeypatch.setattr(services.payments_app.state.service, "account", crash)
    capsys.readouterr()
    assert services.payments.get(f"/v1/accounts/{trader.account_id}", headers=trader.headers).status_code == 500
    [line] = _lines(capsys, "unhandled error on GET")
    [span] = server_spans(services.spans())
    assert line["level"] == "ERROR"
    assert line["trace_id"] == f"{span.context.trace_id:032x}"
    assert "RuntimeError: ledger on fire" in line["exception"]


def test_a_line_outside_any_request_has_no_trace(services: TracedServices, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    log.warning("between requests")
    [line] = _lines(capsys, "between requests")
    assert "trace_id" not in line and "span_id" not in line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
    assert set(line) == {"timestamp", "level", "logger", "message", "service"}


def test_a_sampled_out_request_still_has_its_trace_id_in_logs(
    make_settings: Callable[..., ServiceSettings], capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"OTEL_TRACES_SAMPLER": "always_off"}
    with traced_services(make_settings(), env) as services:

        @services.payments_app.get("/probe")
        async def probe() -> dict[str, str]:
            log.warning("unsampled")
            return {}

        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        capsys.readouterr()
        headers = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-00"}
        assert services.payments.get("/probe", headers=headers).status_code == 200
        [line] = _lines(capsys, "unsampled")
        assert line["trace_id"] == trace_id
        assert services.spans() == []


def test_credentials_are_blanked_from_messages_and_tracebacks(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("payments")
    capsys.readouterr()
    log.warning("calling with headers {'Authorization': 'Bearer sekrit-token-1'}")
    try:
        raise ValueError("bad header authorization=sekrit-token-2")
    except ValueError:
        log.exception("rejected Bearer sekrit-token-3")
    text = capsys.readouterr().err
    assert "sekrit" not in text and "Bearer" not in text
    assert text.count("[redacted]") >= 3


def test_configuring_again_replaces_the_handler(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("payments")
    configure_logging("portfolio")
    root = logging.getLogger()
    ours = [handler for handler in root.handlers if isinstance(handler.formatter, JsonFormatter)]
    assert len(ours) == 1
    capsys.readouterr()
    log.warning("once")
    [line] = _lines(capsys, "once")
    assert line["service"] == "portfolio"


def test_uvicorn_lines_are_json_too(capsys: pytest.CaptureFixture[str]) -> None:
    access = logging.getLogger("uvicorn.access")
    handler = logging.StreamHandler()
    access.addHandler(handler)
    try:
        configure_logging("payments")
        assert isinstance(handler.formatter, JsonFormatter)
        record = logging.LogRecord(
            "uvicorn.access",
            logging.INFO,
            __file__,
            1,
            '%s - "%s %s HTTP/%s" %d',
            ("1.2.3.4:5", "GET", "/", "1.1", 200),
            None,
        )
        line = json.loads(handler.format(record))
        assert line["message"] == '1.2.3.4:5 - "GET / HTTP/1.1" 200'
    finally:
        access.removeHandler(handler)
    assert "uvicorn.access" in SERVER_LOGGERS


def test_an_oversized_baggage_header_is_not_logged_verbatim(
    services: TracedServices, capsys: pytest.CaptureFixture[str]
) -> None:
    baggage = "tenant=" + "b" * 63_000
    capsys.readouterr()
    assert services.payments.get("/healthz", headers={"baggage": baggage}).status_code == 200
    err = capsys.readouterr().err
    assert "b" * (MAX_MESSAGE_CHARS + 1) not in err
    assert all(len(line) < MAX_MESSAGE_CHARS + 1024 for line in err.splitlines())

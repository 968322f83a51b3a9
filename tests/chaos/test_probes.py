"""Probes that read Prometheus (against a stub of its HTTP API on loopback) and load-run results."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from chaos.errors import ProbeError
from chaos.live_metrics import append_row
from chaos.probes import availability_and_p99, burn_rate, load_results, p99_ms, sli
from loadtests.audit import PaymentAudit
from loadtests.gate import evaluate_gate
from loadtests.results import RunParameters, RunSummary, write_summary
from loadtests.samples import RequestSample
from slo.scraper import Row

# What the stub answers, by a fragment of the query.
ANSWERS = {
    "slo:sli_error:ratio_rate5m": "0.0002",
    "slo:objective:ratio": "0.9999",
    "histogram_quantile": "87.5",
}


class PrometheusStub(BaseHTTPRequestHandler):
    queries: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)["query"][0]
        self.queries.append(query)
        value = next((answer for fragment, answer in ANSWERS.items() if fragment in query), None)
        result = [] if value is None else [{"metric": {}, "values": [[float(parse_qs(url.query)["end"][0]), value]]}]
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PrometheusStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_sli_burn_rate_and_p99(prometheus: str) -> None:
    assert sli(prometheus, "5m", "payments") == pytest.approx(0.9998)
    assert burn_rate(prometheus, "5m", "payments") == pytest.approx(2.0)
    assert p99_ms(prometheus, "5m", "payments") == 87.5
    both = availability_and_p99(prometheus, "5m", "payments")
    assert both == {"availability": pytest.approx(0.9998), "p99_ms": 87.5}
    assert any('sloth_service="payments",sloth_slo="availability"' in query for query in PrometheusStub.queries)


def test_missing_series_and_bad_windows_are_probe_errors(prometheus: str) -> None:
    with pytest.raises(ProbeError, match="no value"):
        sli(prometheus, "30m")
    with pytest.raises(ProbeError, match="window must be a duration"):
        sli(prometheus, "soon")


def test_a_window_the_rules_do_not_record_is_computed_from_the_specs_sli_query(prometheus: str) -> None:
    with pytest.raises(ProbeError, match="no value"):  # the stub knows only recorded series
        sli(prometheus, "1m", "payments")
    query = PrometheusStub.queries[-1]
    assert "http_server_requests_total" in query and "[1m]" in query


def test_unreachable_prometheus_is_a_probe_error() -> None:
    with pytest.raises(ProbeError, match="cannot query Prometheus"):
        sli("http://127.0.0.1:9", "5m")


def _scraped(data_dir: Path, ages: list[float], errors: int, slow: int, p99s: list[float]) -> None:
    now = time.time()
    for age, p99 in zip(ages, p99s, strict=True):
        append_row(data_dir, "payments", Row(now - age, 1000, errors, slow, p99, 0.5, 0.1))


def test_without_prometheus_the_sli_comes_from_the_embedded_scrapers_rows(tmp_path: Path) -> None:
    _scraped(tmp_path, [400.0, 50.0, 10.0], errors=1, slow=20, p99s=[900.0, 80.0, 120.0])
    # Only the two rows inside the last 5 minutes count: 2 errors and 40 slow of 2,000.
    assert sli("", "5m", "payments", "availability", str(tmp_path)) == pytest.approx(0.999)
    assert sli("", "5m", "payments", "latency", str(tmp_path)) == pytest.approx(0.98)
    assert burn_rate("", "5m", "payments", "availability", str(tmp_path)) == pytest.approx(10.0)
    assert p99_ms("", "5m", "payments", str(tmp_path)) == 120.0  # the slowest step's p99


def test_without_prometheus_or_scraper_the_probe_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ProbeError, match="nothing scrapes payments"):
        sli("", "5m", "payments", "availability", str(tmp_path))


def test_an_embedded_window_without_traffic_is_a_probe_error(tmp_path: Path) -> None:
    _scraped(tmp_path, [600.0], errors=0, slow=0, p99s=[10.0])
    with pytest.raises(ProbeError, match="no requests"):
        sli("", "5m", "payments", "availability", str(tmp_path))


def test_load_results(tmp_path: Path) -> None:
    """A summary.json written through its typed home (loadtests.results), read back by the probe."""
    pay = "POST /v1/payments"
    samples = [RequestSample(1000.0 + i * 0.01, pay, 201, 262.1 if i < 11 else 10.0, 1) for i in range(999)]
    samples.append(RequestSample(1010.0, pay, 503, 10.0, 1))
    parameters = RunParameters("steady", 10, 10.0, 1.0, "payments", 1, "http://p", "http://q")
    write_summary(tmp_path / "summary.json", RunSummary(evaluate_gate(samples), parameters, PaymentAudit()))
    results = load_results(str(tmp_path))
    assert {key: results[key] for key in ("passed", "availability", "p99_ms", "requests", "failures")} == {
        "passed": False,
        "availability": 0.999,
        "p99_ms": 262.1,
        "requests": 1000,
        "failures": 1,
    }
    assert results["availability_after_retries"] == 0.999 and results["audit_passed"] is True
    assert results["breaches"][0] == "overall: p99 262.1 ms >= 200 ms"
    with pytest.raises(ProbeError, match="no such file"):
        load_results(str(tmp_path / "missing"))

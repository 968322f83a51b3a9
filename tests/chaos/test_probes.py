"""Probes that read Prometheus (against a stub of its HTTP API on loopback) and load-run results."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import pytest

from chaos.errors import ProbeError
from chaos.probes import (
    availability_and_p99_from_prometheus,
    burn_rate,
    load_results,
    p99_ms_from_prometheus,
    sli_from_prometheus,
)

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
    assert sli_from_prometheus(prometheus, "5m", "payments") == pytest.approx(0.9998)
    assert burn_rate(prometheus, "5m", "payments") == pytest.approx(2.0)
    assert p99_ms_from_prometheus(prometheus, "5m", "payments") == 87.5
    both = availability_and_p99_from_prometheus(prometheus, "5m", "payments")
    assert both == {"availability": pytest.approx(0.9998), "p99_ms": 87.5}
    assert any('sloth_service="payments",sloth_slo="availability"' in query for query in PrometheusStub.queries)


def test_missing_series_and_bad_windows_are_probe_errors(prometheus: str) -> None:
    with pytest.raises(ProbeError, match="no value"):
        sli_from_prometheus(prometheus, "30m")
    with pytest.raises(ProbeError, match="window must be one"):
        sli_from_prometheus(prometheus, "7m")


def test_unreachable_prometheus_is_a_probe_error() -> None:
    with pytest.raises(ProbeError, match="cannot query Prometheus"):
        sli_from_prometheus("http://127.0.0.1:9", "5m")


def test_load_results(tmp_path: Path) -> None:
    summary = {
        "format": 1,
        "passed": False,
        "breaches": ["POST /v1/payments: p99 262.1 ms >= 200 ms"],
        "overall": {"requests": 1000, "failures": 1, "availability": 0.999, "p99_ms": 262.1},
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert load_results(str(tmp_path)) == {
        "passed": False,
        "availability": 0.999,
        "p99_ms": 262.1,
        "requests": 1000,
        "failures": 1,
        "breaches": ["POST /v1/payments: p99 262.1 ms >= 200 ms"],
    }
    with pytest.raises(ProbeError, match="no such file"):
        load_results(str(tmp_path / "missing"))

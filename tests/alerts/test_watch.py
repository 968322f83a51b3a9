"""`nova alerts watch` against a fake Alertmanager and webhook on loopback: what arrives, and its labels."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from typer.testing import CliRunner

from alerts.features import FEATURE_NAMES
from alerts.model import PredictiveModel
from alerts.pager.webhook import parse_notification
from alerts.watch import (
    PredictiveWatch,
    PrometheusSource,
    ReplaySource,
    ScraperSource,
    breach_in_minutes,
    run_watch,
    top_signal,
)
from nova.alerts_cli import alerts_app
from slo.scenario import Scenario, write_scenario
from tests.alerts.test_model import small_training_set, train_small_model


class Receiver:
    """A loopback HTTP server that keeps every JSON body POSTed to it, with its path."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, Any]] = []
        received = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _until_breach() -> list[str]:
    scenario = small_training_set(1)[0]
    breach = scenario.incidents[0].breach
    assert breach is not None
    return ["--max-steps", str(int((breach - scenario.timestamps[0]) // 15) + 1)]


UNTIL_BREACH = _until_breach()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("watch-model") / "model.skops"
    train_small_model(path)
    return path


@pytest.fixture(scope="module")
def incident(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Scenario]:
    """A recorded scenario the model pages on (a pool exhaustion from the training family)."""
    scenario = small_training_set(1)[0]
    folder = tmp_path_factory.mktemp("replay") / "pool"
    write_scenario(folder, scenario)
    return folder, scenario


def test_watch_sends_predictive_alerts_to_alertmanager_api_v2(
    model_file: Path, incident: tuple[Path, Scenario], receiver: Receiver
) -> None:
    folder, _ = incident
    result = CliRunner().invoke(
        alerts_app,
        ["watch", "--model", str(model_file), "--replay", str(folder), "--alertmanager", receiver.url, *UNTIL_BREACH],
    )
    assert result.exit_code == 0, result.output
    assert receiver.posts, "no alert reached Alertmanager"
    path, body = receiver.posts[0]
    assert path == "/api/v2/alerts"
    alert = body[0]
    labels, annotations = alert["labels"], alert["annotations"]
    assert labels["kind"] == "predictive"
    assert labels["severity"] == "page"
    assert labels["service"] == "payments"
    assert labels["slo"] in ("availability", "latency")
    assert labels["alertname"] == f"Payments{labels['slo'].title()}PredictedBurn"
    assert labels["sloth_id"] == f"payments-{labels['slo']}"
    assert annotations["runbook_url"] == f"runbooks/payments-{labels['slo']}-predictive.md"
    assert annotations["predicted_breach_in"].startswith("~") and annotations["predicted_breach_in"].endswith("m")
    assert annotations["summary"]
    assert annotations["signal"]
    assert alert["startsAt"].endswith("Z") and alert["endsAt"] > alert["startsAt"]


def test_a_replay_is_stamped_as_if_its_newest_row_were_now(
    model_file: Path, incident: tuple[Path, Scenario], receiver: Receiver
) -> None:
    """Alertmanager takes an alert whose endsAt is past as resolved: a drill must look live."""
    folder, _ = incident
    before = time.time()
    result = CliRunner().invoke(
        alerts_app,
        ["watch", "--model", str(model_file), "--replay", str(folder), "--alertmanager", receiver.url, *UNTIL_BREACH],
    )
    assert result.exit_code == 0, result.output
    firing = receiver.posts[0][1][0]
    starts, ends = (datetime.fromisoformat(firing[key]).timestamp() for key in ("startsAt", "endsAt"))
    assert before <= starts <= time.time()  # the recording is months old
    assert ends == pytest.approx(starts + 60, abs=1)


def test_a_replay_at_a_speed_takes_a_step_per_interval_over_speed(incident: tuple[Path, Scenario]) -> None:
    _, scenario = incident
    steps = ReplaySource(scenario, speed=150.0).steps()  # 15 s rows, one every 0.1 s
    started = time.monotonic()
    times = [next(steps)[0] for _ in range(4)]
    assert time.monotonic() - started >= 0.3
    assert times == [float(t) for t in scenario.timestamps[:4]]


def test_watch_alerts_before_the_incident_breaches(model_file: Path, incident: tuple[Path, Scenario]) -> None:
    _, scenario = incident
    breach = scenario.incidents[0].breach
    assert breach is not None
    model = PredictiveModel.load(model_file)
    sent: list[Any] = []

    class Keep:
        def send(self, alerts: Any) -> None:
            sent.extend(alerts)

        def close(self) -> None:
            pass

    until = int(np.searchsorted(scenario.timestamps, breach)) + 1
    run_watch(PredictiveWatch(model, ["payments"], scenario.slo), ReplaySource(scenario), Keep(), max_steps=until)
    firing = [a for a in sent if a.status == "firing"]
    assert firing and firing[0].at <= breach
    assert firing[0].at >= scenario.incidents[0].start


def test_watch_sends_the_pagers_webhook_payload(
    model_file: Path, incident: tuple[Path, Scenario], receiver: Receiver
) -> None:
    folder, _ = incident
    result = CliRunner().invoke(
        alerts_app,
        [
            "watch",
            "--model",
            str(model_file),
            "--replay",
            str(folder),
            "--webhook",
            receiver.url + "/hook",
            *UNTIL_BREACH,
        ],
    )
    assert result.exit_code == 0, result.output
    path, body = receiver.posts[0]
    assert path == "/hook"
    notification = parse_notification(json.dumps(body))
    assert notification.alerts[0].labels["kind"] == "predictive"
    assert notification.alerts[0].annotations["predicted_breach_in"]


def test_watch_stops_after_one_step_with_once(
    model_file: Path, incident: tuple[Path, Scenario], receiver: Receiver
) -> None:
    folder, _ = incident
    result = CliRunner().invoke(
        alerts_app,
        ["watch", "--model", str(model_file), "--replay", str(folder), "--alertmanager", receiver.url, "--once"],
    )
    assert result.exit_code == 0, result.output
    assert "1 steps" in result.output


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--alertmanager", "http://127.0.0.1:9", "--webhook", "http://127.0.0.1:9"], "exactly one of"),
        (["--alertmanager", "http://127.0.0.1:9"], "exactly one source"),
        (["--alertmanager", "ftp://x", "--scrape", "payments=http://127.0.0.1:9"], "http(s) URL"),
        (["--alertmanager", "http://127.0.0.1:9", "--scrape", "payments"], "NAME=http"),
        (["--alertmanager", "http://127.0.0.1:9", "--scrape", "p=http://127.0.0.1:9", "--speed", "60"], "--speed"),
    ],
)
def test_watch_refuses_bad_options_in_one_line(model_file: Path, args: list[str], reason: str) -> None:
    result = CliRunner().invoke(alerts_app, ["watch", "--model", str(model_file), *args])
    assert result.exit_code == 2
    assert reason in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_breach_estimate_follows_the_trend_of_the_burn() -> None:
    features = np.zeros(len(FEATURE_NAMES))
    index = {name: i for i, name in enumerate(FEATURE_NAMES)}
    features[index["slow_burn_1h"]] = 7.2
    features[index["slow_burn_5m"]] = 21.6  # the 1h burn closes half the gap in 30 minutes
    slo, minutes = breach_in_minutes(features, 30.0)
    assert slo == "latency"
    assert minutes == pytest.approx(30.0)


def test_page_names_the_signal_projected_to_reach_its_limit_first() -> None:
    features = np.full(len(FEATURE_NAMES), 240.0)
    index = {name: i for i, name in enumerate(FEATURE_NAMES)}
    features[index["slow_eta_1h_pair"]] = 25.0
    features[index["db_pool_eta_full"]] = 14.2
    assert top_signal(features) == "db_pool full in ~14m"


class FakePrometheus:
    """Answers `/api/v1/query` for the series `PrometheusSource` reads, 100 more requests each scrape."""

    def __init__(self) -> None:
        self.scrapes = 0
        state = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query)["query"][0]
                body = json.dumps(
                    {"status": "success", "data": {"resultType": "vector", "result": state.answer(query)}}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, query: str) -> list[dict[str, Any]]:
        n = self.scrapes
        service = {"service": "payments"}
        if query.startswith("sum by (service) (http_server_requests_total") and "5.." in query:
            return [{"metric": service, "value": [0, str(2 * n)]}]
        if query.startswith("sum by (service) (http_server_requests_total"):
            self.scrapes += 1  # the first query of each scrape
            return [{"metric": service, "value": [0, str(100 * n)]}]
        if "_count" in query:
            return [{"metric": service, "value": [0, str(100 * n)]}]
        if "_bucket" in query:
            return [
                {"metric": {**service, "le": le}, "value": [0, str(value)]}
                for le, value in (("0.1", 90 * n), ("0.2", 97 * n), ("+Inf", 100 * n))
            ]
        if "in_use" in query:
            return [{"metric": service, "value": [0, "5"]}]
        if "connections_max" in query:
            return [{"metric": service, "value": [0, "20"]}]
        if "process_cpu" in query:
            return [{"metric": service, "value": [0, "0.4"]}]
        return []

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_prometheus_source_turns_counters_into_rows() -> None:
    prometheus = FakePrometheus()
    source = PrometheusSource(prometheus.url, ["payments"], step_seconds=0.2)
    try:
        steps = source.steps()
        _, first = next(steps)
        _, second = next(steps)
    finally:
        source.close()
        prometheus.close()
    for rows in (first, second):
        row = rows["payments"]
        assert (row.requests, row.errors, row.slow) == (100, 2, 3)
        assert row.cpu == pytest.approx(0.4)
        assert row.db_pool == pytest.approx(0.25)
        assert 0 < row.p99_ms <= 200


def test_scraper_source_yields_each_step_of_the_services_metrics() -> None:
    served = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served["n"] += 1
            n = served["n"]
            text = (
                "# TYPE http_server_requests_total counter\n"
                f'http_server_requests_total{{route="/v1/payments",code="201"}} {50 * n}\n'
                f'http_server_requests_total{{route="/v1/payments",code="503"}} {n}\n'
                f'http_server_requests_total{{route="/healthz",code="200"}} {1000 * n}\n'
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    source = ScraperSource({"payments": f"http://127.0.0.1:{server.server_address[1]}"}, step_seconds=0.2)
    try:
        steps = source.steps()
        rows = [next(steps)[1]["payments"] for _ in range(3)]
    finally:
        source.close()
        server.shutdown()
        server.server_close()
    assert [r.timestamp for r in rows] == sorted({r.timestamp for r in rows})
    for row in rows:  # health checks are not customer traffic
        assert row.requests == 51 * round(row.requests / 51)
        assert row.errors * 51 == row.requests

"""The locustfile against the real platform: Locust as a subprocess, as `nova load` runs it.

Each run is a short, small load on loopback (10 users at 5 requests a second for about 10 s)
against `nova serve` processes on free ports; Locust is never imported into this process.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from loadtests.samples import read_samples, read_service_samples
from nova.serve import Platform
from tests.nova.conftest import RunPlatform, admin_client, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO_ROOT / "loadtests" / "locustfile.py"
DURATION_SECONDS = 10
# Requests that are not the load test's: the scrapes and probes, this test's own ledger check, and
# portfolio's polls of payments' token revocations (traces of their own).
NOT_LOAD_TEST = {"GET /metrics", "GET /healthz", "GET /readyz", "GET /v1/ledger/verify", "GET /v1/tokens/revocations"}


@pytest.fixture(autouse=True)
def clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The services' embedded trace defaults (spans to <data-dir>/traces), whatever the shell sets."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def run_locust(
    platform: Platform, results: Path, *extra: str, mix: str = "trading"
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        platform.options.url("payments"),
        "--portfolio-url",
        platform.options.url("portfolio"),
        "--shape",
        "steady",
        "--peak-users",
        "10",
        "--duration",
        str(DURATION_SECONDS),
        "--user-rate",
        "5",
        "--mix",
        mix,
        "--nova-results",
        str(results),
        *extra,
    ]
    # NOVA_ADMIN_TOKEN reaches Locust through the environment run_platform set.
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=DURATION_SECONDS + 80)


def test_a_trading_run_records_every_request_traced_and_leaves_the_ledger_balanced(
    run_platform: RunPlatform, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    with run_platform() as platform:
        locust = run_locust(platform, results)
        with admin_client(platform) as admin:
            ledger = admin.get("/v1/ledger/verify").json()
    # Stopped: each service worker has exported the spans it still held.
    spans = {service: _spans(platform.options.data_dir / "traces" / f"{service}.jsonl") for service in _SERVICES}

    assert locust.returncode == 0, locust.stderr[-3000:]
    samples = list(read_samples(results / "samples.csv"))
    endpoints = Counter(sample.endpoint for sample in samples)
    assert {
        "POST /v1/customers",
        "POST /v1/accounts",
        "POST /v1/deposits",
        "POST /v1/payments",
        "POST /v1/orders",
        "GET /v1/quotes/{symbol}",
        "GET /v1/portfolios/{account_id}",
        "GET /v1/accounts/{id}",
    } <= set(endpoints)
    assert endpoints["POST /v1/customers"] == endpoints["POST /v1/deposits"] == 10  # one sign-up per user
    assert [s for s in samples if s.failed] == []
    assert {s.attempt for s in samples} == {1}  # a healthy platform needs no retries
    assert all(s.millis > 0 for s in samples)
    # about users x rate: 10 x 5 a second (the sign-ups and the ramp take a little of it)
    assert 0.5 * 50 * DURATION_SECONDS < len(samples) < 1.5 * 50 * DURATION_SECONDS
    assert max(s.timestamp for s in samples) - min(s.timestamp for s in samples) < DURATION_SECONDS + 2

    services = list(read_service_samples(results / "services.csv"))
    assert {row.service for row in services} == {"payments", "portfolio"}
    assert all(0.0 <= row.db_pool <= 1.0 and row.cpu >= 0.0 for row in services)

    assert ledger["balanced"] is True
    assert ledger["negative_accounts"] == 0

    # The services continued each request's trace (W3C traceparent; the baggage travels with it).
    # Only the load test calls portfolio, so each of its request spans has a remote parent; payments
    # spans whose parent is no portfolio span were called by the load test directly.
    portfolio_span_ids = {span["spanId"] for span in spans["portfolio"]}
    served = {service: [span for span in found if _is_load_request(span)] for service, found in spans.items()}
    assert served["portfolio"] and all(_remote_parent(span) for span in served["portfolio"])
    assert [span["name"] for span in served["payments"] if not _remote_parent(span)] == []
    direct = {span["name"] for span in served["payments"] if span["parentSpanId"] not in portfolio_span_ids}
    assert {"POST /v1/customers", "POST /v1/deposits", "POST /v1/payments", "GET /v1/accounts/{account_id}"} <= direct


_SERVICES = ("payments", "portfolio")
_SERVER, _REMOTE_PARENT = 2, 0x200


def _spans(path: Path) -> list[dict[str, Any]]:
    return [
        span
        for line in path.read_text().splitlines()
        for resource_spans in json.loads(line)["resourceSpans"]
        for scope_spans in resource_spans["scopeSpans"]
        for span in scope_spans["spans"]
    ]


def _is_load_request(span: dict[str, Any]) -> bool:
    return bool(span["kind"] == _SERVER and span["name"] not in NOT_LOAD_TEST)


def _remote_parent(span: dict[str, Any]) -> bool:
    return bool(span.get("parentSpanId")) and bool(int(span.get("flags", 0)) & _REMOTE_PARENT)


def test_workers_ship_every_sample_to_the_master(run_platform: RunPlatform, tmp_path: Path) -> None:
    """`--processes 2`: a master and two workers; samples.csv counts what Locust itself counted."""
    results = tmp_path / "results"
    with run_platform() as platform:
        port = str(free_port())  # not Locust's default 5557, which another run on this machine may hold
        distributed = ("--processes", "2", "--master-bind-port", port, "--master-port", port)
        locust = run_locust(platform, results, *distributed, "--csv", str(tmp_path / "locust"), mix="payments")

    assert locust.returncode == 0, locust.stderr[-3000:]
    samples = list(read_samples(results / "samples.csv"))
    assert len(samples) == _locust_request_count(tmp_path / "locust_stats.csv") > 100
    assert samples == sorted(samples)  # merged from both workers in time order
    # the payments mix: paying customers only, whose sign-up and work never touch portfolio
    assert {s.endpoint for s in samples} <= {
        "POST /v1/customers",
        "POST /v1/accounts",
        "POST /v1/deposits",
        "POST /v1/payments",
        "GET /v1/accounts/{id}",
        "GET /v1/payments/{id}",
    }
    assert not [s for s in samples if s.failed or s.attempt != 1]
    assert {row.service for row in read_service_samples(results / "services.csv")} == {"payments", "portfolio"}


def _locust_request_count(stats_csv: Path) -> int:
    with stats_csv.open(newline="") as handle:
        [aggregated] = [row for row in csv.DictReader(handle) if row["Name"] == "Aggregated"]
    return int(aggregated["Request Count"])

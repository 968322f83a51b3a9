"""Results files: written, parsed back, equal to what the gate computed; 15 s scenario rows from samples."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from loadtests.audit import merge_audits
from loadtests.gate import OVERALL, Thresholds, evaluate_gate
from loadtests.results import (
    ENDPOINT_COLUMNS,
    ResultsError,
    RunParameters,
    RunSummary,
    read_endpoints,
    read_summary,
    scenario_from_samples,
    write_results,
)
from loadtests.samples import CONNECTION_FAILED, RequestSample, ServiceSample
from slo.scenario import ScenarioSLO, read_scenario

BASE = 1_700_000_010  # a multiple of 15: rows end at BASE + 15k
RUN = RunParameters("steady", 20, 60.0, 2.0, "trading", 1, "http://127.0.0.1:8001", "http://127.0.0.1:8002")


def sample(
    at: float, millis: float, status: int = 201, endpoint: str = "POST /v1/payments", attempt: int = 1
) -> RequestSample:
    return RequestSample(at, endpoint, status, millis, attempt)


def a_run() -> list[RequestSample]:
    rng = np.random.default_rng(3)
    run = [
        sample(BASE + 0.5 + i * 0.02, float(ms), endpoint="GET /v1/accounts/{id}")
        for i, ms in enumerate(rng.gamma(2, 8, 1500))
    ]
    run += [sample(BASE + 1 + i * 0.05, float(ms)) for i, ms in enumerate(rng.gamma(3, 15, 500))]
    run += [sample(BASE + 3, 40.0, 503), sample(BASE + 3.2, 42.0, 201, attempt=2)]
    return run


def test_written_files_parse_back_and_match_the_gate(tmp_path: Path) -> None:
    samples = a_run()
    summary = RunSummary(evaluate_gate(samples, Thresholds(200, 0.9999)), RUN)
    files = write_results(tmp_path, summary, samples)

    assert read_summary(tmp_path) == summary
    document = json.loads(files.summary.read_text())
    assert document["verdict"] == ("pass" if summary.passed else "fail")
    assert document["breaches"] == summary.gate.breaches
    assert document["thresholds"] == {"p99_ms": 200, "availability": 0.9999, "min_requests_to_judge": 10000}
    assert document["run"]["mix"] == "trading"
    assert document["overall"]["requests"] == len(samples)

    rows = read_endpoints(files.endpoints)
    assert [row["endpoint"] for row in rows] == ["GET /v1/accounts/{id}", "POST /v1/payments", OVERALL]
    for row, figures in zip(rows, summary.gate.rows, strict=True):
        assert int(row["requests"]) == figures.requests
        assert int(row["retries"]) == figures.retries
        assert int(row["failures"]) == figures.failures
        assert float(row["p99_ms"]) == figures.p99_ms
        assert float(row["availability"]) == figures.availability
        assert row["verdict"] == ("pass" if figures.passed else "fail")
    assert tuple(rows[0]) == ENDPOINT_COLUMNS

    scenario = read_scenario(files.scenario)
    assert int(scenario.requests.sum()) == len(samples)
    assert int(scenario.errors.sum()) == 1
    assert scenario.slo == ScenarioSLO(availability=0.9999, latency_threshold_ms=200)
    assert scenario.incidents == []


def test_a_failing_run_says_so_in_every_file(tmp_path: Path) -> None:
    samples = [sample(BASE + i * 0.1, 250.0) for i in range(50)]
    summary = RunSummary(evaluate_gate(samples), RUN)
    write_results(tmp_path, summary, samples)
    assert not read_summary(tmp_path / "summary.json").passed
    assert json.loads((tmp_path / "summary.json").read_text())["breaches"][0] == "overall: p99 250.0 ms >= 200 ms"
    assert read_endpoints(tmp_path / "endpoints.csv")[-1]["verdict"] == "fail"


def test_scenario_rows_count_requests_when_their_response_arrives() -> None:
    samples = [
        sample(BASE + 1, 50),  # done at +1.05: row BASE+15
        sample(BASE + 2, 250),  # slow
        sample(BASE + 3, 30, 500),  # error
        sample(BASE + 4, 30, CONNECTION_FAILED),  # error
        sample(BASE + 14.9, 300),  # sent in the first row, done at +15.2: second row, and slow
        sample(BASE + 15, 10),  # exactly on the boundary after sending, done just after it: second row
        # nothing in the third row
        sample(BASE + 50, 120),  # fourth row
        sample(BASE + 51, 180, 503),
    ]
    scenario = scenario_from_samples(samples, [], Thresholds())
    assert scenario.timestamps.tolist() == [BASE + 15, BASE + 30, BASE + 45, BASE + 60]
    assert scenario.requests.tolist() == [4, 2, 0, 2]
    assert scenario.errors.tolist() == [2, 0, 0, 1]
    assert scenario.slow.tolist() == [1, 1, 0, 0]
    assert scenario.p99_ms.tolist() == [250.0, 300.0, 0.0, 180.0]
    assert scenario.cpu.tolist() == [0.0] * 4 and scenario.db_pool.tolist() == [0.0] * 4


def test_a_row_boundary_belongs_to_the_row_it_ends() -> None:
    scenario = scenario_from_samples([sample(BASE + 14.9, 100.0), sample(BASE + 20, 1.0)], [], Thresholds())
    assert scenario.timestamps.tolist() == [BASE + 15, BASE + 30]
    assert scenario.requests.tolist() == [1, 1]  # done at exactly BASE + 15.0: the first row


def test_p99_per_row_is_the_gates_percentile() -> None:
    rng = np.random.default_rng(11)
    millis = [float(v) for v in rng.uniform(1, 400, 3000)]
    samples = [sample(BASE + 0.5 + i * 0.004, ms) for i, ms in enumerate(millis)]  # all done inside one row
    scenario = scenario_from_samples(samples, [], Thresholds())
    assert scenario.requests.tolist() == [0, 3000]  # padded: a scenario has at least two rows
    assert scenario.p99_ms[1] == sorted(millis)[math.ceil(2999 * 0.99)]
    assert scenario.slow[1] == sum(ms > 200 for ms in millis)


def test_cpu_is_the_busiest_services_mean_and_db_pool_the_peak() -> None:
    samples = [sample(BASE + 1, 5.0), sample(BASE + 40, 5.0)]
    services = [
        ServiceSample(BASE + 2, "payments", 0.2, 0.1),
        ServiceSample(BASE + 7, "payments", 0.6, 0.5),  # payments' mean 0.4
        ServiceSample(BASE + 3, "portfolio", 0.35, 0.2),
        ServiceSample(BASE + 8, "portfolio", 0.35, 0.9),  # portfolio's mean 0.35; peak pool 0.9
        ServiceSample(BASE + 17, "portfolio", 0.7, 0.3),
        ServiceSample(BASE + 400, "payments", 1.0, 1.0),  # after the run: ignored
    ]
    scenario = scenario_from_samples(samples, services, Thresholds())
    assert scenario.cpu.tolist() == pytest.approx([0.4, 0.7, 0.0])
    assert scenario.db_pool.tolist() == pytest.approx([0.9, 0.3, 0.0])


def test_the_scenario_carries_the_runs_thresholds(tmp_path: Path) -> None:
    samples = [sample(BASE + 1, 120.0), sample(BASE + 2, 160.0)]
    thresholds = Thresholds(150, 0.999)
    summary = RunSummary(evaluate_gate(samples, thresholds), RUN)
    files = write_results(tmp_path, summary, samples)
    scenario = read_scenario(files.scenario)
    assert scenario.slo == ScenarioSLO(availability=0.999, latency_threshold_ms=150)
    assert scenario.slow.tolist() == [0, 1]


def test_reading_something_else_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such file"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_text('{"format": "something else"}')
    with pytest.raises(ResultsError, match="not a load-run summary"):
        read_summary(tmp_path)
    (tmp_path / "summary.json").write_text("{")
    with pytest.raises(ResultsError, match="not JSON"):
        read_summary(tmp_path)


def test_availability_after_retries_is_written_beside_availability_and_as_the_last_csv_column(tmp_path: Path) -> None:
    samples = a_run()  # one 503 on the first attempt, then a 201 on the retry
    summary = RunSummary(evaluate_gate(samples), RUN)
    files = write_results(tmp_path, summary, samples)

    document = json.loads(files.summary.read_text())
    for figures in (document["overall"], *document["endpoints"]):
        keys = list(figures)
        assert keys[keys.index("availability") + 1] == "availability_after_retries"
    assert document["overall"]["availability_after_retries"] == 1.0
    assert document["overall"]["availability"] < 1.0
    assert ENDPOINT_COLUMNS[-1] == "availability_after_retries"
    assert [float(row["availability_after_retries"]) for row in read_endpoints(files.endpoints)] == [
        row.availability_after_retries for row in summary.gate.rows
    ]


def test_a_failed_payment_audit_fails_the_run_and_is_named_among_the_breaches(tmp_path: Path) -> None:
    samples = [sample(BASE + i * 0.1, 20.0) for i in range(50)]
    audit = merge_audits([], missing=1)
    summary = RunSummary(evaluate_gate(samples), RUN, audit)
    write_results(tmp_path, summary, samples)

    assert summary.gate.passed and not summary.passed
    document = json.loads((tmp_path / "summary.json").read_text())
    assert (document["verdict"], document["passed"]) == ("fail", False)
    assert document["breaches"] == ["payment audit: no audit from 1 Locust process(es)"]
    assert document["audit"] == audit.to_json()
    assert read_summary(tmp_path) == summary

"""The capacity search policy with a fake step runner: it finds the boundary, stops, reports the best pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests import capacity
from loadtests.capacity import (
    LIMIT_GATE,
    LIMIT_MAX_RATE,
    LIMIT_SUSTAIN,
    CapacityReport,
    CapacityResult,
    CapacitySearchRun,
    LocustStep,
    StepResult,
    find_capacity,
    step_result,
    users_for_rate,
)
from loadtests.gate import GateError, Thresholds, evaluate_gate
from loadtests.locust_process import LocustRun
from loadtests.results import RunParameters, RunSummary
from loadtests.samples import RequestSample


class FakePlatform:
    """Holds the SLO up to `limit` requests/s and serves `served` of what is offered."""

    def __init__(self, limit: float, served: float = 0.98, ceiling: float = float("inf")) -> None:
        self.limit, self.served, self.ceiling = limit, served, ceiling
        self.offered: list[float] = []

    def __call__(self, rate: float) -> StepResult:
        self.offered.append(rate)
        achieved = min(rate * self.served, self.ceiling)
        ok = rate <= self.limit
        breaches = () if ok else (f"overall: p99 {250.0:.1f} ms >= 200 ms",)
        return StepResult(rate, achieved, ok, int(achieved * 30), 0, 1.0, 50.0 if ok else 250.0, breaches)


def test_steps_up_geometrically_then_bisects_to_the_boundary() -> None:
    platform = FakePlatform(limit=730)
    result = find_capacity(platform, start_rate=100, max_rate=5000)
    assert platform.offered == [100, 200, 400, 800, 600, 700, 750]
    assert result.capacity == pytest.approx(700 * 0.98)
    assert result.limited_by == LIMIT_GATE
    assert [step.offered_rate for step in result.steps] == platform.offered
    assert result.best is not None and result.best.offered_rate == 700


def test_stops_at_max_rate_when_nothing_fails() -> None:
    platform = FakePlatform(limit=10_000)
    result = find_capacity(platform, start_rate=100, max_rate=300)
    assert platform.offered == [100, 200, 300]
    assert result.capacity == pytest.approx(300 * 0.98)
    assert result.limited_by == LIMIT_MAX_RATE


def test_a_failing_first_step_bisects_downwards() -> None:
    platform = FakePlatform(limit=30)
    result = find_capacity(platform, start_rate=100, max_rate=1000)
    assert platform.offered == [100, 50, 25, 37.5]
    assert result.capacity == pytest.approx(25 * 0.98)


def test_nothing_passing_reports_no_capacity() -> None:
    result = find_capacity(FakePlatform(limit=1), start_rate=100, max_rate=1000, refinements=2)
    assert result.capacity is None and result.best is None
    assert len(result.steps) == 3


def test_bisection_stops_once_pass_and_fail_are_close() -> None:
    platform = FakePlatform(limit=410)
    find_capacity(platform, start_rate=100, max_rate=5000, refinements=10, tolerance=0.1)
    # 400 passes and 800 fails; 600, 500, 450 and 425 fail; 425 is within 10% of 400, so it stops there.
    assert platform.offered == [100, 200, 400, 800, 600, 500, 450, 425]


def test_a_rate_the_load_did_not_reach_is_a_failure() -> None:
    # The generator (or the closed loop of users waiting on responses) tops out at 450/s.
    platform = FakePlatform(limit=10_000, ceiling=450)
    result = find_capacity(platform, start_rate=100, max_rate=5000)
    assert result.limited_by == LIMIT_SUSTAIN
    failed = [step for step in result.steps if not step.passed]
    assert all(step.gate_passed and not step.sustained for step in failed)
    assert "achieved 450.0/s of" in failed[0].reason
    assert result.capacity == pytest.approx(450)  # 500 offered was reached at 90%; the best achieved rate


def test_the_highest_achieved_rate_wins_not_the_highest_offered() -> None:
    results = iter(
        [
            StepResult(100, 99, True, 3000, 0, 1.0, 40),
            StepResult(200, 150, False, 4500, 3, 0.999, 90, ("overall: availability",)),
            StepResult(150, 148, True, 4400, 0, 1.0, 80),
            StepResult(175, 171, True, 5100, 0, 1.0, 120),
            StepResult(187.5, 160, True, 4800, 0, 1.0, 160),  # served less than 90% of it: not sustained
        ]
    )
    result = find_capacity(lambda _rate: next(results), start_rate=100, max_rate=1000)
    assert result.capacity == 171
    assert result.best is not None and result.best.offered_rate == 175


@pytest.mark.parametrize(
    ("rate", "per_user", "users"),
    [(250, 1.0, 250), (250, 3.0, 84), (0.5, 2.0, 1), (1000, 0.5, 2000), (100, 7.0, 15)],
)
def test_users_times_user_rate_is_the_offered_rate(rate: float, per_user: float, users: int) -> None:
    found_users, found_rate = users_for_rate(rate, per_user)
    assert found_users == users
    assert found_rate <= per_user
    assert found_users * found_rate == pytest.approx(rate)


def test_bad_search_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        find_capacity(FakePlatform(1), start_rate=0, max_rate=10)
    with pytest.raises(ValueError):
        find_capacity(FakePlatform(1), start_rate=20, max_rate=10)
    with pytest.raises(ValueError):
        find_capacity(FakePlatform(1), start_rate=1, max_rate=10, growth=1.0)


def test_a_step_result_carries_the_gates_figures() -> None:
    samples = [RequestSample(1000 + i * 0.01, "POST /v1/payments", 201, 20.0, 1) for i in range(1000)]
    gate = evaluate_gate(samples)
    run = RunParameters("steady", 10, 10, 10, "payments", 1, "http://a", "http://b")
    step = step_result(120.0, RunSummary(gate, run), "out/step-01")
    assert step.achieved_rate == gate.overall.requests_per_second
    assert (step.requests, step.p99_ms, step.gate_passed, step.results) == (1000, 20.0, True, "out/step-01")
    assert not step.sustained  # ~100/s of 120 offered


def test_a_failed_steps_reason_is_its_first_breach() -> None:
    step = StepResult(400, 396, False, 5000, 0, 1.0, 210, ("overall: p99 210.0 ms >= 200 ms", "POST /v1/payments: ..."))
    assert step.reason == "overall: p99 210.0 ms >= 200 ms (and 1 more)"
    assert StepResult(10, 10, True, 100, 0, 1.0, 5).reason == ""


def test_capacity_json_reads_back_as_the_report_written(tmp_path: Path) -> None:
    steps = (
        StepResult(100.0, 99.0, True, 5000, 0, 1.0, 120.0, results="step-01-100rps"),
        StepResult(200.0, 150.0, False, 8000, 9, 0.9989, 450.0, breaches=("p99 450.0 ms >= 200 ms",)),
    )
    run = CapacitySearchRun(2.0, 2, "http://127.0.0.1:8001", "http://127.0.0.1:8002", {"payments": 2, "portfolio": 2})
    report = CapacityReport({"trading": CapacityResult(99.0, "gate", steps)}, Thresholds(200, 0.9999), 20.0, 6.0, run)
    report.write(tmp_path / "capacity.json")
    document = json.loads((tmp_path / "capacity.json").read_text())
    assert CapacityReport.from_json(document) == report
    assert document["mixes"]["trading"]["steps"][1]["passed"] is False  # the verdict is spelled out for people


def test_a_capacity_json_without_mixes_is_refused() -> None:
    with pytest.raises(ValueError, match="no mixes"):
        CapacityReport.from_json({"run": {}})


def test_each_step_offers_its_rate_on_the_open_models_timetable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Closed-model users started together send in bursts; a step spreads its rate instead."""
    offered: list[RunParameters] = []

    def run_headless(spec: LocustRun, tick: object) -> int:
        offered.append(spec.run)
        return 0

    def collect(*_args: object) -> None:
        raise GateError("nothing answered")

    monkeypatch.setattr(capacity, "run_headless", run_headless)
    monkeypatch.setattr(capacity, "collect", collect)
    base = RunParameters("steady", 10, 10, 1.0, "trading", 1, "http://a", "http://b")
    LocustStep(base, tmp_path, "token", Thresholds(200.0, 0.9999), 10.0, 3.0)(120.0)
    assert [(run.shape, run.rate, run.duration_seconds) for run in offered] == [("steady", 120.0, 10.0)]

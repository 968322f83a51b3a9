"""The capacity plan is computed from the measured capacity.json (a results file in, the plan out), not constants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from loadtests.capacity import CapacityResult, StepResult
from loadtests.capacity_plan import CapacityPlanError, Measured, PlanInputs, plan, read_capacity
from loadtests.gate import Thresholds
from loadtests.results import RunParameters
from nova.cli import app
from nova.load_cli import write_capacity


def capacity_file(folder: Path, mixes: dict[str, float | None], workers: int | None = 2) -> Path:
    """A capacity.json as `nova load --find-capacity` writes it, from steps that passed at the given rates."""
    found = {}
    for mix, rate in mixes.items():
        steps: tuple[StepResult, ...] = (StepResult(50.0, 50.0, True, 1000, 0, 1.0, 80.0),)
        if rate is not None:
            steps += (
                StepResult(rate, rate, True, 5000, 0, 1.0, 150.0),
                StepResult(rate * 2, rate, False, 9000, 9, 0.999, 400.0),
            )
        else:
            steps = (StepResult(50.0, 50.0, False, 1000, 5, 0.995, 300.0),)
        best = max((s.achieved_rate for s in steps if s.passed), default=None)
        found[mix] = CapacityResult(best, "gate", steps)
    base = RunParameters("steady", 10, 20.0, 5.0, "trading", 1, "http://127.0.0.1:8001", "http://127.0.0.1:8002")
    path = folder / "capacity.json"
    service_workers = {"payments": workers, "portfolio": workers} if workers is not None else None
    write_capacity(path, found, Thresholds(200, 0.9999), 20.0, 6.0, base, service_workers)
    return path


def nova_plan(*args: str | Path) -> Any:
    return CliRunner().invoke(app, ["load", *map(str, args)])


def test_two_measurements_give_proportionally_different_plans(tmp_path: Path) -> None:
    slow = read_capacity(capacity_file(tmp_path / "a", {"trading": 100.0}))
    fast = read_capacity(capacity_file(tmp_path / "b", {"trading": 400.0}))
    inputs = PlanInputs(peak_rps=1000, headroom=0.0, workers_per_pod=1, min_pods=1)
    slow_plan, fast_plan = plan(slow, inputs), plan(fast, inputs)
    # 100 req/s over 2 workers is 50 per worker: 1000 req/s needs 20 workers; four times the rate, a quarter.
    assert [t.workers for t in slow_plan.tiers] == [20, 200]
    assert [t.workers for t in fast_plan.tiers] == [5, 50]
    assert [t.pods for t in slow_plan.tiers] == [4 * t.pods for t in fast_plan.tiers]


def test_the_measured_workers_divide_the_capacity(tmp_path: Path) -> None:
    two = read_capacity(capacity_file(tmp_path / "a", {"trading": 200.0}, workers=2))
    four = read_capacity(capacity_file(tmp_path / "b", {"trading": 200.0}, workers=4))
    assert (two.per_worker_rps, four.per_worker_rps) == (100.0, 50.0)
    inputs = PlanInputs(peak_rps=1000, headroom=0.0, workers_per_pod=2, min_pods=1)
    assert plan(four, inputs).tiers[0].pods == 2 * plan(two, inputs).tiers[0].pods


def test_everything_rounds_up(tmp_path: Path) -> None:
    measured = Measured("trading", 94.0, 1, "capacity.json")  # 94 req/s per worker
    inputs = PlanInputs(peak_rps=100, headroom=0.3, workers_per_pod=2, pool_size=4, min_pods=1)
    today, tenfold = plan(measured, inputs).tiers
    assert today.target_rps == pytest.approx(130.0)
    assert (today.workers, today.pods) == (2, 1)  # 130 / 94 = 1.38 workers: 2 workers, 1 pod of 2
    assert (tenfold.workers, tenfold.pods) == (14, 7)  # 1300 / 94 = 13.8: 14 workers, 7 pods
    exact = plan(
        Measured("trading", 100.0, 1, "c"), PlanInputs(peak_rps=300, headroom=0.0, workers_per_pod=2, min_pods=1)
    )
    assert (exact.tiers[0].workers, exact.tiers[0].pods) == (3, 2)  # 3 workers exactly, pods still round up
    assert (exact.tiers[1].workers, exact.tiers[1].pods) == (30, 15)  # no float drift to 31
    assert plan(measured, PlanInputs(peak_rps=1, min_pods=2)).tiers[0].pods == 2  # never below the floor


def test_the_10x_plan_serves_at_least_ten_times_the_load(tmp_path: Path) -> None:
    for rate, peak in ((188.0, 500.0), (376.0, 37.0), (61.3, 1234.5)):
        result = plan(read_capacity(capacity_file(tmp_path / str(rate), {"trading": rate})), PlanInputs(peak_rps=peak))
        today, tenfold = result.tiers
        assert tenfold.load_rps == 10 * today.load_rps
        assert result.served_rps(tenfold) >= 10 * peak * 1.3
        assert result.served_rps(today) >= peak * 1.3
        assert tenfold.pods >= today.pods


def test_connections_are_pods_times_workers_times_pool_and_overflow() -> None:
    measured = Measured("trading", 100.0, 1, "c")
    inputs = PlanInputs(peak_rps=1000, headroom=0.0, workers_per_pod=2, pool_size=10, max_connections=200, min_pods=1)
    today, tenfold = plan(measured, inputs).tiers
    assert inputs.overflow == 5  # pool_size // 2, as core_services/database.py configures it
    assert today.connections == today.pods * 2 * 15 == 150 and today.fits
    assert tenfold.connections == 50 * 2 * 15 and not tenfold.fits
    explicit = PlanInputs(peak_rps=1000, headroom=0.0, workers_per_pod=2, pool_size=10, max_overflow=0, min_pods=1)
    assert plan(measured, explicit).tiers[0].connections == 5 * 2 * 10


def test_the_default_mix_is_the_one_with_the_lowest_capacity(tmp_path: Path) -> None:
    path = capacity_file(tmp_path, {"trading": 188.0, "payments": 376.0, "read_heavy": None})
    assert read_capacity(path).mix == "trading"
    assert read_capacity(path, "payments").capacity_rps == 376.0


def test_the_command_prints_the_plan_and_writes_plan_json(tmp_path: Path) -> None:
    path = capacity_file(tmp_path, {"trading": 188.0})
    out = tmp_path / "plan"
    done = nova_plan("--plan", path, "--peak-rps", "500", "--pool-size", "4", "--out", out)
    assert done.exit_code == 0, done.output
    assert "94.00 req/s per worker" in done.stdout and "Capacity plan" in done.stdout
    document = json.loads((out / "plan.json").read_text())
    assert document["measured"] == {
        "mix": "trading",
        "capacity_rps": 188.0,
        "measured_workers": 2,
        "source": str(path),
        "per_worker_rps": 94.0,
    }
    today, tenfold = document["tiers"]
    assert (today["workers_per_service"], today["pods_per_service"]) == (7, {"payments": 4, "portfolio": 4})
    assert today["db_connections_per_service"] == {"payments": 48, "portfolio": 48}
    assert (tenfold["name"], tenfold["pods_per_service"]["payments"], tenfold["fits_max_connections"]) == (
        "10x",
        35,
        False,
    )


def test_measured_workers_from_the_command_line_when_the_file_has_none(tmp_path: Path) -> None:
    path = capacity_file(tmp_path, {"trading": 188.0}, workers=None)
    done = nova_plan("--plan", path, "--peak-rps", "500")
    assert done.exit_code == 2 and "give --measured-workers" in done.stderr
    done = nova_plan("--plan", path, "--peak-rps", "500", "--measured-workers", "4")
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "plan.json").read_text())["measured"]["per_worker_rps"] == 47.0


BAD = [
    (lambda p: ["--plan", p / "missing.json", "--peak-rps", "5"], "no such file"),
    (lambda p: ["--plan", p / "capacity.json"], "--plan needs --peak-rps"),
    (lambda p: ["--plan", p / "capacity.json", "--peak-rps", "0"], "--peak-rps must be above 0"),
    (lambda p: ["--plan", p / "capacity.json", "--peak-rps", "5", "--headroom", "-1"], "--headroom"),
    (lambda p: ["--plan", p / "capacity.json", "--peak-rps", "5", "--workers-per-pod", "0"], "--workers-per-pod"),
    (lambda p: ["--plan", p / "capacity.json", "--peak-rps", "5", "--mix", "crypto"], "no mix 'crypto'"),
    (lambda p: ["--plan", p / "capacity.json", "--peak-rps", "5", "--mix", "read_heavy"], "no step of the read_heavy"),
    (lambda p: ["--plan", p / "capacity.json", "--peak-rps", "5", "--mix", "all"], "plans one mix"),
    (lambda p: ["--plan", p / "capacity.json", "--peak-rps", "5", "--measured-workers", "0"], "--measured-workers"),
    (lambda p: ["--plan", p / "not-json.json", "--peak-rps", "5"], "not JSON"),
    (lambda p: ["--plan", p / "capacity.json", "--peak-rps", "5", "--find-capacity"], "runs no load"),
    (lambda p: ["--plan", p / "other.json", "--peak-rps", "5"], "not a capacity.json"),
]


@pytest.mark.parametrize(("args", "reason"), BAD, ids=[reason for _, reason in BAD])
def test_bad_input_is_one_line(args: Any, reason: str, tmp_path: Path) -> None:
    capacity_file(tmp_path, {"trading": 188.0, "read_heavy": None})
    (tmp_path / "not-json.json").write_text("{")
    (tmp_path / "other.json").write_text('{"passed": true}')
    done = nova_plan(*args(tmp_path))
    assert done.exit_code == 2, done.output
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("nova: ") and reason in line
    assert not (tmp_path / "plan.json").exists()


def test_a_capacity_that_is_not_a_positive_number_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "capacity.json"
    path.write_text(
        json.dumps(
            {"run": {"service_workers": {"payments": 2, "portfolio": 2}}, "mixes": {"trading": {"capacity_rps": -3}}}
        )
    )
    with pytest.raises(CapacityPlanError, match="capacity_rps must be a positive number"):
        read_capacity(path)

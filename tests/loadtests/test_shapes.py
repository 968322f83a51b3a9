"""Load shapes as data: each named shape makes the users it promises, over time, and nothing else."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from loadtests.shapes import SHAPES, Stage, stage_at, stages, users_at


def test_steady_runs_peak_users_throughout_after_a_fast_start() -> None:
    plan = stages("steady", 50, 120)

    assert users_at(plan, 1) == pytest.approx(25)
    assert users_at(plan, 2) == 50
    assert users_at(plan, 119.9) == 50
    assert stage_at(plan, 60) == Stage(120, 50, 25.0)


def test_market_open_ramps_within_a_minute_holds_and_decays_to_a_fifth_over_the_last_fifth() -> None:
    plan = stages("market_open", 100, 600)

    assert users_at(plan, 30) == pytest.approx(50)
    assert users_at(plan, 60) == 100
    assert users_at(plan, 480) == 100  # the hold lasts until the last fifth
    assert users_at(plan, 540) == pytest.approx(60)
    assert users_at(plan, 599.99) == pytest.approx(20, abs=0.01)
    assert plan[-1][:2] == (600, 20)
    assert plan[-1].spawn_rate == pytest.approx(80 / 120)


def test_a_short_market_open_ramps_over_its_first_fifth() -> None:
    plan = stages("market_open", 10, 50)

    assert users_at(plan, 5) == pytest.approx(5)
    assert users_at(plan, 10) == 10
    assert users_at(plan, 40) == 10
    assert users_at(plan, 49.99) == pytest.approx(2, abs=0.01)


def test_spike_10x_bursts_to_ten_times_the_base_for_the_middle_sixth() -> None:
    plan = stages("spike_10x", 100, 120)

    assert users_at(plan, 30) == 10
    assert users_at(plan, 49.9) == 10
    assert users_at(plan, 52) == 100  # the burst arrives within 2 s
    assert users_at(plan, 69.9) == 100
    assert users_at(plan, 72) == 10
    assert users_at(plan, 119.9) == 10
    assert [stage.until for stage in plan] == [50, 70, 120]
    assert max(stage.users for stage in plan) == 10 * min(stage.users for stage in plan)


def test_soak_holds_peak_for_the_whole_run_after_a_slow_ramp() -> None:
    plan = stages("soak", 60, 4 * 3600)

    assert users_at(plan, 150) == pytest.approx(30)
    assert users_at(plan, 300) == 60
    assert users_at(plan, 4 * 3600 - 1) == 60
    assert users_at(stages("soak", 60, 100), 10) == 60  # short runs ramp over a tenth


@pytest.mark.parametrize("name", SHAPES)
def test_every_shape_ends_at_its_duration_with_positive_spawn_rates(name: str) -> None:
    plan = stages(name, 40, 90)

    assert [stage.until for stage in plan] == sorted(stage.until for stage in plan)
    assert plan[-1].until == 90
    assert all(stage.spawn_rate > 0 and stage.users >= 1 for stage in plan)
    assert max(stage.users for stage in plan) == 40
    assert stage_at(plan, 89.99) is not None
    assert stage_at(plan, 90) is None
    assert users_at(plan, 90) == 0


def test_one_peak_user_still_makes_a_playable_plan() -> None:
    for name in ("steady", "market_open", "soak"):
        assert all(stage.users == 1 and stage.spawn_rate > 0 for stage in stages(name, 1, 10))


@pytest.mark.parametrize(
    ("name", "peak", "duration", "message"),
    [
        ("tsunami", 10, 60, "unknown shape 'tsunami'"),
        ("steady", 0, 60, "peak users"),
        ("steady", -5, 60, "peak users"),
        ("steady", 2.5, 60, "peak users"),
        ("steady", True, 60, "peak users"),
        ("steady", 10, 0, "duration"),
        ("steady", 10, -1, "duration"),
        ("steady", 10, math.nan, "duration"),
        ("steady", 10, math.inf, "duration"),
        ("spike_10x", 9, 60, "at least 10 peak users"),
    ],
)
def test_bad_names_and_parameters_are_refused(name: str, peak: int, duration: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stages(name, peak, duration)


def test_the_pure_modules_import_no_locust() -> None:
    """Locust patches the whole process with gevent on import: these must stay importable without it."""
    check = (
        "import sys, loadtests.shapes, loadtests.traffic, loadtests.service_metrics, loadtests.sample_spool; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"

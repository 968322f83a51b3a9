"""The game day's load plan and its time to recover, as plain code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos import gameday_load
from chaos.gameday_evidence import time_to_recover
from chaos.gameday_load import overload_note, plan_load
from chaos.gameday_model import Check, LoadPlan, PhaseResult, Window
from chaos.gameday_plan import GameDayError, GameDayOptions, check_options
from loadtests.samples import RequestSample

URLS = {"payments": "http://127.0.0.1:1", "portfolio": "http://127.0.0.1:2"}


def capacity_json(folder: Path, capacity: float) -> Path:
    path = folder / "capacity.json"
    path.write_text(
        json.dumps({"run": {"service_workers": {"payments": 2}}, "mixes": {"trading": {"capacity_rps": capacity}}})
    )
    return path


def test_the_default_plan_offers_the_case_studys_peak(tmp_path: Path) -> None:
    plan = plan_load(GameDayOptions(out=tmp_path / "gd"), URLS, tmp_path / "calibration")
    assert (plan.rate, plan.asked, plan.capacity_rps, plan.spike_rps) == (250.0, 250.0, None, None)


def _baseline(*, held: bool) -> PhaseResult:
    check = Check(name="no burn-rate page during the baseline", passed=held, detail="")
    return PhaseResult("baseline", "Baseline", Window(0.0, 20.0), None, "passed", "", checks=[check])


def test_a_baseline_that_failed_at_the_rate_asked_says_the_machine_may_be_below_it() -> None:
    note = overload_note(LoadPlan(rate=250.0, asked=250.0), _baseline(held=False))
    assert "250 requests/s" in note and "--capacity-share" in note


def test_a_baseline_that_held_needs_no_note() -> None:
    assert overload_note(LoadPlan(rate=250.0, asked=250.0), _baseline(held=True)) == ""


def test_a_load_already_sized_from_the_capacity_needs_no_note() -> None:
    plan = LoadPlan(rate=200.0, asked=250.0, capacity_rps=250.0, capacity_share=0.8, capacity_source="calibration")
    assert overload_note(plan, _baseline(held=False)) == ""


def test_a_capacity_share_offers_that_share_of_the_measured_capacity(tmp_path: Path) -> None:
    options = GameDayOptions(out=tmp_path / "gd", capacity_share=0.8, capacity_file=capacity_json(tmp_path, 400.0))
    plan = plan_load(options, URLS, tmp_path / "calibration")
    assert plan.rate == 320.0 and plan.capacity_rps == 400.0
    assert plan.capacity_source == str(tmp_path / "capacity.json")


def test_a_calibration_of_the_game_days_own_platform_sizes_the_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calibrated = tmp_path / "calibration" / "capacity.json"
    calibrated.parent.mkdir()
    # As `nova load --find-capacity` writes it when given the URLs: no record of the workers.
    calibrated.write_text(json.dumps({"run": {}, "mixes": {"trading": {"capacity_rps": 300.0}}}))
    monkeypatch.setattr(gameday_load, "calibrate", lambda options, urls, out: calibrated)
    options = GameDayOptions(out=tmp_path / "gd", quick=True, capacity_share=0.8)
    plan = plan_load(options, URLS, tmp_path / "calibration")
    assert (plan.rate, plan.capacity_rps, plan.capacity_source) == (240.0, 300.0, "calibration")


def test_the_full_game_days_spike_is_capped_at_the_measured_capacity(tmp_path: Path) -> None:
    options = GameDayOptions(
        out=tmp_path / "gd", quick=False, capacity_share=0.5, capacity_file=capacity_json(tmp_path, 600.0)
    )
    plan = plan_load(options, URLS, tmp_path / "calibration")
    assert plan.rate == 300.0 and plan.spike_rps == 600.0  # not 3,000: the platform measured 600
    assert "capped at the measured capacity" in plan.note


def test_a_rate_above_the_capacity_is_offered_and_said_so(tmp_path: Path) -> None:
    options = GameDayOptions(out=tmp_path / "gd", capacity_share=1.5, capacity_file=capacity_json(tmp_path, 200.0))
    plan = plan_load(options, URLS, tmp_path / "calibration")
    assert plan.rate == 300.0  # never lowered silently
    assert "above the measured capacity of 200" in plan.note


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rate": -1.0}, "--rate must be 0"),
        ({"capacity_share": 0.0}, "--capacity-share must be above 0"),
        ({"abort_budget": 0.0}, "--abort-budget must be a percent"),
        ({"abort_budget": 150.0}, "--abort-budget must be a percent"),
        ({"capacity_file": Path("/nonexistent/capacity.json"), "capacity_share": 0.5}, "no such file"),
    ],
)
def test_bad_load_options_are_refused_before_anything_starts(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(GameDayError, match=message):
        check_options(GameDayOptions(out=tmp_path / "gd", **changes))  # type: ignore[arg-type]


def _second(at: float, status: int = 200, millis: float = 10.0, count: int = 20) -> list[RequestSample]:
    return [RequestSample(at + i / count, "GET /v1/quotes/{symbol}", status, millis, 1) for i in range(count)]


def test_recovery_ends_with_the_last_second_outside_the_objective() -> None:
    fault = Window(100.0, 110.0)
    # answered (sent + 300 ms) up to 112.45, in the third second after the fault's end
    samples = [*_second(110.2, status=503), *_second(111.2, millis=300.0), *_second(112.6), *_second(113.6)]
    assert time_to_recover(samples, fault, 200.0) == 3.0


def test_a_platform_within_objective_right_after_the_fault_recovered_at_once() -> None:
    assert time_to_recover([*_second(110.2), *_second(111.2)], Window(100.0, 110.0), 200.0) == 0.0


def test_a_platform_still_failing_at_the_end_has_not_recovered() -> None:
    samples = [*_second(110.2), *_second(111.2, status=503)]
    assert time_to_recover(samples, Window(100.0, 110.0), 200.0) is None

"""The training-data generator: realistic, labelled by the SLO engine, reproducible."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import numpy as np
import pytest

from alerts.generator import (
    INCIDENT_KINDS,
    NEAR_MISS_KINDS,
    generate_labelled,
    generate_scenario,
    generate_set,
    write_set,
)
from slo.scenario import COLUMNS, Scenario, breach_condition, first_breach, read_scenario

MINUTE = 60.0
ARRAYS = ("timestamps", *COLUMNS[1:])


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    return generate_set(1, 12)


def _same(a: Scenario, b: Scenario) -> bool:
    return all(np.array_equal(getattr(a, c), getattr(b, c)) for c in ARRAYS) and a.incidents == b.incidents


def _kind_runs(kind: str, count: int = 16) -> list[Scenario]:
    return [generate_scenario(seed, incident_kinds=(kind,), near_miss_kinds=()) for seed in range(count)]


def test_the_same_seed_gives_the_same_scenario() -> None:
    assert _same(generate_scenario(7), generate_scenario(7))


def test_different_seeds_give_different_scenarios() -> None:
    a, b = generate_scenario(7), generate_scenario(8)
    assert not np.array_equal(a.requests, b.requests)


def test_a_set_is_back_to_back_days_with_stable_names(scenarios: list[Scenario]) -> None:
    assert [s.name for s in scenarios[:2]] == ["scenario-1-000", "scenario-1-001"]
    assert scenarios[1].timestamps[0] == scenarios[0].timestamps[-1] + 15
    assert all(s.timestamps.shape[0] == 24 * 240 for s in scenarios)


def test_written_scenarios_read_back_identically(tmp_path: Path, scenarios: list[Scenario]) -> None:
    paths = write_set(tmp_path, scenarios[:3])
    assert [p.name for p in paths] == [s.name for s in scenarios[:3]]
    for path, original in zip(paths, scenarios[:3], strict=True):
        loaded = read_scenario(path)
        assert _same(loaded, original), path
        assert loaded.name == original.name


def test_every_breach_is_the_slo_engines_first_breach(scenarios: list[Scenario]) -> None:
    incidents = [(s, i) for s in scenarios for i in s.incidents]
    assert incidents
    for scenario, incident in incidents:
        assert incident.breach == first_breach(scenario, incident.start, incident.end), (scenario.name, incident)


def test_some_incidents_breach_and_some_never_do(scenarios: list[Scenario]) -> None:
    breaches = [i.breach for s in scenarios for i in s.incidents]
    assert any(b is None for b in breaches)
    assert sum(b is not None for b in breaches) >= len(breaches) / 2


def test_incidents_json_lists_only_real_incidents(scenarios: list[Scenario]) -> None:
    assert {i.kind for s in scenarios for i in s.incidents} <= set(INCIDENT_KINDS)


def test_incidents_never_overlap_and_leave_an_hour_of_clean_history(scenarios: list[Scenario]) -> None:
    for scenario in scenarios:
        first_row = float(scenario.timestamps[0])
        spans = sorted((i.start, i.end) for i in scenario.incidents)
        assert all(start >= first_row + 3600 - 15 for start, _ in spans)
        assert all(b[0] > a[1] for a, b in itertools.pairwise(spans))


def test_the_page_condition_holds_only_during_incidents(scenarios: list[Scenario]) -> None:
    for scenario in scenarios:
        holds = breach_condition(scenario)
        covered = np.zeros_like(holds)
        for incident in scenario.incidents:
            covered |= (scenario.timestamps >= incident.start) & (scenario.timestamps <= incident.end + 1800)
        assert not (holds & ~covered).any(), scenario.name


def test_near_misses_never_meet_the_page_condition() -> None:
    for seed in range(10):
        scenario, near = generate_labelled(seed, incident_kinds=(), near_miss_kinds=NEAR_MISS_KINDS * 2)
        assert scenario.incidents == []
        assert len(near) >= 4
        assert not breach_condition(scenario).any(), seed


def test_near_misses_look_alarming() -> None:
    peaks: dict[str, list[float]] = {"cpu_spike": [], "pool_spike": [], "blip": []}
    for seed in range(6):
        scenario, near = generate_labelled(seed, incident_kinds=(), near_miss_kinds=("cpu_spike", "pool_spike", "blip"))
        for event in near:
            rows = (scenario.timestamps >= event.start) & (scenario.timestamps <= event.end)
            column = {"cpu_spike": scenario.cpu, "pool_spike": scenario.db_pool}.get(event.kind)
            ratio = scenario.errors[rows].sum() / scenario.requests[rows].sum()
            peaks[event.kind].append(float(column[rows].max()) if column is not None else float(ratio))
    assert np.median(peaks["cpu_spike"]) > 0.75
    assert np.median(peaks["pool_spike"]) > 0.75
    assert np.median(peaks["blip"]) > 14.4e-4  # above the fast-burn threshold while it lasts


def test_a_quiet_day_has_the_normal_shape_of_a_payments_api() -> None:
    scenario = generate_scenario(3, incident_kinds=(), near_miss_kinds=())
    hour = (scenario.timestamps % 86400) / 3600
    night, afternoon = scenario.requests[(hour > 2) & (hour < 4)], scenario.requests[(hour > 14) & (hour < 16)]
    assert afternoon.mean() > 3 * night.mean()
    assert scenario.errors.sum() / scenario.requests.sum() < 5e-5
    assert 5e-4 < scenario.slow.sum() / scenario.requests.sum() < 5e-3
    assert 55 < float(np.median(scenario.p99_ms)) < 120
    assert scenario.cpu.min() > 0.05
    assert scenario.cpu.max() < 0.75
    assert scenario.db_pool.min() > 0.05
    assert scenario.db_pool.max() < 0.45


def test_market_open_brings_more_traffic() -> None:
    scenario = generate_scenario(4, incident_kinds=(), near_miss_kinds=("market_open_surge",))
    seconds = scenario.timestamps % 86400
    before = scenario.requests[(seconds > 13 * 3600) & (seconds <= 13.5 * 3600)].mean()
    after = scenario.requests[(seconds > 13.5 * 3600 + 300) & (seconds <= 13.5 * 3600 + 1200)].mean()
    assert after > 1.5 * before


def _leads(kind: str, signal: str, threshold: float) -> list[float]:
    """Per breaching incident: minutes from the signal first crossing `threshold` to the breach."""
    leads = []
    for scenario in _kind_runs(kind):
        for incident in scenario.incidents:
            if incident.breach is None:
                continue
            if signal == "traffic":  # requests relative to the hour before the fault
                hour_before = (scenario.timestamps < incident.start) & (scenario.timestamps >= incident.start - 3600)
                values = scenario.requests / scenario.requests[hour_before].mean()
            else:
                values = getattr(scenario, signal)
            during = (scenario.timestamps >= incident.start) & (scenario.timestamps <= incident.breach)
            crossed = np.flatnonzero(during & (values > threshold))
            leads.append((incident.breach - scenario.timestamps[crossed[0]]) / MINUTE if crossed.size else 0.0)
    assert len(leads) >= 6, f"too few breaching {kind} incidents to judge"
    return leads


@pytest.mark.parametrize(
    ("kind", "signal", "threshold", "minutes", "share"),
    [
        ("pool_exhaustion", "db_pool", 0.8, 10, 0.75),
        ("memory_gc", "p99_ms", 150, 10, 0.75),
        ("slow_dependency", "p99_ms", 200, 10, 0.75),
        # some surges are steep on purpose (a minority that is hard to predict)
        ("capacity_surge", "traffic", 1.5, 10, 0.6),
    ],
)
def test_each_incident_shows_its_precursor_before_the_breach(
    kind: str, signal: str, threshold: float, minutes: float, share: float
) -> None:
    leads = _leads(kind, signal, threshold)
    assert np.mean(np.asarray(leads) >= minutes) >= share, leads


def test_a_bad_deploy_steps_the_error_share_up_at_deploy_time() -> None:
    for scenario in _kind_runs("bad_deploy", 8):
        (incident,) = scenario.incidents
        before = (scenario.timestamps < incident.start) & (scenario.timestamps >= incident.start - 3600)
        after = (scenario.timestamps >= incident.start) & (scenario.timestamps < incident.start + 5 * MINUTE)
        ratio_before = scenario.errors[before].sum() / scenario.requests[before].sum()
        ratio_after = scenario.errors[after].sum() / scenario.requests[after].sum()
        assert ratio_after > 5 * ratio_before, scenario.name


def test_slow_burns_never_page_fast() -> None:
    scenarios = _kind_runs("slow_burn", 12)
    incidents = [i for s in scenarios for i in s.incidents]
    assert all(i.breach is None or i.breach - i.start >= 2 * 3600 for i in incidents)
    assert any(i.breach is not None for i in incidents)


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        generate_scenario(1, incident_kinds=("meteor",))


def test_a_day_of_data_takes_a_fraction_of_a_second() -> None:
    began = time.perf_counter()
    generate_set(5, 10)
    assert time.perf_counter() - began < 10

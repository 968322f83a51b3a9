"""Simulator B (queueing): reproducible, labelled by the SLO engine, different in structure from A."""

from __future__ import annotations

import numpy as np
import pytest

from alerts.queueing import (
    INCIDENT_KINDS,
    MECHANISMS,
    NEAR_MISS_KINDS,
    PLANNERS,
    START,
    _erlang_c,
    _mixture_quantile,
    _norm_cdf,
    generate_scenario,
    generate_set,
)
from slo.scenario import Scenario, breach_condition, first_breach

DAY_ROWS = 86400 // 15


@pytest.fixture(scope="module")
def scenarios() -> list[Scenario]:
    return generate_set(3, 4, hours=48.0)


def test_the_same_seed_gives_the_same_scenario() -> None:
    a, b = generate_scenario(11, hours=12.0), generate_scenario(11, hours=12.0)
    assert np.array_equal(a.requests, b.requests) and np.array_equal(a.p99_ms, b.p99_ms)
    assert a.incidents == b.incidents


def test_every_kind_has_a_mechanism_and_a_plan() -> None:
    assert set(MECHANISMS) == set(PLANNERS) == {*INCIDENT_KINDS, *NEAR_MISS_KINDS}


def test_breaches_are_the_slo_engines_first_breach(scenarios: list[Scenario]) -> None:
    for scenario in scenarios:
        for incident in scenario.incidents:
            assert incident.breach == first_breach(scenario, incident.start, incident.end)


def test_the_page_condition_holds_only_inside_incidents_and_their_grace(scenarios: list[Scenario]) -> None:
    for scenario in scenarios:
        holds = breach_condition(scenario)
        inside = np.zeros_like(holds)
        for incident in scenario.incidents:
            inside |= (scenario.timestamps >= incident.start) & (scenario.timestamps <= incident.end + 1800)
        assert not (holds & ~inside).any()


def test_weekends_are_quiet_and_weekdays_open_with_a_surge() -> None:
    scenario = generate_scenario(5, hours=7 * 24.0, start=START)  # a Monday 00:00 UTC
    rate = scenario.requests.reshape(7, DAY_ROWS)  # Monday .. Sunday
    assert rate[5:].mean() < 0.5 * rate[:5].mean()
    monday = rate[0]
    open_row = 8 * 240  # 08:00 UTC
    assert monday[open_row : open_row + 20].mean() > 1.5 * monday[open_row + 4 * 240 : open_row + 5 * 240].mean()


def test_erlang_c_matches_known_values() -> None:
    # M/M/1: P(wait) = rho; M/M/2 at 1 Erlang: 1/3
    assert _erlang_c(1, np.array([0.5]))[0] == pytest.approx(0.5)
    assert _erlang_c(2, np.array([1.0]))[0] == pytest.approx(1 / 3)


def test_the_mixture_quantile_of_one_log_normal_is_its_own() -> None:
    p99 = _mixture_quantile(np.array([0.0]), np.array([50.0]), np.array([500.0]), 0.45, 0.99)[0]
    assert p99 == pytest.approx(50.0 * np.exp(0.45 * 2.3263478740408408), rel=1e-4)
    assert _norm_cdf(np.array([1.959963984540054]))[0] == pytest.approx(0.975, abs=1e-6)


def test_a_set_holds_several_kinds_and_some_breach() -> None:
    kinds = {i.kind for s in generate_set(1, 6, hours=72.0) for i in s.incidents if i.breach is not None}
    assert len(kinds) >= 3
    assert kinds <= set(INCIDENT_KINDS)

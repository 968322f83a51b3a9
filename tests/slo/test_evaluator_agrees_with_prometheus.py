"""The embedded evaluator computes what Prometheus computes from the generated rules.

Each scenario runs the same counters through `promtool test rules` and through
`evaluate_counters`: every recorded value must match within 1e-9 (relative to the value's size
for the seconds-valued forecast) and every alert must fire and resolve at the same evaluation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from slo.evaluator import SLOModel, evaluate_counters
from slo.rules import RuleOptions, render
from slo.spec import load_specs
from slo.timeline import SLOTimeline
from tests.slo.promtool import Sample, query_promtool
from tests.slo.scenarios import Phase, build, events_spec

MINUTE, HOUR, DAY = 60, 3600, 86400
FIRING = 'ALERTS{alertstate="firing"}'
TOLERANCE = 1e-9


SCENARIOS = {
    "fast-burn": (
        "99.9",
        RuleOptions(),
        build(
            [Phase(0, 8, 0.0005), Phase(3 * HOUR, 8, 0.03), Phase(4 * HOUR, 8, 0.0005)],
            duration=8 * HOUR,
            scrape=15,
            seed=1,
        ),
    ),
    "slow-burn": (
        "99.9",
        RuleOptions(),
        build([Phase(0, 4, 0.0003), Phase(12 * HOUR, 4, 0.004)], duration=2 * DAY, scrape=60, seed=2),
    ),
    "restarts-idle-gap-28d": (
        "99.99",
        RuleOptions(period=28 * DAY),
        build(
            [Phase(0, 20, 0.00005), Phase(2 * HOUR, 0, 0.0), Phase(3 * HOUR, 20, 0.004), Phase(5 * HOUR, 20, 0.0)],
            duration=7 * HOUR,
            scrape=30,
            resets=[90 * MINUTE, 4 * HOUR],
            seed=3,
        ),
    ),
}


Run = tuple[SLOTimeline, dict[tuple[str, float], list[Sample]], list[int]]


def _value(samples: list[Sample]) -> float:
    assert len(samples) <= 1, samples
    return samples[0].value if samples else math.nan


def _same(mine: float, theirs: float) -> bool:
    if math.isnan(mine) or math.isnan(theirs):
        return math.isnan(mine) and math.isnan(theirs)
    return abs(mine - theirs) <= TOLERANCE * max(1.0, abs(theirs))


def _run(name: str, tmp_path: Path) -> Run:
    objective, options, scenario = SCENARIOS[name]
    slo = load_specs([events_spec(tmp_path / "spec.yaml", objective=objective)])
    duration = (scenario.errors.shape[0] - 1) * scenario.scrape
    every_minute = list(range(0, duration + 1, MINUTE))
    values_every = 5 * MINUTE if duration <= DAY else 30 * MINUTE
    windows = options.windows_for(slo[0])
    queries = [f"slo:sli_error:ratio_rate{w}" for w in ("5m", "1h", "6h", "3d")]
    queries += [
        "slo:period_error_budget_remaining:ratio",
        "slo:current_burn_rate:ratio",
        "slo:time_to_error_budget_exhaustion:seconds",
        f"slo:sli_error:ratio_rate{'4w' if windows.period == 28 * DAY else '30d'}",
        "slo:sli_bad_events:increase1h",
    ]
    got = query_promtool(
        render(slo, options),
        scenario.series(),
        scrape_interval=scenario.scrape,
        evaluation_interval=MINUTE,
        queries=[FIRING],
        eval_times=every_minute,
        workdir=tmp_path,
    )
    (tmp_path / "values").mkdir()
    got |= query_promtool(
        render(slo, options),
        scenario.series(),
        scrape_interval=scenario.scrape,
        evaluation_interval=MINUTE,
        queries=queries,
        eval_times=list(range(0, duration + 1, values_every)),
        workdir=tmp_path / "values",
    )
    errors, totals = scenario.samples()
    eval_ms = np.arange(0, duration + 1, MINUTE, dtype=np.int64) * 1000
    timeline = evaluate_counters([SLOModel.from_spec(slo[0], options)], errors, totals, eval_ms)[0]
    return timeline, got, every_minute


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Each scenario goes through promtool once for both tests."""
    return {name: _run(name, tmp_path_factory.mktemp(name)) for name in SCENARIOS}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_alerts_fire_and_resolve_at_the_same_evaluations(name: str, runs: dict[str, Run]) -> None:
    timeline, got, every_minute = runs[name]
    fired = 0
    for i, t in enumerate(every_minute):
        theirs = sorted((s.labels["alertname"], s.labels["sloth_severity"]) for s in got[(FIRING, float(t))])
        mine = sorted((a.alert, a.severity) for a in timeline.firing_at(i))
        assert mine == theirs, f"at {t}s the evaluator says {mine}, Prometheus {theirs}"
        fired += bool(mine)
    assert fired, "a scenario meant to fire alerts fired none"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_recorded_values_agree_within_1e_9(name: str, runs: dict[str, Run]) -> None:
    timeline, got, _ = runs[name]
    compared = 0
    for (query, t), samples in got.items():
        if query == FIRING:
            continue
        i = int(t) // MINUTE
        if query.startswith("slo:sli_error:ratio_rate"):
            mine = timeline.error_ratio[query.removeprefix("slo:sli_error:ratio_rate")][i]
        elif query == "slo:period_error_budget_remaining:ratio":
            mine = timeline.budget_remaining[i]
        elif query == "slo:current_burn_rate:ratio":
            mine = timeline.burn_rate("5m")[i]
        elif query == "slo:sli_bad_events:increase1h":
            mine = _bad_events(timeline, i)
        else:
            mine = _time_to_exhaustion(timeline, i)
        theirs = _value(samples)
        assert _same(float(mine), theirs), f"{query} at {t}s: evaluator {mine!r}, Prometheus {theirs!r}"
        compared += not math.isnan(theirs)
    assert compared > 50


def _time_to_exhaustion(timeline: SLOTimeline, i: int) -> float:
    burn = timeline.burn_rate("6h")[i]
    if not burn > 0:
        return math.nan
    return float(timeline.budget_remaining[i] * timeline.period_days * 86400 / burn)


def _bad_events(timeline: SLOTimeline, i: int) -> float:
    return float(timeline.bad_events["1h"][i])

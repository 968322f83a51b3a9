"""The physical-forecast pager: rules as data, fitted on training scenarios, each page saying why."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from alerts.features import FeatureExtractor, OnlineFeatures, raw_rows
from alerts.forecast import RULES, ForecastPager, LiveRules, Rule, fit_pager
from alerts.generator import generate_scenario, write_set
from alerts.model import PredictiveModel, train
from alerts.scoring import burn_rate_pages
from nova.alerts_cli import alerts_app
from slo.scenario import Scenario
from tests.alerts.test_model import SMALL_HOURS, small_training_set


def catalogue_rule(name: str, threshold: float, consecutive: int) -> Rule:
    rule = next(choices.rule for choices in RULES if choices.rule.name == name)
    return replace(rule, threshold=threshold, consecutive=consecutive)


def pool_exhaustion(seed: int = 41) -> Scenario:
    """A pool exhaustion that breaches (the first seed from `seed` whose incident does)."""
    for s in range(seed, seed + 50):
        scenario = generate_scenario(s, hours=SMALL_HOURS, incident_kinds=["pool_exhaustion"], near_miss_kinds=())
        if scenario.incidents and scenario.incidents[0].breach is not None:
            return scenario
    raise AssertionError("no breaching pool exhaustion in 50 seeds")


def fitted(scenarios: list[Scenario]) -> ForecastPager:
    features = [FeatureExtractor().transform(s) for s in scenarios]
    return fit_pager(scenarios, features, {s.name: burn_rate_pages(s) for s in scenarios}).pager


@pytest.fixture(scope="module")
def small_pager() -> ForecastPager:
    return fitted(small_training_set(10))


def test_a_rising_pool_pages_before_the_breach_and_names_the_pool_rule() -> None:
    scenario = pool_exhaustion()
    pager = ForecastPager((catalogue_rule("db_pool_saturation", 30.0, 8), catalogue_rule("err_fast_pair", 10.0, 2)))
    features = FeatureExtractor().transform(scenario)
    ready = pager.ready(features)
    first = int(np.flatnonzero(ready.any(axis=1))[0])
    breach = scenario.incidents[0].breach
    assert breach is not None and scenario.timestamps[first] < breach
    firing = pager.why(features[first], ready[first])
    assert firing.rule == "db_pool_saturation"
    assert firing.describe().startswith("db_pool full in ~")


def test_a_market_open_surge_that_leaves_headroom_does_not_page(small_pager: ForecastPager) -> None:
    surge = generate_scenario(77, hours=24, incident_kinds=(), near_miss_kinds=["market_open_surge"])
    assert max(surge.cpu) < 1.0  # headroom left
    features = FeatureExtractor().transform(surge)
    assert not small_pager.fired(features).any()


def test_rule_thresholds_come_from_the_training_data() -> None:
    pools = [
        generate_scenario(300 + i, hours=SMALL_HOURS, name=f"p-{i}", incident_kinds=["pool_exhaustion"])
        for i in range(6)
    ]
    deploys = [
        generate_scenario(400 + i, hours=SMALL_HOURS, name=f"d-{i}", incident_kinds=["bad_deploy"]) for i in range(6)
    ]
    assert fitted(pools).to_json() != fitted(deploys).to_json()


def test_live_rules_page_on_the_rows_the_batch_pager_does(small_pager: ForecastPager) -> None:
    scenario = pool_exhaustion(60)
    batch = small_pager.fired(FeatureExtractor().transform(scenario))
    online, live = OnlineFeatures(scenario.slo), LiveRules(small_pager, 1)
    rows, times = raw_rows(scenario), scenario.timestamps
    paging = [live.push(online.push(rows[i : i + 1], float(times[i])))[0] is not None for i in range(rows.shape[0])]
    assert paging == batch.tolist()


def test_a_forecast_model_file_round_trips(tmp_path: Path) -> None:
    model, summary = train(small_training_set(10), training_hash="test", pager="forecast")
    assert model.classifier is None and summary.rules
    model.save(tmp_path / "forecast.skops")
    loaded = PredictiveModel.load(tmp_path / "forecast.skops")
    assert loaded.forecast == model.forecast
    scenario = pool_exhaustion(80)
    assert loaded.pages(scenario) == model.pages(scenario)


def test_evaluate_runs_with_the_forecast_pager(tmp_path: Path) -> None:
    training = tmp_path / "train"
    write_set(training, small_training_set(10))
    model = tmp_path / "m.skops"
    runner = CliRunner()
    trained = runner.invoke(
        alerts_app, ["train", "--scenarios", str(training), "--model", str(model), "--pager", "forecast"]
    )
    assert trained.exit_code == 0, trained.output
    assert "forecast rule" in trained.output
    args = ["evaluate", "--scenarios", str(tmp_path / "eval"), "--generate-seed", "9100", "--count", "3"]
    result = runner.invoke(alerts_app, [*args, "--hours", str(SMALL_HOURS), "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert "per incident kind" in result.output

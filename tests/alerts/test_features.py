"""Rolling-window features: causal, the same online as in batch, and the burn rates they claim to be."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from alerts.features import FEATURE_NAMES, HOUR, FeatureExtractor, OnlineFeatures, raw_rows
from alerts.generator import generate_scenario
from slo.scenario import Scenario, ScenarioSLO


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_scenario(7, hours=7, incident_kinds=["pool_exhaustion"], near_miss_kinds=["cpu_spike"])


def _head(scenario: Scenario, rows: int) -> Scenario:
    return replace(
        scenario,
        timestamps=scenario.timestamps[:rows],
        requests=scenario.requests[:rows],
        errors=scenario.errors[:rows],
        slow=scenario.slow[:rows],
        p99_ms=scenario.p99_ms[:rows],
        cpu=scenario.cpu[:rows],
        db_pool=scenario.db_pool[:rows],
    )


def test_features_have_one_column_per_name(scenario: Scenario) -> None:
    features = FeatureExtractor().transform(scenario)
    assert features.shape == (scenario.timestamps.shape[0], len(FEATURE_NAMES))
    assert features.dtype == np.float32
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)


def test_appending_rows_never_changes_earlier_features(scenario: Scenario) -> None:
    full = FeatureExtractor().transform(scenario)
    for rows in (1, 37, HOUR, 3 * HOUR + 5):
        head = FeatureExtractor().transform(_head(scenario, rows))
        np.testing.assert_array_equal(head, full[:rows])


def test_changing_a_later_row_never_changes_earlier_features(scenario: Scenario) -> None:
    changed = replace(scenario, errors=scenario.errors.copy(), db_pool=scenario.db_pool.copy())
    changed.errors[2 * HOUR] += 5000
    changed.db_pool[2 * HOUR] = 1.0
    before, after = FeatureExtractor().transform(scenario), FeatureExtractor().transform(changed)
    np.testing.assert_array_equal(before[: 2 * HOUR], after[: 2 * HOUR])
    assert not np.array_equal(before[2 * HOUR], after[2 * HOUR])


def test_online_features_equal_batch_features_bit_for_bit(scenario: Scenario) -> None:
    batch = FeatureExtractor().transform(scenario)
    online = OnlineFeatures(scenario.slo)
    raw = raw_rows(scenario)
    rows = [online.push(raw[i : i + 1], float(scenario.timestamps[i]))[0] for i in range(raw.shape[0])]
    np.testing.assert_array_equal(np.vstack(rows), batch)


def test_online_streams_are_independent_and_match_their_own_batch() -> None:
    first = generate_scenario(1, hours=3, incident_kinds=[], near_miss_kinds=[])
    second = generate_scenario(2, hours=3, incident_kinds=["bad_deploy"], near_miss_kinds=[])
    online = OnlineFeatures([first.slo, second.slo], streams=2)
    a, b = raw_rows(first), raw_rows(second)
    got = [online.push(np.stack([a[i], b[i]]), float(first.timestamps[i])) for i in range(a.shape[0])]
    stacked = np.stack(got)  # (rows, streams, features)
    clock = first.timestamps.astype(np.float64)
    np.testing.assert_array_equal(stacked[:, 0], FeatureExtractor().transform_rows(a, clock, first.slo))
    np.testing.assert_array_equal(stacked[:, 1], FeatureExtractor().transform_rows(b, clock, second.slo))


def test_burn_rate_is_the_error_ratio_over_the_budget() -> None:
    rows = 2 * HOUR
    raw = np.zeros((rows, 6))
    raw[:, 0] = 1000  # requests
    raw[:, 1] = 2  # 5xx: 0.2% against a 0.01% budget = 20x
    raw[:, 2] = 30  # slow: 3% against a 1% budget = 3x
    raw[:, 3] = 120.0
    clock = np.arange(rows, dtype=np.float64) * 15.0 + 1_790_000_000
    features = FeatureExtractor().transform_rows(raw, clock, ScenarioSLO())
    last = dict(zip(FEATURE_NAMES, features[-1], strict=True))
    assert last["err_burn_1h"] == pytest.approx(20.0, rel=1e-5)
    assert last["slow_burn_5m"] == pytest.approx(3.0, rel=1e-5)
    assert last["err_burn_trend_15m"] == pytest.approx(0.0, abs=1e-6)
    assert last["err_eta_1h_pair"] == 0.0  # already past 14.4x
    assert last["p99_vs_threshold_5m"] == pytest.approx(0.6)  # 120 ms against the 200 ms threshold


def test_a_climbing_pool_reports_when_it_will_be_full() -> None:
    rows = HOUR
    raw = np.zeros((rows, 6))
    raw[:, 0] = 100
    raw[:, 5] = 0.2 + 0.0025 * np.arange(rows)  # +0.01 a minute
    features = FeatureExtractor().transform_rows(raw, np.arange(rows, dtype=np.float64) * 15.0, ScenarioSLO())
    last = dict(zip(FEATURE_NAMES, features[-1], strict=True))
    level = float(raw[-1, 5])
    assert last["db_pool_trend_15m"] == pytest.approx(0.15, rel=1e-3)
    assert last["db_pool_eta_full"] == pytest.approx((1.0 - level) / 0.01, abs=3.0)

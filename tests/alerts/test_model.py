"""The predictive model: labels without leakage, time-ordered splits, the page policy, the model file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from skops import io as skops_io

from alerts.features import ETA_CAP_MINUTES, FEATURE_NAMES
from alerts.generator import generate_scenario
from alerts.model import (
    ALLOWED_TYPES,
    ModelError,
    PagePolicy,
    PredictiveModel,
    data_hash,
    gated,
    metadata_path,
    page_labels,
    split_scenarios,
    train,
    with_burn_rate,
)
from slo.scenario import Scenario, breach_condition, write_scenario

# Incidents that build up over tens of minutes, so a small model has something to learn.
_KINDS = ("pool_exhaustion", "capacity_surge")
SMALL_HOURS = 8


def small_training_set(count: int = 10, seed: int = 200) -> list[Scenario]:
    """A small, deterministic set: one gradual incident each, back to back in time."""
    span = SMALL_HOURS * 3600
    return [
        generate_scenario(
            seed + i,
            hours=SMALL_HOURS,
            name=f"small-{seed}-{i:02d}",
            start=1_790_000_000 + i * span,
            incident_kinds=[_KINDS[i % len(_KINDS)]],
        )
        for i in range(count)
    ]


def train_small_model(path: Path) -> PredictiveModel:
    """The classifier pager (these tests are about it; `test_forecast` covers the forecast pager)."""
    model, _ = train(small_training_set(), training_hash="test", iterations=30, pager="classifier")
    model.save(path)
    return model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.skops"
    train_small_model(path)
    return path


def test_page_label_is_the_condition_holding_within_the_horizon() -> None:
    rng = np.random.default_rng(3)
    condition = rng.random(500) < 0.05
    y, _ = page_labels(condition, horizon_rows=7)
    for i in range(condition.shape[0]):
        assert y[i] == bool(condition[i : i + 8].any()), i


def test_page_label_ignores_every_row_before_its_own() -> None:
    rng = np.random.default_rng(4)
    condition = rng.random(300) < 0.05
    y, _ = page_labels(condition, horizon_rows=20)
    changed = condition.copy()
    changed[:150] = ~changed[:150]  # rewrite the whole past
    y2, _ = page_labels(changed, horizon_rows=20)
    assert y[150] == y2[150]


def test_only_the_first_horizon_of_a_breach_is_trained_on() -> None:
    condition = np.zeros(40, dtype=bool)
    condition[10:30] = True
    _, usable = page_labels(condition, horizon_rows=5)
    np.testing.assert_array_equal(np.flatnonzero(~usable), np.arange(15, 30))


def test_a_breach_that_gives_no_warning_is_still_a_positive_while_it_begins() -> None:
    scenario = small_training_set(1)[0]
    condition = breach_condition(scenario)
    onset = int(np.flatnonzero(condition)[0])
    y, usable = page_labels(condition, 120)
    assert y[onset] == 1 and usable[onset]


def test_splits_are_disjoint_whole_scenarios_in_time_order() -> None:
    fit, calibrate, validate = split_scenarios(small_training_set(10))
    assert fit + calibrate + validate == list(range(10))
    assert max(fit) < min(calibrate) and max(calibrate) < min(validate)


def test_training_needs_three_scenarios() -> None:
    with pytest.raises(ModelError, match="at least 3 scenarios"):
        train(small_training_set(2), training_hash="x", iterations=5)


def test_page_policy_needs_k_consecutive_rows_above_the_threshold() -> None:
    probabilities = np.array([0.9, 0.1, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9])
    np.testing.assert_array_equal(PagePolicy(0.5, 2).page_rows(probabilities), [3, 6])
    np.testing.assert_array_equal(PagePolicy(0.5, 3).page_rows(probabilities), [7])
    np.testing.assert_array_equal(PagePolicy(0.95, 1).page_rows(probabilities), [])


def test_predictive_and_burn_rate_pages_merge_ten_minutes_apart() -> None:
    assert with_burn_rate([1000.0, 5000.0], [1300.0, 9000.0]) == [1000.0, 5000.0, 9000.0]


def test_model_file_round_trips_with_its_metadata(model_file: Path) -> None:
    model = PredictiveModel.load(model_file)
    scenario = small_training_set(1, seed=500)[0]
    probabilities = model.probabilities(scenario)
    assert probabilities.shape == scenario.timestamps.shape
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    beside = json.loads(metadata_path(model_file).read_text())
    for key in ("features", "format", "model_version", "horizon_minutes", "threshold", "consecutive"):
        assert beside[key] == model.metadata[key]
    assert beside["training_data_sha256"] == "test"
    assert beside["sklearn_version"]
    assert beside["created"]


def test_every_type_in_a_trained_model_file_is_allowed(model_file: Path) -> None:
    assert set(skops_io.get_untrusted_types(file=model_file)) <= ALLOWED_TYPES


def test_a_file_naming_a_type_outside_the_allow_list_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.skops"
    skops_io.dump({"model": LogisticRegression(), "metadata": "{}"}, path)
    with pytest.raises(ModelError, match=r"refused.*LogisticRegression"):
        PredictiveModel.load(path)


def test_a_damaged_file_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "damaged.skops"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ModelError) as caught:
        PredictiveModel.load(path)
    assert "\n" not in str(caught.value)


def test_a_file_with_edited_features_is_refused(model_file: Path, tmp_path: Path) -> None:
    tampered = tmp_path / "tampered.skops"
    with zipfile.ZipFile(model_file) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "schema.json":
                data = data.replace(b"err_burn_1h", b"err_burn_2h")
            target.writestr(item, data)
    with pytest.raises(ModelError, match="other features"):
        PredictiveModel.load(tampered)


def test_training_data_hash_changes_with_the_data(tmp_path: Path) -> None:
    scenarios = small_training_set(2)
    first = data_hash(scenarios)
    assert data_hash(scenarios) == first
    scenarios[1].errors[100] += 1
    assert data_hash(scenarios) != first
    files = []
    for scenario in scenarios:
        write_scenario(tmp_path / scenario.name, scenario)
        files.append(tmp_path / scenario.name / "metrics.csv")
    assert data_hash(scenarios, files) == data_hash(scenarios)


def test_a_probability_pages_only_where_a_physical_projection_supports_it() -> None:
    features = np.full((2, len(FEATURE_NAMES)), ETA_CAP_MINUTES, dtype=np.float32)
    features[1, FEATURE_NAMES.index("db_pool_eta_full")] = 20.0  # the pool is full in 20 minutes
    np.testing.assert_array_equal(gated(np.array([0.9, 0.9]), features), [0.0, 0.9])

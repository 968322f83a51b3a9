"""Leave-one-category-out: each category is scored by a configuration chosen without it."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from alerts.anomaly.detector import DetectorSettings
from alerts.anomaly.loco import GRID, CategoryScore, grid, leave_one_category_out, pooled, score_categories
from alerts.anomaly.nab import load_corpus

NAB_DATA = Path(__file__).resolve().parents[2] / "data" / "nab"
A = DetectorSettings(novelty_threshold=0.04)
B = DetectorSettings(novelty_threshold=0.03)


def _score(normalised: float, windows: int = 10) -> CategoryScore:
    """A category whose null detector scores -windows and perfect +windows, normalised to `normalised`."""
    null, perfect = -float(windows), float(windows)
    return CategoryScore(null + normalised / 100 * (perfect - null), null, perfect)


def test_pooled_weighs_categories_by_their_windows_as_nab_pools_a_corpus() -> None:
    assert pooled([_score(50.0, windows=10), _score(100.0, windows=30)]) == pytest.approx(87.5)


def test_a_category_without_windows_has_no_normalised_score() -> None:
    assert CategoryScore(-0.22, 0.0, 0.0).normalised is None


def test_each_fold_scores_the_held_out_category_with_the_configuration_best_on_the_others() -> None:
    table = [
        (A, {"x": _score(90.0), "y": _score(50.0), "z": _score(50.0)}),
        (B, {"x": _score(40.0), "y": _score(60.0), "z": _score(60.0)}),
    ]
    result = leave_one_category_out(table)
    chosen = {f.held_out: f.chosen for f in result.folds}
    assert chosen == {"x": B, "y": A, "z": A}  # holding out x hides A's one strength
    assert result.folds[0].held_out_score.normalised == pytest.approx(40.0)


def test_the_final_configuration_is_the_one_most_folds_choose_not_the_best_pooled() -> None:
    table = [
        (A, {"x": _score(65.0), "y": _score(65.0), "z": _score(53.0)}),
        (B, {"x": _score(60.0), "y": _score(60.0), "z": _score(60.0)}),
    ]
    result = leave_one_category_out(table)
    assert pooled(list(table[0][1].values())) > pooled(list(table[1][1].values()))
    assert result.final == B


def test_the_grid_varies_exactly_the_named_settings() -> None:
    settings = grid()
    assert len(settings) == len(set(settings)) == len(list(itertools.product(*GRID.values())))
    assert {s.level_rows for s in settings} == {DetectorSettings().level_rows}


def test_the_default_configuration_is_on_the_grid() -> None:
    assert DetectorSettings() in grid()


def test_category_scores_of_the_shipped_subset_match_the_detector_run() -> None:
    scores = score_categories(load_corpus(NAB_DATA), DetectorSettings())
    assert list(scores) == ["realAWSCloudwatch"]
    assert scores["realAWSCloudwatch"].normalised is not None
    assert scores["realAWSCloudwatch"].normalised >= 70.0

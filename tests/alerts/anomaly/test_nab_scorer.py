"""NAB's scoring rules, on small hand-made series whose scores can be worked out on paper."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from alerts.anomaly.nab import (
    PROFILES,
    Profile,
    Window,
    load_corpus,
    normalised_score,
    optimise_threshold,
    probationary_length,
    scaled_sigmoid,
    score_corpus,
    score_points,
    sweep_points,
)

STANDARD = PROFILES[0]
ROWS = 100  # probation: floor(0.15 * 100) = 15 rows
WINDOW = Window(40, 59)  # 20 rows
# NAB's realAWSCloudwatch subset (MIT, see its LICENSE.txt), copied from ../shared/data/nab so CI has it.
NAB_DATA = Path(__file__).resolve().parents[2] / "data" / "nab"


def score(detections: list[int], windows: tuple[Window, ...] = (WINDOW,), profile: Profile = STANDARD) -> float:
    anomaly_scores = [1.0 if i in detections else 0.0 for i in range(ROWS)]
    points = sweep_points("f.csv", anomaly_scores, windows, profile)
    return score_points("f.csv", points, 0.5, profile).score


def test_scaled_sigmoid_matches_nab_reference_points() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.5) == -1.0


def test_probation_is_fifteen_percent_capped_at_750_rows() -> None:
    assert probationary_length(100) == 15
    assert probationary_length(4032) == 604
    assert probationary_length(20000) == 750


def test_detection_at_the_window_start_earns_the_full_tp_weight() -> None:
    assert score([40]) == pytest.approx(1.0)
    assert score([40], profile=Profile("double tp", 2.0, 0.11, 1.0)) == pytest.approx(2.0)


def test_later_detection_in_the_window_earns_less() -> None:
    middle = score([50])
    assert 0.0 < middle < score([40])
    assert middle == pytest.approx(scaled_sigmoid(-(59 - 50 + 1) / 20) / scaled_sigmoid(-1.0))


def test_only_the_first_detection_in_a_window_counts() -> None:
    assert score([40, 45, 50, 59]) == pytest.approx(score([40]))


def test_missed_window_costs_the_fn_weight() -> None:
    assert score([]) == pytest.approx(-1.0)
    assert score([], profile=PROFILES[2]) == pytest.approx(-2.0)  # reward_low_FN_rate: fn weight 2


def test_false_positive_before_any_window_costs_the_full_fp_weight() -> None:
    assert score([20], windows=()) == pytest.approx(-0.11)
    assert score([20], windows=(), profile=PROFILES[1]) == pytest.approx(-0.22)


def test_every_false_positive_row_is_charged() -> None:
    assert score([20, 21, 22], windows=()) == pytest.approx(-0.33)


def test_false_positive_just_after_a_window_costs_less_than_one_far_after() -> None:
    just_after = score([40, 60]) - score([40])
    far_after = score([40, 99]) - score([40])
    assert -0.11 < just_after < 0.0
    assert just_after == pytest.approx(0.11 * scaled_sigmoid(1 / 19))
    assert far_after < just_after


def test_probationary_rows_are_not_scored() -> None:
    assert score([3, 10, 14], windows=()) == 0.0
    assert score([15], windows=()) == pytest.approx(-0.11)


def test_window_inside_the_probationary_period_is_neither_hit_nor_missed() -> None:
    assert score([], windows=(Window(2, 8),)) == 0.0


def test_a_score_equal_to_the_threshold_is_a_detection() -> None:
    points = sweep_points("f.csv", [0.5 if i == 40 else 0.0 for i in range(ROWS)], (WINDOW,), STANDARD)
    assert score_points("f.csv", points, 0.5, STANDARD).score == pytest.approx(1.0)


def test_null_detector_normalises_to_zero_and_perfect_to_one_hundred() -> None:
    files = [("a.csv", (Window(30, 39), Window(70, 79))), ("b.csv", (Window(50, 69),)), ("c.csv", ())]
    null = [(name, [0.5] * ROWS, windows) for name, windows in files]
    perfect = [
        (name, [1.0 if any(i == w.first for w in windows) else 0.0 for i in range(ROWS)], windows)
        for name, windows in files
    ]
    null_result = score_corpus(null, STANDARD, threshold=0.625)  # NAB scores its null detector at 0.625
    perfect_result = score_corpus(perfect, STANDARD)
    assert null_result.null == pytest.approx(-3.0)
    assert null_result.normalised == pytest.approx(0.0)
    assert perfect_result.normalised == pytest.approx(100.0)


def test_normalisation_reproduces_nabs_published_htm_score_on_the_aws_subset() -> None:
    # NAB's own per-file raw scores for Numenta HTM at its threshold 0.5422 (results/numenta/
    # numenta_standard_scores.csv, numenta/NAB 4b89bafe), for the 17 realAWSCloudwatch files (30 windows).
    per_file = [0.556842909788, 0.875727409493, 1.34152494984, 0.744269702075, 0.846537840284, 0.86067182427,
                2.09185151682, -0.33, 0.59454409372, 1.72310160415, 0.855433474186, 1.60595613499,
                1.71226928014, -0.138449197924, 1.27956648491, 1.43157140283, -2.0]  # fmt: skip
    assert normalised_score(sum(per_file), null=-30.0, perfect=30.0) == pytest.approx(73.42, abs=0.005)


def test_threshold_optimisation_picks_the_threshold_that_drops_a_costly_false_positive() -> None:
    anomaly_scores = [0.0] * ROWS
    anomaly_scores[20] = 0.6  # outside the window: a false positive at any threshold <= 0.6
    anomaly_scores[40] = 0.8  # at the window start
    threshold, raw = optimise_threshold([("f.csv", anomaly_scores, (WINDOW,))], STANDARD)
    assert threshold == 0.8
    assert raw == pytest.approx(1.0)


def test_shared_aws_subset_loads_with_each_window_on_its_exact_rows() -> None:
    corpus = load_corpus(NAB_DATA)
    limits = json.loads((NAB_DATA / "combined_windows.json").read_text())
    assert corpus.labelled
    assert len(corpus.series) == 17
    assert sum(len(s.windows) for s in corpus.series) == 30
    for series in corpus.series:
        rows = [(series.timestamps[w.first], series.timestamps[w.last]) for w in series.windows]
        expected = [(start, end) for start, end in limits[series.name]]
        assert [(_t(a), _t(b)) for a, b in rows] == [(_t(a), _t(b)) for a, b in expected]


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text)

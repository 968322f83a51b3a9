"""The evaluator's arithmetic on hand-checkable inputs (Prometheus agreement is tested separately)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slo.evaluator import CounterSamples, SLOModel, evaluate_counts, extrapolated_rate
from slo.windows import workbook_windows

MINUTE, HOUR = 60, 3600


def _model(budget: float = 0.001, min_bad_events: int = 0) -> SLOModel:
    return SLOModel(
        "shop-checkout", "shop", "checkout", "CheckoutBurn", 1 - budget, budget, workbook_windows(), min_bad_events, 0
    )


def _counter(values: list[float], every: int = 15) -> CounterSamples:
    return CounterSamples(np.arange(len(values), dtype=np.int64) * every * 1000, np.asarray([values], dtype=float))


def test_a_steady_counter_rates_exactly_its_slope() -> None:
    counter = _counter([100.0 + 30 * i for i in range(100)])  # 2 per second, far from zero
    rate = extrapolated_rate(counter, np.array([60 * 15 * 1000]), 5 * MINUTE)
    assert rate[0, 0] == pytest.approx(2.0, rel=1e-12)


def test_a_counter_reset_is_not_a_negative_rate() -> None:
    values = [1000.0 + 30 * i for i in range(40)] + [30.0 * i for i in range(1, 41)]
    rate = extrapolated_rate(_counter(values), np.array([60 * 15 * 1000]), 5 * MINUTE)
    assert rate[0, 0] == pytest.approx(2.0, rel=1e-12)


def test_a_range_with_one_sample_has_no_rate() -> None:
    rate = extrapolated_rate(_counter([5.0, 10.0], every=600), np.array([600 * 1000]), 5 * MINUTE)
    assert math.isnan(rate[0, 0])


def test_extrapolation_stops_at_a_counter_s_zero_point() -> None:
    # Samples at 0..45 s, range [-15 s, 45 s]: extrapolating 15 s before a first sample of 0
    # would invent events before the counter existed, so the rate is 60 over 45 s, not over 60 s.
    counter = _counter([0.0, 0.0, 30.0, 60.0], every=15)
    rate = extrapolated_rate(counter, np.array([45 * 1000]), MINUTE)
    assert rate[0, 0] == pytest.approx(60 / 60 * (45 / 45))


def _counts(bad: list[int], total: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    times = (np.arange(len(bad)) + 1) * 15.0
    return times, np.asarray([bad], dtype=np.int64), np.asarray([total], dtype=np.int64)


def test_exact_windows_include_the_current_row_and_hold_240_rows_an_hour() -> None:
    steps = 300
    bad = [0] * steps
    bad[299 - 239] = 60  # the oldest row of the last row's 1h window
    bad[299 - 240] = 1000  # one row too old to count
    times, b, t = _counts(bad, [100] * steps)
    timeline = evaluate_counts([_model()], times, b, t, step=15)[0]
    assert timeline.error_ratio["1h"][-1] == 60 / (240 * 100)


def test_a_window_pair_is_judged_only_with_a_full_long_window() -> None:
    # Everything fails from the start: the 5m/1h pair may page only once 240 rows exist.
    times, b, t = _counts([10] * 300, [10] * 300)
    timeline = evaluate_counts([_model()], times, b, t, step=15)[0]
    pages = [a for a in timeline.alerts if a.severity == "page"]
    assert pages and pages[0].start == times[239]


def test_the_traffic_guard_needs_enough_bad_events_in_the_long_window() -> None:
    bad, total = [0] * 400, [1] * 400
    bad[350] = 1  # one failure in 240 requests an hour: a ratio of 1/240, far over 14.4 x 0.0001
    times, b, t = _counts(bad, total)
    guarded = evaluate_counts([_model(budget=0.0001, min_bad_events=5)], times, b, t, step=15)[0]
    unguarded = evaluate_counts([_model(budget=0.0001, min_bad_events=0)], times, b, t, step=15)[0]
    assert not [a for a in guarded.alerts if a.severity == "page"]
    assert [a for a in unguarded.alerts if a.severity == "page"]


def test_budget_remaining_is_one_minus_the_period_burn() -> None:
    times, b, t = _counts([1] * 100, [1000] * 100)  # 0.1% errors on a 0.1% budget: burning exactly 1x
    timeline = evaluate_counts([_model()], times, b, t, step=15)[0]
    assert timeline.budget_remaining[-1] == pytest.approx(0.0)
    assert timeline.burn_rate("5m")[-1] == pytest.approx(1.0)


def test_a_step_without_traffic_has_no_ratio() -> None:
    times, b, t = _counts([0] * 30, [0] * 30)
    timeline = evaluate_counts([_model()], times, b, t, step=15)[0]
    assert np.isnan(timeline.error_ratio["5m"]).all()
    assert not timeline.alerts

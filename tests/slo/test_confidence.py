"""Confidence bounds on availability and p99, against values known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slo.confidence import availability_bound, error_ratio_upper_bound, events_to_show, percentile_interval
from slo.targets import suite_targets


def test_zero_failures_in_29956_events_bound_the_error_ratio_at_1e_4() -> None:
    assert error_ratio_upper_bound(29_956, 0) <= 1e-4
    assert error_ratio_upper_bound(29_955, 0) > 1e-4
    assert events_to_show(1e-4) == 29_956


def test_the_zero_failure_bound_is_one_minus_alpha_to_the_one_over_n() -> None:
    # Clopper-Pearson with no failures has the closed form 1 - 0.05 ** (1 / n).
    for events in (10, 609, 10_000):
        assert error_ratio_upper_bound(events, 0) == pytest.approx(1 - 0.05 ** (1 / events), rel=1e-9)


def test_the_bound_with_failures_matches_the_binomial_tail() -> None:
    # The bound p solves P(X <= k; n, p) = 0.05: here k = 3 of n = 1,000.
    from scipy.stats import binom

    bound = error_ratio_upper_bound(1_000, 3)
    assert binom.cdf(3, 1_000, bound) == pytest.approx(0.05, abs=1e-9)


def test_a_small_phase_says_it_cannot_show_the_objective() -> None:
    verdict = availability_bound(609, 0, 0.9999)
    assert not verdict.shown and not verdict.enough_events
    assert "not enough events to show 99.99%" in verdict.statement()
    assert "29,956" in verdict.statement()


def test_a_large_clean_phase_shows_the_objective() -> None:
    verdict = availability_bound(60_000, 0, 0.9999)
    assert verdict.shown
    assert verdict.statement().endswith("shows 99.99%")


def test_the_p99_interval_is_the_order_statistics_of_known_ranks() -> None:
    # n = 1,000, q = 0.99: ranks 983 and 997 hold the true p99 with probability >= 95%.
    low, high = percentile_interval(np.arange(1, 1_001, dtype=float), 0.99)
    assert (low, high) == (983.0, 997.0)


def test_a_p99_from_100_samples_has_no_upper_end() -> None:
    _low, high = percentile_interval(np.arange(1, 101, dtype=float), 0.99)
    assert math.isinf(high)


def test_the_targets_come_from_the_slo_specs() -> None:
    targets = suite_targets()
    assert targets.availability_percent == 99.99
    assert targets.latency_threshold_ms == 200.0

import pytest

from loadtests.bench.spread import Spread, paired_ratios


def test_spread_quotes_median_quartiles_and_an_interval_around_the_median() -> None:
    spread = Spread.of([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0])
    assert (spread.median, spread.q1, spread.q3, spread.rounds) == (4.0, 2.5, 5.5, 7)
    assert spread.ci_low <= spread.median <= spread.ci_high
    assert spread.ci_high < 100.0


def test_spread_of_one_value_has_no_width() -> None:
    assert Spread.of([0.7]) == Spread(0.7, 0.7, 0.7, 0.7, 0.7, 1)


def test_spread_refuses_no_values() -> None:
    with pytest.raises(ValueError):
        Spread.of([])


def test_paired_ratios_divide_round_by_round_so_shared_drift_cancels() -> None:
    # Both sides drift by 2x between rounds; the per-round ratio stays 1.1.
    ratios = paired_ratios([1.1, 2.2, 4.4], [1.0, 2.0, 4.0])
    assert ratios.median == pytest.approx(1.1)
    assert ratios.q3 - ratios.q1 == pytest.approx(0.0)


def test_relative_iqr_is_the_quartile_range_over_the_median() -> None:
    assert Spread(2.0, 1.9, 2.1, 1.9, 2.1, 5).relative_iqr == pytest.approx(0.1)

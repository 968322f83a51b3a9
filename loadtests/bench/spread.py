"""How far a figure measured over several rounds can be trusted: median, quartiles, bootstrap interval.

A difference of 3% in CPU per request is only a difference if the rounds' spread is
smaller. So every figure quoted over rounds comes with its interquartile range, and
every comparison (a mode against the uninstrumented one, payments against the
ceiling) with a 95% bootstrap interval of the median of the per-round ratios. The
ratios are paired by round: both sides of a ratio were measured minutes apart, so
drift of the shared machine cancels out of it.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from typing import NamedTuple

_RESAMPLES = 2000
# Fixed, so that the same runs always give the same interval.
_SEED = 20261207


class Spread(NamedTuple):
    """A figure over rounds: its median, quartiles, and a 95% bootstrap interval of the median."""

    median: float
    q1: float
    q3: float
    ci_low: float
    ci_high: float
    rounds: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        """The spread of `values`; one value gives a zero-width spread."""
        if not values:
            raise ValueError("a spread needs at least one value")
        ordered = sorted(values)
        if len(ordered) == 1:
            only = ordered[0]
            return cls(only, only, only, only, only, 1)
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        low, high = _bootstrap_median(ordered)
        return cls(statistics.median(ordered), q1, q3, low, high, len(ordered))

    @property
    def relative_iqr(self) -> float:
        """The interquartile range as a share of the median: the rounds' noise."""
        return (self.q3 - self.q1) / self.median if self.median else 0.0

    def as_json(self) -> dict[str, float]:
        return self._asdict()


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """The spread of numerator/denominator, round by round (both lists in round order)."""
    if len(numerators) != len(denominators):
        raise ValueError("paired ratios need one numerator per denominator")
    return Spread.of([top / bottom for top, bottom in zip(numerators, denominators, strict=True) if bottom])


def _bootstrap_median(values: Sequence[float]) -> tuple[float, float]:
    rng = random.Random(_SEED)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(_RESAMPLES))
    return medians[int(0.025 * _RESAMPLES)], medians[int(0.975 * _RESAMPLES) - 1]

"""How sure a verdict can be: confidence bounds on an error ratio and on a percentile.

A phase with 609 requests and no failure does not show 99.99% availability: it shows that the
error ratio is very likely below about 0.5%. Each availability verdict therefore carries the
Clopper-Pearson (exact binomial) one-sided upper bound on the error ratio at `CONFIDENCE`, and
says "not enough events to show" the objective when even a run without failures of that size
could not bring the bound under the error budget (zero failures need 29,956 events for 99.99%
at 95%). A p99 carries the interval between two order statistics that holds the true p99 with
probability at least `CONFIDENCE` (distribution-free), so a p99 of 196 ms from 300 samples is
read as "somewhere in 150..260 ms", not as a pass by 4 ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95

# scipy.stats is imported where it is used, not here: it costs 0.7 s of CPU, and every `nova`
# command imports this module, the game-day drill's runbook runs (a process per page) included.


def error_ratio_upper_bound(events: int, bad_events: int, confidence: float = CONFIDENCE) -> float:
    """The Clopper-Pearson one-sided upper bound on the error ratio; 1.0 without events."""
    if events <= 0 or bad_events >= events:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(confidence, bad_events + 1, events - bad_events))


def events_to_show(budget: float, confidence: float = CONFIDENCE) -> int:
    """The fewest events with no failure whose upper bound is at or under `budget` (29,956 for 1e-4 at 95%)."""
    if not 0 < budget < 1:
        raise ValueError(f"an error budget is a share between 0 and 1, not {budget}")
    needed = math.ceil(math.log(1 - confidence) / math.log1p(-budget))
    while error_ratio_upper_bound(needed, 0, confidence) > budget:  # float rounding at the edge
        needed += 1
    return needed


@dataclass(frozen=True)
class AvailabilityBound:
    """An availability verdict with its numbers: events, bad events, the observed and the bounded error ratio."""

    events: int
    bad_events: int
    objective: float  # 0.9999
    upper_bound: float  # of the error ratio, at `confidence`
    confidence: float = CONFIDENCE

    @property
    def observed_ratio(self) -> float:
        return self.bad_events / self.events if self.events else 0.0

    @property
    def budget(self) -> float:
        return 1.0 - self.objective

    @property
    def shown(self) -> bool:
        """The objective is shown at `confidence`: the bound is within the budget."""
        return self.upper_bound <= self.budget + 1e-15

    @property
    def enough_events(self) -> bool:
        """Enough events that a run without failures could have shown the objective."""
        return self.events >= events_to_show(self.budget, self.confidence)

    def statement(self) -> str:
        """One phrase: what the events show, and when they cannot show the objective, that they cannot."""
        observed = f"{self.bad_events} bad of {self.events} events (error ratio {self.observed_ratio:.2e})"
        bound = f"{self.confidence:.0%} upper bound {self.upper_bound:.2e}"
        target = f"{self.objective * 100:.4g}%"
        if not self.enough_events:
            need = events_to_show(self.budget, self.confidence)
            return f"{observed}, {bound}: not enough events to show {target} (zero failures need {need:,})"
        verdict = "shows" if self.shown else "does not show"
        return f"{observed}, {bound}: {verdict} {target}"


def availability_bound(events: int, bad_events: int, objective: float) -> AvailabilityBound:
    return AvailabilityBound(events, bad_events, objective, error_ratio_upper_bound(events, bad_events))


def percentile_interval(
    values: Sequence[float] | np.ndarray, quantile: float = 0.99, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The order-statistic interval holding the true `quantile` with probability >= `confidence`.

    Ranks l < u with P(X_(l) <= x_q <= X_(u)) >= confidence from the binomial distribution of
    how many samples fall under x_q. An end the samples cannot reach is infinite (the upper
    end of a p99 from fewer than a few hundred samples), which says: too few to bound it.
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = ordered.size
    if n == 0:
        return (math.nan, math.nan)
    from scipy.stats import binom

    alpha = 1.0 - confidence
    lower_rank = int(binom.ppf(alpha / 2, n, quantile))  # 1-based rank of the lower end
    upper_rank = int(binom.ppf(1 - alpha / 2, n, quantile)) + 1
    low = float(ordered[lower_rank - 1]) if lower_rank >= 1 else -math.inf
    high = float(ordered[upper_rank - 1]) if upper_rank <= n else math.inf
    return (low, high)

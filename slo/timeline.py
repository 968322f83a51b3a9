"""What an SLO did over a stretch of time: the shared result of the evaluator and of Prometheus.

Status, reports and game-day summaries read this one type, whichever source filled it.
Arrays are aligned with `timestamps` (unix seconds); NaN marks a step with no value (no
traffic, or not enough history for the window).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

Series = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Threshold:
    """One window pair of a burn-rate alert: both windows must burn faster than `factor`."""

    severity: str  # page | ticket
    short: str  # window label, e.g. 5m
    long: str
    factor: float


@dataclass(frozen=True)
class AlertInterval:
    """An alert firing from `start` until `end` (None while still firing at the last step)."""

    alert: str
    severity: str
    start: float
    end: float | None


@dataclass
class SLOTimeline:
    sloth_id: str
    service: str
    slo: str
    objective: float  # ratio, 0.9999
    error_budget: float  # ratio, 0.0001
    period_days: float
    timestamps: Series
    error_ratio: dict[str, Series]  # window label (5m, 1h, ..., 30d) -> error ratio
    thresholds: list[Threshold]
    budget_remaining: Series  # share of the period's budget left, 1 = untouched, < 0 = overspent
    alerts: list[AlertInterval] = field(default_factory=list)
    bad_events: dict[str, Series] = field(default_factory=dict)  # long window label -> bad events in it
    latency_p50_ms: Series | None = None
    latency_p99_ms: Series | None = None
    latency_threshold_ms: float | None = None
    description: str = ""

    def burn_rate(self, window: str) -> Series:
        """Error ratio over `window` divided by the error budget: 1 spends the budget exactly in the period."""
        return self.error_ratio[window] / self.error_budget

    @property
    def sli(self) -> Series:
        """Success ratio over the whole period up to each step (what the SLO is judged on)."""
        return 1.0 - self.error_ratio[self.period_window]

    @property
    def period_window(self) -> str:
        return list(self.error_ratio)[-1]

    def firing_at(self, index: int = -1) -> list[AlertInterval]:
        at = float(self.timestamps[index])
        return [a for a in self.alerts if a.start <= at and (a.end is None or a.end > at)]

"""How fast an SLO's error budget burns and when it runs out, from the series the SLO rules record.

The pager reads the Sloth-compatible recorded series (`slo:current_burn_rate:ratio`,
`slo:period_error_budget_remaining:ratio`, `slo:sli_error:ratio_rate5m|1h`,
`slo:error_budget:ratio`, `slo:time_period:days`) for the alert's `sloth_id`, at the
moment the page is built: on-call wants how it is now, not when the rule first fired.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slo.errors import SourceError
from slo.prometheus_api import PrometheusAPI

SECONDS_PER_DAY = 86400.0


@dataclass(frozen=True)
class BudgetStatus:
    burn_rate: float | None  # the current (5m) burn rate: 1.0 spends the whole budget in exactly one period
    burn_rate_1h: float | None
    error_ratio_5m: float | None
    error_ratio_1h: float | None
    budget_remaining: float | None  # share of the period's budget left; negative once overspent
    period_days: float | None

    @property
    def seconds_to_exhaustion(self) -> float | None:
        """Remaining budget x period / current burn rate; 0 when spent, None when it is not being spent."""
        if self.budget_remaining is None or self.period_days is None or self.burn_rate is None:
            return None
        if self.budget_remaining <= 0:
            return 0.0
        if self.burn_rate <= 0:
            return None
        return self.budget_remaining * self.period_days * SECONDS_PER_DAY / self.burn_rate


def read_budget_status(api: PrometheusAPI, slo_id: str, at: float) -> BudgetStatus:
    """The SLO's recorded series at `at` (unix seconds).

    A series Prometheus lacks is None; an unreachable or refusing Prometheus is a SourceError.
    """
    selector = f'{{sloth_id="{_escape(slo_id)}"}}'

    def value(series: str) -> float | None:
        # An instant read through the range API: one point at `at`, the client the SLO engine already uses.
        for _, points in api.query_range(f"{series}{selector}", at, at, 1):
            for _, raw in points[-1:]:
                number = float(raw)
                if math.isfinite(number):
                    return number
        return None

    error_budget = value("slo:error_budget:ratio")
    error_ratio_1h = value("slo:sli_error:ratio_rate1h")
    return BudgetStatus(
        burn_rate=value("slo:current_burn_rate:ratio"),
        burn_rate_1h=error_ratio_1h / error_budget if error_ratio_1h is not None and error_budget else None,
        error_ratio_5m=value("slo:sli_error:ratio_rate5m"),
        error_ratio_1h=error_ratio_1h,
        budget_remaining=value("slo:period_error_budget_remaining:ratio"),
        period_days=value("slo:time_period:days"),
    )


def safe_budget_status(api: PrometheusAPI, slo_id: str, at: float) -> tuple[BudgetStatus | None, str]:
    """`read_budget_status`, or None and why: a page goes out even when Prometheus does not answer."""
    try:
        return read_budget_status(api, slo_id, at), ""
    except SourceError as exc:
        return None, str(exc)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')

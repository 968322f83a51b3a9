"""The suite's targets, read from its SLO specs (`slo/specs`): the availability objective and the
latency threshold every load gate and game-day check judges against, so that changing a spec
changes every verdict, and no module keeps its own copy of 99.99% or 200 ms."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from slo.spec import SUITE_SPECS, LatencySLI, load_specs


@dataclass(frozen=True)
class Targets:
    availability: Decimal  # the strictest availability objective, as a ratio: 0.9999
    latency_threshold_ms: float  # the latency SLI's threshold: 200.0
    latency_objective: Decimal  # share of requests under the threshold: 0.99

    @property
    def availability_percent(self) -> float:
        return float(self.availability * 100)


@cache
def suite_targets() -> Targets:
    """The strictest objectives across the suite's specs (payments and portfolio share them today)."""
    slos = load_specs(SUITE_SPECS)
    latency = [slo for slo in slos if isinstance(slo.sli, LatencySLI)]
    availability = [slo for slo in slos if not isinstance(slo.sli, LatencySLI)]
    if not latency or not availability:
        raise ValueError("slo/specs must hold an availability SLO and a latency SLO")
    threshold = min(slo.sli.threshold_seconds for slo in latency if isinstance(slo.sli, LatencySLI))
    return Targets(
        availability=max(slo.objective_ratio for slo in availability),
        latency_threshold_ms=float(threshold * 1000),
        latency_objective=max(slo.objective_ratio for slo in latency),
    )

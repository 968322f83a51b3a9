"""What can cause an incident, as the runbooks' diagnostics name it, and when a finding points to one.

A diagnostic step declares the causes it can point to (`causes="error_rate database_unavailable"`)
and, for PromQL, when its answer is a finding (`attention="> 0"`: any series' value beyond the
threshold). A step that runs and finds trouble *names* its declared causes; the game day's drill
grades a page by whether its runbook named the cause the experiment injected (`chaos.drill`).

The vocabulary is one table, so a runbook, an experiment and the fault API speak the same words.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

CAUSES: Mapping[str, str] = {
    "error_rate": "server errors answered on a route (an injected error_rate fault, a bad release)",
    "database_unavailable": "the database is down or unreachable (503 database_unavailable, /readyz 503)",
    "database_latency": "the database answers slowly (queries and connection waits)",
    "worker_restarts": "service workers killed and restarted",
    "worker_frozen": "a worker stopped answering while alive (SIGSTOP, a long pause): stopped, not replaced",
    "cpu_saturation": "the service's workers short of CPU",
    "dependency_latency": "latency from a dependency (payments slow for portfolio)",
    "dependency_errors": "errors from a dependency (payments failing for portfolio)",
}

# The admin fault API's faults, by the cause each one stands in for (`nova-check faults`).
FAULT_CAUSES: Mapping[str, str] = {
    "error_rate": "error_rate",
    "db_unavailable": "database_unavailable",
    "db_latency": "database_latency",
    "cpu_burn": "cpu_saturation",
    "payments_latency": "dependency_latency",
    "payments_errors": "dependency_errors",
}

# The fault proxy's toxics (Toxiproxy API) on a link, by the cause each stands in for: on a link to
# a service (portfolio's to payments) a dependency's, on a link to a database (`<service>-db`) the database's.
# A proxy switched off (`enabled: false`) is a link down. Any other toxic type names nothing.
SLOW_TOXICS = frozenset({"latency", "bandwidth", "slicer", "slow_close"})
FAILING_TOXICS = frozenset({"reset_peer", "timeout", "limit_data", "disabled"})
LINK_CAUSES: Mapping[tuple[str, str], str] = {
    ("service", "slow"): "dependency_latency",
    ("service", "failing"): "dependency_errors",
    ("database", "slow"): "database_latency",
    ("database", "failing"): "database_unavailable",
}


def toxic_cause(proxy: str, toxic_type: str) -> str | None:
    """The cause a toxic of `toxic_type` on the proxy named `proxy` points to, or None."""
    link = "database" if proxy.endswith("-db") else "service"
    effect = "slow" if toxic_type in SLOW_TOXICS else "failing" if toxic_type in FAILING_TOXICS else None
    return LINK_CAUSES[(link, effect)] if effect else None


_OPERATORS: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Attention:
    """`> 0.001`: the answer is a finding when any series' value compares so against the threshold."""

    comparison: str
    threshold: float

    def holds(self, values: Iterable[float]) -> bool:
        compare = _OPERATORS[self.comparison]
        return any(math.isfinite(value) and compare(value, self.threshold) for value in values)

    def __str__(self) -> str:
        return f"{self.comparison} {self.threshold:g}"


def parse_attention(text: str) -> Attention:
    """`> 0`, `>= 0.5`, `< 1`; ValueError naming the forms otherwise."""
    stripped = text.strip()
    for comparison in _OPERATORS:  # two-character operators first: `>=` is not `>` then `=0.5`
        if stripped.startswith(comparison):
            number = stripped[len(comparison) :].strip()
            try:
                threshold = float(number)
            except ValueError:
                break
            if math.isfinite(threshold):
                return Attention(comparison, threshold)
            break
    raise ValueError(f"{text!r} is not a comparison such as '> 0' or '>= 0.5' ({', '.join(_OPERATORS)})")


def parse_causes(text: str) -> tuple[str, ...]:
    """`error_rate database_unavailable` (spaces or commas); ValueError naming an unknown cause."""
    causes = tuple(word for word in text.replace(",", " ").split() if word)
    unknown = [cause for cause in causes if cause not in CAUSES]
    if unknown:
        raise ValueError(f"unknown cause(s) {', '.join(unknown)} (known: {', '.join(CAUSES)})")
    return causes

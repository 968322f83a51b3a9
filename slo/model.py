"""The one SLO model every spec format is read into and `rules.py` compiles.

Objectives stay `Decimal` so that 99.99 gives an error budget of exactly 0.0001. A reader
(`slo/formats/`) turns Sloth, OpenSLO or Pyrra documents into `SLO`s; nothing downstream
knows which format an SLO was written in, except `spec_version`, which the info series carries.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from slo.windows import AlertWindows

SLOTH_VERSION = "prometheus/v1"
SLOTH_KUBERNETES_VERSION = "sloth.slok.dev/v1"
OPENSLO_VERSION = "openslo/v1"
OPENSLO_ALPHA_VERSION = "openslo/v1alpha"
PYRRA_VERSION = "pyrra.dev/v1alpha1"
WINDOW = re.compile(r"\{\{\s*\.window\s*\}\}")
RESERVED_LABELS = frozenset({"sloth_id", "sloth_service", "sloth_slo", "sloth_window", "sloth_severity"})

# `sloth_mode` of the info series, as Sloth writes it for each input kind.
MODES: Mapping[str, str] = {
    SLOTH_VERSION: "cli-gen-prom",
    SLOTH_KUBERNETES_VERSION: "cli-gen-k8s",
    OPENSLO_ALPHA_VERSION: "cli-gen-openslo",
    OPENSLO_VERSION: "cli-gen-prom",
    PYRRA_VERSION: "cli-gen-prom",
}


@dataclass(frozen=True)
class EventsSLI:
    """Bad events over all events, each a PromQL query with a `{{.window}}` placeholder."""

    error_query: str
    total_query: str


@dataclass(frozen=True)
class RawSLI:
    """An error ratio computed elsewhere; it carries no event counts, so no traffic guard applies."""

    error_ratio_query: str


@dataclass(frozen=True)
class LatencySLI:
    """Requests slower than a histogram bucket bound are the bad events.

    `threshold_seconds` must be one of the histogram's bucket bounds: `le` is matched as text.
    """

    histogram: str
    threshold_seconds: Decimal
    selector: str = ""

    @property
    def le(self) -> str:
        return repr(float(self.threshold_seconds))  # how client libraries spell bucket bounds: 0.2, 1.0

    def _matchers(self, *extra: str) -> str:
        return "{" + ",".join(m for m in (self.selector, *extra) if m) + "}"

    @property
    def total_query(self) -> str:
        return f"sum(rate({self.histogram}_count{self._matchers()}[{{{{.window}}}}]))"

    @property
    def error_query(self) -> str:
        fast = f"sum(rate({self.histogram}_bucket{self._matchers(f'le={self.le!r}'.replace(chr(39), chr(34)))}"
        return f"({self.total_query} - {fast}[{{{{.window}}}}])))"


@dataclass(frozen=True)
class TimesliceSLI:
    """Time cut into slices; the error ratio over a window is the mean of the slices' errors.

    `slice_error_query` gives one slice's error with `{{.window}}` standing for the slice:
    1 or 0 (OpenSLO `Timeslices`: the slice is bad when it misses its threshold) or the
    slice's own error ratio (`RatioTimeslices`). The rules evaluate it once per slice.
    """

    slice_error_query: str
    slice_seconds: int


@dataclass(frozen=True)
class UncompilableSLI:
    """A well-formed indicator whose metric source is not Prometheus: `check` accepts the
    document, `rules` refuses it with `reason`."""

    reason: str


SLI = EventsSLI | RawSLI | LatencySLI | TimesliceSLI | UncompilableSLI


@dataclass(frozen=True)
class AlertSpec:
    disable: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Alerting:
    name: str  # empty only when both alerts are disabled (Sloth requires it only then)
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    page: AlertSpec = AlertSpec()
    ticket: AlertSpec = AlertSpec()


# The suite's own SLOs: payments and portfolio, availability 99.99% and p99 latency under 200 ms.
SUITE_SPECS = sorted((Path(__file__).resolve().parent / "specs").glob("*.yaml"))


@dataclass(frozen=True)
class SLO:
    service: str
    name: str
    objective: Decimal  # percent, as written: 99.99
    sli: SLI
    alerting: Alerting
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)  # spec-level and SLO-level, merged
    period: int | None = None  # seconds; None takes the generator's default
    spec_version: str = SLOTH_VERSION
    source: str = ""  # file:line, for messages
    alert_windows: AlertWindows | None = None  # the SLO's own (OpenSLO alert conditions), else the run's

    @property
    def sloth_id(self) -> str:
        return f"{self.service}-{self.name}"

    @property
    def objective_ratio(self) -> Decimal:
        return self.objective / 100

    @property
    def error_budget(self) -> Decimal:
        return 1 - self.objective_ratio

    @property
    def mode(self) -> str:
        return MODES.get(self.spec_version, "cli-gen-prom")

"""The SLO gate of a load run: exact figures per endpoint and overall, and the pass/fail verdict.

Locust's own percentiles are rounded into response-time buckets, so a p99 of 196 ms can be
reported as 200 and the other way round; a gate that decides a release on the 200 ms line cannot
use them. Everything here is computed from every `RequestSample` of the run instead.

Definitions (the summary table, `summary.json` and `endpoints.csv` all follow them):

* A request is one attempt: a retry with the same Idempotency-Key is a request the service had
  to answer, so it counts towards requests, failures and latency like a first attempt. First
  attempts and retries are also counted apart, so a run that only passed thanks to retries
  shows it.
* Failed means a 5xx or no response at all (`RequestSample.failed`); 4xx answers are the
  client's problem (insufficient funds, a replayed key) and count as available.
* Availability is `(requests - failures) / requests`, compared with the objective exactly
  (as fractions, not floats).
* Availability after retries is what the users saw once the client's retries had done their
  work. Every sample is an attempt; a retry (attempt >= 2) follows exactly one failed attempt of
  the same operation (writes are retried after a 5xx or no answer, reads after no answer). So,
  per endpoint, operations are the first attempts, failed operations are `failures - retries`
  (at least 0: a window that cuts a retry from its failed attempt cannot go negative), and
  availability after retries is `(operations - failed operations) / operations` (1 for a row
  with no first attempt). The overall row adds up the endpoints' failed operations. It is
  reported beside availability and **does not change the verdict**, which stays on every
  attempt: a retry hides a failure from the user, not from the service's SLO.
* Percentiles are numpy's `method="higher"`: the value at sorted index `ceil((n - 1) * q)`.
  It is never interpolated (always a response time that was observed) and never below the
  classic nearest-rank value, so the gate errs on the strict side. With 100 requests or fewer
  the p99 is therefore the slowest request.
* Requests per second is the number of requests over the run's measured span (first request
  sent to last response received), for endpoints too, so the endpoint rates add up to the
  overall rate.

The verdict: the run passes iff the overall figures and every endpoint's figures hold both
objectives: p99 strictly below `p99_ms`, and availability at least `availability`. An endpoint
with fewer requests than `min_requests_to_judge` (10,000 at 99.99%) cannot demonstrate the
objective: a single failure among them already falls below it. Such an endpoint (or the
overall figure of a short run) is judged on zero failures instead, which is the same arithmetic
said honestly, and the table names the rule used for each row.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from loadtests.samples import RequestSample
from slo.confidence import CONFIDENCE, availability_bound, percentile_interval
from slo.targets import suite_targets

OVERALL = "overall"
RULE_OBJECTIVE = "objective"
RULE_ZERO_FAILURES = "zero failures"


class GateError(ValueError):
    """The gate cannot be computed (no requests were recorded, thresholds out of range)."""


def _spec_p99_ms() -> float:
    return suite_targets().latency_threshold_ms


def _spec_availability() -> float:
    return float(suite_targets().availability)


@dataclass(frozen=True)
class Thresholds:
    """The gate's limits; by default the suite's targets from slo/specs (p99 200 ms, 99.99%)."""

    p99_ms: float = field(default_factory=_spec_p99_ms)
    availability: float = field(default_factory=_spec_availability)  # a fraction: 0.9999 is 99.99%

    def __post_init__(self) -> None:
        if not (self.p99_ms > 0 and math.isfinite(self.p99_ms)):
            raise GateError(f"the p99 threshold must be a positive number of milliseconds, not {self.p99_ms}")
        if not 0 < self.availability < 1:
            raise GateError(f"the availability objective must be between 0 and 100%, not {self.availability:%}")

    @classmethod
    def from_percent(cls, p99_ms: float, availability_percent: float) -> Thresholds:
        """`99.99` -> 0.9999 exactly (99.99 / 100 in floats is 0.9998999999999999)."""
        return cls(p99_ms, float(Decimal(repr(availability_percent)) / 100))

    @property
    def min_requests_to_judge(self) -> int:
        """The fewest requests among which one failure still meets the objective (10,000 at 99.99%)."""
        return math.ceil(1 / (1 - _exact(self.availability)))


@dataclass(frozen=True)
class EndpointFigures:
    """One row of the gate: an endpoint (`"POST /v1/payments"`) or `OVERALL`."""

    endpoint: str
    requests: int
    first_attempts: int
    retries: int
    failures: int
    availability: float
    availability_after_retries: float  # of operations (first attempts) once retries are done; not judged
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    requests_per_second: float
    availability_rule: str  # RULE_OBJECTIVE, or RULE_ZERO_FAILURES when too few requests to judge
    availability_ok: bool
    latency_ok: bool
    # From the scheduled send time (open model; coordinated-omission corrected); the service
    # time's p99 in a closed-model run. Reported beside p99_ms; the latency verdict stays on p99_ms.
    p99_corrected_ms: float = 0.0
    # How sure the row's figures are (slo/confidence.py): the Clopper-Pearson upper bound on the
    # error ratio at 95%, and the order-statistic 95% interval of the p99 (None: too few samples
    # to bound it from above).
    error_ratio_upper_bound: float = 1.0
    p99_low_ms: float = 0.0
    p99_high_ms: float | None = None

    @property
    def passed(self) -> bool:
        return self.availability_ok and self.latency_ok

    def availability_statement(self, objective: float) -> str:
        """Events, bad events, observed ratio, the bound, and whether they can show `objective` at all."""
        bound = availability_bound(self.requests, self.failures, objective)
        return bound.statement()

    def p99_interval_text(self) -> str:
        high = "unbounded" if self.p99_high_ms is None else f"{self.p99_high_ms:.1f}"
        return f"{CONFIDENCE:.0%} interval {self.p99_low_ms:.1f}..{high} ms"

    def breaches(self, thresholds: Thresholds) -> list[str]:
        """What this row breaks, one phrase each, in words an on-call engineer reads at a glance."""
        found = []
        if not self.latency_ok:
            found.append(f"{self.endpoint}: p99 {self.p99_ms:.1f} ms >= {thresholds.p99_ms:g} ms")
        if not self.availability_ok:
            if self.availability_rule == RULE_ZERO_FAILURES:
                found.append(
                    f"{self.endpoint}: {self.failures} failed of {self.requests} "
                    f"(fewer than {thresholds.min_requests_to_judge} requests: judged on zero failures; "
                    f"{self.availability_statement(thresholds.availability)})"
                )
            else:
                found.append(
                    f"{self.endpoint}: availability {format_percent(self.availability)} "
                    f"< {format_percent(thresholds.availability)} ({self.failures} failed of {self.requests})"
                )
        return found


@dataclass(frozen=True)
class GateResult:
    thresholds: Thresholds
    overall: EndpointFigures
    endpoints: tuple[EndpointFigures, ...]  # sorted by endpoint name
    started: float  # unix seconds: first request sent
    ended: float  # unix seconds: last response received

    @property
    def passed(self) -> bool:
        return self.overall.passed and all(row.passed for row in self.endpoints)

    @property
    def breaches(self) -> list[str]:
        """Every breach, overall first; empty iff the gate passed."""
        return [text for row in (self.overall, *self.endpoints) for text in row.breaches(self.thresholds)]

    @property
    def rows(self) -> tuple[EndpointFigures, ...]:
        """Endpoints, then the overall row: the order of the table and of endpoints.csv."""
        return (*self.endpoints, self.overall)


def evaluate_gate(samples: Iterable[RequestSample], thresholds: Thresholds | None = None) -> GateResult:
    """The gate over every sample of a run; GateError if there are none (nothing to judge is no pass)."""
    thresholds = thresholds or Thresholds()
    records = list(samples)
    if not records:
        raise GateError("the run recorded no requests")
    started = min(s.timestamp for s in records)
    ended = max(s.timestamp + s.millis / 1000 for s in records)
    # A run of one instantaneous request has no span; a millisecond keeps the rate finite and honest enough.
    span = max(ended - started, 0.001)
    by_endpoint: dict[str, list[RequestSample]] = defaultdict(list)
    for sample in records:
        by_endpoint[sample.endpoint].append(sample)
    endpoints = tuple(endpoint_figures(name, group, span, thresholds) for name, group in sorted(by_endpoint.items()))
    return GateResult(thresholds, endpoint_figures(OVERALL, records, span, thresholds), endpoints, started, ended)


def endpoint_figures(
    name: str, samples: Sequence[RequestSample], span_seconds: float, thresholds: Thresholds
) -> EndpointFigures:
    """One row's figures and verdicts; `samples` must not be empty."""
    requests = len(samples)
    millis = np.fromiter((s.millis for s in samples), dtype=np.float64, count=requests)
    failures = sum(1 for s in samples if s.failed)
    retries = sum(1 for s in samples if s.attempt >= 2)
    p50, p95, p99 = (exact_percentile(millis, q) for q in (50, 95, 99))
    corrected = np.fromiter((s.corrected_millis for s in samples), dtype=np.float64, count=requests)
    p99_low, p99_high = percentile_interval(millis, 0.99)
    judged = requests >= thresholds.min_requests_to_judge
    return EndpointFigures(
        endpoint=name,
        requests=requests,
        first_attempts=requests - retries,
        retries=retries,
        failures=failures,
        availability=(requests - failures) / requests,
        availability_after_retries=availability_after_retries(samples),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=float(millis.max()),
        requests_per_second=requests / span_seconds,
        availability_rule=RULE_OBJECTIVE if judged else RULE_ZERO_FAILURES,
        availability_ok=availability_met(requests, failures, thresholds.availability),
        latency_ok=p99 < thresholds.p99_ms,
        p99_corrected_ms=exact_percentile(corrected, 99),
        error_ratio_upper_bound=availability_bound(requests, failures, thresholds.availability).upper_bound,
        p99_low_ms=max(p99_low, 0.0),
        p99_high_ms=None if math.isinf(p99_high) else p99_high,
    )


def failed_operations(samples: Iterable[RequestSample]) -> int:
    """Operations whose last attempt failed: per endpoint `failures - retries`, at least 0, summed.

    Every retry follows exactly one failed attempt of the same operation, so the failures that
    no retry followed are the operations that ended failed.
    """
    failures: dict[str, int] = defaultdict(int)
    retries: dict[str, int] = defaultdict(int)
    for sample in samples:
        failures[sample.endpoint] += sample.failed
        retries[sample.endpoint] += sample.attempt >= 2
    return sum(max(0, failures[endpoint] - retries[endpoint]) for endpoint in failures)


def availability_after_retries(samples: Sequence[RequestSample]) -> float:
    """`(operations - failed operations) / operations`, operations being first attempts; 1 if there are none."""
    operations = sum(1 for s in samples if s.attempt == 1)
    if operations == 0:
        return 1.0
    return (operations - min(failed_operations(samples), operations)) / operations


def exact_percentile(millis: npt.NDArray[np.float64], q: float) -> float:
    """The `q`th percentile as the module docstring defines it: the observed value at index ceil((n-1)q/100)."""
    return float(np.percentile(millis, q, method="higher"))


def availability_met(requests: int, failures: int, objective: float) -> bool:
    """Exact comparison: 9,999 good of 10,000 meets 99.99%, without float rounding deciding it.

    Below `min_requests_to_judge` requests this is exactly "zero failures", which is why the
    table can name that rule without the arithmetic changing.
    """
    return Fraction(requests - failures, requests) >= _exact(objective)


def format_percent(fraction: float) -> str:
    """99.99% style, with enough digits to tell 99.99% from 99.989%, and no rounding up to the objective."""
    if fraction >= 1:
        return "100%"
    # Round down, so 99.98999% never prints as 99.990% and looks like a pass.
    thousandths = math.floor(_exact(fraction) * 10**5)
    return f"{thousandths // 1000}.{thousandths % 1000:03d}%"


def _exact(value: float) -> Fraction:
    """The decimal a person wrote (0.9999), not the binary float nearest to it."""
    return Fraction(Decimal(repr(value)))

"""The embedded scraper: the services' own `GET /metrics`, turned into metric-scenario rows.

This module owns scraping when no Prometheus runs (game days, probes): it reads each
service's exposition every step, takes the deltas between consecutive scrapes and keeps them
as rows in DESIGN.md's scenario format (`timestamp,requests,errors,slow,p99_ms,cpu,db_pool`),
per service and for the whole platform, so `slo.scenario.scenario_timelines` can judge them.

What is counted, and why:

* Customer traffic only: routes matching `/metrics|/healthz|/readyz|/admin/.*` (the routes
  `slo/specs/payments.yaml` leaves out) are dropped. `unmatched` (a 404 for a path no route
  knows) is kept: a customer sent it, exactly as the spec's `route!~` selector keeps it.
* `errors` are 5xx responses; `slow` are requests slower than 0.2 s, `_count - _bucket{le="0.2"}`
  of `http_server_request_duration_seconds` (0.2 s is a bucket edge, so this is exact).
* `p99_ms` is Prometheus's `histogram_quantile(0.99, ...)` over the step's bucket deltas summed
  over customer routes (the platform row sums every service's buckets); 0 in a step without requests.
* `cpu` is the busiest worker's CPU seconds in the step over the true time between the two
  scrapes, over the pids seen in both (`process_cpu_seconds_total{pid}`), as `loadtests.service_metrics`.
* `db_pool` is `db_client_connections_in_use / db_client_connections_max` at the step's end.
* A cumulative counter that went down means the service restarted: then every request count of
  that step is the current value (what the new processes have answered), not a negative delta.

The rows record what the services said, nothing more: a service that cannot be scraped in a
step gets no row for it (one warning per outage); its next successful scrape is measured
against the last one that worked, so requests it answered meanwhile land in that later row,
and requests refused while it was down appear nowhere (they never reached its counters; the
clients' own records are the place for them). A step where no service answered has no
platform row either. `scenario()` lays the rows on the 15 s grid DESIGN.md requires and fills
such holes with empty rows.

Steps end on multiples of `step_seconds` of wall-clock time (like Prometheus evaluations), are
scheduled by absolute deadline and keep their nominal timestamp when a scrape runs late.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

import httpx
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from slo.scenario import COUNT_COLUMNS, GAUGE_COLUMNS, STEP_SECONDS, Incident, Scenario, ScenarioSLO

log = logging.getLogger("nova.slo.scraper")

REQUESTS_TOTAL = "http_server_requests_total"
DURATION = "http_server_request_duration_seconds"
CPU_SECONDS = "process_cpu_seconds_total"
POOL_IN_USE = "db_client_connections_in_use"
POOL_MAX = "db_client_connections_max"
SLOW_SECONDS = 0.2
QUANTILE = 0.99
NOT_CUSTOMER_TRAFFIC = r"/metrics|/healthz|/readyz|/admin/.*"
MIN_STEP_SECONDS = 0.2

Buckets = tuple[tuple[float, float], ...]  # (upper bound `le`, cumulative count), sorted by bound


@dataclass(frozen=True)
class Totals:
    """What one exposition says, cumulative since the service's processes started."""

    requests: float = 0.0
    errors: float = 0.0
    slow: float = 0.0
    buckets: Buckets = ()
    cpu_seconds: Mapping[str, float] = field(default_factory=dict)  # per worker pid
    pool_in_use: float = 0.0
    pool_max: float = 0.0


@dataclass(frozen=True)
class Row:
    """One step: a DESIGN.md scenario row, plus the step's bucket deltas (to merge services' p99)."""

    timestamp: float  # nominal end of the step, unix seconds
    requests: int
    errors: int
    slow: int
    p99_ms: float
    cpu: float
    db_pool: float
    buckets: Buckets = ()


def parse_totals(exposition: str, service: str, exclude_routes: str = NOT_CUSTOMER_TRAFFIC) -> Totals:
    """Read `service`'s customer-traffic counters, CPU and pool out of a Prometheus text exposition.

    Series without a `service` label are taken as the scraped service's. Raises `ValueError`
    for text that is not an exposition, or a duration histogram without the 0.2 s bucket
    (without it the latency SLI cannot be counted, and guessing would hide that).
    """
    excluded = re.compile(exclude_routes)
    requests = errors = count = in_use = pool_max = 0.0
    buckets: dict[float, float] = {}
    cpu: dict[str, float] = {}

    def customer(labels: Mapping[str, str]) -> bool:
        return labels.get("service", service) == service and not excluded.fullmatch(labels.get("route", ""))

    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, sample.value
            if name == REQUESTS_TOTAL and customer(labels):
                requests += value
                if labels.get("code", "").startswith("5"):
                    errors += value
            elif name == f"{DURATION}_bucket" and customer(labels):
                bound = float(labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + value
            elif name == f"{DURATION}_count" and customer(labels):
                count += value
            elif name == CPU_SECONDS:
                cpu[labels.get("pid", "")] = value
            elif name in (POOL_IN_USE, POOL_MAX) and labels.get("service", service) == service:
                if name == POOL_IN_USE:
                    in_use += value
                else:
                    pool_max += value
    if buckets and SLOW_SECONDS not in buckets:
        raise ValueError(f"{DURATION} has no le={SLOW_SECONDS} bucket: slow requests cannot be counted")
    slow = count - buckets.get(SLOW_SECONDS, 0.0)
    return Totals(requests, errors, slow, tuple(sorted(buckets.items())), cpu, in_use, pool_max)


def row_between(previous: Totals, current: Totals, at: float, elapsed: float) -> Row:
    """The step from `previous` to `current`, ending at `at` after `elapsed` true seconds.

    If any request counter went down the service restarted in between, and the whole step is
    counted from zero (the current values): counting each counter on its own could leave more
    errors than requests. Errors and slow requests are capped at the requests, because the
    request counter and the histogram are not read atomically and may differ by a request.
    """
    before = dict(previous.buckets)
    restarted = (
        current.requests < previous.requests
        or current.errors < previous.errors
        or current.slow < previous.slow
        or any(value < before.get(bound, 0.0) for bound, value in current.buckets)
    )
    base = Totals() if restarted else previous
    base_buckets = {} if restarted else before
    requests = round(current.requests - base.requests)
    buckets = tuple((bound, value - base_buckets.get(bound, 0.0)) for bound, value in current.buckets)
    return Row(
        timestamp=at,
        requests=requests,
        errors=min(round(current.errors - base.errors), requests),
        slow=min(round(current.slow - base.slow), requests),
        p99_ms=histogram_quantile(QUANTILE, buckets) * 1000.0,
        cpu=busiest_cpu_share(previous, current, elapsed),
        db_pool=pool_share(current),
        buckets=buckets,
    )


def busiest_cpu_share(previous: Totals, current: Totals, elapsed: float) -> float:
    """The busiest worker's share of a core over `elapsed` seconds, among workers in both scrapes."""
    shares = [
        (seconds - previous.cpu_seconds[pid] if seconds >= previous.cpu_seconds[pid] else seconds) / elapsed
        for pid, seconds in current.cpu_seconds.items()
        if pid in previous.cpu_seconds and elapsed > 0
    ]
    return max([0.0, *shares])


def pool_share(totals: Totals) -> float:
    """Share of the pool in use; 0 when there is no (finite) pool to share."""
    if totals.pool_max > 0 and math.isfinite(totals.pool_max):
        return totals.pool_in_use / totals.pool_max
    return 0.0


def histogram_quantile(q: float, buckets: Buckets) -> float:
    """Prometheus's `histogram_quantile` (classic buckets, linear within a bucket), 0 when empty.

    As Prometheus does: the rank is found in the cumulative counts; in the first bucket the
    lower bound is 0; a rank in the `+Inf` bucket answers the largest finite bound.
    """
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return 0.0
    counts: list[float] = []
    for _, value in ordered:  # Prometheus's ensureMonotonic: a non-atomic read may dip
        counts.append(max(value, counts[-1]) if counts else value)
    observations = counts[-1]
    if observations <= 0:
        return 0.0
    rank = q * observations
    b = next((i for i in range(len(ordered) - 1) if counts[i] >= rank), len(ordered) - 1)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    end = ordered[b][0]
    if b == 0 and end <= 0:
        return end
    start, below = (ordered[b - 1][0], counts[b - 1]) if b > 0 else (0.0, 0.0)
    return start + (end - start) * ((rank - below) / (counts[b] - below))


def combine(rows: Sequence[Row], at: float) -> Row:
    """The platform's row: counts and buckets summed, p99 from the summed buckets, cpu and pool the worst."""
    merged: dict[float, float] = {}
    for row in rows:
        for bound, value in row.buckets:
            merged[bound] = merged.get(bound, 0.0) + value
    buckets = tuple(sorted(merged.items()))
    return Row(
        timestamp=at,
        requests=sum(r.requests for r in rows),
        errors=sum(r.errors for r in rows),
        slow=sum(r.slow for r in rows),
        p99_ms=histogram_quantile(QUANTILE, buckets) * 1000.0,
        cpu=max([0.0, *(r.cpu for r in rows)]),
        db_pool=max([0.0, *(r.db_pool for r in rows)]),
        buckets=buckets,
    )


class EmbeddedScraper:
    """Scrapes every service's `/metrics` once a step on a daemon thread and keeps the rows.

    `urls` maps a service name (its `service` label) to its base URL; `{url}/metrics` is read.
    Entering takes the first scrape before returning, so every request sent inside the `with`
    block is counted; `stop()` (or leaving the block) takes one last, shorter step, recorded
    at the nominal end of the step it cut short, so none is lost at the end either.
    """

    def __init__(self, urls: Mapping[str, str], step_seconds: float = 15.0, timeout_seconds: float = 2.0) -> None:
        if step_seconds < MIN_STEP_SECONDS:
            raise ValueError(f"step_seconds must be at least {MIN_STEP_SECONDS}, got {step_seconds}")
        if not urls:
            raise ValueError("no service to scrape")
        self.urls = dict(urls)
        self.step_seconds = step_seconds
        self._client = httpx.Client(timeout=timeout_seconds)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last: dict[str, tuple[Totals, float]] = {}  # service -> (totals, monotonic time of the scrape)
        self._down: set[str] = set()
        self._rows: dict[str, list[Row]] = {service: [] for service in self.urls}
        self._platform: list[Row] = []
        self._next_step = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> EmbeddedScraper:
        if self._thread is not None:
            raise RuntimeError("an EmbeddedScraper runs once")
        now = time.time()
        for service in self.urls:
            self._scrape(service)
        # The first step is at least half a step long, so its CPU share is not noise.
        self._next_step = math.ceil((now + self.step_seconds / 2) / self.step_seconds)
        self._thread = threading.Thread(target=self._run, name="embedded-scraper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """End the thread now (it waits on an Event, not a sleep), after one last partial step."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._client.close()

    def __enter__(self) -> EmbeddedScraper:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            deadline = self._next_step * self.step_seconds
            stopping = self._stop.wait(max(0.0, deadline - time.time()))
            self._step(deadline)
            if stopping:
                return
            self._next_step += 1
            # A scrape late by a whole step or more: the missed steps get no invented rows.
            self._next_step = max(self._next_step, math.floor(time.time() / self.step_seconds))

    def _step(self, at: float) -> None:
        rows: list[Row] = []
        for service in self.urls:
            row = self._scrape(service, at)
            if row is not None:
                rows.append(row)
        if rows:  # each service's own row was kept by `_scrape`
            with self._lock:
                self._platform.append(combine(rows, at))

    def _scrape(self, service: str, at: float | None = None) -> Row | None:
        """Scrape one service; its row for the step ending `at` (None for the first scrape, or if down)."""
        url = self.urls[service].rstrip("/") + "/metrics"
        try:
            response = self._client.get(url)
            response.raise_for_status()
            totals = parse_totals(response.text, service)
        except (httpx.HTTPError, ValueError) as exc:
            if service not in self._down:
                self._down.add(service)
                log.warning("cannot scrape %s at %s (%s); its steps are skipped until it answers", service, url, exc)
            return None
        scraped = time.monotonic()
        if service in self._down:
            self._down.discard(service)
            log.info("%s answers scrapes again", service)
        previous = self._last.get(service)
        self._last[service] = (totals, scraped)
        if previous is None or at is None:
            return None
        row = row_between(previous[0], totals, at, scraped - previous[1])
        with self._lock:
            self._rows[service].append(row)
        return row

    # -- what was seen -----------------------------------------------------------------------

    def rows(self, service: str | None = None) -> list[Row]:
        """The rows so far, oldest first: one service's, or the platform's (None)."""
        with self._lock:
            return list(self._platform if service is None else self._rows[service])

    def scenario(
        self,
        service: str | None = None,
        incidents: Sequence[Incident] = (),
        slo: ScenarioSLO | None = None,
        name: str | None = None,
    ) -> Scenario:
        """The rows as a DESIGN.md scenario: one row per step on a 15 s grid, holes filled with empty rows.

        With the default 15 s step the timestamps are the steps' real ends. With a shorter
        step (tests, quick probes) each step becomes one 15 s row from the first step's end
        on, so the scenario is time-compressed: incidents must be given in that time base.
        """
        rows = self.rows(service)
        count = round((rows[-1].timestamp - rows[0].timestamp) / self.step_seconds) + 1 if rows else 0
        timestamps = (round(rows[0].timestamp) if rows else 0) + STEP_SECONDS * np.arange(count, dtype=np.int64)
        columns = {key: np.zeros(count, dtype=np.int64) for key in COUNT_COLUMNS}
        floats = {key: np.zeros(count, dtype=np.float64) for key in GAUGE_COLUMNS}
        for row in rows:
            i = round((row.timestamp - rows[0].timestamp) / self.step_seconds)
            for key, array in columns.items():
                array[i] += getattr(row, key)  # two rows in one slot cannot happen; summing is safe anyway
            for key, values in floats.items():
                values[i] = getattr(row, key)
        return Scenario.from_columns(
            timestamps, {**columns, **floats}, slo, incidents, name or f"embedded-{service or 'platform'}"
        )

    def latest(self, window_rows: int = 4, service: str | None = None) -> dict[str, float]:
        """Availability and p99 over the last `window_rows` rows, for a live progress display.

        Availability is 1.0 when the window saw no requests (nothing failed); `cpu` and
        `db_pool` are the newest row's.
        """
        window = self.rows(service)[-window_rows:] if window_rows > 0 else []
        total = combine(window, window[-1].timestamp if window else 0.0)
        newest = window[-1] if window else total
        return {
            "timestamp": total.timestamp,
            "requests": float(total.requests),
            "errors": float(total.errors),
            "slow": float(total.slow),
            "availability": 1.0 - total.errors / total.requests if total.requests else 1.0,
            "p99_ms": total.p99_ms,
            "cpu": newest.cpu,
            "db_pool": newest.db_pool,
        }

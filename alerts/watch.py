"""`nova alerts watch`: the predictive pager live, from metric rows to Alertmanager.

This module owns turning a stream of 15 s rows per service into predictive alerts:

* Sources of rows: the embedded scraper (`slo.scraper.EmbeddedScraper`, services' own
  `/metrics`), a Prometheus server (the same counters, read with instant queries each step
  and differenced exactly as the scraper does), or a recorded scenario folder replayed as fast
  as it can be read or at a chosen pace (drills, tests).
* `PredictiveWatch` keeps one `OnlineFeatures` stream per service and the model's pager
  (`alerts.model.LivePager`): an alert starts when a forecast rule has held for its run (or the
  classifier's probability has been >= threshold for `consecutive` rows) and stays while it
  holds; it is resolved when nothing pages any more.
* Sinks: Alertmanager's API v2 (`POST /api/v2/alerts`, re-sent every step while firing with
  `endsAt` a few steps ahead, so Alertmanager resolves it by itself if the watcher dies) or a
  webhook receiving Alertmanager's webhook payload (version 4), as the pager expects.
  `NowStampedSink` stamps a replay's notices as if its newest row were now: Alertmanager takes
  an alert whose `endsAt` is past as resolved, so a drill on last month's recording would
  otherwise never page.

Alerts carry labels `alertname`, `severity="page"`, `slo`, `service`, `kind="predictive"`,
`sloth_id` (`<service>-<slo>`, as the burn-rate alerts of the same SLO) and
annotations `summary`, `runbook_url` (`<runbook base>/<service>-<slo>-predictive.md`),
`predicted_breach_in` ("~12m"), `rule` (the forecast rule that fired, `alerts.forecast`, or
"classifier") and `signal`, why it fired: the fired rule's signal and projected minutes
("db_pool full in ~14m (rule db_pool_saturation)"), or for a classifier page the physical
signal nearest its limit (`top_signal`: a burn-rate pair's projected minutes to its page
factor, or the database pool or CPU projected to reach 1.0), e.g. "db_pool full in ~14m".
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import numpy as np
from threadpoolctl import threadpool_limits

from alerts.features import ETA_CAP_MINUTES, FEATURE_NAMES, PROJECTIONS, OnlineFeatures
from alerts.model import LivePager, PredictiveModel
from slo.errors import SourceError
from slo.scenario import STEP_SECONDS, Scenario, ScenarioSLO
from slo.scraper import (
    DURATION,
    NOT_CUSTOMER_TRAFFIC,
    POOL_IN_USE,
    POOL_MAX,
    REQUESTS_TOTAL,
    SLOW_SECONDS,
    EmbeddedScraper,
    Row,
    Totals,
    row_between,
)

log = logging.getLogger("nova.alerts.watch")

RESEND_STEPS = 4  # endsAt this many steps ahead of each (re-)send
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass(frozen=True)
class PredictiveAlert:
    service: str
    slo: str  # "availability" or "latency"
    status: str  # "firing" or "resolved"
    probability: float
    breach_in_minutes: float
    starts_at: float  # unix seconds
    at: float  # the row that produced this notice
    runbook_base: str = "runbooks"
    signal: str = ""  # why it fired (the forecast rule's signal, or `top_signal`), shown on the pager
    rule: str = ""  # the forecast rule that fired ("classifier" when the classifier paged alone)

    @property
    def name(self) -> str:
        prefix = self.service.replace("-", " ").replace("_", " ").title().replace(" ", "")
        return f"{prefix}{self.slo.title()}PredictedBurn"

    @property
    def labels(self) -> dict[str, str]:
        return {
            "alertname": self.name,
            "severity": "page",
            "slo": self.slo,
            "service": self.service,
            "kind": "predictive",
            # the burn-rate alerts' SLO id, so routes and inhibitions can pair the two
            "sloth_id": f"{self.service}-{self.slo}",
        }

    @property
    def annotations(self) -> dict[str, str]:
        why = f"p={self.probability:.2f}" if self.rule in ("", "classifier") else f"rule {self.rule}"
        return {
            "summary": (
                f"{self.service} {self.slo}: the fast-burn page is likely within "
                f"{self.breach_in_minutes:.0f} minutes ({why})"
            ),
            "runbook_url": f"{self.runbook_base.rstrip('/')}/{self.service}-{self.slo}-predictive.md",
            "predicted_breach_in": f"~{self.breach_in_minutes:.0f}m",
            "signal": self.signal,
            "rule": self.rule or "classifier",
        }

    def ends_at(self) -> float:
        return self.at if self.status == "resolved" else self.at + RESEND_STEPS * STEP_SECONDS


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def breach_in_minutes(features: np.ndarray[Any, Any], horizon_minutes: float) -> tuple[str, float]:
    """Which SLI is heading for the page, and roughly when, if the last 5 minutes go on.

    The 1h burn moves towards the 5m burn at 1/60 of the gap a minute; the 6h burn towards
    the 30m burn at 1/360. Whichever pair crosses its factor first (14.4, 6) sets the time;
    a trend that never crosses gives the model's horizon.
    """
    best_sli, best = "availability", math.inf
    for sli, name in (("err", "availability"), ("slow", "latency")):
        for short, long, factor, span in (("5m", "1h", 14.4, 60.0), ("30m", "6h", 6.0, 360.0)):
            now_long = float(features[_INDEX[f"{sli}_burn_{long}"]])
            now_short = float(features[_INDEX[f"{sli}_burn_{short}"]])
            if now_long >= factor:
                minutes = 0.0
            elif now_short > now_long and now_short > factor:
                minutes = span * (factor - now_long) / (now_short - now_long)
            else:
                continue
            if minutes < best:
                best_sli, best = name, minutes
    if math.isinf(best):
        # No trend crosses yet: blame the SLI burning harder against its page, expect it within H.
        err = float(features[_INDEX["err_burn_1h_in_30m"]])
        slow = float(features[_INDEX["slow_burn_1h_in_30m"]])
        return ("availability" if err >= slow else "latency"), horizon_minutes
    return best_sli, max(1.0, min(best, horizon_minutes))


def top_signal(features: np.ndarray[Any, Any]) -> str:
    """Why a page fired, for on-call: the signal projected to reach its limit soonest, with the
    projection ("db_pool full in ~14m"); the hardest burn when nothing is projected to get there."""
    minutes, label = min((float(features[_INDEX[name]]), label) for name, label in PROJECTIONS)
    if minutes < ETA_CAP_MINUTES:
        return f"{label} in ~{minutes:.0f}m"
    err, slow = float(features[_INDEX["err_burn_5m"]]), float(features[_INDEX["slow_burn_5m"]])
    return f"5xx burn {err:.1f}x over 5m" if err >= slow else f"slow burn {slow:.1f}x over 5m"


@dataclass
class _Stream:
    firing: PredictiveAlert | None = None


@dataclass
class PredictiveWatch:
    """The page policy applied live, one stream per service; `observe` a step's rows, get notices."""

    model: PredictiveModel
    services: Sequence[str]
    slo: ScenarioSLO = field(default_factory=ScenarioSLO)
    runbook_base: str = "runbooks"

    def __post_init__(self) -> None:
        self._features = OnlineFeatures(self.slo, len(self.services))
        self._streams = {service: _Stream() for service in self.services}
        self._pager = LivePager(self.model, len(self.services))

    def observe(self, rows: Mapping[str, Row], at: float) -> list[PredictiveAlert]:
        """One step: every service's row (a missing one counts as an empty step)."""
        raw = np.zeros((len(self.services), 6))
        for i, service in enumerate(self.services):
            row = rows.get(service)
            if row is not None:
                raw[i] = (row.requests, row.errors, row.slow, row.p99_ms, row.cpu, row.db_pool)
        features = self._features.push(raw, at)
        decisions = self._pager.push(features)  # run_watch limits threads
        notices: list[PredictiveAlert] = []
        for i, service in enumerate(self.services):
            stream, decision = self._streams[service], decisions[i]
            if decision.paging:
                slo, minutes = breach_in_minutes(features[i], self.model.horizon_minutes)
                why, rule = top_signal(features[i]), "classifier"
                if decision.firing is not None:  # the forecast rule's own projection and reason
                    why, rule = decision.firing.describe(), decision.firing.rule
                    minutes = max(1.0, min(decision.firing.minutes, self.model.horizon_minutes))
                starts = stream.firing.starts_at if stream.firing else at
                p = decision.probability
                stream.firing = PredictiveAlert(
                    service, slo, "firing", p, minutes, starts, at, self.runbook_base, why, rule
                )
                notices.append(stream.firing)
            elif stream.firing is not None:
                last = stream.firing
                notices.append(
                    PredictiveAlert(
                        service,
                        last.slo,
                        "resolved",
                        decision.probability,
                        last.breach_in_minutes,
                        last.starts_at,
                        at,
                        signal=last.signal,
                        rule=last.rule,
                    )
                )
                stream.firing = None
        return notices


class Sink(Protocol):
    def send(self, alerts: Sequence[PredictiveAlert]) -> None: ...

    def close(self) -> None: ...


class AlertmanagerSink:
    """POST /api/v2/alerts: a list of alerts, each with labels, annotations, startsAt, endsAt."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self._client = httpx.Client(timeout=timeout)

    def send(self, alerts: Sequence[PredictiveAlert]) -> None:
        body = [
            {
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": _iso(a.starts_at),
                "endsAt": _iso(a.ends_at()),
                "generatorURL": "nova://alerts/watch",
            }
            for a in alerts
        ]
        _post(self._client, self.url, body)

    def close(self) -> None:
        self._client.close()


class WebhookSink:
    """Alertmanager's webhook payload (version 4), one notification per alert."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self._client = httpx.Client(timeout=timeout)

    def send(self, alerts: Sequence[PredictiveAlert]) -> None:
        for a in alerts:
            fingerprint = hashlib.sha256(json.dumps(a.labels, sort_keys=True).encode()).hexdigest()[:16]
            body = {
                "version": "4",
                "groupKey": f"{{}}:{{alertname={a.name!r}}}",
                "truncatedAlerts": 0,
                "status": a.status,
                "receiver": "nova-predictive",
                "groupLabels": {"alertname": a.name},
                "commonLabels": a.labels,
                "commonAnnotations": a.annotations,
                "externalURL": "nova://alerts/watch",
                "alerts": [
                    {
                        "status": a.status,
                        "labels": a.labels,
                        "annotations": a.annotations,
                        "startsAt": _iso(a.starts_at),
                        "endsAt": _iso(a.ends_at()) if a.status == "resolved" else "0001-01-01T00:00:00Z",
                        "generatorURL": "nova://alerts/watch",
                        "fingerprint": fingerprint,
                    }
                ],
            }
            _post(self._client, self.url, body)

    def close(self) -> None:
        self._client.close()


class NowStampedSink:
    """Another sink, fed each notice shifted in time so that the row it came from is now (how
    long an alert has been firing is kept)."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def send(self, alerts: Sequence[PredictiveAlert]) -> None:
        now = time.time()
        self._sink.send([replace(a, starts_at=a.starts_at + now - a.at, at=now) for a in alerts])

    def close(self) -> None:
        self._sink.close()


def _post(client: httpx.Client, url: str, body: Any) -> None:
    """Deliver, or log why not: a receiver that is down must not stop the watch."""
    try:
        response = client.post(url, json=body)
        if response.status_code >= 300:
            log.warning("%s answered %s: %s", url, response.status_code, response.text[:200])
    except httpx.HTTPError as exc:
        log.warning("cannot deliver to %s: %s", url, exc)


# -- sources of rows -----------------------------------------------------------------------------


class Source(Protocol):
    @property
    def services(self) -> Sequence[str]:
        """The services whose rows `steps` yields (one online stream each)."""
        ...

    def steps(self) -> Iterator[tuple[float, dict[str, Row]]]:
        """Each step's end time and the rows of the services that answered, as they come."""
        ...

    def close(self) -> None: ...


class ReplaySource:
    """A recorded scenario folder's rows, as service `service`: as fast as they can be read, or
    `speed` times faster than they were recorded (60: an hour a minute)."""

    def __init__(self, scenario: Scenario, service: str = "payments", speed: float | None = None) -> None:
        self.scenario = scenario
        self.services = [service]
        self._pause = STEP_SECONDS / speed if speed else 0.0

    def steps(self) -> Iterator[tuple[float, dict[str, Row]]]:
        s = self.scenario
        for i in range(s.timestamps.shape[0]):
            if i and self._pause:
                time.sleep(self._pause)
            at = float(s.timestamps[i])
            row = Row(
                at,
                int(s.requests[i]),
                int(s.errors[i]),
                int(s.slow[i]),
                float(s.p99_ms[i]),
                float(s.cpu[i]),
                float(s.db_pool[i]),
            )
            yield at, {self.services[0]: row}

    def close(self) -> None:
        pass


class ScraperSource:
    """The embedded scraper's new rows each step (services' own `/metrics`)."""

    def __init__(self, urls: Mapping[str, str], step_seconds: float = STEP_SECONDS) -> None:
        self.services = list(urls)
        self._scraper = EmbeddedScraper(urls, step_seconds=step_seconds)
        self._step = step_seconds

    def steps(self) -> Iterator[tuple[float, dict[str, Row]]]:
        self._scraper.start()
        taken = {service: 0 for service in self.services}
        while True:
            time.sleep(self._step / 5)
            fresh: dict[float, dict[str, Row]] = {}
            for service in self.services:
                rows = self._scraper.rows(service)
                for row in rows[taken[service] :]:
                    fresh.setdefault(row.timestamp, {})[service] = row
                taken[service] = len(rows)
            for at in sorted(fresh):
                yield at, fresh[at]

    def close(self) -> None:
        self._scraper.stop()


class PrometheusSource:
    """The services' counters read from Prometheus every step and differenced into rows.

    Instant queries (`/api/v1/query`) of the same series the scraper reads, summed by the
    `service` label over customer routes; each step's row is the difference from the last
    step, as `slo.scraper.row_between` takes it (restarts included). CPU is the busiest
    process's `rate(process_cpu_seconds_total[1m])`.
    """

    def __init__(self, url: str, services: Sequence[str], step_seconds: float = STEP_SECONDS) -> None:
        self.url = url.rstrip("/")
        self.services = list(services)
        self._step = step_seconds
        self._client = httpx.Client(base_url=self.url, timeout=10.0)

    def _query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        try:
            body = self._client.get("/api/v1/query", params={"query": promql}).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise SourceError(f"cannot query Prometheus at {self.url}: {exc}") from None
        if body.get("status") != "success":
            raise SourceError(f"Prometheus refused {promql!r}: {body.get('error')}")
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def totals(self) -> tuple[dict[str, Totals], dict[str, float]]:
        customer = f'route!~"{NOT_CUSTOMER_TRAFFIC}"'

        def by_service(promql: str) -> dict[str, float]:
            return {labels.get("service", ""): value for labels, value in self._query(promql)}

        requests = by_service(f"sum by (service) ({REQUESTS_TOTAL}{{{customer}}})")
        errors = by_service(f'sum by (service) ({REQUESTS_TOTAL}{{{customer},code=~"5.."}})')
        count = by_service(f"sum by (service) ({DURATION}_count{{{customer}}})")
        buckets: dict[str, dict[float, float]] = {}
        for labels, value in self._query(f"sum by (service, le) ({DURATION}_bucket{{{customer}}})"):
            buckets.setdefault(labels.get("service", ""), {})[float(labels["le"])] = value
        in_use = by_service(f"sum by (service) ({POOL_IN_USE})")
        pool_max = by_service(f"sum by (service) ({POOL_MAX})")
        cpu = by_service("max by (service) (rate(process_cpu_seconds_total[1m]))")
        out = {}
        for service in self.services:
            if service not in requests:
                continue
            bounds = buckets.get(service, {})
            out[service] = Totals(
                requests[service],
                errors.get(service, 0.0),
                count.get(service, 0.0) - bounds.get(SLOW_SECONDS, 0.0),
                tuple(sorted(bounds.items())),
                {},
                in_use.get(service, 0.0),
                pool_max.get(service, 0.0),
            )
        return out, cpu

    def steps(self) -> Iterator[tuple[float, dict[str, Row]]]:
        previous, _ = self.totals()
        next_at = math.ceil(time.time() / self._step) * self._step
        while True:
            time.sleep(max(0.0, next_at - time.time()))
            current, cpu = self.totals()
            rows = {}
            for service, totals in current.items():
                if service in previous:
                    row = row_between(previous[service], totals, next_at, self._step)
                    rows[service] = Row(
                        row.timestamp,
                        row.requests,
                        row.errors,
                        row.slow,
                        row.p99_ms,
                        cpu.get(service, 0.0),
                        row.db_pool,
                    )
            previous = {**previous, **current}
            yield next_at, rows
            next_at += self._step

    def close(self) -> None:
        self._client.close()


@dataclass
class WatchReport:
    steps: int = 0
    sent: list[PredictiveAlert] = field(default_factory=list)


def run_watch(
    watch: PredictiveWatch,
    source: Source,
    sink: Sink,
    *,
    max_steps: int | None = None,
    duration_seconds: float | None = None,
) -> WatchReport:
    """Feed the source's steps to the watch and deliver its notices until a bound is reached."""
    report = WatchReport()
    deadline = time.monotonic() + duration_seconds if duration_seconds is not None else math.inf
    # One thread for the model: a prediction a step for a few services gains nothing from more,
    # and the host runs the services being watched.
    limits = threadpool_limits(1)
    try:
        for at, rows in source.steps():
            notices = watch.observe(rows, at)
            if notices:
                sink.send(notices)
                report.sent += notices
            report.steps += 1
            if (max_steps is not None and report.steps >= max_steps) or time.monotonic() >= deadline:
                break
    finally:
        limits.restore_original_limits()
        source.close()
        sink.close()
    return report

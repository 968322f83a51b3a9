"""The error-budget guardrail of a game day (`nova gameday --abort-budget PCT`).

An experiment that burns more than PCT of the 30-day error budget is stopped at once: a game
day is run on a platform people may depend on, and an experiment gone wrong must not spend the
month's budget. `BudgetGuard` reads every service's own request and 5xx counters (`GET /metrics`,
the same counters the SLOs are computed from) every `POLL_SECONDS` from the experiment's start
and adds up, per availability SLO, what was burned since:

    burned = (bad / events) / (1 - objective) x elapsed / period

that is, the burn rate times the share of the period it lasted (the same figure the report gives
per phase). The runner then stops `chaos run` as Ctrl-C does (its rollbacks run), clears every
fault, and records the reason on the phase (`aborted`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from slo.scraper import Totals, parse_totals, row_between
from slo.spec import SUITE_SPECS, LatencySLI, load_specs

POLL_SECONDS = 1.0
DEFAULT_PERIOD_SECONDS = 30 * 86400
SCRAPE_TIMEOUT_SECONDS = 2.0


def budget_burned(events: int, bad_events: int, objective: float, seconds: float, period_seconds: float) -> float:
    """The share of the period's error budget that `bad_events` of `events` over `seconds` spent."""
    if events <= 0 or seconds <= 0:
        return 0.0
    return (bad_events / events) / (1.0 - objective) * seconds / period_seconds


@dataclass
class _Count:
    events: int = 0
    bad: int = 0
    last: Totals | None = None


@dataclass
class BudgetGuard:
    """Counts each service's requests and 5xx answers from `start()`; `check()` says when the cap is crossed."""

    urls: Mapping[str, str]  # service -> base URL
    percent: float  # the cap, percent of the 30-day budget
    fetch: Callable[[str], str] | None = None  # URL -> exposition text (default: an HTTP GET)
    started: float = 0.0
    counts: dict[str, _Count] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slos = {
            slo.service: slo
            for slo in load_specs(SUITE_SPECS)
            if not isinstance(slo.sli, LatencySLI) and slo.service in self.urls
        }

    def start(self) -> None:
        self.started = time.time()
        self.counts = {service: _Count() for service in self.slos}
        self._read()

    def burned(self) -> dict[str, float]:
        """Per availability SLO (`sloth_id`), the share of its budget spent since `start()`."""
        elapsed = time.time() - self.started
        found = {}
        for service, slo in self.slos.items():
            count = self.counts[service]
            period = float(slo.period or DEFAULT_PERIOD_SECONDS)
            found[slo.sloth_id] = budget_burned(count.events, count.bad, float(slo.objective_ratio), elapsed, period)
        return found

    def check(self) -> str | None:
        """Read the counters again; the reason to stop if an SLO burned more than the cap, else None."""
        self._read()
        for sloth_id, share in self.burned().items():
            if share * 100 > self.percent:
                slo = next(slo for slo in self.slos.values() if slo.sloth_id == sloth_id)
                count = self.counts[slo.service]
                return (
                    f"--abort-budget {self.percent:g}%: {sloth_id} burned {share:.3%} of its 30-day error budget "
                    f"({count.bad} of {count.events} requests failed in {time.time() - self.started:.0f} s)"
                )
        return None

    def _read(self) -> None:
        for service, count in self.counts.items():
            try:
                totals = parse_totals(self._fetch(f"{self.urls[service]}/metrics"), service)
            except (httpx.HTTPError, ValueError):
                continue  # a service that cannot be read now is counted at its next answer
            if count.last is not None:
                step = row_between(count.last, totals, time.time(), POLL_SECONDS)
                count.events += step.requests
                count.bad += step.errors
            count.last = totals

    def _fetch(self, url: str) -> str:
        if self.fetch is not None:
            return self.fetch(url)
        response = httpx.get(url, timeout=SCRAPE_TIMEOUT_SECONDS)
        response.raise_for_status()
        return response.text

"""Page scoring: how a set of pages fares against labelled incidents, by DESIGN.md's definitions.

DESIGN.md ("Metric scenarios") fixes the rules; the edge cases it leaves open are settled here
and nowhere else:

- Pages less than 10 minutes apart are one page: pages are taken in time order and a page
  within `gap_seconds` of the last page *kept* is folded into it (the first is kept). A detector
  that fires every five minutes for an hour therefore counts as six pages, not one.
- A page *matches* an incident when `start <= page <= end + 30 min` (the grace DESIGN.md gives
  late pages; the same grace applies to incidents that never breach, so a page is never false
  only because the incident it saw was mitigated minutes earlier). When two incidents' spans
  overlap, the page matches the one it falls inside (`start <= page <= end`), else the one that
  ended last.
- A page matching no incident is **false**.
- A breaching incident is credited with its **first** matching page: that page is **on time**
  (a true page) when it fires in `[start, breach]`, **late** when it fires in
  `(breach, end + 30 min]`. Further pages matching an already credited incident are repeats:
  neither true, late nor false (the on-call engineer is already on it).
- A page matching an incident that never breaches (`breach` null) is an **early warning**,
  neither true nor false; every such merged page is counted.
- recall = breaching incidents detected (on time or late) / breaching incidents (1.0 when
  none breach); precision = (on-time + late pages) / (on-time + late + false pages), i.e. the
  share of pages about a real, breaching incident (1.0 when nothing paged).
- Lead time = `breach - page` of each on-time page (late pages have none); the median and the
  10th percentile (linear interpolation) are reported in minutes, None without on-time pages.
- Lead over the burn-rate baseline: for each breaching incident that both the pages and the
  baseline (`burn_rate_pages`) detect, the baseline's first matching page minus the pages'
  first matching page (positive = ahead of the burn-rate page).
- weeks = total scenario duration (rows x 15 s) / 7 days; false pages per week = false / weeks.
- The physical limit of an incident is `breach - start`: paging the moment the fault begins. The
  share of it an incident's first matching page takes is `(breach - page) / (breach - start)`
  (1.0 = paged at the fault start, 0 = at the breach, negative = late). `score_kinds` reports
  these, and the lead before the breach (negative when late), per incident kind.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slo.errors import SourceError
from slo.scenario import STEP_SECONDS, Incident, Scenario, scenario_timelines

MERGE_GAP_SECONDS = 600.0
LATE_GRACE_SECONDS = 1800.0
WEEK_SECONDS = 7 * 86400.0


@dataclass(frozen=True)
class PageScore:
    true_pages: int  # first matching page of a breaching incident, in [start, breach]
    late_pages: int  # first matching page of a breaching incident, in (breach, end + 30 min]
    false_pages: int  # pages matching no incident
    early_warnings: int  # pages matching an incident that never breaches
    incidents: int  # incidents that breach
    detected: int  # breaching incidents paged on time or late
    missed: int  # breaching incidents with no matching page
    precision: float
    recall: float
    lead_times_s: tuple[float, ...]  # breach - page, one per on-time page
    median_lead_minutes: float | None
    p10_lead_minutes: float | None
    weeks: float
    false_pages_per_week: float
    lead_vs_baseline_s: tuple[float, ...] = ()  # baseline page - page, per incident both detect
    median_lead_vs_baseline_minutes: float | None = None
    repeat_pages: int = 0  # further pages about an incident already credited


def merge_pages(times: Sequence[float], gap_seconds: float = MERGE_GAP_SECONDS) -> list[float]:
    """Pages in time order, each page within `gap_seconds` of the last kept page folded into it."""
    kept: list[float] = []
    for time in sorted(float(t) for t in times):
        if not kept or time - kept[-1] >= gap_seconds:
            kept.append(time)
    return kept


def _match(page: float, incidents: Sequence[Incident]) -> int | None:
    """Index of the incident a page matches (see the module docstring), or None."""
    inside = [i for i, inc in enumerate(incidents) if inc.start <= page <= inc.end]
    if inside:
        return max(inside, key=lambda i: incidents[i].start)
    grace = [i for i, inc in enumerate(incidents) if inc.start <= page <= inc.end + LATE_GRACE_SECONDS]
    if grace:
        return max(grace, key=lambda i: incidents[i].end)
    return None


def _first_matches(pages: Sequence[float], incidents: Sequence[Incident]) -> dict[int, float]:
    first: dict[int, float] = {}
    for page in merge_pages(pages):
        index = _match(page, incidents)
        if index is not None and index not in first:
            first[index] = page
    return first


def _minutes(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) / 60 if values else None


def score_pages(
    scenarios: Sequence[Scenario],
    pages: Mapping[str, Sequence[float]],
    *,
    baseline: Mapping[str, Sequence[float]] | None = None,
) -> PageScore:
    """Score `pages` (keyed by `scenario.name`; missing = no page) against the scenarios' incidents.

    `baseline` holds the pages to measure the lead against, keyed the same way; by default the
    burn-rate pages of each scenario (`burn_rate_pages`).
    """
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise ValueError("scenario names must be unique to key their pages")
    unknown = sorted(set(pages) - set(names))
    if unknown:
        raise ValueError(f"pages for unknown scenarios: {', '.join(unknown)}")
    true_pages = late_pages = false_pages = early = breaching = repeats = 0
    leads: list[float] = []
    ahead: list[float] = []
    seconds = 0.0
    for scenario in scenarios:
        seconds += scenario.timestamps.shape[0] * STEP_SECONDS
        incidents = scenario.incidents
        credited: set[int] = set()
        for page in merge_pages(pages.get(scenario.name, ())):
            index = _match(page, incidents)
            if index is None:
                false_pages += 1
                continue
            incident = incidents[index]
            if incident.breach is None:
                early += 1
            elif index in credited:
                repeats += 1
            else:
                credited.add(index)
                if page <= incident.breach:
                    true_pages += 1
                    leads.append(incident.breach - page)
                else:
                    late_pages += 1
        breaching += sum(1 for inc in incidents if inc.breach is not None)
        if credited:
            reference = baseline.get(scenario.name, ()) if baseline is not None else burn_rate_pages(scenario)
            ours = _first_matches(pages.get(scenario.name, ()), incidents)
            theirs = _first_matches(reference, incidents)
            ahead += [theirs[i] - ours[i] for i in sorted(credited) if i in theirs]
    detected = true_pages + late_pages
    paged = detected + false_pages
    weeks = seconds / WEEK_SECONDS
    return PageScore(
        true_pages=true_pages,
        late_pages=late_pages,
        false_pages=false_pages,
        early_warnings=early,
        incidents=breaching,
        detected=detected,
        missed=breaching - detected,
        precision=detected / paged if paged else 1.0,
        recall=detected / breaching if breaching else 1.0,
        lead_times_s=tuple(leads),
        median_lead_minutes=_minutes(leads, 50),
        p10_lead_minutes=_minutes(leads, 10),
        weeks=weeks,
        false_pages_per_week=false_pages / weeks if weeks else 0.0,
        lead_vs_baseline_s=tuple(ahead),
        median_lead_vs_baseline_minutes=_minutes(ahead, 50),
        repeat_pages=repeats,
    )


@dataclass(frozen=True)
class KindScore:
    """How the pages fare on one incident kind: lead before the breach against the physical limit."""

    kind: str
    incidents: int  # breaching incidents of this kind
    detected: int  # paged on time or late
    on_time: int
    median_lead_minutes: float | None  # breach - first matching page (negative = late), detected incidents
    median_limit_minutes: float | None  # breach - fault start, every breaching incident of the kind
    median_share: float | None  # (breach - page) / (breach - start), detected incidents


def physical_limits(scenarios: Sequence[Scenario]) -> list[float]:
    """`breach - start` of every breaching incident: the most lead any page could have."""
    return [inc.breach - inc.start for s in scenarios for inc in s.incidents if inc.breach is not None]


def lead_shares(
    scenarios: Sequence[Scenario], pages: Mapping[str, Sequence[float]]
) -> dict[str, list[tuple[float, float]]]:
    """Per kind, (lead before breach, physical limit) in seconds of each detected breaching incident."""
    found: dict[str, list[tuple[float, float]]] = {}
    for scenario in scenarios:
        first = _first_matches(pages.get(scenario.name, ()), scenario.incidents)
        for index, page in first.items():
            incident = scenario.incidents[index]
            if incident.breach is not None:
                found.setdefault(incident.kind, []).append((incident.breach - page, incident.breach - incident.start))
    return found


def share_of_limit(lead_s: float, limit_s: float) -> float:
    """The share of the physical limit a page took (a breach at the fault start: 1.0 when on time, else late)."""
    if limit_s <= 0:
        return 1.0 if lead_s >= 0 else lead_s / STEP_SECONDS
    return lead_s / limit_s


def score_kinds(scenarios: Sequence[Scenario], pages: Mapping[str, Sequence[float]]) -> list[KindScore]:
    """Per incident kind (sorted by name): incidents, detected, on time, median lead, limit and share."""
    leads = lead_shares(scenarios, pages)
    kinds = sorted({inc.kind for s in scenarios for inc in s.incidents if inc.breach is not None})
    result = []
    for kind in kinds:
        limits = [
            inc.breach - inc.start
            for s in scenarios
            for inc in s.incidents
            if inc.kind == kind and inc.breach is not None
        ]
        pairs = leads.get(kind, [])
        result.append(
            KindScore(
                kind=kind,
                incidents=len(limits),
                detected=len(pairs),
                on_time=sum(1 for lead, _ in pairs if lead >= 0),
                median_lead_minutes=_minutes([lead for lead, _ in pairs], 50),
                median_limit_minutes=_minutes(limits, 50),
                median_share=float(np.median([share_of_limit(*p) for p in pairs])) if pairs else None,
            )
        )
    return result


def burn_rate_pages(scenario: Scenario) -> list[float]:
    """The multi-window multi-burn-rate baseline: when the suite's page alerts start firing, merged.

    These are the evaluator's page alerts for both SLOs (availability over `errors`, latency over
    `slow`) exactly as the generated Prometheus rules fire them, traffic guard included (at least
    `min_bad_events` bad events in the long window), on full windows only. That is what on-call
    receives today, so it is the page a predictive alert has to beat. On the payments traffic of
    these scenarios the guard is met long before a burn rate can be, so the first page of a
    breaching incident is, in practice, its breach (`slo.scenario.first_breach`).
    """
    starts = [
        alert.start
        for timeline in scenario_timelines(scenario)
        for alert in timeline.alerts
        if alert.severity == "page" and not alert.alert.endswith("BudgetExhaustion")
    ]
    return merge_pages(starts)


def read_pages(path: Path) -> dict[str, list[float]]:
    """PAGES.json: an object mapping scenario folder names to page start times (unix seconds)."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise SourceError(f"{path}: must be an object mapping scenario names to lists of page times")
    pages: dict[str, list[float]] = {}
    for name, times in document.items():
        if not isinstance(times, list) or not all(
            isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t) for t in times
        ):
            raise SourceError(f"{path}: {name}: must be a list of unix times in seconds")
        pages[name] = [float(t) for t in times]
    return pages


def write_pages(path: Path, pages: Mapping[str, Sequence[float]]) -> None:
    """Write PAGES.json: names sorted, times sorted, whole seconds written as integers."""
    document = {
        name: [int(t) if float(t).is_integer() else float(t) for t in sorted(pages[name])] for name in sorted(pages)
    }
    path.write_text(json.dumps(document, indent=2) + "\n")

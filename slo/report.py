"""SLO reports: what each SLO did over a stretch of time, as HTML, Markdown and JSON.

Owns the report's summary of a timeline (`summarize`) and the three files `write_report` writes:
`report.html` (one self-contained page: inline CSS and inline SVG plots, nothing fetched, so it
can be attached to a postmortem or opened offline), `report.md` with PNG plots under `plots/`
(for wikis and pull requests), and `report.json` (for tools; NaN becomes null, keys in a fixed
order). The plots themselves live in `slo.plots`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from slo.document import (
    Cell,
    Content,
    Document,
    Facts,
    Figures,
    Gauge,
    Inline,
    Link,
    Paragraph,
    Pill,
    Section,
    Table,
    Text,
    Time,
    format_burn,
    format_duration_short,
    format_time,
    render_html,
    render_markdown,
    unique_slugs,
)
from slo.durations import parse_duration
from slo.errors import SourceError
from slo.plots import PLOT_KINDS, RenderedPlot, render_plot
from slo.timeline import Series, SLOTimeline

__all__ = [
    "AlertSummary",
    "LatencySummary",
    "ReportFiles",
    "SLOSummary",
    "ThresholdStatus",
    "summarize",
    "write_report",
]


@dataclass(frozen=True)
class ReportFiles:
    """Where `write_report` put the three files."""

    html: Path
    markdown: Path
    json: Path


@dataclass(frozen=True)
class AlertSummary:
    """One firing of an alert; `end` is None when it still fires at the last step, and its duration runs to then."""

    alert: str
    severity: str
    start: float
    end: float | None
    duration_seconds: float


@dataclass(frozen=True)
class ThresholdStatus:
    """How one burn-rate alert condition stands at the last step: it holds when both windows exceed the factor."""

    severity: str
    short: str
    long: str
    factor: float
    short_burn: float | None
    long_burn: float | None
    # Whether the alert of this severity is firing at the last step. Both burn rates above the
    # factor are not enough for it to fire: the rules judge a window pair only once its long
    # window has a full window of history (and, with a traffic guard, enough bad events).
    fires: bool | None = None
    long_window_full: bool = True

    @property
    def holds(self) -> bool | None:
        if self.short_burn is None or self.long_burn is None:
            return None
        return self.short_burn > self.factor and self.long_burn > self.factor


@dataclass(frozen=True)
class LatencySummary:
    p50_ms_median: float | None
    p99_ms_max: float | None
    threshold_ms: float | None


@dataclass(frozen=True)
class SLOSummary:
    """The numbers a report states about one SLO, judged at the timeline's last step."""

    sloth_id: str
    service: str
    slo: str
    description: str
    objective: float
    error_budget: float
    period_days: float
    sli: float | None  # over the period window at the last step; None when that step has no value
    budget_remaining: float | None
    objective_met: bool | None
    burn_rates: dict[str, float | None]  # window -> burn rate at the last step
    max_burn_rates: dict[str, float | None]  # window -> highest burn rate over the report
    alerts: tuple[AlertSummary, ...]
    firing: tuple[AlertSummary, ...]  # still firing at the last step
    thresholds: tuple[ThresholdStatus, ...]
    latency: LatencySummary | None
    start: float
    end: float
    steps: int

    def to_json(self) -> dict[str, Any]:
        """The report.json entry, keys in the documented order; NaN and infinities are already None."""
        return {
            "sloth_id": self.sloth_id,
            "service": self.service,
            "slo": self.slo,
            "objective": self.objective,
            "error_budget": self.error_budget,
            "period_days": self.period_days,
            "sli": self.sli,
            "budget_remaining": self.budget_remaining,
            "objective_met": self.objective_met,
            "burn_rates": dict(self.burn_rates),
            "max_burn_rates": dict(self.max_burn_rates),
            "alerts": [
                {
                    "alert": a.alert,
                    "severity": a.severity,
                    "start": a.start,
                    "end": a.end,
                    "duration_seconds": a.duration_seconds,
                }
                for a in self.alerts
            ],
            "latency": None
            if self.latency is None
            else {
                "p50_ms_median": self.latency.p50_ms_median,
                "p99_ms_max": self.latency.p99_ms_max,
                "threshold_ms": self.latency.threshold_ms,
            },
            "start": self.start,
            "end": self.end,
            "steps": self.steps,
        }


EXHAUSTION_SUFFIX = "BudgetExhaustion"  # the ticket slo/rules.py adds beside each SLO's burn-rate alert


def summarize(timeline: SLOTimeline) -> SLOSummary:
    """A timeline's report numbers, each at the last step (what the SLO stands at when the report ends).

    The objective is met when the period's error ratio is within the error budget, compared on the
    error ratio rather than on 1 - ratio so that a ratio exactly at the budget counts as met.
    """
    last = timeline.timestamps.shape[0] - 1
    end = float(timeline.timestamps[last])
    period_ratio = _finite(timeline.error_ratio[timeline.period_window][last])
    alerts = tuple(
        AlertSummary(a.alert, a.severity, a.start, a.end, (a.end if a.end is not None else end) - a.start)
        for a in sorted(timeline.alerts, key=lambda a: (a.start, a.alert, a.severity))
    )
    firing = {(a.alert, a.severity, a.start) for a in timeline.firing_at(last)}
    # The burn-rate alerts' severities firing now (not the budget-exhaustion ticket, which has no window pair).
    burn_alerts_firing = {a.severity for a in timeline.firing_at(last) if not a.alert.endswith(EXHAUSTION_SUFFIX)}
    return SLOSummary(
        sloth_id=timeline.sloth_id,
        service=timeline.service,
        slo=timeline.slo,
        description=timeline.description,
        objective=timeline.objective,
        error_budget=timeline.error_budget,
        period_days=timeline.period_days,
        sli=None if period_ratio is None else 1.0 - period_ratio,
        budget_remaining=_finite(timeline.budget_remaining[last]),
        objective_met=None if period_ratio is None else period_ratio <= timeline.error_budget,
        burn_rates={w: _finite(timeline.burn_rate(w)[last]) for w in timeline.error_ratio},
        max_burn_rates={w: _nan_max(timeline.burn_rate(w)) for w in timeline.error_ratio},
        alerts=alerts,
        firing=tuple(a for a in alerts if (a.alert, a.severity, a.start) in firing),
        thresholds=tuple(
            ThresholdStatus(
                t.severity,
                t.short,
                t.long,
                t.factor,
                _finite(timeline.burn_rate(t.short)[last]) if t.short in timeline.error_ratio else None,
                _finite(timeline.burn_rate(t.long)[last]) if t.long in timeline.error_ratio else None,
                fires=t.severity in burn_alerts_firing,
                long_window_full=_history_seconds(timeline) >= parse_duration(t.long),
            )
            for t in timeline.thresholds
        ),
        latency=_latency(timeline),
        start=float(timeline.timestamps[0]),
        end=end,
        steps=int(timeline.timestamps.shape[0]),
    )


def write_report(
    timelines: Sequence[SLOTimeline],
    out_dir: Path,
    *,
    title: str,
    source: str,
    generated_at: datetime | None = None,
) -> ReportFiles:
    """Write report.html, report.md (with plots/*.png) and report.json for `timelines` into `out_dir`.

    Each plot is drawn once and saved twice (SVG for the HTML, PNG for the Markdown), which is
    most of the cost; series are thinned to a few thousand points first, so 8 SLOs over 30 days
    at one-minute steps take seconds, not minutes.
    """
    _ensure_reportable(timelines)
    moment = _utc(generated_at or datetime.now(UTC))
    out_dir.mkdir(parents=True, exist_ok=True)
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(exist_ok=True)
    slugs = unique_slugs([t.sloth_id for t in timelines])
    anchors = ["slo-" + slug for slug in unique_slugs([t.sloth_id for t in timelines], lower=True)]
    sections = []
    for index, (timeline, slug, anchor) in enumerate(zip(timelines, slugs, anchors, strict=True)):
        plots = [render_plot(timeline, kind, id_prefix=f"s{index}-{kind}-") for kind in PLOT_KINDS]
        png_paths: dict[str, str] = {}
        for plot in plots:
            if plot.png is not None:
                name = f"{slug}-{plot.kind}.png"
                (plots_dir / name).write_bytes(plot.png)
                png_paths[plot.kind] = f"plots/{name}"
        sections.append(_Section(summarize(timeline), anchor, plots, png_paths))
    files = ReportFiles(out_dir / "report.html", out_dir / "report.md", out_dir / "report.json")
    page = report_document(sections, title=title, source=source, generated_at=moment)
    files.html.write_text(render_html(page), encoding="utf-8")
    files.markdown.write_text(render_markdown(page), encoding="utf-8")
    document = {
        "title": title,
        "source": source,
        "generated_at": _iso(moment),
        "slos": [s.summary.to_json() for s in sections],
    }
    files.json.write_text(json.dumps(document, indent=2, allow_nan=False, ensure_ascii=False) + "\n", encoding="utf-8")
    return files


# --- summary helpers ---------------------------------------------------------------------------


def _ensure_reportable(timelines: Sequence[SLOTimeline]) -> None:
    """Refuse, before any file is written, a timeline whose arrays cannot be plotted against its steps."""
    for timeline in timelines:
        steps = timeline.timestamps.shape[0]
        if steps == 0:
            raise SourceError(f"SLO {timeline.sloth_id!r} has no steps to report on")
        if not timeline.error_ratio:
            raise SourceError(f"SLO {timeline.sloth_id!r} has no error-ratio windows")
        series: dict[str, Series | None] = {f"error ratio {w}": v for w, v in timeline.error_ratio.items()}
        series["budget remaining"] = timeline.budget_remaining
        series.update({"p50 latency": timeline.latency_p50_ms, "p99 latency": timeline.latency_p99_ms})
        for name, values in series.items():
            if values is not None and values.shape != (steps,):
                raise SourceError(
                    f"SLO {timeline.sloth_id!r}: {name} has {values.shape[0]} values for {steps} timestamps"
                )


def _finite(value: float | np.floating[Any]) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _nan_max(values: Series) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else None


def _latency(timeline: SLOTimeline) -> LatencySummary | None:
    p50, p99 = timeline.latency_p50_ms, timeline.latency_p99_ms
    if p50 is None and p99 is None:
        return None
    median = None
    if p50 is not None:
        finite = p50[np.isfinite(p50)]
        median = float(np.median(finite)) if finite.size else None
    return LatencySummary(median, None if p99 is None else _nan_max(p99), timeline.latency_threshold_ms)


def _utc(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC, the report's only time zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the document: what the report says, for both renderers --------------------------------------


def _fmt_percent(ratio: float | None, digits: int = 4) -> str:
    return "—" if ratio is None else f"{ratio * 100:.{digits}f}%"


def _fmt_objective(objective: float) -> str:
    return f"{objective * 100:.10g}%"


def _fmt_budget(remaining: float | None) -> str:
    if remaining is None:
        return "—"
    text = f"{remaining * 100:.1f}%"
    return f"{text} (overspent)" if remaining < 0 else text


def _fmt_period(days: float) -> str:
    return f"{days:g} days"


def _status(summary: SLOSummary) -> Pill:
    """The objective verdict as a pill (its tone is the page's colour for it)."""
    if summary.objective_met is None:
        return Pill("no data", "unknown")
    return Pill("objective met", "met") if summary.objective_met else Pill("objective breached", "breached")


def _alerts_line(summary: SLOSummary) -> str:
    if not summary.alerts:
        return "none"
    counts: dict[str, int] = {}
    for alert in summary.alerts:
        counts[alert.severity] = counts.get(alert.severity, 0) + 1
    return ", ".join(f"{n} {severity}" for severity, n in sorted(counts.items(), key=lambda kv: (kv[0] != "page", kv)))


def _condition_words(threshold: ThresholdStatus) -> str:
    """What the condition says at the last step, never claiming an alert fires when it does not."""
    holds = threshold.holds
    if holds is None:
        return "no value"
    if not holds:
        return "clear"
    if threshold.fires is not False:
        return "holds (fires)"
    if not threshold.long_window_full:
        return f"above the factor, not judged: less than {threshold.long} of history (does not fire)"
    return "above the factor, held back by the traffic guard (does not fire)"


def _history_seconds(timeline: SLOTimeline) -> float:
    """How much history the last step has: the span of the timeline plus its first step."""
    times = timeline.timestamps
    if times.shape[0] < 2:
        return 0.0
    return float(times[-1] - times[0] + (times[1] - times[0]))


def _no_alert_text(summary: SLOSummary) -> str:
    return f"No alert fired between {format_time(summary.start)} and {format_time(summary.end)}."


@dataclass(frozen=True)
class _Section:
    summary: SLOSummary
    anchor: str
    plots: list[RenderedPlot]
    png_paths: dict[str, str]  # plot kind -> path of its PNG, relative to the report


def _time_range(sections: Sequence[_Section]) -> str:
    if not sections:
        return "—"
    start = min(s.summary.start for s in sections)
    end = max(s.summary.end for s in sections)
    return f"{format_time(start)} → {format_time(end)} ({format_duration_short(end - start)})"


def _period_label(sections: Sequence[_Section]) -> str:
    periods = sorted({_fmt_period(s.summary.period_days) for s in sections})
    return "period" if len(periods) != 1 else periods[0]


def _budget(remaining: float | None) -> tuple[Inline, ...]:
    """The budget left, with a small gauge beside it: full and green when untouched, red once overspent."""
    text = Text(_fmt_budget(remaining))
    if remaining is None:
        return (text,)
    tone: Literal["good", "warn", "bad"] = "good" if remaining >= 0.5 else "warn" if remaining >= 0 else "bad"
    return (Gauge(remaining, tone), text)


def _burn(rate: float | None) -> Cell:
    """Burn above 1x spends budget faster than the period allows; mark it so the eye finds it."""
    tone = None if rate is None or rate <= 1 else "hot" if rate >= 6 else "warm"
    return Cell(format_burn(rate), tone)


def report_document(sections: Sequence[_Section], *, title: str, source: str, generated_at: datetime) -> Document:
    """The report as a document: a contents table, then one section per SLO."""
    sli = f"SLI ({_period_label(sections)})"
    contents = Table(
        ["SLO", "Objective", sli, "Budget remaining", "Burn now (1h)", "Alerts fired", "Status"],
        [_contents_row(section) for section in sections],
        empty="No SLO in this report.",
        numeric=frozenset({1, 2, 3, 4}),
        css="overview",
    )
    return Document(
        title=title,
        generator="nova slo report",
        facts=[
            ("Source", source),
            ("Generated", Time(generated_at.timestamp())),
            ("Time range", _time_range(sections)),
            ("SLOs", str(len(sections))),
        ],
        sections=[Section("Contents", [contents], anchor="contents"), *map(_slo_section, sections)],
        footer="Times are UTC. SLI, budget and burn rates are the values at each SLO's last step; “—” means no "
        "value (no traffic, or not enough history for the window).",
    )


def _contents_row(section: _Section) -> list[Content]:
    s = section.summary
    firing: tuple[Inline, ...] = (Text(" "), Pill("firing", "firing")) if s.firing else ()
    return [
        Link(f"#{section.anchor}", s.sloth_id),
        _fmt_objective(s.objective),
        _fmt_percent(s.sli),
        _budget(s.budget_remaining),
        format_burn(s.burn_rates.get("1h")),
        (Text(_alerts_line(s)), *firing),
        _status(s),
    ]


def _slo_section(section: _Section) -> Section:
    s = section.summary
    badges = [_status(s)] + ([Pill("alert firing now", "firing")] if s.firing else [])
    facts = Facts(
        [
            ("SLO id", Text(s.sloth_id, "code")),
            ("Objective", _fmt_objective(s.objective)),
            (f"SLI over {_fmt_period(s.period_days)}", _fmt_percent(s.sli)),
            ("Error budget", _fmt_objective(s.error_budget)),
            ("Budget remaining", _budget(s.budget_remaining)),
            ("Objective met", _status(s)),
            ("From", Time(s.start)),
            ("To", Time(s.end)),
            ("Steps", f"{s.steps:,}"),
        ]
    )
    windows = list(s.burn_rates)
    burn = Table(
        ["", *windows],
        [
            ["now", *(_burn(s.burn_rates[w]) for w in windows)],
            ["max", *(_burn(s.max_burn_rates[w]) for w in windows)],
        ],
        numeric=frozenset(range(1, len(windows) + 1)),
        css="burn",
        row_headers=True,
    )
    alerts = Table(
        ["Alert", "Severity", "Start", "End", "Duration"],
        [
            [
                a.alert,
                Pill(a.severity, f"sev-{a.severity}"),
                Time(a.start),
                Time(a.end, "still firing"),
                format_duration_short(a.duration_seconds) + ("+" if a.end is None else ""),
            ]
            for a in s.alerts
        ],
        empty=_no_alert_text(s),
        numeric=frozenset({4}),
        css="alerts",
    )
    figures = [
        plot.to_figure(
            section.png_paths.get(plot.kind),
            alt=f"{plot.kind} plot of {s.sloth_id}",
            wide=plot.kind not in _HALF_WIDTH_PLOTS,
            data=[("slo", s.sloth_id)],
        )
        for plot in section.plots
    ]
    return Section(
        title=(Text(s.service, "muted"), Text(f" / {s.slo}")),
        badges=badges,
        anchor=section.anchor,
        css="slo",
        blocks=[
            *([Paragraph(s.description, "description")] if s.description else []),
            Section("Summary", [facts]),
            Section("Burn rates", [burn, *_conditions(s)]),
            Section("Alerts fired", [alerts], layout="wide-card"),
            Section("Plots", [Figures(figures)], layout="plain"),
        ],
    )


def _conditions(s: SLOSummary) -> list[Section]:
    """The alert conditions as they stand at the last step: how far each window pair is from firing."""
    if not s.thresholds:
        return []
    table = Table(
        ["Severity", "Windows", "Factor", "Long burn", "Short burn", "Condition"],
        [
            [
                Pill(t.severity, f"sev-{t.severity}"),
                f"{t.long} & {t.short}",
                f"{t.factor:g}x",
                _burn(t.long_burn),
                _burn(t.short_burn),
                _condition_words(t),
            ]
            for t in s.thresholds
        ],
        numeric=frozenset({2, 3, 4}),
        css="conditions",
    )
    return [Section("Alert conditions at the last step", [table], layout="plain")]


_HALF_WIDTH_PLOTS = ("sli", "budget")

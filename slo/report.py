"""SLO reports: what each SLO did over a stretch of time, as HTML, Markdown and JSON.

Owns the report's summary of a timeline (`summarize`) and the three files `write_report` writes:
`report.html` (one self-contained page: inline CSS and inline SVG plots, nothing fetched, so it
can be attached to a postmortem or opened offline), `report.md` with PNG plots under `plots/`
(for wikis and pull requests), and `report.json` (for tools; NaN becomes null, keys in a fixed
order). The plots themselves live in `slo.plots`.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from slo.durations import format_duration, parse_duration
from slo.errors import SourceError
from slo.plots import PLOT_KINDS, RenderedPlot, format_time, render_plot
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
    slugs = _unique_slugs([t.sloth_id for t in timelines])
    sections = []
    for index, (timeline, slug) in enumerate(zip(timelines, slugs, strict=True)):
        plots = [render_plot(timeline, kind, id_prefix=f"s{index}-{kind}-") for kind in PLOT_KINDS]
        png_names: dict[str, str] = {}
        for plot in plots:
            if plot.png is not None:
                name = f"{slug}-{plot.kind}.png"
                (plots_dir / name).write_bytes(plot.png)
                png_names[plot.kind] = name
        sections.append(_Section(summarize(timeline), slug, plots, png_names))
    files = ReportFiles(out_dir / "report.html", out_dir / "report.md", out_dir / "report.json")
    header = _Header(title, source, moment)
    files.html.write_text(_html(header, sections), encoding="utf-8")
    files.markdown.write_text(_markdown(header, sections), encoding="utf-8")
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


def _unique_slugs(ids: Sequence[str]) -> list[str]:
    """File- and anchor-safe names: a sloth_id is `<service>-<slo>`, but nothing stops it holding `/` or `..`."""
    seen: set[str] = set()
    slugs = []
    for sloth_id in ids:
        base = re.sub(r"[^A-Za-z0-9._-]+", "_", sloth_id).strip("._") or "slo"
        slug, n = base, 2
        while slug in seen:
            slug, n = f"{base}-{n}", n + 1
        seen.add(slug)
        slugs.append(slug)
    return slugs


# --- text formatting shared by HTML and Markdown ----------------------------------------------


def _fmt_percent(ratio: float | None, digits: int = 4) -> str:
    return "—" if ratio is None else f"{ratio * 100:.{digits}f}%"


def _fmt_objective(objective: float) -> str:
    return f"{objective * 100:.10g}%"


def _fmt_budget(remaining: float | None) -> str:
    if remaining is None:
        return "—"
    text = f"{remaining * 100:.1f}%"
    return f"{text} (overspent)" if remaining < 0 else text


def _fmt_burn(rate: float | None) -> str:
    if rate is None:
        return "—"
    return f"{rate:.2f}x" if rate < 100 else f"{rate:.0f}x"


def _fmt_duration(seconds: float) -> str:
    whole = round(seconds)
    return "0s" if whole <= 0 else format_duration(whole)


def _fmt_period(days: float) -> str:
    return f"{days:g} days"


def _status(summary: SLOSummary) -> tuple[str, str]:
    """(css class, words) for the objective verdict."""
    if summary.objective_met is None:
        return "unknown", "no data"
    return ("met", "objective met") if summary.objective_met else ("breached", "objective breached")


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
class _Header:
    title: str
    source: str
    generated_at: datetime


@dataclass(frozen=True)
class _Section:
    summary: SLOSummary
    slug: str
    plots: list[RenderedPlot]
    png_names: dict[str, str]


def _time_range(sections: Sequence[_Section]) -> str:
    if not sections:
        return "—"
    start = min(s.summary.start for s in sections)
    end = max(s.summary.end for s in sections)
    return f"{format_time(start)} → {format_time(end)} ({_fmt_duration(end - start)})"


# --- HTML -----------------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _time_tag(seconds: float | None, empty: str = "—") -> str:
    if seconds is None:
        return _e(empty)
    iso = _iso(datetime.fromtimestamp(seconds, UTC))
    return f'<time datetime="{_e(iso)}">{_e(format_time(seconds))}</time>'


def _budget_bar(remaining: float | None) -> str:
    """A small gauge beside the number: full and green when untouched, red once overspent."""
    if remaining is None:
        return ""
    share = max(0.0, min(1.0, remaining))
    tone = "good" if remaining >= 0.5 else "warn" if remaining >= 0 else "bad"
    return f'<span class="gauge {tone}" aria-hidden="true"><span style="width:{share * 100:.1f}%"></span></span>'


def _html(header: _Header, sections: Sequence[_Section]) -> str:
    toc_rows = "".join(_html_toc_row(s) for s in sections) or '<tr><td colspan="7">No SLO in this report.</td></tr>'
    body = "".join(_html_section(s) for s in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="nova slo report">
<title>{_e(header.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header class="page">
<h1>{_e(header.title)}</h1>
<dl class="meta">
<div><dt>Source</dt><dd>{_e(header.source)}</dd></div>
<div><dt>Generated</dt><dd>{_time_tag(header.generated_at.timestamp())}</dd></div>
<div><dt>Time range</dt><dd>{_e(_time_range(sections))}</dd></div>
<div><dt>SLOs</dt><dd>{len(sections)}</dd></div>
</dl>
</header>
<main>
<nav class="toc" aria-labelledby="toc-title">
<h2 id="toc-title">Contents</h2>
<table class="overview">
<thead><tr><th>SLO</th><th>Objective</th><th>SLI ({_e(_period_label(sections))})</th><th>Budget remaining</th>\
<th>Burn now (1h)</th><th>Alerts fired</th><th>Status</th></tr></thead>
<tbody>{toc_rows}</tbody>
</table>
</nav>
{body}
</main>
<footer>Times are UTC. SLI, budget and burn rates are the values at each SLO's last step; “—” means no value \
(no traffic, or not enough history for the window).</footer>
</body>
</html>
"""


def _period_label(sections: Sequence[_Section]) -> str:
    periods = sorted({_fmt_period(s.summary.period_days) for s in sections})
    return "period" if len(periods) != 1 else periods[0]


def _html_toc_row(section: _Section) -> str:
    s = section.summary
    css, words = _status(s)
    burn_1h = s.burn_rates.get("1h")
    firing = ' <span class="pill firing">firing</span>' if s.firing else ""
    return (
        f'<tr><td><a href="#slo-{_e(section.slug)}">{_e(s.sloth_id)}</a></td>'
        f'<td class="num">{_e(_fmt_objective(s.objective))}</td>'
        f'<td class="num">{_e(_fmt_percent(s.sli))}</td>'
        f'<td class="num">{_budget_bar(s.budget_remaining)}{_e(_fmt_budget(s.budget_remaining))}</td>'
        f'<td class="num">{_e(_fmt_burn(burn_1h))}</td>'
        f"<td>{_e(_alerts_line(s))}{firing}</td>"
        f'<td><span class="pill {css}">{_e(words)}</span></td></tr>'
    )


def _html_section(section: _Section) -> str:
    s = section.summary
    css, words = _status(s)
    description = f'<p class="description">{_e(s.description)}</p>' if s.description else ""
    firing = '<span class="pill firing">alert firing now</span>' if s.firing else ""
    facts = [
        ("SLO id", f"<code>{_e(s.sloth_id)}</code>"),
        ("Objective", _e(_fmt_objective(s.objective))),
        (f"SLI over {_fmt_period(s.period_days)}", _e(_fmt_percent(s.sli))),
        ("Error budget", _e(_fmt_objective(s.error_budget))),
        ("Budget remaining", _budget_bar(s.budget_remaining) + _e(_fmt_budget(s.budget_remaining))),
        ("Objective met", f'<span class="pill {css}">{_e(words)}</span>'),
        ("From", _time_tag(s.start)),
        ("To", _time_tag(s.end)),
        ("Steps", _e(f"{s.steps:,}")),
    ]
    facts_rows = "".join(f"<tr><th scope='row'>{_e(k)}</th><td>{v}</td></tr>" for k, v in facts)
    windows = list(s.burn_rates)
    burn_head = "".join(f"<th scope='col'>{_e(w)}</th>" for w in windows)
    burn_now = "".join(f"<td class='num{_hot(s.burn_rates[w])}'>{_e(_fmt_burn(s.burn_rates[w]))}</td>" for w in windows)
    burn_max = "".join(
        f"<td class='num{_hot(s.max_burn_rates[w])}'>{_e(_fmt_burn(s.max_burn_rates[w]))}</td>" for w in windows
    )
    if s.alerts:
        alert_rows = "".join(
            f"<tr><td>{_e(a.alert)}</td><td><span class='pill sev-{_e(a.severity)}'>{_e(a.severity)}</span></td>"
            f"<td>{_time_tag(a.start)}</td><td>{_time_tag(a.end, 'still firing')}</td>"
            f"<td class='num'>{_e(_fmt_duration(a.duration_seconds))}{'+' if a.end is None else ''}</td></tr>"
            for a in s.alerts
        )
        alerts = (
            "<table class='alerts'><thead><tr><th>Alert</th><th>Severity</th><th>Start</th><th>End</th>"
            f"<th>Duration</th></tr></thead><tbody>{alert_rows}</tbody></table>"
        )
    else:
        alerts = f"<p class='none'>{_e(_no_alert_text(s))}</p>"
    conditions = _html_conditions(s)
    figures = "".join(_html_figure(s.sloth_id, plot) for plot in section.plots)
    return f"""<section class="slo" id="slo-{_e(section.slug)}">
<h2><span class="service">{_e(s.service)}</span> / {_e(s.slo)} <span class="pill {css}">{_e(words)}</span>{firing}</h2>
{description}
<div class="cards">
<div class="card"><h3>Summary</h3><table class="facts">{facts_rows}</table></div>
<div class="card">
<h3>Burn rates</h3>
<table class="burn"><thead><tr><th></th>{burn_head}</tr></thead><tbody>
<tr><th scope="row">now</th>{burn_now}</tr><tr><th scope="row">max</th>{burn_max}</tr></tbody></table>
{conditions}
</div>
<div class="card full"><h3>Alerts fired</h3>{alerts}</div>
</div>
<div class="plots">{figures}</div>
</section>
"""


def _html_conditions(s: SLOSummary) -> str:
    """The alert conditions as they stand at the last step: how far each window pair is from firing."""
    if not s.thresholds:
        return ""
    rows = "".join(
        f"<tr><td><span class='pill sev-{_e(t.severity)}'>{_e(t.severity)}</span></td>"
        f"<td>{_e(t.long)} &amp; {_e(t.short)}</td><td class='num'>{_e(f'{t.factor:g}x')}</td>"
        f"<td class='num{_hot(t.long_burn)}'>{_e(_fmt_burn(t.long_burn))}</td>"
        f"<td class='num{_hot(t.short_burn)}'>{_e(_fmt_burn(t.short_burn))}</td>"
        f"<td>{_e(_condition_words(t))}</td></tr>"
        for t in s.thresholds
    )
    return (
        "<h3>Alert conditions at the last step</h3><table class='conditions'><thead><tr><th>Severity</th>"
        "<th>Windows</th><th class='num'>Factor</th><th class='num'>Long burn</th><th class='num'>Short burn</th>"
        f"<th>Condition</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _hot(rate: float | None) -> str:
    """Burn above 1x spends budget faster than the period allows; mark it so the eye finds it."""
    if rate is None or rate <= 1:
        return ""
    return " hot" if rate >= 6 else " warm"


_HALF_WIDTH_PLOTS = ("sli", "budget")


def _html_figure(sloth_id: str, plot: RenderedPlot) -> str:
    if plot.svg is None:
        content = f'<p class="plot-empty">{_e(plot.empty_text or "")}</p>'
        state = " empty"
    else:
        content = plot.svg.replace("<svg ", f'<svg role="img" aria-label="{_e(plot.caption)}" ', 1)
        state = ""
    width = "" if plot.kind in _HALF_WIDTH_PLOTS else " full"
    return (
        f'<figure class="plot{width}{state}" data-plot="{_e(plot.kind)}" data-slo="{_e(sloth_id)}">'
        f"{content}<figcaption>{_e(plot.caption)}</figcaption></figure>"
    )


_CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--soft:#f6f8fa;--ok:#1a7f37;--okbg:#dafbe1;
--bad:#cf222e;--badbg:#ffebe9;--warn:#9a6700;--warnbg:#fff8c5;--accent:#0969da}
*{box-sizing:border-box}
body{margin:0;color:var(--fg);background:#eef1f4;
font:14px/1.45 system-ui,-apple-system,"Segoe UI","DejaVu Sans","Liberation Sans",sans-serif}
header.page{background:#0d1117;color:#f0f6fc;padding:22px 32px 18px}
header.page h1{margin:0 0 10px;font-size:24px;font-weight:600}
dl.meta{display:flex;flex-wrap:wrap;gap:6px 32px;margin:0}
dl.meta div{display:flex;gap:8px}
dl.meta dt{color:#9198a1}
dl.meta dd{margin:0;font-weight:500;word-break:break-all}
main{max-width:1280px;margin:0 auto;padding:20px 24px 32px}
h2{font-size:19px;margin:0 0 6px;font-weight:600}
h3{font-size:12px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);margin:0 0 8px}
.card table+h3{margin-top:18px}
nav.toc,section.slo{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 20px;margin:0 0 20px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 10px;border-bottom:1px solid var(--line);vertical-align:middle}
thead th{font-size:12px;color:var(--muted);font-weight:600;background:var(--soft)}
td.num,table.burn td{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.overview a{color:var(--accent);font-weight:600;text-decoration:none;word-break:break-all}
table.overview a:hover{text-decoration:underline}
table.facts th{width:1%;white-space:nowrap;color:var(--muted);font-weight:500;padding-right:24px}
table.facts td{font-variant-numeric:tabular-nums}
table.burn th{text-align:right}
table.burn tbody th{text-align:left;color:var(--muted);font-weight:500}
table.burn td.warm{background:var(--warnbg);color:var(--warn);font-weight:600}
table.burn td.hot{background:var(--badbg);color:var(--bad);font-weight:600}
table.alerts td{font-variant-numeric:tabular-nums}
table.alerts time{white-space:nowrap}
code{font:12.5px ui-monospace,"DejaVu Sans Mono",monospace;background:var(--soft);padding:1px 5px;border-radius:4px;
word-break:break-all}
.service{color:var(--muted);font-weight:500}
.description{color:var(--muted);margin:0 0 12px;max-width:80ch}
.cards{display:grid;grid-template-columns:minmax(300px,1fr) 2fr;gap:16px;margin:12px 0 16px}
.card.full{grid-column:1/-1}
table.conditions th.num{text-align:right}
table.facts td{white-space:nowrap}
.card{border:1px solid var(--line);border-radius:6px;padding:12px 14px;overflow-x:auto}
.pill{display:inline-block;font-size:12px;font-weight:600;padding:1px 9px;border-radius:999px;
vertical-align:middle;margin-left:6px;white-space:nowrap;border:1px solid transparent}
td>.pill:first-child{margin-left:0}
.pill.met{background:var(--okbg);color:var(--ok);border-color:#aceebb}
.pill.breached,.pill.firing{background:var(--badbg);color:var(--bad);border-color:#ffcecb}
.pill.unknown{background:var(--soft);color:var(--muted);border-color:var(--line)}
.pill.sev-page{background:var(--badbg);color:var(--bad)}
.pill.sev-ticket{background:#fff1e5;color:#bc4c00}
.gauge{display:inline-block;width:56px;height:8px;border-radius:4px;background:var(--soft);
border:1px solid var(--line);margin-right:8px;vertical-align:middle;overflow:hidden}
.gauge span{display:block;height:100%}
.gauge.good span{background:#4ac26b}.gauge.warn span{background:#d4a72c}.gauge.bad span{background:var(--bad)}
.gauge.bad{background:var(--badbg)}
p.none{color:var(--muted);margin:4px 0}
.plots{display:grid;grid-template-columns:1fr 1fr;gap:14px}
figure.plot{margin:0;border:1px solid var(--line);border-radius:6px;padding:8px 8px 6px;background:#fff;min-width:0}
figure.plot.full{grid-column:1/-1}
figure.plot svg{display:block;width:100%;height:auto}
figure.plot.empty{display:flex;flex-direction:column;justify-content:center;min-height:120px;background:var(--soft)}
.plot-empty{margin:0;padding:16px;text-align:center;color:var(--muted);font-size:15px}
figcaption{font-size:12px;color:var(--muted);padding:4px 4px 0}
footer{max-width:1280px;margin:0 auto;padding:0 24px 32px;color:var(--muted);font-size:12px}
@media (max-width:900px){.cards,.plots{grid-template-columns:1fr}}
@media print{body{background:#fff}section.slo{break-inside:avoid-page}}
"""


# --- Markdown -------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # with [ ] quoted, ( ) ! can no longer form links
_MD_LINE_START = re.compile(r"^([#>+-]|\d+\.)")


def _md(text: object, *, starts_line: bool = False) -> str:
    """Markdown-safe text: HTML-escaped (Markdown passes raw HTML through) and with syntax characters quoted.

    `starts_line` also quotes what would make a heading, quote or list item at the start of a line.
    """
    quoted = _MD_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=True)).replace("\n", " ")
    return _MD_LINE_START.sub(r"\\\1", quoted) if starts_line else quoted


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _md_anchor(slug: str) -> str:
    return "slo-" + slug.lower()


def _markdown(header: _Header, sections: Sequence[_Section]) -> str:
    out = [
        f"# {_md(header.title)}",
        "",
        f"- **Source:** {_md(header.source)}",
        f"- **Generated:** {_md(format_time(header.generated_at.timestamp()))}",
        f"- **Time range:** {_md(_time_range(sections))}",
        f"- **SLOs:** {len(sections)}",
        "",
        "## Contents",
        "",
    ]
    if sections:
        out.append(
            _md_table(
                ["SLO", "Objective", "SLI", "Budget remaining", "Burn now (1h)", "Alerts fired", "Status"],
                [
                    [
                        f"[{_md(s.summary.sloth_id)}](#{_md_anchor(s.slug)})",
                        _md(_fmt_objective(s.summary.objective)),
                        _md(_fmt_percent(s.summary.sli)),
                        _md(_fmt_budget(s.summary.budget_remaining)),
                        _md(_fmt_burn(s.summary.burn_rates.get("1h"))),
                        _md(_alerts_line(s.summary)) + (" (firing)" if s.summary.firing else ""),
                        _md(_status(s.summary)[1]),
                    ]
                    for s in sections
                ],
            )
        )
    else:
        out.append("No SLO in this report.")
    for section in sections:
        out += ["", _markdown_section(section)]
    out += ["", "_Times are UTC. Values are at each SLO's last step; “—” means no value._", ""]
    return "\n".join(out)


def _markdown_section(section: _Section) -> str:
    s = section.summary
    out = [f'<a id="{_md_anchor(section.slug)}"></a>', "", f"## {_md(s.service)} / {_md(s.slo)}", ""]
    if s.description:
        out += [_md(s.description, starts_line=True), ""]
    out.append(
        _md_table(
            ["", ""],
            [
                ["SLO id", _md(s.sloth_id)],
                ["Objective", _md(_fmt_objective(s.objective))],
                [f"SLI over {_md(_fmt_period(s.period_days))}", _md(_fmt_percent(s.sli))],
                ["Budget remaining", _md(_fmt_budget(s.budget_remaining))],
                ["Objective met", _md(_status(s)[1])],
                ["From", _md(format_time(s.start))],
                ["To", _md(format_time(s.end))],
                ["Steps", f"{s.steps:,}"],
            ],
        )
    )
    windows = list(s.burn_rates)
    out += [
        "",
        "### Burn rates",
        "",
        _md_table(
            ["", *(_md(w) for w in windows)],
            [
                ["now", *(_md(_fmt_burn(s.burn_rates[w])) for w in windows)],
                ["max", *(_md(_fmt_burn(s.max_burn_rates[w])) for w in windows)],
            ],
        ),
    ]
    if s.thresholds:
        out += [
            "",
            "### Alert conditions at the last step",
            "",
            _md_table(
                ["Severity", "Windows", "Factor", "Long burn", "Short burn", "Condition"],
                [
                    [
                        _md(t.severity),
                        f"{_md(t.long)} & {_md(t.short)}",
                        _md(f"{t.factor:g}x"),
                        _md(_fmt_burn(t.long_burn)),
                        _md(_fmt_burn(t.short_burn)),
                        _md(_condition_words(t)),
                    ]
                    for t in s.thresholds
                ],
            ),
        ]
    out += ["", "### Alerts fired", ""]
    if s.alerts:
        out.append(
            _md_table(
                ["Alert", "Severity", "Start", "End", "Duration"],
                [
                    [
                        _md(a.alert),
                        _md(a.severity),
                        _md(format_time(a.start)),
                        _md("still firing" if a.end is None else format_time(a.end)),
                        _md(_fmt_duration(a.duration_seconds) + ("+" if a.end is None else "")),
                    ]
                    for a in s.alerts
                ],
            )
        )
    else:
        out.append(_md(_no_alert_text(s), starts_line=True))
    out += ["", "### Plots", ""]
    for plot in section.plots:
        name = section.png_names.get(plot.kind)
        if name is None:
            out += [f"**{_md(plot.kind)}:** _{_md(plot.empty_text or '')}_", ""]
        else:
            out += [f"![{_md(plot.kind)} plot of {_md(s.sloth_id)}](plots/{name})", "", f"_{_md(plot.caption)}_", ""]
    return "\n".join(out).rstrip()

"""One page per alert group: what is burning and how fast, the budget left and when it runs out,
the spans to open, the runbook and the first steps; as Markdown for people and JSON for machines."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.pager.budget import BudgetStatus, safe_budget_status
from alerts.pager.exemplars import ExemplarRequest, slowest_exemplars
from alerts.pager.runbook import RunbookSteps, runbook_steps
from alerts.pager.spans import SpanReport, span_report
from alerts.pager.subject import Subject, subject_of
from alerts.pager.webhook import Alert, Notification
from slo.errors import SourceError
from slo.prometheus_api import PrometheusAPI

SPAN_LOOKBACK = timedelta(minutes=15)
# Batches reach the trace file a few seconds after their spans end; the spans of the
# minute the alert fired are part of what it is about.
SPAN_GRACE = timedelta(minutes=1)
MAX_DETAILED_ALERTS = 5
# What the Sloth multiwindow rules guarantee when they fire (factors for a 30-day period).
_RULE_BURN = {
    "page": ((14.4, "1h and 5m"), (6.0, "6h and 30m")),
    "ticket": ((3.0, "1d and 2h"), (1.0, "3d and 6h")),
}


@dataclass(frozen=True)
class PageSources:
    """Where the pager looks for context; every source is optional."""

    prometheus: PrometheusAPI | None = None
    traces_dir: Path | None = None
    runbook_root: Path = Path()


@dataclass(frozen=True)
class AlertSection:
    alert: Alert
    subject: Subject
    budget: BudgetStatus | None
    budget_problem: str
    spans: SpanReport | None
    runbook: RunbookSteps
    exemplars: tuple[ExemplarRequest, ...] = ()
    exemplar_problem: str = ""


@dataclass(frozen=True)
class Page:
    event: str  # "trigger" or "resolve"
    dedup_key: str
    group_key: str
    severity: str  # "page" or "ticket": the most urgent alert's
    headline: str
    summary: str
    sections: tuple[AlertSection, ...]
    other_alerts: tuple[str, ...]  # firing alerts beyond the detailed ones, by name
    truncated_alerts: int
    external_url: str
    created_at: datetime
    notification: Notification = field(repr=False)


def dedup_key(group_key: str) -> str:
    """Stable per alert group, the same on every re-send and across restarts."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def build_page(notification: Notification, sources: PageSources, now: datetime | None = None) -> Page:
    now = now or datetime.now(UTC)
    resolving = notification.status == "resolved"
    shown = notification.alerts if resolving else notification.firing or notification.alerts
    budgets: dict[str, tuple[BudgetStatus | None, str]] = {}
    looked_up: set[str] = set()
    sections = []
    for alert in shown[:MAX_DETAILED_ALERTS]:
        subject = subject_of(alert)
        budget, problem = None, ""
        if sources.prometheus is not None and subject.slo_id and not resolving:
            if subject.slo_id not in budgets:
                budgets[subject.slo_id] = safe_budget_status(sources.prometheus, subject.slo_id, now.timestamp())
            budget, problem = budgets[subject.slo_id]
        # Spans and exemplars once per service: the page shows them for the first alert of an SLO only.
        first_of_service = subject.service not in looked_up
        looked_up.add(subject.service)
        spans = None
        if sources.traces_dir is not None and not resolving and first_of_service:
            spans = span_report(
                sources.traces_dir,
                subject.service,
                (alert.starts_at - SPAN_LOOKBACK).timestamp(),
                (alert.starts_at + SPAN_GRACE).timestamp(),
            )
        runbook = runbook_steps(
            alert.annotations.get("runbook_url", ""),
            subject,
            sources.runbook_root,
            alert.annotations.get("dashboard", ""),
        )
        exemplars: tuple[ExemplarRequest, ...] = ()
        exemplar_problem = ""
        if not resolving and first_of_service and not problem:  # an unreachable Prometheus is tried once
            exemplars, exemplar_problem = _exemplars(sources, subject, alert)
        sections.append(AlertSection(alert, subject, budget, problem, spans, runbook, exemplars, exemplar_problem))
    severity = "page" if any(subject_of(a).severity == "page" for a in notification.alerts) else "ticket"
    first = sections[0]
    firing = len(notification.firing)
    count = f"{firing} alert{'s' if firing != 1 else ''} firing" if not resolving else "resolved"
    headline = (
        f"[{severity.upper()}] {'RESOLVED' if resolving else 'FIRING'} {notification.name}: {first.subject.title}"
    )
    summary = (
        notification.common_annotations.get("summary")
        or first.alert.annotations.get("summary")
        or first.alert.annotations.get("title")
        or notification.name
    )
    return Page(
        event="resolve" if resolving else "trigger",
        dedup_key=dedup_key(notification.group_key),
        group_key=notification.group_key,
        severity=severity,
        headline=f"{headline} ({count})",
        summary=summary,
        sections=tuple(sections),
        other_alerts=tuple(f"{a.name} {_label_text(a)}" for a in shown[MAX_DETAILED_ALERTS:]),
        truncated_alerts=notification.truncated_alerts,
        external_url=notification.external_url,
        created_at=now,
        notification=notification,
    )


def _exemplars(sources: PageSources, subject: Subject, alert: Alert) -> tuple[tuple[ExemplarRequest, ...], str]:
    if sources.prometheus is None or not subject.service:
        return (), ""
    start, end = alert.starts_at - SPAN_LOOKBACK, alert.starts_at + SPAN_GRACE
    try:
        found = slowest_exemplars(sources.prometheus.url, subject.service, start.timestamp(), end.timestamp())
    except SourceError as exc:
        return (), str(exc)
    return tuple(found), ""


def render_text(page: Page) -> str:
    """The page as Markdown: plain enough for a terminal or an SMS gateway, linkable in chat."""
    lines = [f"# {page.headline}", "", page.summary, ""]
    told: set[tuple[str, str]] = set()
    for section in page.sections:
        # Alerts of one SLO share its figures, spans and runbook: said once, for the first of them.
        about = (section.subject.slo_id or section.alert.name, section.runbook.url)
        lines += _section_text(section, page, repeat=about in told)
        told.add(about)
    if page.other_alerts:
        lines += ["Also firing in this group:", *[f"- {name}" for name in page.other_alerts], ""]
    if page.truncated_alerts:
        lines += [f"({page.truncated_alerts} more alerts were left out by Alertmanager's max_alerts)", ""]
    footer = f"group {page.dedup_key[:12]} · {page.created_at.strftime('%Y-%m-%d %H:%M:%S')} UTC"
    if page.external_url:
        footer += f" · silence or ack: {page.external_url}"
    lines.append(footer)
    return "\n".join(lines) + "\n"


def page_json(page: Page) -> dict[str, Any]:
    """The page for machines (webhook destinations, GET /pages): every figure as a number, not prose."""
    return {
        "event": page.event,
        "dedup_key": page.dedup_key,
        "group_key": page.group_key,
        "severity": page.severity,
        "headline": page.headline,
        "summary": page.summary,
        "created_at": _iso(page.created_at),
        "external_url": page.external_url,
        "truncated_alerts": page.truncated_alerts,
        "other_alerts": list(page.other_alerts),
        "alerts": [_section_json(section) for section in page.sections],
        "text": render_text(page),
    }


def _section_text(section: AlertSection, page: Page, repeat: bool = False) -> list[str]:
    alert, subject = section.alert, section.subject
    lines = [f"## {alert.name} ({subject.severity}) {_label_text(alert)}".rstrip()]
    started = f"{_iso(alert.starts_at)} ({format_duration((page.created_at - alert.starts_at).total_seconds())} ago)"
    if page.event == "resolve":
        ended = _iso(alert.ends_at) if alert.ends_at else "now"
        return [
            *lines,
            f"- Resolved: started {started}, ended {ended}",
            f"- Runbook: {section.runbook.url or '(none)'}",
            "",
        ]
    lines.append(f"- What is burning: {_what(subject)}; since {started}")
    if repeat:
        return [*lines, "- Same SLO, figures and first steps as above", ""]
    lines += [f"- {line}" for line in _burn_lines(section)]
    if alert.annotations.get("description"):
        lines.append(f"- Details: {' '.join(alert.annotations['description'].split())}")
    if alert.annotations.get("predicted_breach_in"):
        lines.append(f"- Predicted breach of the page condition in {alert.annotations['predicted_breach_in']}")
    if alert.annotations.get("signal"):
        lines.append(f"- Why it fired: {alert.annotations['signal']}")
    if alert.annotations.get("dashboard"):
        lines.append(f"- Dashboard: {alert.annotations['dashboard']}")
    if alert.generator_url:
        lines.append(f"- Rule: {alert.generator_url}")
    lines += _spans_text(section.spans)
    lines += _exemplars_text(section)
    runbook = section.runbook
    source = f" (from {runbook.local_path})" if runbook.local_path else ""
    lines += ["", f"Runbook: {runbook.url or '(no runbook_url on this alert)'}", f"First steps{source}:"]
    lines += [f"{i}. {step}" for i, step in enumerate(runbook.steps, 1)]
    lines += [f"{len(runbook.steps) + 1}. Run the diagnostics: `{runbook.command}`", ""]
    return lines


def _what(subject: Subject) -> str:
    if not subject.slo_id:
        return f"{subject.service} ({subject.alertname})" if subject.service else subject.alertname
    what = f"{subject.title} SLO"
    if subject.slo_id:
        what += f" (`{subject.slo_id}`)"
    return what + {"burn": "", "exhaustion": ", error budget running out", "predictive": ", predicted"}.get(
        subject.kind, ""
    )


def _burn_lines(section: AlertSection) -> list[str]:
    budget, subject = section.budget, section.subject
    if budget is not None:
        lines = []
        if budget.burn_rate is not None:
            rate = f"How fast: burning {_times(budget.burn_rate)} the sustainable rate (5m"
            if budget.error_ratio_5m is not None:
                rate += f", error ratio {_percent(budget.error_ratio_5m)}"
            rate += ")"
            if budget.burn_rate_1h is not None and budget.error_ratio_1h is not None:
                rate += f"; {_times(budget.burn_rate_1h)} over 1h (error ratio {_percent(budget.error_ratio_1h)})"
            lines.append(rate)
        else:
            lines.append("How fast: Prometheus has no current burn rate for this SLO")
        if budget.budget_remaining is not None:
            period = f" of the {format_duration(budget.period_days * 86400)} budget" if budget.period_days else ""
            lines.append(f"Budget left: {_percent(budget.budget_remaining, 1)}{period}")
        exhaustion = budget.seconds_to_exhaustion
        if exhaustion == 0:
            lines.append("Time to exhaustion: the budget is already spent")
        elif exhaustion is not None:
            lines.append(f"Time to exhaustion: {format_duration(exhaustion)} at the current burn rate")
        elif budget.burn_rate is not None and budget.burn_rate <= 0:
            lines.append("Time to exhaustion: none, the budget is not being spent right now")
        return lines
    why = f" ({section.budget_problem})" if section.budget_problem else " (start the pager with --prometheus for it)"
    if subject.kind == "burn" and subject.severity in _RULE_BURN:
        (fast, fast_windows), (slow, slow_windows) = _RULE_BURN[subject.severity]
        return [
            f"How fast: at least {fast:g}x the sustainable rate over {fast_windows}, or {slow:g}x over "
            f"{slow_windows} (the {subject.severity} rule's thresholds for a 30d SLO); exact rate unknown{why}",
            f"Time to exhaustion: at {fast:g}x a full 30d budget lasts {format_duration(30 * 86400 / fast)}; "
            "budget left unknown",
        ]
    if not subject.slo_id:
        return []  # not an SLO alert: no budget to speak of
    title = section.alert.annotations.get("title", "")
    return [f"Budget: {title or 'not known from the alert'}{why}"]


def _spans_text(report: SpanReport | None) -> list[str]:
    if report is None:
        return []
    window = f"{_clock(report.window[0])}-{_clock(report.window[1])} UTC, {report.source.name}"
    if not report.spans_read:
        return [f"- Traces: no spans in {window}"]
    lines = ["", f"Failed spans ({window}):"]
    if not report.failed:
        lines.append("- none")
    for failed in report.failed:
        status = f" {failed.http_status}" if failed.http_status is not None else ""
        lines.append(f"- {failed.name}{status} x{failed.count}, latest trace {failed.latest.trace_id}")
    lines.append("Slowest server spans:")
    if not report.slowest:
        lines.append("- none")
    for span in report.slowest:
        status = f" {span.http_status}" if span.http_status is not None else ""
        lines.append(f"- {span.name}{status} {span.duration_ms:.1f} ms, trace {span.trace_id}")
    return lines


def _exemplars_text(section: AlertSection) -> list[str]:
    if section.exemplar_problem:
        return [f"- Exemplars: {section.exemplar_problem}"]
    if not section.exemplars:
        return []
    lines = ["", "Slowest requests (Prometheus exemplars):"]
    for exemplar in section.exemplars:
        what = f"{exemplar.method} {exemplar.route}".strip() or "request"
        lines.append(f"- {what} {exemplar.seconds * 1000:.1f} ms at {_clock(exemplar.at)}, trace {exemplar.trace_id}")
    return lines


def _section_json(section: AlertSection) -> dict[str, Any]:
    alert, subject, budget = section.alert, section.subject, section.budget
    return {
        "alertname": alert.name,
        "status": alert.status,
        "fingerprint": alert.fingerprint,
        "labels": alert.labels,
        "annotations": alert.annotations,
        "starts_at": _iso(alert.starts_at),
        "ends_at": _iso(alert.ends_at) if alert.ends_at else None,
        "slo_id": subject.slo_id,
        "service": subject.service,
        "slo": subject.slo,
        "severity": subject.severity,
        "kind": subject.kind,
        "burn_rate": budget.burn_rate if budget else None,
        "burn_rate_1h": budget.burn_rate_1h if budget else None,
        "error_ratio_5m": budget.error_ratio_5m if budget else None,
        "error_ratio_1h": budget.error_ratio_1h if budget else None,
        "budget_remaining": budget.budget_remaining if budget else None,
        "period_days": budget.period_days if budget else None,
        "seconds_to_exhaustion": budget.seconds_to_exhaustion if budget else None,
        "budget_problem": section.budget_problem or None,
        "failed_spans": [
            {"name": f.name, "http_status": f.http_status, "count": f.count, "trace_id": f.latest.trace_id}
            for f in (section.spans.failed if section.spans else ())
        ],
        "slowest_spans": [
            {"name": s.name, "http_status": s.http_status, "duration_ms": s.duration_ms, "trace_id": s.trace_id}
            for s in (section.spans.slowest if section.spans else ())
        ],
        "exemplars": [
            {"route": e.route, "method": e.method, "duration_ms": e.seconds * 1000, "trace_id": e.trace_id, "at": e.at}
            for e in section.exemplars
        ],
        "runbook_url": section.runbook.url,
        "first_steps": [*section.runbook.steps, f"Run the diagnostics: `{section.runbook.command}`"],
    }


def format_duration(seconds: float) -> str:
    """Two units at most, as on-call reads them: `2d 2h`, `21h 5m`, `4m 10s`, `45s`."""
    remaining = max(0, round(seconds))
    if remaining < 60:
        return f"{remaining}s"
    parts: list[tuple[int, str]] = []
    for name, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size or parts:
            count, remaining = divmod(remaining, size)
            parts.append((count, name))
        if len(parts) == 2:
            break
    return " ".join(f"{count}{name}" for count, name in parts if count)


def _label_text(alert: Alert) -> str:
    """The labels that tell alerts of one group apart (beyond those every SLO alert carries)."""
    common = {"alertname", "sloth_id", "sloth_service", "sloth_slo", "sloth_severity", "severity", "category"}
    common |= {"owner", "tier", "slo", "service", "kind"}
    extra = {k: v for k, v in sorted(alert.labels.items()) if k not in common}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in extra.items()) + "}" if extra else ""


def _times(rate: float) -> str:
    return f"{rate:.1f}x" if rate < 100 else f"{rate:.0f}x"


def _percent(ratio: float, digits: int = 3) -> str:
    return f"{ratio * 100:.{digits}g}%" if abs(ratio) < 0.01 else f"{ratio * 100:.{max(digits - 2, 1)}f}%"


def _iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def _clock(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%H:%M")

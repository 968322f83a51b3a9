"""The drill's part of the game-day report: pages as on-call saw them, runbooks graded, accuracy.

Document parts (`slo.document`) that `chaos.gameday_report` places: per phase a "Pages" card
(delivery time and delay after the fault's start, the PagerDuty event, the page's text) and a
"Runbook drill" card (verdict, causes named, seconds to the cause, the run's output), a link to
the phase's postmortem draft, and for the day the runbook accuracy per alert and per experiment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from chaos.drill import Accuracy, accuracy_by_alert, accuracy_by_experiment
from chaos.gameday_model import GameDayResult, PhaseResult
from slo.document import Content, Details, Inline, LineBreak, Link, Paragraph, Pill, Section, Table, Text

__all__ = ["accuracy_section", "accuracy_table", "phase_panels", "postmortem_link"]

_VERDICT_TONE = {"right": "passed", "wrong": "failed", "silent": "failed"}


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S")


def _after(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:+.1f} s"


def _link(path: str | None) -> Content:
    return Link(quote(path), path, code=True) if path else "—"


def postmortem_link(phase: PhaseResult) -> Content:
    """The phase's postmortem draft, linked relatively; a phase without a fault has none."""
    return _link(phase.postmortem) if phase.postmortem else "none (no fault in this phase)"


def phase_panels(phase: PhaseResult) -> list[Section]:
    """The pages on-call received in the phase and the graded runbooks, as two cards across the page."""
    pages = Table(
        ["Delivered", "After fault start", "Event", "Alert", "Severity", "PagerDuty event", "Page"],
        [
            [
                _clock(p.delivered_at),
                _after(p.seconds_after_fault),
                p.event,
                ", ".join(p.alerts) or p.alert,
                p.severity,
                _pagerduty_text(p.pagerduty),
                Details("text", p.text),
            ]
            for p in phase.pages
        ],
        empty="The pager delivered nothing in this phase.",
        numeric=frozenset({1}),
    )
    state = (
        [
            Paragraph(
                (
                    Text("Pager dedup state at the phase's end: "),
                    Link(quote(phase.pager_state), phase.pager_state, code=True),
                )
            )
        ]
        if phase.pager_state
        else []
    )
    cause: tuple[Inline, ...] = (Text(" against the injected cause "), Text(phase.cause, "code")) if phase.cause else ()
    drill = Table(
        ["Alert", "Runbook", "Verdict", "Causes named", "Seconds to cause", "Runbook took", "Findings", "Output"],
        [
            [
                f"{d.alert} ({d.severity})",
                Text(d.runbook, "code"),
                Pill(d.verdict, _VERDICT_TONE.get(d.verdict, "unknown")),
                ", ".join(d.named) or "none",
                "—" if d.seconds_to_cause is None else f"{d.seconds_to_cause:.1f} s",
                f"{d.runbook_seconds:.1f} s",
                _lines(d.findings),
                _link(d.output),
            ]
            for d in phase.diagnosis
        ],
        empty="No runbook was graded in this phase (nothing paged, or no cause declared).",
        numeric=frozenset({4, 5}),
    )
    return [
        Section("Pages (what on-call saw)", [pages, *state], layout="wide-card"),
        Section((Text("Runbook drill"), *cause), [drill], layout="wide-card"),
    ]


def _lines(lines: Sequence[str]) -> Content:
    if not lines:
        return "—"
    out: list[Inline] = []
    for line in lines:
        out += [LineBreak(), Text(line)] if out else [Text(line)]
    return out


def accuracy_section(result: GameDayResult) -> Section | None:
    """The day's runbook accuracy per alert and per experiment; None when nothing was graded."""
    by_alert, by_experiment = accuracy_by_alert(result.phases), accuracy_by_experiment(result.phases)
    if not by_alert:
        return None
    description = (
        Text("Each page ran its runbook ("),
        Text("nova runbooks run", "code"),
        Text(
            ") against the live platform; right means a diagnostic named the cause the experiment injected,"
            " precision is the share of all causes named that was the injected one."
        ),
    )
    return Section(
        "Runbook accuracy",
        [
            Paragraph(description, "description"),
            Section("Per alert", [accuracy_table(by_alert, "Alert")], layout="wide-card"),
            Section("Per experiment", [accuracy_table(by_experiment, "Experiment")], layout="wide-card"),
        ],
        anchor="runbook-accuracy",
        css="drill",
    )


def accuracy_table(rows: Sequence[Accuracy], what: str) -> Table:
    """Accuracy rows as a table (the report's, and what a closing note quotes)."""
    return Table(
        [
            what,
            "Cause",
            "Graded",
            "Right",
            "Wrong",
            "Silent",
            "Accuracy",
            "Precision",
            "Also named (pages)",
            "Median seconds to cause",
        ],
        [
            [
                a.name,
                Text(a.cause, "code"),
                *map(str, (a.graded, a.right, a.wrong, a.silent)),
                f"{a.share:.0%}",
                "—" if a.precision is None else f"{a.precision:.0%}",
                ", ".join(f"{cause} ({pages})" for cause, pages in a.extra) or "—",
                _median(a),
            ]
            for a in rows
        ],
        empty="Nothing was graded.",
        numeric=frozenset({2, 3, 4, 5, 6, 7, 9}),
    )


def _median(row: Accuracy) -> str:
    return "—" if row.median_seconds_to_cause is None else f"{row.median_seconds_to_cause:.1f} s"


def _pagerduty_text(event: dict[str, object] | None) -> str:
    if not event:
        return "—"
    payload = event.get("payload")
    severity = payload.get("severity") if isinstance(payload, dict) else None
    key = str(event.get("dedup_key", ""))[:12]
    return f"{event.get('event_action')} {severity or ''} dedup {key}".replace("  ", " ")

"""The drill's part of the game-day report: pages as on-call saw them, runbooks graded, accuracy.

HTML fragments (escaped here) and Markdown blocks that `chaos.gameday_report` places: per phase
a "Pages" panel (delivery time and delay after the fault's start, the PagerDuty event, the page's
text) and a "Runbook drill" panel (verdict, causes named, seconds to the cause, the run's output),
a link to the phase's postmortem draft, and for the day the runbook accuracy per alert and per
experiment.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from chaos.drill import Accuracy, accuracy_by_alert, accuracy_by_experiment
from chaos.gameday_model import GameDayResult, PhaseResult

_VERDICT_CSS = {"right": "passed", "wrong": "failed", "silent": "failed"}

CSS = """
details.page-text pre{white-space:pre-wrap;max-height:24em;overflow:auto;font-size:12px}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S")


def _after(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:+.1f} s"


def _link(path: str | None, text: str | None = None) -> str:
    if not path:
        return "—"
    return f'<a href="{_e(quote(path))}"><code>{_e(text or path)}</code></a>'


def _html_table(head: Sequence[str], rows: Sequence[str], empty: str) -> str:
    if not rows:
        return f"<p class='none'>{_e(empty)}</p>"
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<div class='scroll'><table><thead><tr>{cells}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"


def html_postmortem_link(phase: PhaseResult) -> str:
    return _link(phase.postmortem) if phase.postmortem else _e("none (no fault in this phase)")


def html_phase_panels(phase: PhaseResult) -> str:
    """The pages on-call received in the phase and the graded runbooks, as two report cards."""
    pages = _html_table(
        ["Delivered", "After fault start", "Event", "Alert", "Severity", "PagerDuty event", "Page"],
        [
            f"<tr><td>{_e(_clock(p.delivered_at))}</td><td class='num'>{_e(_after(p.seconds_after_fault))}</td>"
            f"<td>{_e(p.event)}</td><td>{_e(', '.join(p.alerts) or p.alert)}</td><td>{_e(p.severity)}</td>"
            f"<td>{_e(_pagerduty_text(p.pagerduty))}</td>"
            f"<td><details class='page-text'><summary>text</summary><pre>{_e(p.text)}</pre></details></td></tr>"
            for p in phase.pages
        ],
        "The pager delivered nothing in this phase.",
    )
    state = f"<p>Pager dedup state at the phase's end: {_link(phase.pager_state)}</p>" if phase.pager_state else ""
    cause = f" against the injected cause <code>{_e(phase.cause)}</code>" if phase.cause else ""
    drill = _html_table(
        ["Alert", "Runbook", "Verdict", "Causes named", "Seconds to cause", "Runbook took", "Findings", "Output"],
        [
            f"<tr><td>{_e(d.alert)} ({_e(d.severity)})</td><td><code>{_e(d.runbook)}</code></td>"
            f"<td><span class='pill {_VERDICT_CSS.get(d.verdict, '')}'>{_e(d.verdict)}</span></td>"
            f"<td>{_e(', '.join(d.named) or 'none')}</td>"
            f"<td class='num'>{_e('—' if d.seconds_to_cause is None else f'{d.seconds_to_cause:.1f} s')}</td>"
            f"<td class='num'>{d.runbook_seconds:.1f} s</td><td>{'<br>'.join(_e(f) for f in d.findings) or '—'}</td>"
            f"<td>{_link(d.output)}</td></tr>"
            for d in phase.diagnosis
        ],
        "No runbook was graded in this phase (nothing paged, or no cause declared).",
    )
    return (
        f'<div class="card full"><h3>Pages (what on-call saw)</h3>{pages}{state}</div>'
        f'<div class="card full"><h3>Runbook drill{cause}</h3>{drill}</div>'
    )


def html_accuracy(result: GameDayResult) -> str:
    by_alert, by_experiment = accuracy_by_alert(result.phases), accuracy_by_experiment(result.phases)
    if not by_alert:
        return ""
    return f"""<section class="drill" id="runbook-accuracy">
<h2>Runbook accuracy</h2>
<p class="description">Each page ran its runbook (<code>nova runbooks run</code>) against the live platform; \
right means a diagnostic named the cause the experiment injected.</p>
<h3>Per alert</h3>{_html_accuracy_table(by_alert, "Alert")}
<h3>Per experiment</h3>{_html_accuracy_table(by_experiment, "Experiment")}
</section>
"""


def _html_accuracy_table(rows: Sequence[Accuracy], what: str) -> str:
    return _html_table(
        [what, "Cause", "Graded", "Right", "Wrong", "Silent", "Accuracy", "Median seconds to cause"],
        [
            f"<tr><td>{_e(a.name)}</td><td><code>{_e(a.cause)}</code></td><td class='num'>{a.graded}</td>"
            f"<td class='num'>{a.right}</td><td class='num'>{a.wrong}</td><td class='num'>{a.silent}</td>"
            f"<td class='num'>{a.share:.0%}</td><td class='num'>{_e(_median(a))}</td></tr>"
            for a in rows
        ],
        "Nothing was graded.",
    )


# -- Markdown ---------------------------------------------------------------------------------------


def _md(text: object) -> str:
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown_postmortem_link(phase: PhaseResult) -> str:
    return f"[{phase.postmortem}]({quote(phase.postmortem)})" if phase.postmortem else "none (no fault in this phase)"


def markdown_phase_panels(phase: PhaseResult) -> list[str]:
    out = ["", "### Pages (what on-call saw)", ""]
    if phase.pages:
        out += _md_table(
            ["Delivered", "After fault start", "Event", "Alert", "Severity", "PagerDuty event"],
            [
                [
                    _clock(p.delivered_at),
                    _after(p.seconds_after_fault),
                    p.event,
                    _md(", ".join(p.alerts) or p.alert),
                    p.severity,
                    _md(_pagerduty_text(p.pagerduty)),
                ]
                for p in phase.pages
            ],
        )
    else:
        out.append("The pager delivered nothing in this phase.")
    if phase.pager_state:
        out += ["", f"Pager dedup state at the phase's end: [{phase.pager_state}]({quote(phase.pager_state)})"]
    out += ["", "### Runbook drill" + (f" (injected cause `{phase.cause}`)" if phase.cause else ""), ""]
    if phase.diagnosis:
        out += _md_table(
            ["Alert", "Runbook", "Verdict", "Causes named", "Seconds to cause", "Runbook took"],
            [
                [
                    _md(f"{d.alert} ({d.severity})"),
                    _md(d.runbook),
                    d.verdict if d.verdict == "right" else f"**{d.verdict}**",
                    _md(", ".join(d.named) or "none"),
                    "—" if d.seconds_to_cause is None else f"{d.seconds_to_cause:.1f} s",
                    f"{d.runbook_seconds:.1f} s",
                ]
                for d in phase.diagnosis
            ],
        )
    else:
        out.append("No runbook was graded in this phase (nothing paged, or no cause declared).")
    return out


def markdown_accuracy(result: GameDayResult) -> list[str]:
    by_alert, by_experiment = accuracy_by_alert(result.phases), accuracy_by_experiment(result.phases)
    if not by_alert:
        return []
    return [
        "## Runbook accuracy",
        "",
        "Each page ran its runbook against the live platform; right means a diagnostic named the injected cause.",
        "",
        *accuracy_table(by_alert, "Alert"),
        "",
        *accuracy_table(by_experiment, "Experiment"),
        "",
    ]


def accuracy_table(rows: Sequence[Accuracy], what: str) -> list[str]:
    """A Markdown table of accuracy rows (the report's, and what a closing note quotes)."""
    return _md_table(
        [what, "Cause", "Graded", "Right", "Wrong", "Silent", "Accuracy", "Median seconds to cause"],
        [
            [
                _md(a.name),
                f"`{a.cause}`",
                *map(str, (a.graded, a.right, a.wrong, a.silent)),
                f"{a.share:.0%}",
                _median(a),
            ]
            for a in rows
        ],
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

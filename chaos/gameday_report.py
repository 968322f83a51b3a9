"""The game-day report: what `nova gameday` found, as HTML, Markdown and JSON.

Owns the three files `write_report` writes into the game-day folder: `report.html` (one
self-contained page for the SRE after the game day: inline CSS and inline SVG plots, nothing
fetched, so it can be attached to a postmortem or opened offline), `report.md` with PNG plots under
`plots/` (for wikis and pull requests), and `report.json` (`GameDayResult.document()`, NaN and
infinities as null). Each file is written to a temporary name and renamed, so a reader never sees
half a report. The plots live in `chaos.gameday_plots`; the page is a `slo.document.Document`,
rendered by the same two renderers as the SLO report.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chaos import drill_report
from chaos.gameday_model import AlertFiring, GameDayResult, LoadFigures, PhaseResult, SLIFigures
from chaos.gameday_plots import render_plots
from loadtests.audit import PaymentAudit
from loadtests.ledger_verification import LedgerVerification
from slo.document import (
    Block,
    Content,
    Document,
    Facts,
    Figures,
    Inline,
    LineBreak,
    Link,
    Paragraph,
    Pill,
    Row,
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
from slo.plots import RenderedPlot

__all__ = ["GameDayReportFiles", "report_document", "sanitize", "write_report"]

PAYMENTS_SLI = "payments-availability"


@dataclass(frozen=True)
class GameDayReportFiles:
    """Where `write_report` put the three files."""

    html: Path
    markdown: Path
    json: Path


def write_report(result: GameDayResult, out: Path) -> GameDayReportFiles:
    """Write report.html, report.md (with PNG plots in out/plots/) and report.json into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    plots_dir = out / "plots"
    plots_dir.mkdir(exist_ok=True)
    plots = render_plots(result)
    png_paths: dict[str, str] = {}
    for plot in plots:
        if plot.png is not None:
            name = f"gameday-{plot.kind}.png"
            _write_atomic(plots_dir / name, plot.png)
            png_paths[plot.kind] = f"plots/{name}"
    files = GameDayReportFiles(out / "report.html", out / "report.md", out / "report.json")
    document = json.dumps(sanitize(result.document()), indent=2, allow_nan=False) + "\n"
    _write_atomic(files.json, document.encode("utf-8"))
    page = report_document(result, plots, png_paths)
    _write_atomic(files.html, render_html(page).encode("utf-8"))
    _write_atomic(files.markdown, render_markdown(page).encode("utf-8"))
    return files


def sanitize(value: Any) -> Any:
    """`value` with every NaN and infinity (at any depth) replaced by None, so strict JSON can hold it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: sanitize(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [sanitize(item) for item in value]
    return value


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target and rename over it: readers see the old file or the new one, never half."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- what the page says, shared by HTML and Markdown ---------------------------------------------


def _verdict(result: GameDayResult) -> tuple[str, str]:
    """(css class, word) for the whole game day."""
    if result.interrupted:
        return "aborted", "INTERRUPTED"
    if result.error is not None:
        return "aborted", "ERROR"
    return ("passed", "PASSED") if result.passed else ("failed", "FAILED")


def _number(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _percent(ratio: float | None, digits: int = 3) -> str:
    ratio = _number(ratio)
    return "—" if ratio is None else f"{ratio * 100:.{digits}f}%"


def _ms(value: float | None) -> str:
    value = _number(value)
    return "—" if value is None else f"{value:.0f} ms"


def _seconds(value: float | None) -> str:
    value = _number(value)
    return "—" if value is None else f"{value:.0f} s"


def _offset(result: GameDayResult, moment: float) -> str:
    return f"t+{moment - result.started:.0f} s"


def _clock(result: GameDayResult, moment: float) -> str:
    """HH:MM:SS UTC on the game day's date (stated in the header); the full date on any other day."""
    day = datetime.fromtimestamp(result.started, UTC).date()
    when = datetime.fromtimestamp(moment, UTC)
    return when.strftime("%H:%M:%S UTC") if when.date() == day else format_time(moment)


def _window_text(result: GameDayResult, start: float, end: float) -> str:
    return (
        f"{_clock(result, start)} → {_clock(result, end)} ({_offset(result, start)} → {_offset(result, end)}, "
        f"{format_duration_short(end - start)})"
    )


def _checks_count(phase: PhaseResult) -> str:
    return f"{sum(check.passed for check in phase.checks)}/{len(phase.checks)}"


def _payments_sli(phase: PhaseResult) -> SLIFigures | None:
    exact = next((s for s in phase.slis if s.sloth_id == PAYMENTS_SLI), None)
    return exact or next((s for s in phase.slis if s.sloth_id.startswith("payments")), None)


def _worst_burn(phase: PhaseResult) -> SLIFigures | None:
    """The SLO that spent the largest share of its budget in this phase."""
    burned = [s for s in phase.slis if _number(s.budget_burned) is not None]
    return max(burned, key=lambda s: s.budget_burned or 0.0, default=None)


def _alert_text(alert: AlertFiring) -> str:
    delay = _number(alert.delay_seconds)
    return f"{alert.alert} {alert.severity}" + ("" if delay is None else f" +{delay:.0f} s")


def _ledger_text(ledger: LedgerVerification | None) -> str:
    if ledger is None:
        return "not checked"
    return "balanced" if ledger.balanced else "NOT balanced"


def _ledger_class(ledger: LedgerVerification | None) -> str:
    if ledger is None:
        return "unknown"
    return "passed" if ledger.balanced else "failed"


def _audit_text(audit: PaymentAudit | None) -> str:
    """loadtests' audit.json (`loadtests.audit`) in one line: what was acknowledged, found, lost, mismatched."""
    if audit is None:
        return "no audit"
    parts = [
        f"acknowledged payments: {_count(audit.payments_acknowledged)}",
        f"confirmed: {_count(audit.payments_confirmed)}",
        f"lost: {_count(audit.payments_lost)}",
        f"balance mismatches: {_count(len(audit.balance_mismatches))}",
    ]
    if audit.payments_unknown:
        parts.append(f"outcome unknown: {_count(audit.payments_unknown)}")
    parts.append("audit passed" if audit.passed else "audit FAILED")
    return " / ".join(parts)


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "—"


def _value_text(value: Any) -> str:
    """A probe value or ledger figure as one short line of text."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, float):
        text = f"{value:g}" if math.isfinite(value) else "—"
    else:
        text = json.dumps(sanitize(value), default=str, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 160 else text[:159] + "…"


def _mode(result: GameDayResult) -> str:
    return "quick" if result.quick else "full"


def _facts(result: GameDayResult) -> list[tuple[str, str]]:
    facts = [
        ("Date", format_time(result.started)),
        ("Duration", format_duration_short(result.ended - result.started)),
        ("Mode", _mode(result)),
        ("Database", result.database),
        ("Monitoring", result.monitoring),
        ("Machine", result.machine),
        ("Phases", f"{sum(p.passed for p in result.phases)}/{len(result.phases)} passed"),
    ]
    if result.load_plan is not None:
        facts.append(("Load", _plan_text(result)))
    if result.error is not None:
        facts.append(("Stopped by", result.error))
    return facts


def _plan_text(result: GameDayResult) -> str:
    """What the game day offered, and where the figure came from; never a peak it did not offer."""
    plan = result.load_plan
    if plan is None:
        return ""
    if plan.rate <= 0:
        text = "closed model (market-open users)"
    else:
        text = f"{plan.rate:g} requests/s offered in every phase (open model)"
    if plan.capacity_rps is not None:
        text += (
            f"; {plan.capacity_share:g} of the measured capacity {plan.capacity_rps:.0f} requests/s "
            f"({plan.capacity_source})"
        )
    if plan.spike_rps:
        text += f"; spike phase to {plan.spike_rps:g} requests/s"
    return text + (f"; {plan.note}" if plan.note else "")


PEAK_HEAD = (
    "Phase",
    "Offered req/s",
    "Achieved req/s",
    "Late sends",
    "p99 (service time)",
    "p99 from scheduled send",
    "Time to detect",
    "Time to recover",
    "Stopped by the guardrail",
)


def _peak_rows(result: GameDayResult) -> list[list[str]]:
    """Per phase: the load offered and achieved, the two p99s, TTD per alert and TTR (plain text cells)."""
    rows = []
    for phase in result.phases:
        load = phase.load
        detection = ", ".join(f"{alert} {seconds:.0f} s" for alert, seconds in phase.detection.items())
        if phase.fault is None:
            detection, recovery = "no fault", "no fault"
        else:
            detection = detection or "no alert fired"
            recovery = "not within the phase" if phase.recovery is None else f"{phase.recovery:.0f} s"
        rows.append(
            [
                phase.name,
                f"{load.offered_rps:.1f}" if load else "—",
                f"{load.achieved_rps:.1f}" if load else "—",
                str(load.late_sends) if load else "—",
                _ms(load.p99_ms) if load else "—",
                _ms(load.p99_corrected_ms) if load else "—",
                detection,
                recovery,
                phase.aborted or "—",
            ]
        )
    return rows


# --- the document: what the page says, for both renderers ----------------------------------------

SUMMARY_HEAD = (
    "Phase",
    "Status",
    "Checks",
    "Availability after retries",
    "p99",
    "Payments SLI",
    "Budget burned (most)",
    "Alerts fired (delay)",
    "Recovery",
    "Ledger",
    "Verdict",
)


def report_document(result: GameDayResult, plots: Sequence[RenderedPlot], png_paths: dict[str, str]) -> Document:
    """The game day as a document: load and detection at the top, the phases, the timeline, each phase.

    `png_paths` maps a plot's kind to its PNG, relative to the report (the Markdown links them).
    """
    css, verdict = _verdict(result)
    anchors = ["phase-" + slug for slug in unique_slugs([phase.name for phase in result.phases], lower=True)]
    phases = list(zip(result.phases, anchors, strict=True))
    accuracy = drill_report.accuracy_section(result)
    return Document(
        title="Game day",
        verdict=Pill(verdict, css),
        page_title=f"Game day {verdict} · {format_time(result.started)}",
        generator="nova gameday",
        facts=_facts(result),
        sections=[
            Section(
                "Load, time to detect and time to recover",
                [Table(PEAK_HEAD, _peak_rows(result), empty="No phase ran.", numeric=frozenset(range(1, 6)))],
                anchor="peak",
                css="peak",
            ),
            Section(
                "Phases",
                [
                    Table(
                        SUMMARY_HEAD,
                        [_summary_row(phase, anchor) for phase, anchor in phases],
                        empty="No phase ran.",
                        numeric=frozenset({2, 3, 4, 5, 8}),
                        css="overview",
                    )
                ],
                anchor="phases",
                css="toc",
            ),
            _timeline(result, plots, png_paths),
            *([accuracy] if accuracy else []),
            *(_phase_section(result, phase, anchor) for phase, anchor in phases),
        ],
        footer=(
            Text("Times are UTC. Availability and p99 are the client's ("),
            Text("nova load", "code"),
            Text("); SLIs and budget are the services' own metrics; “—” means no value."),
        ),
    )


def _timeline(result: GameDayResult, plots: Sequence[RenderedPlot], png_paths: dict[str, str]) -> Section:
    description = (
        f"x axis: t+ seconds since the game day started at {format_time(result.started)}; phases shaded grey "
        "and named at the top, fault windows in orange."
    )
    figures = [plot.to_figure(png_paths.get(plot.kind), alt=f"{plot.kind} plot") for plot in plots]
    return Section(
        "Timeline", [Paragraph(description, "description"), Figures(figures)], anchor="timeline", css="timeline"
    )


def _verdict_pill(passed: bool) -> Pill:
    return Pill("passed", "passed") if passed else Pill("failed", "failed")


def _summary_row(phase: PhaseResult, anchor: str) -> list[Content]:
    load = phase.load
    payments = _payments_sli(phase)
    alerts: list[Inline] = []
    for alert in phase.alerts:
        alerts += [LineBreak(), Text(_alert_text(alert))] if alerts else [Text(_alert_text(alert))]
    return [
        Link(f"#{anchor}", phase.name),
        Pill(phase.status, phase.status),
        _checks_count(phase),
        _percent(load.availability_after_retries if load else None),
        _ms(load.p99_ms if load else None),
        _percent(payments.sli if payments else None, 4),
        _budget(_worst_burn(phase)),
        alerts or "none",
        _seconds(phase.recovery_seconds),
        Pill(_ledger_text(phase.ledger), _ledger_class(phase.ledger)),
        _verdict_pill(phase.passed),
    ]


def _budget(sli: SLIFigures | None) -> Content:
    if sli is None or _number(sli.budget_burned) is None:
        return "—"
    return (Text(_percent(sli.budget_burned, 2)), LineBreak(), Text(sli.sloth_id, "muted"))


def _journal(journal: str | None) -> Content:
    """A link to the journal beside the report; anything not a plain relative path is shown, not linked."""
    if journal is None:
        return "no journal"
    if _is_external(journal):
        return Text(journal, "code")
    return Link(quote(journal), journal, code=True)


def _phase_section(result: GameDayResult, phase: PhaseResult, anchor: str) -> Section:
    fault = (
        "none (no fault injected)" if phase.fault is None else _window_text(result, phase.fault.start, phase.fault.end)
    )
    facts = Facts(
        [
            ("Phase", Text(phase.name, "code")),
            ("Window", _window_text(result, phase.window.start, phase.window.end)),
            ("Fault", fault),
            ("Fault kind", phase.fault_kind or "none"),
            ("Status", (Pill(phase.status, phase.status), Text(f" — {phase.reason}" if phase.reason else ""))),
            ("Recovery", _seconds(phase.recovery_seconds) + (" after the fault ended" if phase.fault else "")),
            ("Journal", _journal(phase.journal)),
            ("Postmortem", drill_report.postmortem_link(phase)),
        ]
    )
    checks = Table(
        ["Check", "Result", "Evidence"],
        [
            Row(
                [c.name, Pill("PASS", "passed") if c.passed else Pill("FAIL", "failed"), c.detail],
                None if c.passed else "fail",
            )
            for c in phase.checks
        ],
        empty="No check was made for this phase.",
        css="checks",
    )
    hypothesis = Table(
        ["When", "Probe", "Met", "Value"],
        [
            [
                p.when,
                p.name,
                Pill("met", "passed") if p.met else Pill("not met", "failed"),
                Text(_value_text(p.value), "code"),
            ]
            for p in phase.hypothesis
        ],
        empty="No steady-state probe ran.",
    )
    return Section(
        title=phase.title,
        badges=[_verdict_pill(phase.passed)],
        anchor=anchor,
        css=f"phase status-{phase.status}",
        blocks=[
            Section("Phase", [facts]),
            Section(f"Checks ({_checks_count(phase)} passed)", [checks]),
            Section("Load (client side)", _load(phase.load)),
            Section("Hypothesis probes", [hypothesis]),
            Section("SLIs (server side)", [_slis(phase)], layout="wide-card"),
            Section("Alerts", _alerts(result, phase), layout="wide-card"),
            *drill_report.phase_panels(phase),
            Section("Ledger verification", _ledger(phase.ledger), layout="wide-card"),
        ],
    )


def _slis(phase: PhaseResult) -> Table:
    return Table(
        ["SLO", "Events", "Bad", "SLI", "Burn rate", "Budget burned"],
        [
            [
                Text(s.sloth_id, "code"),
                f"{s.events:,}",
                f"{s.bad_events:,}",
                _percent(s.sli, 4),
                format_burn(_number(s.burn_rate)),
                _percent(s.budget_burned, 2),
            ]
            for s in phase.slis
        ],
        empty="No SLI figures for this phase.",
        numeric=frozenset(range(1, 6)),
    )


def _alerts(result: GameDayResult, phase: PhaseResult) -> list[Block]:
    table = Table(
        ["Alert", "Severity", "SLO", "Started", "Delay after fault start", "Ended", "Alertmanager notified at"],
        [
            [
                a.alert,
                Pill(a.severity, "sev-" + a.severity),
                Text(a.sloth_id, "code"),
                (Time(a.start), Text(" "), Text(_offset(result, a.start), "muted")),
                _seconds(a.delay_seconds),
                Time(a.end, "still firing"),
                Time(a.notified_at, "not notified"),
            ]
            for a in phase.alerts
        ],
        empty="No alert began firing in this phase.",
        numeric=frozenset({4}),
    )
    notes: list[Block] = [table]
    if phase.settled_for:
        waited = f" {phase.settled_seconds:.0f} s before this phase for {', '.join(phase.settled_for)} to resolve"
        notes.append(Paragraph((Text("Waited", "strong"), Text(waited + " (a page still firing is not sent again)."))))
    if phase.already_firing:
        already = f" from an earlier phase: {', '.join(phase.already_firing)}"
        notes.append(Paragraph((Text("Already firing", "strong"), Text(already))))
    return notes


def _load(load: LoadFigures | None) -> list[Block]:
    if load is None:
        return [Paragraph("No load ran in this phase.", "note")]
    facts = Facts(
        [
            ("Requests", f"{load.requests:,}"),
            ("Failures", f"{load.failures:,}"),
            ("Availability (every attempt)", _percent(load.availability)),
            ("Availability after retries", _percent(load.availability_after_retries)),
            ("p99", _ms(load.p99_ms)),
            ("Load gate", "passed" if load.gate_passed else "failed"),
            ("Audit", _audit_text(load.audit)),
            ("Results", load.results_dir),
        ]
    )
    if not load.statuses:
        return [facts]
    statuses = Table(
        ["Status", "Attempts"],
        [[status, f"{count:,}"] for status, count in sorted(load.statuses.items())],
        numeric=frozenset({1}),
        css="statuses",
    )
    return [facts, statuses]


def _ledger(ledger: LedgerVerification | None) -> list[Block]:
    if ledger is None:
        return [Paragraph("The ledger was not verified after this phase.", "note")]
    return [
        Paragraph(Pill(_ledger_text(ledger), _ledger_class(ledger))),
        Facts([(key, _value_text(value)) for key, value in ledger.to_json().items()]),
    ]


def _is_external(journal: str) -> bool:
    """A URL or an absolute path: not the relative path the model promises, so it is shown, never linked."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^[/\\]", journal) is not None

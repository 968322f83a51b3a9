"""Postmortem drafts: one blameless Markdown per incident phase, written from the game day's evidence.

`<out>/postmortems/<phase>.md` for every phase with a fault, in the common template: summary;
impact (customers' failed operations, error budget burned, SLOs touched); a timeline (fault start,
alerts, pages, diagnosis, mitigation, recovery) in time order; detection (time to detect, per
alert); response (the runbook steps the drill ran and what they found); recovery (time to
recover); what went well and what did not, from the phase's checks and graded runbooks; an action
item for each failed or slow check. Every figure is the one `report.json` holds for the phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chaos.drill import RIGHT, SLOW_DIAGNOSIS_SECONDS
from chaos.gameday_model import GameDayResult, PhaseResult
from runbooks.causes import CAUSES

FOLDER = "postmortems"


@dataclass(frozen=True, order=True)
class TimelineEntry:
    at: float  # unix seconds
    event: str


def write_postmortems(result: GameDayResult, out: Path) -> list[Path]:
    """A draft per phase with a fault; each phase's `postmortem` names its draft."""
    written = []
    for phase in result.phases:
        if phase.fault is None:
            continue
        path = out / FOLDER / f"{phase.name}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(draft(result, phase), encoding="utf-8")
        phase.postmortem = str(path.relative_to(out))
        written.append(path)
    return written


def timeline(phase: PhaseResult) -> list[TimelineEntry]:
    """What happened, in time order, from the fault's start to the platform serving again."""
    assert phase.fault is not None
    fault = phase.fault
    entries = [TimelineEntry(fault.start, f"Fault start: {phase.cause or 'fault'} injected ({phase.title})")]
    for alert in phase.alerts:
        entries.append(TimelineEntry(alert.start, f"Alert firing: {alert.alert} ({alert.severity})"))
    triggers = [page for page in phase.pages if page.event == "trigger"]
    for index, page in enumerate(sorted(triggers, key=lambda p: p.delivered_at)):
        what = "First page" if index == 0 else "Page"
        entries.append(TimelineEntry(page.delivered_at, f"{what} delivered: {page.alert} ({page.severity})"))
    for d in phase.diagnosis:
        if d.seconds_to_cause is not None:
            entries.append(
                TimelineEntry(d.paged_at + d.seconds_to_cause, f"Diagnosis: {d.runbook} named {d.cause} ({d.alert})")
            )
    entries.append(TimelineEntry(fault.end, "Mitigation: the fault was removed (the experiment's rollback)"))
    if phase.recovery_seconds is not None:
        entries.append(
            TimelineEntry(fault.end + phase.recovery_seconds, "Recovery: the last failed customer request ended")
        )
    return sorted(entries)


def draft(result: GameDayResult, phase: PhaseResult) -> str:
    assert phase.fault is not None
    lines = [
        f"# Postmortem (draft): {phase.title}",
        "",
        f"Blameless draft written by `nova gameday` from the evidence of phase `{phase.name}` "
        f"({result.database}, {result.monitoring}); edit it before the review. Nothing here names a person: "
        "what failed is the system and its safeguards.",
        "",
        "## Summary",
        "",
        _summary(phase),
        "",
        "## Impact",
        "",
        *_impact(phase),
        "",
        "## Timeline (UTC)",
        "",
        "| time | from fault start | event |",
        "|---|---|---|",
        *[f"| {_clock(e.at)} | {_offset(e.at - phase.fault.start)} | {e.event} |" for e in timeline(phase)],
        "",
        "## Detection",
        "",
        *_detection(phase),
        "",
        "## Response",
        "",
        *_response(phase),
        "",
        "## Recovery",
        "",
        *_recovery(phase),
        "",
        "## What went well",
        "",
        *(_went_well(phase) or ["- Nothing held: see below."]),
        "",
        "## What did not go well",
        "",
        *(_went_badly(phase) or ["- Every check held."]),
        "",
        "## Action items",
        "",
        *(_action_items(phase) or ["- None: every check held and every paged runbook named the cause quickly."]),
        "",
    ]
    return "\n".join(lines)


def _summary(phase: PhaseResult) -> str:
    assert phase.fault is not None
    cause = phase.cause or "an undeclared fault"
    meaning = f" ({CAUSES[cause]})" if cause in CAUSES else ""
    text = f"The game day injected `{cause}` for {phase.fault.seconds:.1f} s under market-open load{meaning}."
    if phase.load is not None:
        text += (
            f" Customers saw {phase.load.availability_after_retries:.4%} of operations succeed after retries"
            f" ({phase.load.failures} of {phase.load.requests} attempts failed)."
        )
    pages = [p for p in phase.pages if p.event == "trigger"]
    if pages:
        first = min(pages, key=lambda p: p.delivered_at)
        text += f" On-call was paged {len(pages)} time(s), first {_offset(first.delivered_at - phase.fault.start)}."
    else:
        text += " Nobody was paged."
    right = [d for d in phase.diagnosis if d.verdict == RIGHT]
    if phase.diagnosis:
        text += f" {len(right)} of {len(phase.diagnosis)} paged runbook(s) named the cause."
    if phase.recovery_seconds is not None:
        text += f" The platform served again {phase.recovery_seconds:.1f} s after the fault was removed."
    return text


def _impact(phase: PhaseResult) -> list[str]:
    lines = []
    load = phase.load
    if load is not None:
        lines.append(
            f"- Customers' failed operations: {load.failures} of {load.requests} attempts failed "
            f"({load.availability:.4%} succeeded); {load.availability_after_retries:.4%} of operations succeeded "
            "after the client's retries."
        )
        audit = load.audit
        if audit:
            lines.append(
                f"- Payments: {audit.payments_confirmed} of {audit.payments_acknowledged} acknowledged payments "
                f"found afterwards, {len(audit.lost)} lost."
            )
    else:
        lines.append("- Customers' failed operations: unknown (the phase's load run left no summary).")
    touched = [sli for sli in phase.slis if sli.bad_events > 0]
    for sli in phase.slis:
        if sli.budget_burned is not None and sli.bad_events > 0:
            lines.append(
                f"- Error budget burned, `{sli.sloth_id}`: {sli.budget_burned:.4%} of the 30-day budget "
                f"({sli.bad_events} bad of {sli.events} events, burn rate {sli.burn_rate:.1f}x)."
            )
    lines.append(
        f"- SLOs touched: {', '.join(f'`{sli.sloth_id}`' for sli in touched)}."
        if touched
        else "- SLOs touched: none (no bad event in the phase)."
    )
    return lines


def _detection(phase: PhaseResult) -> list[str]:
    if not phase.alerts:
        return ["- No alert began firing in this phase: the fault went undetected by the alerts."]
    lines = []
    for alert in phase.alerts:
        delivered = [
            p for p in phase.pages if p.event == "trigger" and alert.alert in p.alerts and p.severity == alert.severity
        ]
        page = f"; page delivered {_offset(delivered[0].seconds_after_fault)}" if delivered else "; no page delivered"
        ttd = _offset(alert.delay_seconds) if alert.delay_seconds is not None else "-"
        lines.append(f"- {alert.alert} ({alert.severity}): time to detect {ttd} (alert firing){page}.")
    return lines


def _response(phase: PhaseResult) -> list[str]:
    if not phase.diagnosis:
        return ["- No runbook was run: nothing paged in this phase."]
    lines = []
    for d in phase.diagnosis:
        when = f", {d.seconds_to_cause:.1f} s after the page" if d.seconds_to_cause is not None else ""
        lines.append(
            f"- {d.alert} ({d.severity}): `nova runbooks run` ran {d.steps} diagnostic step(s) of `{d.runbook}` "
            f"in {d.runbook_seconds:.1f} s; verdict **{d.verdict}** against `{d.cause}`{when}."
        )
        lines += [f"  - found: {finding}" for finding in d.findings] or ["  - found: nothing that names a cause"]
    return lines


def _recovery(phase: PhaseResult) -> list[str]:
    assert phase.fault is not None
    if phase.recovery_seconds is None:
        return [f"- The fault lasted {phase.fault.seconds:.1f} s; time to recover unknown (no load samples)."]
    return [
        f"- The fault lasted {phase.fault.seconds:.1f} s; time to recover {phase.recovery_seconds:.1f} s "
        "(from the fault's removal to the end of the last failed customer request)."
    ]


def _went_well(phase: PhaseResult) -> list[str]:
    lines = [f"- {check.name}: {check.detail}" for check in phase.checks if check.passed]
    lines += [
        f"- The {d.alert} ({d.severity}) runbook named `{d.cause}` in {d.seconds_to_cause:.1f} s."
        for d in phase.diagnosis
        if d.verdict == RIGHT and d.seconds_to_cause is not None and d.seconds_to_cause <= SLOW_DIAGNOSIS_SECONDS
    ]
    return lines


def _went_badly(phase: PhaseResult) -> list[str]:
    lines = [f"- {check.name}: {check.detail}" for check in phase.checks if not check.passed]
    for d in phase.diagnosis:
        if d.verdict != RIGHT:
            lines.append(f"- The {d.alert} ({d.severity}) runbook was {d.verdict} about `{d.cause}`.")
        elif d.seconds_to_cause is not None and d.seconds_to_cause > SLOW_DIAGNOSIS_SECONDS:
            lines.append(f"- The {d.alert} ({d.severity}) runbook took {d.seconds_to_cause:.1f} s to name `{d.cause}`.")
    return lines


def _action_items(phase: PhaseResult) -> list[str]:
    items = [f'- [ ] Fix what failed "{check.name}" ({check.detail}).' for check in phase.checks if not check.passed]
    for d in phase.diagnosis:
        if d.verdict != RIGHT:
            items.append(
                f"- [ ] Give `{d.runbook or d.alert}` a diagnostic that names `{d.cause}` "
                f"(it was {d.verdict}); run the drill again."
            )
        elif d.seconds_to_cause is not None and d.seconds_to_cause > SLOW_DIAGNOSIS_SECONDS:
            items.append(
                f"- [ ] Move the diagnostic of `{d.runbook}` that names `{d.cause}` earlier: it took "
                f"{d.seconds_to_cause:.1f} s (over {SLOW_DIAGNOSIS_SECONDS:.0f} s)."
            )
    return items


def _clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S.%f")[:-3]


def _offset(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:+.1f} s"

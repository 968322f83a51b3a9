"""The game-day report: what `nova gameday` found, as HTML, Markdown and JSON.

Owns the three files `write_report` writes into the game-day folder: `report.html` (one
self-contained page for the SRE after the game day: inline CSS and inline SVG plots, nothing
fetched, so it can be attached to a postmortem or opened offline), `report.md` with PNG plots under
`plots/` (for wikis and pull requests), and `report.json` (`GameDayResult.document()`, NaN and
infinities as null). Each file is written to a temporary name and renamed, so a reader never sees
half a report. The plots live in `chaos.gameday_plots`; page styling and text quoting are shared
with the SLO report (`slo.report`).
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
from slo.plots import RenderedPlot, format_time
from slo.report import _CSS as _SLO_CSS
from slo.report import _e, _fmt_burn, _fmt_duration, _md, _md_table, _time_tag, _unique_slugs

__all__ = ["GameDayReportFiles", "sanitize", "write_report"]

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
    png_names: dict[str, str] = {}
    for plot in plots:
        if plot.png is not None:
            name = f"gameday-{plot.kind}.png"
            _write_atomic(plots_dir / name, plot.png)
            png_names[plot.kind] = name
    slugs = _unique_slugs([phase.name for phase in result.phases])
    files = GameDayReportFiles(out / "report.html", out / "report.md", out / "report.json")
    document = json.dumps(sanitize(result.document()), indent=2, allow_nan=False) + "\n"
    _write_atomic(files.json, document.encode("utf-8"))
    _write_atomic(files.html, _html(result, slugs, plots).encode("utf-8"))
    _write_atomic(files.markdown, _markdown(result, slugs, plots, png_names).encode("utf-8"))
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
        f"{_fmt_duration(end - start)})"
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


def _budget_text(sli: SLIFigures | None) -> str:
    if sli is None or _number(sli.budget_burned) is None:
        return "—"
    return f"{_percent(sli.budget_burned, 2)} ({sli.sloth_id})"


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
        ("Duration", _fmt_duration(result.ended - result.started)),
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


# --- HTML -----------------------------------------------------------------------------------------


def _pill(css: str, words: str) -> str:
    return f'<span class="pill {_e(css)}">{_e(words)}</span>'


def _html(result: GameDayResult, slugs: Sequence[str], plots: Sequence[RenderedPlot]) -> str:
    css, verdict = _verdict(result)
    facts = "".join(f"<div><dt>{_e(k)}</dt><dd>{_e(v)}</dd></div>" for k, v in _facts(result))
    rows = "".join(_html_summary_row(result, p, s) for p, s in zip(result.phases, slugs, strict=True))
    rows = rows or '<tr><td colspan="11">No phase ran.</td></tr>'
    sections = "".join(_html_phase(result, p, s) for p, s in zip(result.phases, slugs, strict=True))
    figures = "".join(_html_figure(plot) for plot in plots)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="nova gameday">
<title>Game day {_e(verdict)} · {_e(format_time(result.started))}</title>
<style>{_SLO_CSS}{_CSS}{drill_report.CSS}</style>
</head>
<body>
<header class="page verdict-{_e(css)}">
<h1>Game day <span class="verdict">{_e(verdict)}</span></h1>
<dl class="meta">{facts}</dl>
</header>
<main>
<section class="peak" id="peak">
<h2>Load, time to detect and time to recover</h2>
{_table(PEAK_HEAD, [_html_row(row) for row in _peak_rows(result)], "No phase ran.", numeric=(1, 2, 3, 4, 5))}
</section>
<nav class="toc" aria-labelledby="summary-title">
<h2 id="summary-title">Phases</h2>
<div class="scroll"><table class="overview">
<thead><tr><th>Phase</th><th>Status</th><th class="num">Checks</th><th class="num">Availability after retries</th>\
<th class="num">p99</th><th class="num">Payments SLI</th><th>Budget burned (most)</th><th>Alerts fired (delay)</th>\
<th class="num">Recovery</th><th>Ledger</th><th>Verdict</th></tr></thead>
<tbody>{rows}</tbody>
</table></div>
</nav>
<section class="timeline" id="timeline">
<h2>Timeline</h2>
<p class="description">x axis: t+ seconds since the game day started at {_e(format_time(result.started))}; \
phases shaded grey and named at the top, fault windows in orange.</p>
<div class="plots">{figures}</div>
</section>
{drill_report.html_accuracy(result)}
{sections}
</main>
<footer>Times are UTC. Availability and p99 are the client's (<code>nova load</code>); SLIs and budget are the \
services' own metrics; “—” means no value.</footer>
</body>
</html>
"""


def _html_summary_row(result: GameDayResult, phase: PhaseResult, slug: str) -> str:
    load = phase.load
    payments = _payments_sli(phase)
    alerts = "<br>".join(_e(_alert_text(a)) for a in phase.alerts) or "none"
    return (
        f'<tr><td><a href="#phase-{_e(slug)}">{_e(phase.name)}</a></td>'
        f"<td>{_pill(phase.status, phase.status)}</td>"
        f'<td class="num">{_e(_checks_count(phase))}</td>'
        f'<td class="num">{_e(_percent(load.availability_after_retries if load else None))}</td>'
        f'<td class="num">{_e(_ms(load.p99_ms if load else None))}</td>'
        f'<td class="num">{_e(_percent(payments.sli if payments else None, 4))}</td>'
        f"<td>{_html_budget(_worst_burn(phase))}</td>"
        f"<td>{alerts}</td>"
        f'<td class="num">{_e(_seconds(phase.recovery_seconds))}</td>'
        f"<td>{_pill(_ledger_class(phase.ledger), _ledger_text(phase.ledger))}</td>"
        f"<td>{_pill('passed' if phase.passed else 'failed', 'passed' if phase.passed else 'failed')}</td></tr>"
    )


def _html_budget(sli: SLIFigures | None) -> str:
    if sli is None or _number(sli.budget_burned) is None:
        return "—"
    return f"{_e(_percent(sli.budget_burned, 2))}<br><span class='muted'>{_e(sli.sloth_id)}</span>"


def _html_figure(plot: RenderedPlot) -> str:
    if plot.svg is None:
        content = f'<p class="plot-empty">{_e(plot.empty_text or "")}</p>'
        state = " empty"
    else:
        content = plot.svg.replace("<svg ", f'<svg role="img" aria-label="{_e(plot.caption)}" ', 1)
        state = ""
    return (
        f'<figure class="plot full{state}" data-plot="{_e(plot.kind)}">'
        f"{content}<figcaption>{_e(plot.caption)}</figcaption></figure>"
    )


def _table(head: Sequence[str], rows: Sequence[str], empty: str, css: str = "", numeric: Sequence[int] = ()) -> str:
    """An HTML table of already-escaped rows, or a sentence when there are none; `numeric` columns align right."""
    if not rows:
        return f"<p class='none'>{_e(empty)}</p>"
    cells = "".join(f"<th{' class=num' if i in numeric else ''}>{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join(rows)
    table = f"<table class='{css}'><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"
    return f"<div class='scroll'>{table}</div>"


def _journal_link(journal: str | None) -> str:
    """A link to the journal beside the report; anything not a plain relative path is shown, not linked."""
    if journal is None:
        return _e("no journal")
    if _is_external(journal):
        return f"<code>{_e(journal)}</code>"
    return f'<a href="{_e(quote(journal))}"><code>{_e(journal)}</code></a>'


def _html_phase(result: GameDayResult, phase: PhaseResult, slug: str) -> str:
    facts = [
        ("Phase", f"<code>{_e(phase.name)}</code>"),
        ("Window", _e(_window_text(result, phase.window.start, phase.window.end))),
        (
            "Fault",
            _e("none (no fault injected)")
            if phase.fault is None
            else _e(_window_text(result, phase.fault.start, phase.fault.end)),
        ),
        ("Fault kind", _e(phase.fault_kind or "none")),
        ("Status", f"{_pill(phase.status, phase.status)} {_e(phase.reason)}"),
        ("Recovery", _e(_seconds(phase.recovery_seconds) + (" after the fault ended" if phase.fault else ""))),
        ("Journal", _journal_link(phase.journal)),
        ("Postmortem", drill_report.html_postmortem_link(phase)),
    ]
    facts_rows = "".join(f"<tr><th scope='row'>{_e(k)}</th><td>{v}</td></tr>" for k, v in facts)
    checks = _table(
        ["Check", "Result", "Evidence"],
        [
            f"<tr class='{'pass' if c.passed else 'fail'}'><td>{_e(c.name)}</td>"
            f"<td>{_pill('passed' if c.passed else 'failed', 'PASS' if c.passed else 'FAIL')}</td>"
            f"<td>{_e(c.detail)}</td></tr>"
            for c in phase.checks
        ],
        "No check was made for this phase.",
        "checks",
    )
    hypothesis = _table(
        ["When", "Probe", "Met", "Value"],
        [
            f"<tr><td>{_e(p.when)}</td><td>{_e(p.name)}</td>"
            f"<td>{_pill('passed' if p.met else 'failed', 'met' if p.met else 'not met')}</td>"
            f"<td><code>{_e(_value_text(p.value))}</code></td></tr>"
            for p in phase.hypothesis
        ],
        "No steady-state probe ran.",
    )
    slis = _table(
        ["SLO", "Events", "Bad", "SLI", "Burn rate", "Budget burned"],
        [
            f"<tr><td><code>{_e(s.sloth_id)}</code></td><td class='num'>{s.events:,}</td>"
            f"<td class='num'>{s.bad_events:,}</td><td class='num'>{_e(_percent(s.sli, 4))}</td>"
            f"<td class='num'>{_e(_fmt_burn(_number(s.burn_rate)))}</td>"
            f"<td class='num'>{_e(_percent(s.budget_burned, 2))}</td></tr>"
            for s in phase.slis
        ],
        "No SLI figures for this phase.",
        numeric=(1, 2, 3, 4, 5),
    )
    alerts = _table(
        ["Alert", "Severity", "SLO", "Started", "Delay after fault start", "Ended", "Alertmanager notified at"],
        [
            f"<tr><td>{_e(a.alert)}</td><td>{_pill('sev-' + a.severity, a.severity)}</td>"
            f"<td><code>{_e(a.sloth_id)}</code></td>"
            f"<td>{_time_tag(a.start)} <span class='muted'>{_e(_offset(result, a.start))}</span></td>"
            f"<td class='num'>{_e(_seconds(a.delay_seconds))}</td>"
            f"<td>{_time_tag(a.end, 'still firing')}</td>"
            f"<td>{_time_tag(a.notified_at, 'not notified')}</td></tr>"
            for a in phase.alerts
        ],
        "No alert began firing in this phase.",
        numeric=(4,),
    )
    already = (
        f"<p><strong>Already firing</strong> from an earlier phase: {_e(', '.join(phase.already_firing))}</p>"
        if phase.already_firing
        else ""
    )
    ledger = _html_ledger(phase.ledger)
    verdict = _pill("passed" if phase.passed else "failed", "passed" if phase.passed else "failed")
    return f"""<section class="phase status-{_e(phase.status)}" id="phase-{_e(slug)}">
<h2>{_e(phase.title)} {verdict}</h2>
<div class="cards">
<div class="card"><h3>Phase</h3><table class="facts">{facts_rows}</table></div>
<div class="card"><h3>Checks ({_e(_checks_count(phase))} passed)</h3>{checks}</div>
<div class="card"><h3>Load (client side)</h3>{_html_load(phase.load)}</div>
<div class="card"><h3>Hypothesis probes</h3>{hypothesis}</div>
<div class="card full"><h3>SLIs (server side)</h3>{slis}</div>
<div class="card full"><h3>Alerts</h3>{alerts}{already}</div>
{drill_report.html_phase_panels(phase)}
<div class="card full"><h3>Ledger verification</h3>{ledger}</div>
</div>
</section>
"""


def _html_load(load: LoadFigures | None) -> str:
    if load is None:
        return "<p class='none'>No load ran in this phase.</p>"
    facts = [
        ("Requests", f"{load.requests:,}"),
        ("Failures", f"{load.failures:,}"),
        ("Availability (every attempt)", _percent(load.availability)),
        ("Availability after retries", _percent(load.availability_after_retries)),
        ("p99", _ms(load.p99_ms)),
        ("Load gate", "passed" if load.gate_passed else "failed"),
        ("Audit", _audit_text(load.audit)),
        ("Results", load.results_dir),
    ]
    rows = "".join(f"<tr><th scope='row'>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    statuses = "".join(
        f"<tr><td>{_e(status)}</td><td class='num'>{count:,}</td></tr>"
        for status, count in sorted(load.statuses.items())
    )
    status_table = (
        f"<table class='statuses'><thead><tr><th>Status</th><th class='num'>Attempts</th></tr></thead>"
        f"<tbody>{statuses}</tbody></table>"
        if statuses
        else ""
    )
    return f"<table class='facts'>{rows}</table>{status_table}"


def _html_ledger(ledger: LedgerVerification | None) -> str:
    if ledger is None:
        return "<p class='none'>The ledger was not verified after this phase.</p>"
    rows = "".join(
        f"<tr><th scope='row'>{_e(key)}</th><td>{_e(_value_text(value))}</td></tr>"
        for key, value in ledger.to_json().items()
    )
    return f"<p>{_pill(_ledger_class(ledger), _ledger_text(ledger))}</p><table class='facts'>{rows}</table>"


_CSS = """
header.page.verdict-passed{border-bottom:6px solid #2da44e}
header.page.verdict-failed,header.page.verdict-aborted{border-bottom:6px solid #cf222e}
header.page .verdict{padding:0 10px;border-radius:6px}
header.page.verdict-passed .verdict{background:#1a7f37}
header.page.verdict-failed .verdict,header.page.verdict-aborted .verdict{background:#cf222e}
section.phase,section.timeline{background:#fff;border:1px solid var(--line);border-radius:8px;padding:18px 20px;
margin:0 0 20px}
section.phase.status-failed,section.phase.status-aborted{border-left:5px solid var(--bad)}
section.phase.status-deviated{border-left:5px solid #d4a72c}
section.phase .cards{grid-template-columns:1fr 1fr}
.plots{grid-template-columns:1fr}
.scroll{overflow-x:auto}
.muted{color:var(--muted);font-size:12px}
.pill.passed{background:var(--okbg);color:var(--ok);border-color:#aceebb}
.pill.failed,.pill.aborted{background:var(--badbg);color:var(--bad);border-color:#ffcecb}
.pill.deviated{background:var(--warnbg);color:var(--warn);border-color:#eed888}
table.checks tr.fail td{background:#fff5f5}
table.overview td{font-variant-numeric:tabular-nums}
table.overview a{word-break:normal}
table.overview th.num,table th.num{text-align:right}
section.phase table.facts td{white-space:normal;overflow-wrap:anywhere}
"""


# --- Markdown -------------------------------------------------------------------------------------


def _html_row(cells: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in cells) + "</tr>"


def _md_anchor(slug: str) -> str:
    return "phase-" + slug.lower()


def _markdown(
    result: GameDayResult, slugs: Sequence[str], plots: Sequence[RenderedPlot], png_names: dict[str, str]
) -> str:
    _, verdict = _verdict(result)
    out = [f"# Game day {verdict}", ""]
    out += [f"- **{_md(k)}:** {_md(v)}" for k, v in _facts(result)]
    out += ["", "## Load, time to detect and time to recover", ""]
    rows = _peak_rows(result)
    out.append(_md_table(list(PEAK_HEAD), [[_md(cell) for cell in row] for row in rows]) if rows else "No phase ran.")
    out += ["", "## Phases", ""]
    if result.phases:
        out.append(
            _md_table(
                [
                    "Phase",
                    "Status",
                    "Checks",
                    "Availability after retries",
                    "p99",
                    "Payments SLI",
                    "Budget burned (most)",
                    "Alerts fired",
                    "Recovery",
                    "Ledger",
                    "Verdict",
                ],
                [_md_summary_row(phase, slug) for phase, slug in zip(result.phases, slugs, strict=True)],
            )
        )
    else:
        out.append("No phase ran.")
    out += [
        "",
        "## Timeline",
        "",
        _md(
            f"x axis: t+ seconds since the game day started at {format_time(result.started)}; phases shaded "
            "grey and named at the top, fault windows in orange.",
            starts_line=True,
        ),
        "",
    ]
    for plot in plots:
        name = png_names.get(plot.kind)
        if name is None:
            out += [f"**{_md(plot.kind)}:** _{_md(plot.empty_text or '')}_", ""]
        else:
            out += [f"![{_md(plot.kind)} plot](plots/{name})", "", f"_{_md(plot.caption)}_", ""]
    out += drill_report.markdown_accuracy(result)
    for phase, slug in zip(result.phases, slugs, strict=True):
        out += [_markdown_phase(result, phase, slug), ""]
    out += [
        "_Times are UTC. Availability and p99 are the client's (nova load); SLIs and budget are the services' own "
        "metrics; “—” means no value._",
        "",
    ]
    return "\n".join(out)


def _md_summary_row(phase: PhaseResult, slug: str) -> list[str]:
    load = phase.load
    payments = _payments_sli(phase)
    return [
        f"[{_md(phase.name)}](#{_md_anchor(slug)})",
        _md(phase.status),
        _md(_checks_count(phase)),
        _md(_percent(load.availability_after_retries if load else None)),
        _md(_ms(load.p99_ms if load else None)),
        _md(_percent(payments.sli if payments else None, 4)),
        _md(_budget_text(_worst_burn(phase))),
        "<br>".join(_md(_alert_text(a)) for a in phase.alerts) or "none",
        _md(_seconds(phase.recovery_seconds)),
        _md(_ledger_text(phase.ledger)),
        "passed" if phase.passed else "**failed**",
    ]


def _markdown_phase(result: GameDayResult, phase: PhaseResult, slug: str) -> str:
    out = [f'<a id="{_md_anchor(slug)}"></a>', "", f"## {_md(phase.title)} ({'passed' if phase.passed else 'failed'})"]
    fault = (
        "none (no fault injected)" if phase.fault is None else _window_text(result, phase.fault.start, phase.fault.end)
    )
    if phase.journal is None:
        journal = "no journal"
    elif _is_external(phase.journal):
        journal = _md(phase.journal)
    else:
        journal = f"[{_md(phase.journal)}]({quote(phase.journal)})"
    out += [
        "",
        _md_table(
            ["", ""],
            [
                ["Phase", _md(phase.name)],
                ["Window", _md(_window_text(result, phase.window.start, phase.window.end))],
                ["Fault", _md(fault)],
                ["Fault kind", _md(phase.fault_kind or "none")],
                ["Status", f"{_md(phase.status)}: {_md(phase.reason)}"],
                ["Recovery", _md(_seconds(phase.recovery_seconds))],
                ["Journal", journal],
                ["Postmortem", drill_report.markdown_postmortem_link(phase)],
            ],
        ),
        "",
        f"### Checks ({_checks_count(phase)} passed)",
        "",
    ]
    out.append(
        _md_table(
            ["Check", "Result", "Evidence"],
            [[_md(c.name), "PASS" if c.passed else "**FAIL**", _md(c.detail)] for c in phase.checks],
        )
        if phase.checks
        else "No check was made for this phase."
    )
    out += ["", "### Hypothesis probes", ""]
    out.append(
        _md_table(
            ["When", "Probe", "Met", "Value"],
            [
                [_md(p.when), _md(p.name), "met" if p.met else "**not met**", _md(_value_text(p.value))]
                for p in phase.hypothesis
            ],
        )
        if phase.hypothesis
        else "No steady-state probe ran."
    )
    out += ["", "### Load (client side)", ""]
    load = phase.load
    if load is None:
        out.append("No load ran in this phase.")
    else:
        out.append(
            _md_table(
                ["", ""],
                [
                    ["Requests", f"{load.requests:,}"],
                    ["Failures", f"{load.failures:,}"],
                    ["Availability (every attempt)", _md(_percent(load.availability))],
                    ["Availability after retries", _md(_percent(load.availability_after_retries))],
                    ["p99", _md(_ms(load.p99_ms))],
                    ["Load gate", "passed" if load.gate_passed else "failed"],
                    ["Audit", _md(_audit_text(load.audit))],
                    ["Results", _md(load.results_dir)],
                ],
            )
        )
        if load.statuses:
            out += [
                "",
                _md_table(
                    ["Status", "Attempts"],
                    [[_md(status), f"{count:,}"] for status, count in sorted(load.statuses.items())],
                ),
            ]
    out += ["", "### SLIs (server side)", ""]
    out.append(
        _md_table(
            ["SLO", "Events", "Bad", "SLI", "Burn rate", "Budget burned"],
            [
                [
                    _md(s.sloth_id),
                    f"{s.events:,}",
                    f"{s.bad_events:,}",
                    _md(_percent(s.sli, 4)),
                    _md(_fmt_burn(_number(s.burn_rate))),
                    _md(_percent(s.budget_burned, 2)),
                ]
                for s in phase.slis
            ],
        )
        if phase.slis
        else "No SLI figures for this phase."
    )
    out += ["", "### Alerts", ""]
    out.append(
        _md_table(
            ["Alert", "Severity", "SLO", "Started", "Delay after fault start", "Ended", "Alertmanager notified at"],
            [
                [
                    _md(a.alert),
                    _md(a.severity),
                    _md(a.sloth_id),
                    _md(f"{format_time(a.start)} ({_offset(result, a.start)})"),
                    _md(_seconds(a.delay_seconds)),
                    _md("still firing" if a.end is None else format_time(a.end)),
                    _md("not notified" if a.notified_at is None else format_time(a.notified_at)),
                ]
                for a in phase.alerts
            ],
        )
        if phase.alerts
        else "No alert began firing in this phase."
    )
    if phase.already_firing:
        out += ["", f"Already firing from an earlier phase: {_md(', '.join(phase.already_firing))}"]
    out += drill_report.markdown_phase_panels(phase)
    out += ["", "### Ledger verification", ""]
    if phase.ledger is None:
        out.append("The ledger was not verified after this phase.")
    else:
        out += [
            f"**{_md(_ledger_text(phase.ledger))}**",
            "",
            _md_table(["", ""], [[_md(k), _md(_value_text(v))] for k, v in phase.ledger.to_json().items()]),
        ]
    return "\n".join(out)


def _is_external(journal: str) -> bool:
    """A URL or an absolute path: not the relative path the model promises, so it is shown, never linked."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^[/\\]", journal) is not None

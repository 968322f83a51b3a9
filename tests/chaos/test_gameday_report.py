"""Game-day reports (`chaos.gameday_report`): what report.html, report.md and report.json promise.

The fixture is a quick game day as the runner would fill it: a baseline and two experiments under
load, 40 scraper steps of 5 s for payments and portfolio; the 5% payment-errors experiment fires
the payments page 34 s after its fault starts and fails its availability check. The browser test
renders the page in headless Chromium: "self-contained" is only proven by a browser drawing it.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from chaos.gameday_model import (
    AlertFiring,
    Check,
    GameDayResult,
    LoadFigures,
    PhaseResult,
    ProbeResult,
    SeriesPoint,
    SLIFigures,
    Window,
)
from chaos.gameday_plots import GAMEDAY_PLOT_KINDS
from chaos.gameday_report import GameDayReportFiles, sanitize, write_report
from loadtests.audit import PaymentAudit
from loadtests.ledger_verification import LedgerVerification
from tests.browser import chromium, run_chromium

T0 = 1_767_261_600.0  # 2026-01-01 10:00:00 UTC
STEP = 5.0
FAILED_CHECK = "payments availability after retries >= 99.99%"


def _load(requests: int, failures: int, p99: float, *, after_retries: float = 1.0) -> LoadFigures:
    return LoadFigures(
        requests=requests,
        failures=failures,
        availability=1 - failures / requests,
        availability_after_retries=after_retries,
        p99_ms=p99,
        gate_passed=after_retries >= 0.9999,
        statuses={"200": requests - failures, **({"503": failures} if failures else {})},
        audit=_audit(lost=["pay_7f3a"] if failures else []),
        results_dir="load/baseline",
    )


def _audit(*, lost: list[str]) -> PaymentAudit:
    """loadtests' audit.json, as `loadtests.audit` writes it."""
    document = {
        "payments_acknowledged": 412,
        "payments_confirmed": 412 - len(lost),
        "payments_unknown": 3 if lost else 0,
        "payments_refused": 0,
        "payments_lost": len(lost),
        "lost": lost,
        "accounts_checked": 120,
        "accounts_skipped": 2,
        "balance_mismatches": [{"account": "acc_1", "expected_minor": 1000, "actual_minor": 900}] if lost else [],
        "lookups_failed": 0,
        "processes": 1,
        "processes_missing": 0,
        "passed": not lost,
    }
    return PaymentAudit.from_json(document)


def _sli(service: str, events: int, bad: int) -> SLIFigures:
    ratio = bad / events
    return SLIFigures(f"{service}-availability", 0.9999, events, bad, 1 - ratio, ratio / 0.0001, ratio / 0.0001 / 8640)


LEDGER = LedgerVerification(True, sum_minor={"EUR": 0}, negative_accounts=0, payments=412, entries=824)


def _phases() -> list[PhaseResult]:
    page = AlertFiring(
        alert="PaymentsAvailabilityBurn",
        severity="page",
        sloth_id="payments-availability",
        start=T0 + 104,
        end=T0 + 165,
        delay_seconds=34.0,
        notified_at=T0 + 106,
    )
    return [
        PhaseResult(
            name="baseline",
            title="Baseline under market-open load",
            window=Window(T0, T0 + 60),
            fault=None,
            status="passed",
            reason="steady state held",
            hypothesis=[ProbeResult("before", "payments-healthy", True, {"status": 200})],
            load=_load(2400, 0, 82.0),
            slis=[_sli("payments", 1800, 0), _sli("portfolio", 600, 0)],
            ledger=LEDGER,
            checks=[Check("payments availability after retries >= 99.99%", True, "100.000% of 1,800 operations")],
            journal="journals/baseline.json",
        ),
        PhaseResult(
            name="portfolio-payment-errors-5pct",
            title="Portfolio sees 5% payment errors",
            window=Window(T0 + 60, T0 + 140),
            fault=Window(T0 + 70, T0 + 120),
            status="deviated",
            reason="steady state after the method was not met",
            hypothesis=[
                ProbeResult("before", "payments-error-ratio-below", True, 0.0),
                ProbeResult("after", "payments-error-ratio-below", False, 0.048),
            ],
            load=_load(3200, 160, 140.0, after_retries=0.9987),
            slis=[_sli("payments", 2400, 120), _sli("portfolio", 800, 40)],
            alerts=[page],
            recovery_seconds=12.0,
            ledger=LEDGER,
            checks=[
                Check("page fired within 120 s of the fault", True, "PaymentsAvailabilityBurn page after 34 s"),
                Check(FAILED_CHECK, False, "99.870% of 2,400 operations"),
            ],
            journal="journals/portfolio-payment-errors-5pct.json",
        ),
        PhaseResult(
            name="db-latency",
            title="Database answers 150 ms late",
            window=Window(T0 + 140, T0 + 200),
            fault=Window(T0 + 150, T0 + 180),
            status="passed",
            reason="steady state held",
            load=_load(2400, 0, 188.0),
            slis=[_sli("payments", 1800, 0), _sli("portfolio", 600, 0)],
            already_firing=["PaymentsAvailabilityBurn"],
            recovery_seconds=0.0,
            ledger=LEDGER,
            checks=[Check("p99 below 200 ms", True, "188 ms")],
            journal="journals/db-latency.json",
        ),
    ]


def _series(scale: int, error_share: int, slower_ms: float) -> list[SeriesPoint]:
    """40 steps of 5 s: errors while payment errors are injected, slow while the database is slow."""
    points = []
    for i in range(40):
        t = T0 + i * STEP
        requests = 40 * scale + (i % 5) * scale
        errors = requests // error_share if 70 <= t - T0 < 120 else 0
        p99 = 150.0 + slower_ms + (i % 3) * 5 if 150 <= t - T0 < 180 else 55.0 + slower_ms / 4 + (i % 4) * 4
        points.append(SeriesPoint(t, requests, errors, 0, p99, 0.3, 0.1))
    return points


def _result() -> GameDayResult:
    return GameDayResult(
        started=T0,
        ended=T0 + 200,
        quick=True,
        database="sqlite",
        monitoring="prometheus+alertmanager",
        machine="2 cores, 4 GiB",
        phases=_phases(),
        series={"payments": _series(3, 20, 10.0), "portfolio": _series(1, 40, 60.0)},
        step_seconds=STEP,
    )


@pytest.fixture()
def result() -> GameDayResult:
    """A fresh game day for a test to change before writing its own report."""
    return _result()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> GameDayReportFiles:
    """The fixture game day's report, written once for the tests that only read it."""
    return write_report(_result(), tmp_path_factory.mktemp("gameday"))


class _Figures(HTMLParser):
    """The report's <figure data-plot> elements, and the <svg> each holds."""

    def __init__(self) -> None:
        super().__init__()
        self.kinds: list[str] = []
        self.with_svg: list[str] = []
        self.svg_ids: list[str] = []
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "figure" and values.get("data-plot"):
            self._current = values["data-plot"]
            self.kinds.append(self._current or "")
        elif tag == "svg" and self._current is not None:
            self.with_svg.append(self._current)
        if tag != "html" and values.get("id"):
            self.svg_ids.append(values["id"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._current = None


def _figures(page: str) -> _Figures:
    parser = _Figures()
    parser.feed(page)
    return parser


def _strict_json(path: Path) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"report.json holds {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


# --- report.json ----------------------------------------------------------------------------------


def test_json_round_trips_the_result_document(report: GameDayReportFiles, result: GameDayResult) -> None:
    assert _strict_json(report.json) == json.loads(json.dumps(result.document()))


def test_json_carries_the_verdict_per_phase_and_for_the_day(report: GameDayReportFiles) -> None:
    document = _strict_json(report.json)
    assert document["passed"] is False
    assert [(p["name"], p["passed"]) for p in document["phases"]] == [
        ("baseline", True),
        ("portfolio-payment-errors-5pct", False),
        ("db-latency", True),
    ]


def test_json_turns_nan_and_infinity_into_null(result: GameDayResult, tmp_path: Path) -> None:
    phase = result.phases[0]
    assert phase.load is not None
    phase.load = replace(phase.load, p99_ms=math.nan)
    phase.slis = [replace(phase.slis[0], sli=math.nan, burn_rate=math.inf)]
    phase.hypothesis = [ProbeResult("after", "latency", True, {"p99": -math.inf, "steps": [1.0, math.nan]})]
    result.series["payments"][0].p99_ms = math.nan
    document = _strict_json(write_report(result, tmp_path).json)
    entry = document["phases"][0]
    assert entry["load"]["p99_ms"] is None
    assert (entry["slis"][0]["sli"], entry["slis"][0]["burn_rate"]) == (None, None)
    assert entry["hypothesis"][0]["value"] == {"p99": None, "steps": [1.0, None]}
    assert document["series"]["payments"][0]["p99_ms"] is None


def test_sanitize_reaches_into_nested_containers() -> None:
    assert sanitize({"a": [math.nan, (1.5, math.inf)], "b": "nan"}) == {"a": [None, [1.5, None]], "b": "nan"}


def test_rewriting_a_report_replaces_it_and_leaves_no_temporary_file(result: GameDayResult, tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("stale")
    write_report(result, tmp_path)
    assert _strict_json(tmp_path / "report.json")["started"] == T0
    assert not [p.name for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


# --- report.html ----------------------------------------------------------------------------------


def test_html_fetches_nothing_from_outside(report: GameDayReportFiles) -> None:
    page = report.html.read_text()
    assert not re.search(r"""\b(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page
    assert "<link" not in page
    assert "@import" not in page
    assert "url(http" not in page


def test_html_has_one_inline_svg_per_plot(report: GameDayReportFiles) -> None:
    page = report.html.read_text()
    figures = _figures(page)
    assert figures.kinds == list(GAMEDAY_PLOT_KINDS)
    assert figures.with_svg == list(GAMEDAY_PLOT_KINDS)
    assert page.count("<svg") == len(GAMEDAY_PLOT_KINDS)


def test_html_element_ids_are_unique_across_the_inlined_svgs(report: GameDayReportFiles) -> None:
    ids = _figures(report.html.read_text()).svg_ids
    assert len(ids) > 20
    assert len(ids) == len(set(ids))


def test_html_names_every_phase_and_every_failed_check(report: GameDayReportFiles, result: GameDayResult) -> None:
    page = report.html.read_text()
    for phase in result.phases:
        assert f'href="#phase-{phase.name}"' in page and f'id="phase-{phase.name}"' in page
        assert phase.title in page
    assert FAILED_CHECK.replace(">", "&gt;") in page
    assert re.search(
        r"payments availability after retries &gt;= 99\.99%</td><td><span class=\"pill failed\">FAIL", page
    )


def test_html_header_states_verdict_date_duration_and_setup(report: GameDayReportFiles) -> None:
    header = report.html.read_text().split("</header>", 1)[0]
    assert 'Game day <span class="verdict">FAILED</span>' in header
    for fact in ("2026-01-01 10:00 UTC", "3m20s", "quick", "sqlite", "prometheus+alertmanager", "2 cores, 4 GiB"):
        assert f"<dd>{fact}</dd>" in header


def test_html_summary_gives_alerts_with_delay_after_fault_start(report: GameDayReportFiles) -> None:
    summary = report.html.read_text().split('id="timeline"', 1)[0]
    assert "PaymentsAvailabilityBurn page +34 s" in summary
    assert "1/2" in summary and "99.870%" in summary


def test_html_gives_the_audit_line_of_each_load_run(report: GameDayReportFiles) -> None:
    page = report.html.read_text()
    assert "acknowledged payments: 412 / confirmed: 412 / lost: 0 / balance mismatches: 0 / audit passed" in page
    assert (
        "acknowledged payments: 412 / confirmed: 411 / lost: 1 / balance mismatches: 1 / outcome unknown: 3"
        " / audit FAILED"
    ) in page


def test_html_links_each_journal_relatively(report: GameDayReportFiles) -> None:
    page = report.html.read_text()
    assert '<a href="journals/portfolio-payment-errors-5pct.json">' in page


def test_html_escapes_a_hostile_phase_title(result: GameDayResult, tmp_path: Path) -> None:
    result.phases[1].title = '<script>alert("x")</script> & co'
    result.phases[1].checks[1] = Check("<img src=x onerror=alert(1)>", False, "<b>bold</b>")
    page = write_report(result, tmp_path).html.read_text()
    assert "<script" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page


def test_passed_game_day_says_passed(result: GameDayResult, tmp_path: Path) -> None:
    result.phases = result.phases[:1]
    page = write_report(result, tmp_path).html.read_text()
    assert 'Game day <span class="verdict">PASSED</span>' in page


def test_interrupted_game_day_says_why(result: GameDayResult, tmp_path: Path) -> None:
    result.interrupted = True
    result.error = "Ctrl-C during db-latency"
    files = write_report(result, tmp_path)
    assert 'Game day <span class="verdict">INTERRUPTED</span>' in files.html.read_text()
    assert "Ctrl-C during db-latency" in files.markdown.read_text()


# --- report.md ------------------------------------------------------------------------------------


def test_markdown_references_png_files_that_exist(report: GameDayReportFiles) -> None:
    text = report.markdown.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == sorted(f"plots/gameday-{kind}.png" for kind in GAMEDAY_PLOT_KINDS)
    for link in links:
        assert (report.markdown.parent / link).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_states_phases_checks_and_alerts(report: GameDayReportFiles) -> None:
    text = report.markdown.read_text()
    assert text.startswith("# Game day FAILED")
    assert "| [portfolio-payment-errors-5pct](#phase-portfolio-payment-errors-5pct) | deviated | 1/2 |" in text
    assert "| payments availability after retries &gt;= 99.99% | **FAIL** | 99.870% of 2,400 operations |" in text
    assert "PaymentsAvailabilityBurn page +34 s" in text


def test_a_wait_for_an_earlier_page_to_resolve_is_said_with_the_phase(result: GameDayResult, tmp_path: Path) -> None:
    result.phases[1].settled_seconds, result.phases[1].settled_for = 184.0, ["PaymentsAvailabilityBurn"]

    files = write_report(result, tmp_path)

    expected = "184 s before this phase for PaymentsAvailabilityBurn to resolve"
    assert expected in files.html.read_text() and expected in files.markdown.read_text()


# --- degenerate input -----------------------------------------------------------------------------


def test_empty_series_and_a_phase_without_load_still_render(result: GameDayResult, tmp_path: Path) -> None:
    result.series = {"payments": [], "portfolio": []}
    result.phases[0].load = None
    result.phases[0].slis = []
    files = write_report(result, tmp_path)
    page = files.html.read_text()
    assert "No traffic to plot" in page and "No load ran in this phase." in page
    assert _figures(page).with_svg == ["alerts"]
    assert "No load ran in this phase." in files.markdown.read_text()
    assert _strict_json(files.json)["phases"][0]["load"] is None


def test_game_day_with_no_phase_and_no_alert_renders_notes(result: GameDayResult, tmp_path: Path) -> None:
    result.phases = []
    result.series = {}
    page = write_report(result, tmp_path).html.read_text()
    assert "No phase ran." in page and "No alert fired between" in page
    assert "<svg" not in page


# --- in a real browser ----------------------------------------------------------------------------


def test_report_renders_its_plots_in_headless_chromium(report: GameDayReportFiles, tmp_path: Path) -> None:
    """Set NOVA_GAMEDAY_SCREENSHOT to a path to keep the screenshot for a human to look at."""
    browser = chromium()
    url = report.html.resolve().as_uri()
    dom = run_chromium(browser, tmp_path / "profile", "--dump-dom", url).stdout
    assert _figures(dom).with_svg == list(GAMEDAY_PLOT_KINDS)
    assert dom.count("<path") > 100
    screenshot = tmp_path / "report.png"
    run_chromium(browser, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1280,5200", url)
    assert screenshot.stat().st_size > 50_000
    if target := os.environ.get("NOVA_GAMEDAY_SCREENSHOT"):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, target)


def test_alert_still_firing_at_the_end_is_drawn_to_the_end_and_said(result: GameDayResult, tmp_path: Path) -> None:
    phase = result.phases[1]
    phase.alerts = [replace(phase.alerts[0], end=None)]
    page = write_report(result, tmp_path).html.read_text()
    alerts_plot = page.split('data-plot="alerts"', 1)[1].split("</figure>", 1)[0]
    assert "still firing" in alerts_plot
    assert "<td>still firing</td>" in page

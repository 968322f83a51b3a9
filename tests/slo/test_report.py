"""SLO reports (`slo.report`): what report.html, report.md and report.json promise their readers.

Timelines are built here with numpy, as the evaluator would fill them: trailing-window error
ratios from per-step ratios, the period ratio over the history so far, and burn-rate alerts from
the workbook's window pairs. The browser test renders the HTML in headless Chromium, because
"self-contained and readable" is only proven by a real browser drawing it.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from slo.errors import SourceError
from slo.plots import MAX_POINTS, PLOT_KINDS, downsample
from slo.report import ReportFiles, write_report
from slo.timeline import AlertInterval, Series, SLOTimeline, Threshold
from tests.browser import chromium, run_chromium

MINUTE, HOUR, DAY = 60, 3600, 86400
T0 = 1_767_225_600  # 2026-01-01 00:00 UTC
WINDOWS = {"5m": 5, "30m": 30, "1h": 60, "2h": 120, "6h": 360, "1d": 1440, "3d": 4320, "30d": 43200}
THRESHOLDS = [
    Threshold("page", "5m", "1h", 14.4),
    Threshold("page", "30m", "6h", 6.0),
    Threshold("ticket", "2h", "1d", 3.0),
    Threshold("ticket", "6h", "3d", 1.0),
]
GENERATED_AT = datetime(2026, 1, 3, 9, 30, tzinfo=UTC)


def _trailing_mean(values: Series, rows: int, *, partial: bool) -> Series:
    """Mean over the last `rows` steps including this one; NaN without full history unless `partial`."""
    sums = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(values.shape[0])
    first = np.maximum(index + 1 - rows, 0)
    mean: Series = (sums[index + 1] - sums[first]) / (index + 1 - first)
    if not partial:
        mean[index + 1 < rows] = np.nan
    return mean


def _alerts(name: str, ratio: dict[str, Series], budget: float, times: Series) -> list[AlertInterval]:
    intervals = []
    for severity in ("page", "ticket"):
        holds = np.zeros(times.shape[0], dtype=bool)
        for t in (t for t in THRESHOLDS if t.severity == severity):
            with np.errstate(invalid="ignore"):
                holds |= (ratio[t.short] / budget > t.factor) & (ratio[t.long] / budget > t.factor)
        edges = np.diff(np.concatenate([[0], holds.astype(np.int8), [0]]))
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            intervals.append(
                AlertInterval(name, severity, float(times[a]), float(times[b]) if b < len(times) else None)
            )
    return sorted(intervals, key=lambda a: (a.start, a.severity))


def make_timeline(
    *,
    sloth_id: str = "payments-availability",
    service: str = "payments",
    slo: str = "availability",
    description: str = "Payments API requests that do not fail with 5xx.",
    days: int = 2,
    burst_at: float | None = 30 * HOUR,
    burst_minutes: int = 60,
    burst_ratio: float = 0.05,
    quiet_tail_minutes: int = 0,
    latency: bool = True,
    seed: int = 7,
) -> SLOTimeline:
    """`days` at one-minute steps of a 99.9% SLO, with an error burst that pages (unless `burst_at` is None).

    `quiet_tail_minutes` ends the timeline with that many steps without traffic, so short
    windows have no value (NaN) at the last step.
    """
    rng = np.random.default_rng(seed)
    steps = days * DAY // MINUTE
    times = T0 + np.arange(1, steps + 1, dtype=np.float64) * MINUTE
    budget = 0.001
    per_step = rng.gamma(2.0, 0.00005, steps)
    burst = np.zeros(steps, dtype=bool)
    if burst_at is not None:
        first = int(burst_at // MINUTE)
        burst[first : first + burst_minutes] = True
        per_step[burst] = burst_ratio * rng.uniform(0.8, 1.2, burst_minutes)
    ratio = {w: _trailing_mean(per_step, rows, partial=w == "30d") for w, rows in WINDOWS.items()}
    if quiet_tail_minutes:
        for w, rows in WINDOWS.items():
            if rows <= quiet_tail_minutes:
                ratio[w][-quiet_tail_minutes:] = np.nan
    p50 = p99 = None
    if latency:
        p50 = 38 + rng.normal(0, 3, steps)
        p99 = 120 + rng.gamma(2.0, 8.0, steps) + np.where(burst, 320.0, 0.0)
    return SLOTimeline(
        sloth_id=sloth_id,
        service=service,
        slo=slo,
        objective=0.999,
        error_budget=budget,
        period_days=30.0,
        timestamps=times,
        error_ratio=ratio,
        thresholds=list(THRESHOLDS),
        budget_remaining=1 - ratio["30d"] / budget,
        alerts=_alerts("PaymentsAvailabilityBurn", ratio, budget, times) if burst_at is not None else [],
        latency_p50_ms=p50,
        latency_p99_ms=p99,
        latency_threshold_ms=200.0 if latency else None,
        description=description,
    )


def quiet_timeline() -> SLOTimeline:
    """A portfolio SLO with no latency series, no alert, and no traffic in its last 10 minutes."""
    return make_timeline(
        sloth_id="portfolio-orders",
        service="portfolio",
        slo="orders",
        description="Orders accepted without a server error.",
        burst_at=None,
        quiet_tail_minutes=10,
        latency=False,
        seed=11,
    )


def _write(tmp_path: Path, timelines: list[SLOTimeline], *, title: str = "Weekly SLO review") -> ReportFiles:
    return write_report(timelines, tmp_path / "report", title=title, source="tests", generated_at=GENERATED_AT)


@pytest.fixture(scope="module")
def timelines() -> list[SLOTimeline]:
    return [make_timeline(), quiet_timeline()]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, timelines: list[SLOTimeline]) -> ReportFiles:
    return _write(tmp_path_factory.mktemp("report"), timelines)


@pytest.fixture(scope="module")
def report_json(report: ReportFiles) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(report.json.read_text())
    return loaded


@dataclass
class _Figure:
    kind: str
    slo: str
    has_svg: bool = False
    drawn_paths: int = 0
    text: list[str] = field(default_factory=list)


class _Figures(HTMLParser):
    """The `figure.plot` elements of a document, with whether each holds an SVG with drawn paths."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[_Figure] = []
        self._current: _Figure | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "figure" and "plot" in values.get("class", "").split():
            self._current = _Figure(values.get("data-plot", ""), values.get("data-slo", ""))
            self.figures.append(self._current)
        elif self._current is not None and tag == "svg":
            self._current.has_svg = True
        elif self._current is not None and self._current.has_svg and tag == "path" and "L" in values.get("d", ""):
            self._current.drawn_paths += 1  # a drawn path has at least one segment, not just a move

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None and not self._current.has_svg:
            self._current.text.append(data)


def _figures(document: str) -> list[_Figure]:
    parser = _Figures()
    parser.feed(document)
    return parser.figures


# --- report.html ----------------------------------------------------------------------------------


def test_html_fetches_nothing_from_outside(report: ReportFiles) -> None:
    page = report.html.read_text()
    assert 'src="http' not in page
    assert "<link" not in page
    assert "<script" not in page
    assert "@import" not in page
    assert "url(http" not in page


def test_html_has_the_five_plot_figures_for_every_slo(report: ReportFiles, timelines: list[SLOTimeline]) -> None:
    found = sorted((f.slo, f.kind) for f in _figures(report.html.read_text()))
    assert found == sorted((t.sloth_id, kind) for t in timelines for kind in PLOT_KINDS)


def test_html_plots_are_inline_svg_with_ids_unique_across_the_page(report: ReportFiles) -> None:
    page = report.html.read_text()
    ids = [part.split('"', 1)[0] for part in page.split(' id="')[1:]]
    assert page.count("<svg") == 8  # 5 for the paging SLO, 3 for the quiet one (no latency, no alerts)
    assert len(ids) == len(set(ids))


def test_html_header_names_title_source_and_generation_time(report: ReportFiles) -> None:
    page = report.html.read_text()
    assert "<title>Weekly SLO review</title>" in page
    assert '<time datetime="2026-01-03T09:30:00Z">2026-01-03 09:30 UTC</time>' in page
    assert 'href="#slo-payments-availability"' in page and 'id="slo-payments-availability"' in page


def test_slo_without_latency_says_so_instead_of_plotting(report: ReportFiles) -> None:
    (latency,) = [f for f in _figures(report.html.read_text()) if (f.slo, f.kind) == ("portfolio-orders", "latency")]
    assert not latency.has_svg
    assert "No latency series" in "".join(latency.text)


def test_slo_without_alerts_says_no_alert_fired(report: ReportFiles) -> None:
    (alerts,) = [f for f in _figures(report.html.read_text()) if (f.slo, f.kind) == ("portfolio-orders", "alerts")]
    assert not alerts.has_svg
    assert "No alert fired between 2026-01-01 00:01 UTC and 2026-01-03 00:00 UTC." in "".join(alerts.text)
    assert "No alert fired" in report.markdown.read_text()


def test_hostile_names_are_escaped_in_html_and_markdown(tmp_path: Path) -> None:
    hostile = replace(
        make_timeline(),
        sloth_id='x"><script>alert(1)</script>',
        service="<img src=x onerror=alert(2)>",
        description="</p><script>alert(3)</script> | *boom*",
        alerts=[AlertInterval("<b>Burn</b>", "page", T0 + 600.0, T0 + 1200.0)],
    )
    files = _write(tmp_path, [hostile], title="<h1>title</h1>")
    for text in (files.html.read_text(), files.markdown.read_text()):
        assert "<script>" not in text
        assert "<img" not in text
        assert "<b>Burn" not in text
        assert "<h1>title" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in files.html.read_text()
    assert json.loads(files.json.read_text())["slos"][0]["service"] == "<img src=x onerror=alert(2)>"


def test_plot_file_names_stay_inside_the_plots_folder(tmp_path: Path) -> None:
    files = _write(tmp_path, [replace(make_timeline(), sloth_id="../../etc/passwd")])
    out = files.html.parent
    assert sorted(p.name for p in out.iterdir()) == ["plots", "report.html", "report.json", "report.md"]
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        f"etc_passwd-{kind}.png" for kind in sorted(PLOT_KINDS)
    ]
    assert not (tmp_path / "etc").exists()


def test_timeline_whose_series_do_not_match_its_steps_is_refused_before_writing(tmp_path: Path) -> None:
    broken = replace(make_timeline(), budget_remaining=np.zeros(3))
    with pytest.raises(SourceError, match="budget remaining has 3 values for 2880 timestamps"):
        _write(tmp_path, [broken])
    assert not (tmp_path / "report").exists()


# --- report.json ----------------------------------------------------------------------------------


def test_json_has_the_documented_keys_in_order(report_json: dict[str, Any]) -> None:
    assert list(report_json) == ["title", "source", "generated_at", "slos"]
    assert report_json["generated_at"] == "2026-01-03T09:30:00Z"
    assert list(report_json["slos"][0]) == [
        "sloth_id",
        "service",
        "slo",
        "objective",
        "error_budget",
        "period_days",
        "sli",
        "budget_remaining",
        "objective_met",
        "burn_rates",
        "max_burn_rates",
        "alerts",
        "latency",
        "start",
        "end",
        "steps",
    ]


def test_json_budget_and_sli_are_the_last_step(report_json: dict[str, Any], timelines: list[SLOTimeline]) -> None:
    for entry, timeline in zip(report_json["slos"], timelines, strict=True):
        assert entry["budget_remaining"] == float(timeline.budget_remaining[-1])
        assert entry["sli"] == pytest.approx(float(timeline.sli[-1]), rel=1e-15)
        assert entry["start"] == float(timeline.timestamps[0]) and entry["end"] == float(timeline.timestamps[-1])
        assert entry["steps"] == 2 * DAY // MINUTE


def test_json_objective_is_breached_by_the_burst_and_met_without_it(report_json: dict[str, Any]) -> None:
    burst, quiet = report_json["slos"]
    assert burst["budget_remaining"] < 0 and burst["objective_met"] is False
    assert quiet["budget_remaining"] > 0 and quiet["objective_met"] is True


def test_json_alerts_match_the_timeline_with_durations(
    report_json: dict[str, Any], timelines: list[SLOTimeline]
) -> None:
    alerts = report_json["slos"][0]["alerts"]
    assert [a["severity"] for a in alerts].count("page") >= 1
    assert alerts == [
        {"alert": a.alert, "severity": a.severity, "start": a.start, "end": a.end, "duration_seconds": a.end - a.start}
        for a in timelines[0].alerts
        if a.end is not None
    ]
    assert report_json["slos"][1]["alerts"] == []


def test_json_alert_still_firing_has_null_end_and_lasts_until_the_last_step(tmp_path: Path) -> None:
    timeline = replace(make_timeline(), alerts=[AlertInterval("Burn", "page", T0 + 2 * DAY - 3 * MINUTE, None)])
    (alert,) = json.loads(_write(tmp_path, [timeline]).json.read_text())["slos"][0]["alerts"]
    assert alert["end"] is None
    assert alert["duration_seconds"] == 3 * MINUTE


def test_json_turns_nan_into_null(report_json: dict[str, Any], report: ReportFiles) -> None:
    quiet = report_json["slos"][1]
    assert quiet["burn_rates"]["5m"] is None  # no traffic in the last 10 minutes
    assert quiet["burn_rates"]["1h"] == pytest.approx(quiet["burn_rates"]["1h"])
    assert quiet["latency"] is None
    assert "NaN" not in report.json.read_text()


def test_json_burn_rates_are_last_step_and_maximum(report_json: dict[str, Any], timelines: list[SLOTimeline]) -> None:
    entry, timeline = report_json["slos"][0], timelines[0]
    assert list(entry["burn_rates"]) == list(WINDOWS)
    assert entry["burn_rates"]["1h"] == float(timeline.burn_rate("1h")[-1])
    assert entry["max_burn_rates"]["5m"] == float(np.nanmax(timeline.burn_rate("5m")))
    assert entry["max_burn_rates"]["5m"] > 14.4


def test_json_latency_summarises_p50_median_and_p99_max(
    report_json: dict[str, Any], timelines: list[SLOTimeline]
) -> None:
    timeline = timelines[0]
    assert timeline.latency_p50_ms is not None and timeline.latency_p99_ms is not None
    assert report_json["slos"][0]["latency"] == {
        "p50_ms_median": float(np.median(timeline.latency_p50_ms)),
        "p99_ms_max": float(np.max(timeline.latency_p99_ms)),
        "threshold_ms": 200.0,
    }


def test_same_input_gives_byte_identical_files(tmp_path: Path, timelines: list[SLOTimeline]) -> None:
    first = write_report(timelines, tmp_path / "a", title="t", source="s", generated_at=GENERATED_AT)
    second = write_report(timelines, tmp_path / "b", title="t", source="s", generated_at=GENERATED_AT)
    for a, b in ((first.html, second.html), (first.json, second.json), (first.markdown, second.markdown)):
        assert a.read_bytes() == b.read_bytes()


# --- report.md ------------------------------------------------------------------------------------


def test_markdown_links_only_png_files_that_exist(report: ReportFiles) -> None:
    text = report.markdown.read_text()
    links = [part.split(")", 1)[0] for part in text.split("](")[1:] if not part.startswith("#")]
    assert len(links) == 8
    for link in links:
        assert link.startswith("plots/") and link.endswith(".png")
        png = report.markdown.parent / link
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "plots/payments-availability-burn-rate.png" in links


def test_markdown_states_the_same_summary(report: ReportFiles, report_json: dict[str, Any]) -> None:
    text = report.markdown.read_text()
    burst = report_json["slos"][0]
    assert f"{burst['budget_remaining'] * 100:.1f}% (overspent)" in text
    assert "objective breached" in text and "objective met" in text
    assert "PaymentsAvailabilityBurn" in text


# --- plotting ---------------------------------------------------------------------------------------


def test_downsampling_keeps_every_peak_within_the_point_budget() -> None:
    x = np.arange(43_200, dtype=np.float64)
    y = np.zeros(43_200)
    y[12_345] = 9.0  # a one-minute spike in 30 days
    y[30_000] = -4.0
    y[1000:1500] = np.nan
    px, py = downsample(x, y)
    assert px.shape[0] <= MAX_POINTS
    assert np.nanmax(py) == 9.0 and np.nanmin(py) == -4.0
    assert np.all(np.diff(px) >= 0)
    assert np.isnan(py).any()  # a gap wider than a bucket still breaks the line


# --- in a real browser ------------------------------------------------------------------------------


def test_report_renders_in_headless_chromium(report: ReportFiles, timelines: list[SLOTimeline], tmp_path: Path) -> None:
    browser = chromium()
    url = report.html.resolve().as_uri()
    dom = run_chromium(browser, tmp_path / "profile", "--dump-dom", url).stdout
    figures = _figures(dom)
    assert sorted((f.slo, f.kind) for f in figures) == sorted((t.sloth_id, k) for t in timelines for k in PLOT_KINDS)
    text_fallbacks = {("portfolio-orders", "latency"), ("portfolio-orders", "alerts")}
    for figure in figures:
        if (figure.slo, figure.kind) in text_fallbacks:
            assert not figure.has_svg, figure
        else:
            assert figure.has_svg and figure.drawn_paths >= 3, figure

    screenshot = tmp_path / "report.png"
    run_chromium(browser, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1280,6000", url)
    assert screenshot.stat().st_size > 50_000
    pixels = matplotlib.image.imread(screenshot)[::4, ::4, :3]
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50, "the screenshot is (nearly) one colour"
    not_background = np.mean(np.abs(pixels - pixels[-1, -1]).sum(axis=2) > 0.05)
    assert not_background > 0.05
    if target := os.environ.get("NOVA_REPORT_SCREENSHOT"):
        shutil.copyfile(screenshot, target)

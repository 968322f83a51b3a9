"""The report's alert conditions agree with the alerts: a condition shown as firing has fired.

A game day is minutes long: its burn rates can be far above the page factor over the history
it has, but the rules judge a window pair only once its long window is full, so no page fires.
The report used to list such a condition as "holds (fires)" beside an empty "Alerts fired".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from slo.evaluator import SLOModel, evaluate_counts
from slo.report import summarize, write_report
from slo.spec import SUITE_SPECS, LatencySLI, load_specs

STEP = 15


def _short_burning_timeline(minutes: int):  # type: ignore[no-untyped-def]
    [slo] = [s for s in load_specs(SUITE_SPECS) if s.service == "payments" and not isinstance(s.sli, LatencySLI)]
    rows = minutes * 60 // STEP
    times = 1_800_000_000.0 + STEP * np.arange(1, rows + 1, dtype=np.float64)
    total = np.full((1, rows), 3_000, dtype=np.int64)
    bad = np.full((1, rows), 150, dtype=np.int64)  # 5% errors: 500x the 99.99% budget
    [timeline] = evaluate_counts([SLOModel.from_spec(slo)], times, bad, total, step=STEP)
    return timeline


def test_a_page_condition_without_a_full_window_is_not_reported_as_firing(tmp_path: Path) -> None:
    timeline = _short_burning_timeline(minutes=10)
    summary = summarize(timeline)
    pages = [t for t in summary.thresholds if t.severity == "page"]
    assert pages and all(t.holds for t in pages)  # far above 14.4x on the history there is
    assert not [a for a in summary.alerts if a.severity == "page"]
    assert all(t.fires is False and not t.long_window_full for t in pages)
    markdown = write_report([timeline], tmp_path / "report", title="t", source="s").markdown.read_text()
    page_rows = [line for line in markdown.splitlines() if line.startswith("| page |")]
    assert page_rows and not [row for row in page_rows if "holds (fires)" in row]
    assert all("does not fire" in row for row in page_rows)


def test_a_page_condition_that_fires_is_reported_as_firing(tmp_path: Path) -> None:
    timeline = _short_burning_timeline(minutes=70)  # a full hour of history: the 1h & 5m pair is judged
    summary = summarize(timeline)
    fast = next(t for t in summary.thresholds if t.severity == "page" and t.long == "1h")
    assert fast.fires and fast.long_window_full
    assert [a for a in summary.alerts if a.severity == "page"]
    markdown = write_report([timeline], tmp_path / "report", title="t", source="s").markdown.read_text()
    assert any(line.startswith("| page | 1h & 5m") and "holds (fires)" in line for line in markdown.splitlines())

"""Postmortem drafts: the common template, a timeline in time order, figures equal to the report's."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from chaos.gameday_model import (
    AlertFiring,
    Check,
    DeliveredPage,
    Diagnosis,
    GameDayResult,
    LoadFigures,
    PhaseResult,
    SLIFigures,
    Window,
)
from chaos.postmortem import write_postmortems

T0 = 1_796_600_000.0
SECTIONS = (
    "## Summary",
    "## Impact",
    "## Timeline (UTC)",
    "## Detection",
    "## Response",
    "## Recovery",
    "## What went well",
    "## What did not go well",
    "## Action items",
)
_ROW = re.compile(r"^\| (\d\d:\d\d:\d\d\.\d{3}) \| ([+-]\d+\.\d) s \| (.+) \|$")


def timeline_rows(text: str) -> list[tuple[str, float, str]]:
    """(clock, seconds from fault start, event) for each row of the draft's timeline."""
    section = text.split("## Timeline (UTC)", 1)[1].split("\n## ", 1)[0]
    return [(m[1], float(m[2]), m[3]) for m in map(_ROW.match, section.splitlines()) if m]


def clock(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S.%f")[:-3]


def _result() -> GameDayResult:
    fault = Window(T0 + 10, T0 + 25)
    phase = PhaseResult(
        name="payments-error-burn",
        title="Payments keep paging on sustained errors",
        window=Window(T0, T0 + 45),
        fault=fault,
        status="passed",
        reason="",
        load=LoadFigures(1000, 12, 0.988, 0.9959, 115.0, True, {"201": 988, "500": 12}, None, "load/x"),
        slis=[
            SLIFigures("payments-availability", 0.9999, 900, 12, 1 - 12 / 900, 133.3, 0.0023),
            SLIFigures("payments-latency", 0.99, 900, 0, 1.0, 0.0, 0.0),
        ],
        alerts=[AlertFiring("PaymentsAvailabilityBurn", "page", "payments-availability", T0 + 24, None, 14.0)],
        recovery_seconds=0.4,
        checks=[
            Check("ledger balanced", True, "sums {'USD': 0}"),
            Check("every paging runbook named the injected cause (error_rate)", False, "X (ticket): silent"),
        ],
        cause="error_rate",
        pages=[
            DeliveredPage(
                "PaymentsAvailabilityBurn",
                "page",
                T0 + 26.5,
                "# page",
                alerts=["PaymentsAvailabilityBurn"],
                seconds_after_fault=16.5,
            )
        ],
        diagnosis=[
            Diagnosis(
                "PaymentsAvailabilityBurn",
                "page",
                "payments-availability-page.md",
                "error_rate",
                "right",
                ["error_rate"],
                2.25,
                6.0,
                17,
                ["Payments 500s per second, last 5m: error_rate"],
                "drill/01.json",
                paged_at=T0 + 26.5,
            ),
            Diagnosis(
                "PaymentsAvailabilityBurn",
                "ticket",
                "payments-availability-ticket.md",
                "error_rate",
                "silent",
                [],
                None,
                5.0,
                12,
                [],
                "drill/02.json",
                paged_at=T0 + 27.0,
            ),
        ],
    )
    baseline = PhaseResult("baseline", "Baseline", Window(T0 - 20, T0), None, "passed", "")
    return GameDayResult(T0 - 30, T0 + 50, True, "sqlite", "prometheus+alertmanager", "test", [baseline, phase])


def test_a_draft_is_written_for_each_phase_with_a_fault_and_named_in_the_phase(tmp_path: Path) -> None:
    result = _result()

    written = write_postmortems(result, tmp_path)

    assert written == [tmp_path / "postmortems" / "payments-error-burn.md"]
    assert result.phases[1].postmortem == "postmortems/payments-error-burn.md"
    assert result.phases[0].postmortem is None
    text = written[0].read_text()
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions), "the template's sections, in order"
    assert "blameless" in text.lower()


def test_the_timeline_runs_in_time_order_from_the_fault_to_recovery(tmp_path: Path) -> None:
    result = _result()
    phase = result.phases[1]
    assert phase.fault is not None

    rows = timeline_rows(write_postmortems(result, tmp_path)[0].read_text())

    offsets = [offset for _, offset, _ in rows]
    assert offsets == sorted(offsets)
    events = [event.split(":")[0] for _, _, event in rows]
    # The page came after the fault was removed and the platform had recovered: the timeline says so.
    assert events == ["Fault start", "Alert firing", "Mitigation", "Recovery", "First page delivered", "Diagnosis"]
    expected = [phase.fault.start, T0 + 24, phase.fault.end, phase.fault.end + 0.4, T0 + 26.5, T0 + 26.5 + 2.25]
    assert [c for c, _, _ in rows] == [clock(moment) for moment in expected]
    assert offsets == [round(moment - phase.fault.start, 1) for moment in expected]


def test_the_draft_s_figures_are_the_report_s(tmp_path: Path) -> None:
    result = _result()
    phase = result.phases[1]
    assert phase.load is not None

    text = write_postmortems(result, tmp_path)[0].read_text()

    assert f"{phase.load.failures} of {phase.load.requests} attempts failed" in text
    assert f"{phase.load.availability_after_retries:.4%}" in text
    assert f"`payments-availability`: {phase.slis[0].budget_burned:.4%} of the 30-day budget" in text
    assert "SLOs touched: `payments-availability`." in text  # the latency SLO had no bad event
    assert "PaymentsAvailabilityBurn (page): time to detect +14.0 s (alert firing); page delivered +16.5 s" in text
    assert "time to recover 0.4 s" in text
    assert "verdict **right** against `error_rate`, 2.2 s after the page" in text
    assert "verdict **silent**" in text
    action_items = text.split("## Action items", 1)[1]
    assert "every paging runbook named the injected cause" in action_items
    assert "Give `payments-availability-ticket.md` a diagnostic that names `error_rate`" in action_items

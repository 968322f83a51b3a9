"""The drill in the game-day report: pages per phase, graded runbooks, accuracy, the postmortem link."""

from __future__ import annotations

import json
from pathlib import Path

from chaos.drill import accuracy_by_alert, accuracy_by_experiment
from chaos.gameday_report import write_report
from chaos.postmortem import write_postmortems
from tests.chaos.test_postmortem import _result


def test_report_json_holds_each_phase_s_pages_and_diagnosis_as_the_design_names_them(tmp_path: Path) -> None:
    result = _result()
    write_postmortems(result, tmp_path)

    files = write_report(result, tmp_path)

    phase = json.loads(files.json.read_text())["phases"][1]
    assert {"alert", "severity", "delivered_at", "text"} <= set(phase["pages"][0])
    assert {"verdict", "seconds_to_cause", "runbook"} <= set(phase["diagnosis"][0])
    assert [d["verdict"] for d in phase["diagnosis"]] == ["right", "silent"]
    assert phase["postmortem"] == "postmortems/payments-error-burn.md"


def test_the_html_and_markdown_show_pages_the_drill_and_link_the_postmortem(tmp_path: Path) -> None:
    result = _result()
    write_postmortems(result, tmp_path)

    files = write_report(result, tmp_path)

    html = files.html.read_text()
    for text in ("Runbook accuracy", "Pages (what on-call saw)", "Runbook drill", "+16.5 s", "# page"):
        assert text in html, text
    assert 'href="postmortems/payments-error-burn.md"' in html
    markdown = files.markdown.read_text()
    assert "| PaymentsAvailabilityBurn (ticket) | `error_rate` | 1 | 0 | 0 | 1 | 0% | — | — | — |" in markdown
    assert "[postmortems/payments-error-burn.md](postmortems/payments-error-burn.md)" in markdown


def test_accuracy_is_counted_per_alert_and_per_experiment() -> None:
    phases = _result().phases

    by_alert = {row.name: row for row in accuracy_by_alert(phases)}
    (experiment,) = accuracy_by_experiment(phases)

    assert by_alert["PaymentsAvailabilityBurn (page)"].share == 1.0
    assert by_alert["PaymentsAvailabilityBurn (page)"].median_seconds_to_cause == 2.25
    assert by_alert["PaymentsAvailabilityBurn (ticket)"].silent == 1
    assert (experiment.name, experiment.graded, experiment.right, experiment.share) == (
        "payments-error-burn",
        2,
        1,
        0.5,
    )

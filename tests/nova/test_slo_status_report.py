"""`nova slo status` and `nova slo report` on a metric scenario folder, through the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slo.scenario import Incident, Scenario, write_scenario

STEPS = 2 * 240  # two hours of 15 s rows


def _nova(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nova", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def burning(tmp_path: Path) -> Path:
    """A scenario whose second hour fails 2% of requests: the availability page must be firing at the end."""
    start = 1_800_000_000
    errors = np.zeros(STEPS, dtype=np.int64)
    errors[240:] = 20
    folder = tmp_path / "burning"
    write_scenario(
        folder,
        Scenario(
            timestamps=start + 15 * (np.arange(STEPS, dtype=np.int64) + 1),
            requests=np.full(STEPS, 1000, dtype=np.int64),
            errors=errors,
            slow=np.full(STEPS, 2, dtype=np.int64),
            p99_ms=np.full(STEPS, 120.0),
            cpu=np.full(STEPS, 0.4),
            db_pool=np.full(STEPS, 0.3),
            incidents=[Incident("bad_deploy", float(start + 15 * 240), None, float(start + 15 * STEPS))],
        ),
    )
    return folder


def test_status_of_a_scenario_shows_the_burn_and_the_page(burning: Path) -> None:
    result = _nova("slo", "status", "--scenario", str(burning), "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["sloth_id"]: row for row in json.loads(result.stdout)}
    availability = rows["payments-availability"]
    assert availability["burn_rates"]["1h"] == pytest.approx(0.02 / 0.0001)
    assert {(a["alert"], a["severity"]) for a in availability["firing"]} >= {("PaymentsAvailabilityBurn", "page")}
    assert rows["payments-latency"]["firing"] == []


def test_status_prints_a_table_by_default(burning: Path) -> None:
    result = _nova("slo", "status", "--scenario", str(burning))
    assert result.returncode == 0, result.stderr
    assert "payments-availability" in result.stdout
    assert "PaymentsAvailabilityBurn (page)" in result.stdout


def test_report_from_a_scenario_writes_three_files(burning: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = _nova("slo", "report", "--scenario", str(burning), "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert [slo["sloth_id"] for slo in report["slos"]] == ["payments-availability", "payments-latency"]
    assert any(a["severity"] == "page" for a in report["slos"][0]["alerts"])
    assert (out / "report.html").is_file() and (out / "report.md").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ["slo", "status"],
        ["slo", "status", "--scenario", "x", "--prometheus", "http://127.0.0.1:9"],
        ["slo", "status", "--scenario", "/nonexistent/scenario"],
        ["slo", "status", "--prometheus", "http://127.0.0.1:9"],
        ["slo", "report", "--out", "/tmp/never-written", "--scenario", "/nonexistent/scenario"],
    ],
)
def test_a_bad_source_is_one_line_and_a_non_zero_exit(args: list[str]) -> None:
    result = _nova(*args)
    assert result.returncode != 0
    assert result.stderr.startswith("nova: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not Path("/tmp/never-written").exists()

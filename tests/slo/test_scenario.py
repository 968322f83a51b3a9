"""Metric scenario folders: the DESIGN.md format read, written and judged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slo.errors import SourceError
from slo.scenario import Incident, Scenario, ScenarioSLO, first_breach, read_scenario, write_scenario

HOUR_ROWS = 240


def _scenario(rows: int, errors_from: int | None = None, error_share: float = 0.05) -> Scenario:
    start = 1_700_000_000
    requests = np.full(rows, 1000, dtype=np.int64)
    errors = np.zeros(rows, dtype=np.int64)
    if errors_from is not None:
        errors[errors_from:] = int(1000 * error_share)
    return Scenario(
        timestamps=start + 15 * (np.arange(rows, dtype=np.int64) + 1),
        requests=requests,
        errors=errors,
        slow=np.zeros(rows, dtype=np.int64),
        p99_ms=np.full(rows, 80.0),
        cpu=np.full(rows, 0.3),
        db_pool=np.full(rows, 0.2),
        slo=ScenarioSLO(),
        incidents=[Incident("bad_deploy", float(start + 15 * 300), None, float(start + 15 * 400))],
        name="case",
    )


def test_a_written_scenario_reads_back_the_same(tmp_path: Path) -> None:
    original = _scenario(500, errors_from=300)
    write_scenario(tmp_path / "case", original)
    loaded = read_scenario(tmp_path / "case")
    for column in ("timestamps", "requests", "errors", "slow", "p99_ms", "cpu", "db_pool"):
        assert np.array_equal(getattr(loaded, column), getattr(original, column)), column
    assert loaded.incidents == original.incidents
    assert loaded.slo == original.slo


def test_the_header_is_the_design_one(tmp_path: Path) -> None:
    write_scenario(tmp_path / "case", _scenario(3))
    assert (tmp_path / "case" / "metrics.csv").read_text().splitlines()[0] == (
        "timestamp,requests,errors,slow,p99_ms,cpu,db_pool"
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("timestamp,requests\n1,2\n", "header must be"),
        ("timestamp,requests,errors,slow,p99_ms,cpu,db_pool\n15,1,0,0,1,0,0\n30,x,0,0,1,0,0\n", ":3: every value"),
        ("timestamp,requests,errors,slow,p99_ms,cpu,db_pool\n15,1,0,0,1,0,0\n45,1,0,0,1,0,0\n", "15 s apart"),
        ("timestamp,requests,errors,slow,p99_ms,cpu,db_pool\n15,1,-1,0,1,0,0\n30,1,0,0,1,0,0\n", ">= 0"),
    ],
)
def test_a_bad_metrics_file_is_one_error_naming_the_row(tmp_path: Path, content: str, reason: str) -> None:
    (tmp_path / "metrics.csv").write_text(content)
    with pytest.raises(SourceError, match=reason) as caught:
        read_scenario(tmp_path)
    assert "\n" not in str(caught.value)
    assert str(tmp_path / "metrics.csv") in str(caught.value)


def test_a_missing_folder_says_what_a_scenario_holds(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"metrics\.csv and incidents\.json"):
        read_scenario(tmp_path / "nowhere")


def test_breach_is_when_the_page_condition_first_holds_with_full_windows(tmp_path: Path) -> None:
    # 5% errors from row 300 on a 99.99% SLO: the 1h ratio passes 14.4 x 0.0001 = 0.00144 once
    # 5% x n / 240 > 0.00144, i.e. after 7 rows (n = 7 gives 0.001458); the 5m window is long past it.
    scenario = _scenario(600, errors_from=300)
    breach = first_breach(scenario, start=float(scenario.timestamps[300]))
    assert breach == float(scenario.timestamps[300 + 6])


def test_no_breach_before_a_full_hour_of_history() -> None:
    scenario = _scenario(HOUR_ROWS - 1, errors_from=0, error_share=1.0)
    assert first_breach(scenario, start=float(scenario.timestamps[0])) is None

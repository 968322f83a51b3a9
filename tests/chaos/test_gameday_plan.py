"""What a game day is asked to do is checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.gameday_plan import (
    DB_OUTAGE_SECONDS,
    FULL,
    FULL_EXPERIMENTS,
    QUICK,
    QUICK_EXPERIMENTS,
    GameDayError,
    GameDayOptions,
    available_experiments,
    check_options,
)


def test_quick_runs_the_three_must_show_experiments_and_full_runs_all(tmp_path: Path) -> None:
    assert GameDayOptions(tmp_path, quick=True).chosen == QUICK_EXPERIMENTS
    assert GameDayOptions(tmp_path, quick=False).chosen == FULL_EXPERIMENTS
    assert sorted(FULL_EXPERIMENTS) == available_experiments()


def test_named_experiments_replace_the_set(tmp_path: Path) -> None:
    assert GameDayOptions(tmp_path, experiments=("cpu-burn",)).chosen == ("cpu-burn",)


def test_a_load_run_outlasts_its_warm_up_fault_and_recovery() -> None:
    for timing in (QUICK, FULL):
        for fault in (timing.fault, DB_OUTAGE_SECONDS):
            assert timing.load_seconds(fault) > timing.warmup + fault + timing.recovery


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"experiments": ("nope",)}, "no such experiment: nope"),
        ({"experiments": ("cpu-burn", "cpu-burn")}, "named twice"),
        ({"payments_db": "mysql://x", "portfolio_db": "mysql://y"}, "must be postgresql://"),
        ({"payments_db": "postgresql://x/p"}, "give both --payments-db and --portfolio-db"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    with pytest.raises(GameDayError, match=message) as raised:
        check_options(GameDayOptions(tmp_path / "out", **changes))  # type: ignore[arg-type]
    assert "\n" not in str(raised.value)


def test_a_folder_with_an_earlier_game_day_is_refused(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{}")
    with pytest.raises(GameDayError, match="not empty"):
        check_options(GameDayOptions(tmp_path))

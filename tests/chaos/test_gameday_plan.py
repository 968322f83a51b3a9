"""What a game day is asked to do is checked before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.gameday_plan import (
    DB_OUTAGE_SECONDS,
    FAULT_KINDS,
    FULL,
    FULL_EXPERIMENTS,
    POSTGRES_ONLY,
    QUICK,
    QUICK_EXPERIMENTS,
    CheckRule,
    GameDayError,
    GameDayOptions,
    available_experiments,
    check_options,
    experiment_checks,
)


def test_quick_runs_the_must_show_experiments_and_full_runs_all_on_postgresql(tmp_path: Path) -> None:
    on_postgresql = GameDayOptions(
        tmp_path, quick=False, payments_db="postgresql://x/p", portfolio_db="postgresql://x/q"
    )
    assert GameDayOptions(tmp_path, quick=True).chosen == QUICK_EXPERIMENTS
    assert on_postgresql.chosen == FULL_EXPERIMENTS
    assert sorted(FULL_EXPERIMENTS) == available_experiments()


def test_the_outage_is_short_in_both_and_the_flaky_network_short_only_in_the_quick_day(tmp_path: Path) -> None:
    quick, full = GameDayOptions(tmp_path, quick=True), GameDayOptions(tmp_path, quick=False)
    assert quick.fault_seconds("db-outage") == full.fault_seconds("db-outage") == DB_OUTAGE_SECONDS
    assert quick.fault_seconds("payments-flaky-network") < QUICK.fault
    assert full.fault_seconds("payments-flaky-network") == FULL.fault
    assert quick.fault_seconds("worker-kill-under-load") == QUICK.fault


def test_on_sqlite_the_full_set_skips_what_only_postgresql_has(tmp_path: Path) -> None:
    chosen = GameDayOptions(tmp_path, quick=False).chosen
    assert set(FULL_EXPERIMENTS) - set(chosen) == POSTGRES_ONLY
    assert not POSTGRES_ONLY & set(QUICK_EXPERIMENTS)


def test_every_experiment_has_a_fault_kind_and_the_quick_day_crosses_the_network_proxy(tmp_path: Path) -> None:
    assert set(FAULT_KINDS) == set(FULL_EXPERIMENTS)
    kinds = {"in-app flag", "network proxy", "database", "process"}
    assert {kind for pair in FAULT_KINDS.values() for kind in pair} == kinds
    quick = GameDayOptions(tmp_path, quick=True)
    assert "network proxy" in {quick.fault_kind(name) for name in quick.chosen}
    assert GameDayOptions(tmp_path, payments_db="postgresql://x/p").fault_kind("db-outage") == "database"
    assert quick.fault_kind("db-outage") == "in-app flag"


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
        ({"experiments": ("connection-exhaustion",)}, "connection-exhaustion need PostgreSQL"),
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


def test_each_experiment_declares_its_own_checks_in_its_file() -> None:
    own = {name: [rule.check for rule in experiment_checks(name)[4:]] for name in QUICK_EXPERIMENTS}
    assert own == {
        "worker-kill-under-load": ["availability"],
        "payments-flaky-network": [],
        "payments-error-burn": ["page"],
        "db-outage": ["outage-answer", "recovery"],
    }
    assert [rule.check for rule in experiment_checks("db-outage")[:4]] == ["ledger", "guardrail", "hypothesis", "audit"]


@pytest.mark.parametrize(
    ("declared", "says"),
    [
        ({"check": "vibes"}, "must name one of"),
        ({"check": "outage-answer"}, "needs 'probe'"),
        ({"check": "page", "slo": ""}, "'slo' must be a non-empty string"),
        ({"check": "recovery", "within_seconds": -1}, "positive number of seconds"),
    ],
)
def test_a_check_an_experiment_declares_wrongly_is_refused_with_the_reason(declared: object, says: str) -> None:
    with pytest.raises(GameDayError, match=says):
        CheckRule.from_json(declared)


def test_a_declared_check_is_the_same_rule_read_back() -> None:
    rule = CheckRule("recovery", within_seconds=5.0)
    assert CheckRule.from_json(rule.to_json()) == rule

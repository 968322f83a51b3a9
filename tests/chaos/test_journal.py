"""experiment_outcome on hand-made journals shaped as chaostoolkit 1.19 writes them."""

from __future__ import annotations

from typing import Any

import pytest

from chaos.journal import JournalError, experiment_outcome


def journal(
    *,
    status: str = "completed",
    deviated: bool = False,
    before: bool | None = True,
    after: bool | None = True,
    rollbacks: tuple[str, ...] = ("succeeded",),
    ran: bool = True,
) -> dict[str, Any]:
    states: dict[str, Any] = {"during": []}
    states["before"] = None if before is None else {"steady_state_met": before, "probes": []}
    states["after"] = None if after is None else {"steady_state_met": after, "probes": []}
    return {
        "chaoslib-version": "1.44.0",
        "status": status,
        "deviated": deviated,
        "steady_states": states,
        "run": [{"status": "succeeded"}] if ran else [],
        "rollbacks": [{"status": status_} for status_ in rollbacks],
    }


def test_a_clean_run_passes() -> None:
    outcome = experiment_outcome(journal())
    assert outcome.passed and outcome.reason == "passed"
    assert outcome.rollbacks_run == 1 and outcome.method_ran


def test_failed_before_is_not_a_pass_even_though_completed() -> None:
    # chaostoolkit 1.19: status completed, deviated false, exit code 0, the method never ran.
    outcome = experiment_outcome(journal(before=False, after=None, ran=False, rollbacks=()))
    assert outcome.status == "completed" and not outcome.deviated
    assert not outcome.passed
    assert outcome.steady_state_before_met is False and not outcome.method_ran
    assert "before the method" in outcome.reason


def test_deviated_after_the_method() -> None:
    outcome = experiment_outcome(journal(status="failed", deviated=True, after=False))
    assert not outcome.passed and "deviated" in outcome.reason


def test_a_failed_rollback_fails_the_experiment() -> None:
    outcome = experiment_outcome(journal(rollbacks=("succeeded", "failed")))
    assert not outcome.passed
    assert outcome.rollbacks_run == 2 and outcome.rollbacks_failed == 1


@pytest.mark.parametrize("status", ["aborted", "interrupted", "failed"])
def test_other_statuses_fail(status: str) -> None:
    assert not experiment_outcome(journal(status=status)).passed


def test_an_experiment_without_hypothesis_passes_on_its_status() -> None:
    outcome = experiment_outcome(journal(before=None, after=None))
    assert outcome.passed and outcome.steady_state_before_met is None


def test_not_a_journal() -> None:
    with pytest.raises(JournalError):
        experiment_outcome({"title": "an experiment, not a journal"})

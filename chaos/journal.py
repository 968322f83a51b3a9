"""Reading a Chaos Toolkit journal into one verdict.

chaostoolkit 1.19 ends a run whose steady state fails BEFORE the method with `status: completed`
and exit code 0 (the method never ran, nothing "deviated"), so neither the status nor the exit code
says whether the experiment held. `experiment_outcome` reads the steady states too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaos.errors import ChaosError


class JournalError(ChaosError):
    """A document that is not a Chaos Toolkit journal."""


@dataclass(frozen=True)
class Outcome:
    status: str  # completed, failed, aborted, interrupted
    deviated: bool
    steady_state_before_met: bool | None  # None: the experiment has no hypothesis
    steady_state_after_met: bool | None  # None: not run (no hypothesis, or it failed before)
    method_ran: bool
    rollbacks_run: int
    rollbacks_failed: int

    @property
    def passed(self) -> bool:
        """Completed, not deviated, both steady states met, every rollback succeeded."""
        return (
            self.status == "completed"
            and not self.deviated
            and self.steady_state_before_met is not False
            and self.steady_state_after_met is not False
            and (self.steady_state_before_met is None or self.steady_state_after_met is True)
            and self.rollbacks_failed == 0
        )

    @property
    def reason(self) -> str:
        """One line: why the experiment did not pass, or `passed`."""
        if self.steady_state_before_met is False:
            return "steady state not met before the method: the method did not run"
        if self.deviated or self.steady_state_after_met is False:
            return "the system deviated: steady state not met after the method"
        if self.status != "completed":
            return f"the run ended {self.status}"
        if self.steady_state_before_met is not None and self.steady_state_after_met is None:
            return "the steady state was not checked after the method"
        if self.rollbacks_failed:
            return f"{self.rollbacks_failed} rollback(s) failed"
        return "passed"


def experiment_outcome(journal: dict[str, Any]) -> Outcome:
    """The verdict of a journal (`chaos run --journal-path`, loaded as JSON)."""
    if not isinstance(journal, dict) or "status" not in journal:
        raise JournalError("not a Chaos Toolkit journal: no status")
    states = journal.get("steady_states") or {}
    rollbacks = journal.get("rollbacks") or []
    return Outcome(
        status=str(journal["status"]),
        deviated=bool(journal.get("deviated", False)),
        steady_state_before_met=_met(states.get("before")),
        steady_state_after_met=_met(states.get("after")),
        method_ran=bool(journal.get("run")),
        rollbacks_run=len(rollbacks),
        rollbacks_failed=sum(1 for run in rollbacks if run.get("status") != "succeeded"),
    )


def _met(state: Any) -> bool | None:
    if not isinstance(state, dict) or "steady_state_met" not in state:
        return None
    met = state["steady_state_met"]
    return None if met is None else bool(met)

"""Before an experiment that must page, the game day waits for that page to stop firing from an earlier phase."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from chaos.gameday import SETTLE_LIMIT_SECONDS, GameDay, Progress
from chaos.gameday_plan import GameDayOptions


class Prometheus:
    """What `firing_pages` answers, one answer a call (the last one from then on)."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = answers
        self.asked: list[list[str]] = []

    def firing_pages(self, sloth_ids: Sequence[str]) -> list[str]:
        self.asked.append(list(sloth_ids))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The game day's monotonic clock, advanced by its sleeps."""
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(time, "sleep", sleep)
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now


def game_day(tmp_path: Path, prometheus: Prometheus, shown: list[Progress]) -> GameDay:
    day = GameDay(GameDayOptions(out=tmp_path / "gd"), progress=shown.append)
    day._stack = prometheus  # type: ignore[assignment]
    return day


def test_an_experiment_that_must_page_waits_until_its_page_from_an_earlier_phase_resolves(
    tmp_path: Path, clock: list[float]
) -> None:
    prometheus, shown = Prometheus([["PaymentsAvailabilityBurn"]] * 3 + [[]]), list[Progress]()
    day = game_day(tmp_path, prometheus, shown)

    day._settle(5, "payments-error-burn")

    assert prometheus.asked[0] == ["payments-availability"]
    assert day._settled["payments-error-burn"] == (6.0, ["PaymentsAvailabilityBurn"])
    assert shown[0].phase == "payments-error-burn: waiting for PaymentsAvailabilityBurn to resolve"


def test_the_wait_is_bounded(tmp_path: Path, clock: list[float]) -> None:
    prometheus = Prometheus([["PaymentsAvailabilityBurn"]])  # never resolves
    day = game_day(tmp_path, prometheus, [])

    day._settle(5, "payments-error-burn")

    waited, _ = day._settled["payments-error-burn"]
    assert SETTLE_LIMIT_SECONDS < waited <= SETTLE_LIMIT_SECONDS + 2


def test_an_experiment_with_no_page_to_detect_does_not_wait(tmp_path: Path, clock: list[float]) -> None:
    prometheus = Prometheus([["PaymentsAvailabilityBurn"]])
    day = game_day(tmp_path, prometheus, [])

    day._settle(3, "worker-kill-under-load")

    assert prometheus.asked == [] and day._settled == {}

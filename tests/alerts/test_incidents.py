"""The incident bookkeeping both simulators share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alerts.incidents import label_incidents, shrink_near_misses, strays
from slo.scenario import Scenario

Bools = npt.NDArray[np.bool_]
TIMES = 1_800_000_000 + 15 * np.arange(200, dtype=np.int64)


@dataclass
class Event:
    kind: str
    rows: int
    incident: bool
    start: int
    scale: float = 1.0


def test_an_incident_breaches_where_the_condition_first_holds_inside_it() -> None:
    holds = np.zeros(200, bool)
    holds[[5, 30, 35]] = True  # row 5 is before the incident: not its breach
    incidents = label_incidents([Event("bad_deploy", 20, True, 20)], TIMES, holds)
    assert [(i.kind, i.start, i.breach, i.end) for i in incidents] == [
        ("bad_deploy", float(TIMES[20]), float(TIMES[30]), float(TIMES[40]))
    ]


def test_an_incident_the_condition_never_holds_in_has_no_breach() -> None:
    holds = np.zeros(200, bool)
    holds[100] = True
    incidents = label_incidents([Event("memory_leak", 20, True, 20), Event("blip", 5, False, 100)], TIMES, holds)
    assert len(incidents) == 1 and incidents[0].breach is None


def test_strays_leave_out_incidents_and_their_grace_but_not_near_misses() -> None:
    holds = np.ones(200, bool)
    stray = strays(holds, [Event("bad_deploy", 20, True, 20), Event("blip", 5, False, 100)], grace_rows=10)
    assert not stray[20:51].any()
    assert stray[51] and stray[19] and stray[100:105].all()


def test_a_near_miss_that_pages_is_shrunk_until_it_does_not() -> None:
    blip = Event("blip", 5, False, 100)

    def build(events: list[Event]) -> tuple[Scenario, Bools]:
        holds = np.zeros(200, bool)
        for event in events:
            holds[event.start : event.start + event.rows] = event.scale > 0.5  # pages while big
        return Scenario.from_columns(TIMES, _quiet_columns()), holds

    placed = [blip]
    _, holds, settled = shrink_near_misses(placed, build, build(placed), grace_rows=10)
    assert settled and not holds.any()
    assert placed == [blip] and blip.scale == 0.6**2


def test_a_stray_no_near_miss_explains_is_reported_unsettled() -> None:
    holds = np.zeros(200, bool)
    holds[150] = True  # routine load: no event near it

    def build(events: list[Event]) -> tuple[Scenario, Bools]:
        return Scenario.from_columns(TIMES, _quiet_columns()), holds

    _, _, settled = shrink_near_misses([Event("blip", 5, False, 20)], build, build([]), grace_rows=10)
    assert not settled


def _quiet_columns() -> dict[str, npt.NDArray[np.int64] | npt.NDArray[np.float64]]:
    ones = np.ones(200)
    return {
        "requests": (ones * 100).astype(np.int64),
        "errors": np.zeros(200, np.int64),
        "slow": np.zeros(200, np.int64),
        "p99_ms": ones * 80.0,
        "cpu": ones * 0.3,
        "db_pool": ones * 0.2,
    }

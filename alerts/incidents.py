"""Incident bookkeeping shared by the simulators (`alerts.generator`, `alerts.queueing`).

Both simulators place events (incidents and near-misses) on a scenario's rows, build the
metrics, and then settle the same three things the same way:

* which incidents breach, and when: the SLO engine's page condition (`breach_condition`) first
  holding inside the incident (`label_incidents`);
* where the condition holds outside every incident and its late-page grace (`strays`);
* near-misses that make it hold are scaled down by 0.6, then dropped below 0.15 of their size,
  and the scenario built again, up to six times (`shrink_near_misses`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from slo.scenario import STEP_SECONDS, Incident, Scenario

Bools = npt.NDArray[np.bool_]
Times = npt.NDArray[np.int64]

HOUR_ROWS = 3600 // STEP_SECONDS
SHRINK = 0.6
DROP_BELOW = 0.15
ATTEMPTS = 6


class PlacedEvent(Protocol):
    kind: str
    rows: int  # fault start to the end of its effect
    incident: bool
    start: int
    scale: float


E = TypeVar("E", bound=PlacedEvent)
Build = Callable[[list[E]], tuple[Scenario, Bools]]  # placed events -> (labelled scenario, page condition)


def label_incidents(events: Sequence[PlacedEvent], timestamps: Times, holds: Bools) -> list[Incident]:
    """The incidents among `events`, each with its first breach inside [start, end] (None if none)."""
    last = timestamps.shape[0] - 1
    incidents = []
    for event in events:
        if event.incident:
            begin, end = float(timestamps[event.start]), float(timestamps[min(event.start + event.rows, last)])
            mask = holds & (timestamps >= begin) & (timestamps <= end)
            breach = float(timestamps[np.flatnonzero(mask)[0]]) if mask.any() else None
            incidents.append(Incident(event.kind, begin, breach, end))
    return incidents


def strays(holds: Bools, events: Sequence[PlacedEvent], grace_rows: int) -> Bools:
    """Rows where the page condition holds outside every incident (and its late-page grace)."""
    holds = holds.copy()
    for event in events:
        if event.incident:
            holds[event.start : event.start + event.rows + grace_rows + 1] = False
    return holds


def shrink_near_misses(
    placed: list[E], build: Build[E], built: tuple[Scenario, Bools], grace_rows: int
) -> tuple[Scenario, Bools, bool]:
    """Shrink (then drop) the near-misses that make the page condition hold outside an incident,
    rebuilding after each round; `placed` is edited in place. The flag is False when a stray
    remains that no near-miss explains (routine load breached): the caller decides what then."""
    scenario, holds = built
    for _ in range(ATTEMPTS):
        stray = strays(holds, placed, grace_rows)
        if not stray.any():
            return scenario, holds, True
        culprits = [e for e in placed if not e.incident and stray[e.start : e.start + e.rows + HOUR_ROWS].any()]
        if not culprits:
            return scenario, holds, False
        for event in culprits:
            event.scale *= SHRINK
            if event.scale < DROP_BELOW:
                placed.remove(event)
        scenario, holds = build(placed)
    return scenario, holds, True

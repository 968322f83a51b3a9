"""How much load a game day offers: `--rate`, or `--capacity-share` of a measured capacity.

The capacity comes from a `capacity.json` (`--capacity FILE`, written by `nova load
--find-capacity`) or from a calibration at the start of the game day: the same capacity search,
with short steps, against the game day's own platform. The plan records the rate asked, the
rate used, and the capacity it was derived from, so the report can say what was offered and
never claim a peak it did not offer. A rate above the measured capacity is still offered (the
load is never lowered silently); the plan says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from chaos.gameday_model import LoadPlan, PhaseResult
from chaos.gameday_plan import SPIKE_FACTOR, GameDayError, GameDayOptions
from loadtests.capacity_plan import CapacityPlanError, read_capacity

CALIBRATION_MIX = "trading"
CALIBRATION_STEP_SECONDS = 10
CALIBRATION_START_RATE = 100.0
CALIBRATION_MAX_RATE = 3000.0
CALIBRATION_TIMEOUT_SECONDS = 600.0
SUGGESTED_CAPACITY_SHARE = 0.8


def plan_load(options: GameDayOptions, urls: Mapping[str, str], calibration_out: Path) -> LoadPlan:
    """The game day's load: the rate every phase offers, and the spike phase's peak."""
    capacity: float | None = None
    source: str | None = None
    if options.capacity_share is not None:
        path = options.capacity_file or calibrate(options, urls, calibration_out)
        # The calibration measured this game day's own platform: its workers are known here even
        # though the search, pointed at explicit URLs, could not record them.
        workers = options.workers if options.capacity_file is None else None
        try:
            capacity = read_capacity(path, CALIBRATION_MIX, workers).capacity_rps
        except CapacityPlanError as exc:
            raise GameDayError(f"cannot size the game day's load: {exc}") from None
        source = "calibration" if options.capacity_file is None else str(path)
    rate = options.rate if capacity is None else round(capacity * (options.capacity_share or 1.0), 1)
    spike = None
    if options.load_phases:
        spike = rate * SPIKE_FACTOR if capacity is None else min(rate * SPIKE_FACTOR, capacity)
    note = ""
    if capacity is not None and rate > capacity:
        note = f"{rate:g} requests/s is above the measured capacity of {capacity:.0f} requests/s"
    elif capacity is not None and spike is not None and spike < rate * SPIKE_FACTOR:
        note = f"the spike is capped at the measured capacity ({capacity:.0f} requests/s), not {SPIKE_FACTOR}x"
    return LoadPlan(
        rate=rate,
        asked=options.rate,
        capacity_rps=capacity,
        capacity_share=options.capacity_share,
        capacity_source=source,
        spike_rps=spike,
        note=note,
    )


def calibrate(options: GameDayOptions, urls: Mapping[str, str], out: Path) -> Path:
    """A capacity search with short steps against the game day's platform; the capacity.json it wrote."""
    command = [
        sys.executable, "-m", "nova", "load", "--find-capacity",
        "--data-dir", str(options.data_dir),
        "--payments-url", urls["payments"], "--portfolio-url", urls["portfolio"],
        "--mix", CALIBRATION_MIX,
        "--step-seconds", str(CALIBRATION_STEP_SECONDS),
        "--start-rate", repr(CALIBRATION_START_RATE),
        "--max-rate", repr(CALIBRATION_MAX_RATE),
        "--out", str(out),
    ]  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    with (out.parent / "calibration.log").open("wb") as log:
        try:
            done = subprocess.run(
                command, stdout=log, stderr=subprocess.STDOUT, timeout=CALIBRATION_TIMEOUT_SECONDS, env=dict(os.environ)
            )
        except subprocess.TimeoutExpired:
            raise GameDayError(f"the capacity calibration took over {CALIBRATION_TIMEOUT_SECONDS:.0f} s") from None
    path = out / "capacity.json"
    if not path.is_file():
        raise GameDayError(f"the capacity calibration wrote no capacity.json (exit {done.returncode}; see {log.name})")
    return path


def overload_note(plan: LoadPlan, baseline: PhaseResult | None) -> str:
    """What to say when the baseline, with no fault, did not hold its checks at the rate asked.

    Every later verdict then measures an overloaded machine rather than the fault, so the report
    says so and names the run that would size the load to this machine instead of lowering it
    quietly. Empty when the baseline held, or the load was already sized from a capacity.
    """
    if baseline is None or baseline.passed or plan.rate <= 0 or plan.capacity_rps is not None:
        return ""
    return (
        f"the baseline did not hold its checks at {plan.rate:g} requests/s with no fault, so this machine "
        f"may be below that rate; --capacity-share {SUGGESTED_CAPACITY_SHARE:g} offers a share of its "
        "measured capacity instead"
    )

"""Benchmark of the predictive pager live: can `nova alerts watch` keep up with 100 SLOs?

    python -m alerts.bench [--model PATH] [--slos 100] [--steps 480]

Each SLO is an independent stream of 15 s rows (generated scenarios). One step is what the
watcher does every 15 s: push every SLO's newest row into the online features (`OnlineFeatures`,
all streams at once) and run the model's pager (forecast rules and/or the calibrated classifier)
on the resulting rows. Real time needs
`slos / 15` SLO-steps a second; the margin is what was achieved over that.

The baseline, measured in the same run, is the naive way to get the same numbers: every step,
recompute each SLO's features in batch over its trailing history (6 hours, what the longest
window reads) and run the pager over them.
Medians of three runs are printed, with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from alerts.features import HOUR, FeatureExtractor, OnlineFeatures, raw_rows
from alerts.generator import generate_scenario
from alerts.model import PredictiveModel, train
from slo.scenario import STEP_SECONDS, Scenario

RUNS = 3
NAIVE_STEPS = 5
RUN_ROWS = 64  # rows a page decision reads back: the longest forecast rule run (60), with margin
console = Console()


def _streams(count: int, hours: float) -> list[Scenario]:
    kinds = ("pool_exhaustion", "capacity_surge", "memory_gc", "slow_dependency")
    return [
        generate_scenario(10_000 + i, hours=hours, name=f"slo-{i:03d}", incident_kinds=[kinds[i % len(kinds)]])
        for i in range(count)
    ]


def _model(path: Path | None) -> PredictiveModel:
    if path is not None:
        return PredictiveModel.load(path)
    console.print("no --model: training one on 16 small scenarios (the forecast pager, as `nova alerts train`)")
    kinds = ("pool_exhaustion", "capacity_surge")
    scenarios = [
        generate_scenario(
            200 + i, hours=8, name=f"bench-{i:02d}", start=1_790_000_000 + i * 8 * 3600, incident_kinds=[kinds[i % 2]]
        )
        for i in range(16)
    ]
    model, _ = train(scenarios, training_hash="bench")
    with tempfile.TemporaryDirectory() as scratch:  # through the file, as watch loads it
        model.save(Path(scratch) / "bench.skops")
        return PredictiveModel.load(Path(scratch) / "bench.skops")


def online_run(model: PredictiveModel, rows: np.ndarray, clock: np.ndarray, slos: list[Scenario]) -> float:
    """Seconds for every step of every stream: online features plus one prediction per SLO."""
    online = OnlineFeatures([s.slo for s in slos], streams=len(slos))
    pager = model.live(len(slos))
    started = time.perf_counter()
    for step in range(rows.shape[1]):
        features = online.push(rows[:, step], float(clock[step]))
        pager.push(features)
    return time.perf_counter() - started


def naive_run(model: PredictiveModel, rows: np.ndarray, clock: np.ndarray, slos: list[Scenario]) -> float:
    """Seconds for the last `NAIVE_STEPS` steps, each SLO recomputed in batch over its last 6 hours."""
    extractor = FeatureExtractor()
    end = rows.shape[1]
    started = time.perf_counter()
    for step in range(end - NAIVE_STEPS, end):
        begin = max(0, step + 1 - 6 * HOUR)
        for i, slo in enumerate(slos):
            features = extractor.transform_rows(rows[i, begin : step + 1], clock[begin : step + 1], slo.slo)
            model.paging_rows(features[-RUN_ROWS:])  # the rows the longest rule run reads
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="model file (default: train a small one first)")
    parser.add_argument("--slos", type=int, default=100, help="SLO streams (default 100)")
    parser.add_argument("--steps", type=int, default=480, help="15 s steps per run (default 480, 2 hours)")
    args = parser.parse_args()
    if args.steps <= NAIVE_STEPS:
        parser.error(f"--steps must be more than {NAIVE_STEPS}")
    model = _model(args.model)
    hours = max(2.0, args.steps * STEP_SECONDS / 3600)
    slos = _streams(args.slos, hours)
    rows = np.stack([raw_rows(s)[: args.steps] for s in slos])  # (slos, steps, 6)
    clock = slos[0].timestamps[: args.steps].astype(np.float64)
    with threadpool_limits(1):
        online = statistics.median(online_run(model, rows, clock, slos) for _ in range(RUNS))
        naive = statistics.median(naive_run(model, rows, clock, slos) for _ in range(RUNS))
    steps_per_s = args.steps / online
    slo_steps_per_s = steps_per_s * args.slos
    naive_slo_steps_per_s = NAIVE_STEPS * args.slos / naive
    needed = args.slos / STEP_SECONDS

    table = Table(title=f"Predictive pager, {args.slos} SLOs at {STEP_SECONDS} s steps (median of {RUNS} runs)")
    for column in ("path", "steps/s (all SLOs)", "SLO-steps/s", "needed", "real-time margin"):
        table.add_column(column, justify="left" if column == "path" else "right")
    table.add_row(
        "online features + predict",
        f"{steps_per_s:,.1f}",
        f"{slo_steps_per_s:,.0f}",
        f"{needed:.2f}",
        f"{slo_steps_per_s / needed:,.0f}x",
    )
    table.add_row(
        "baseline: batch recompute over 6 h each step",
        f"{naive_slo_steps_per_s / args.slos:,.2f}",
        f"{naive_slo_steps_per_s:,.0f}",
        f"{needed:.2f}",
        f"{naive_slo_steps_per_s / needed:,.1f}x",
    )
    console.print(table)
    console.print(
        f"{len(FeatureExtractor.names)} features; one step for all {args.slos} SLOs takes "
        f"{1000 * online / args.steps:.1f} ms of the {STEP_SECONDS} s available; "
        f"online is {slo_steps_per_s / naive_slo_steps_per_s:,.0f}x the baseline. "
        f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, 1 thread"
    )


if __name__ == "__main__":
    main()

"""Benchmark of the SLO engine's two hot paths, with a baseline measured in the same run.

    python -m slo.bench            # or: make bench-slo

- rule generation for 1,000 SLOs (target <= 2 s), against dumping the same rule groups with
  PyYAML's C emitter (the general-purpose way);
- evaluation of 100 SLOs over 30 days at one-minute resolution (target <= 1 s), batched
  (SLO x time arrays), against evaluating the same SLOs one at a time.
Medians of several runs are printed, with the machine they ran on.
"""

from __future__ import annotations

import os
import platform
import statistics
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from slo.evaluator import CounterSamples, SLOModel, evaluate_counters
from slo.rules import RuleOptions, generate, render
from slo.spec import SLO, load_specs

RUNS = 5
console = Console()


def _specs(count: int, folder: Path) -> list[SLO]:
    slos = "".join(
        textwrap.dedent(
            f"""\
              - name: slo-{i}
                objective: {99 + (i % 10) / 10:g}
                sli:
                  events:
                    error_query: sum(rate(http_requests_total{{service="s{i % 50}",code=~"5.."}}[{{{{.window}}}}]))
                    total_query: sum(rate(http_requests_total{{service="s{i % 50}"}}[{{{{.window}}}}]))
                alerting:
                  name: Slo{i}Burn
            """
        ).replace("\n", "\n  ")
        for i in range(count)
    )
    path = folder / "many.yaml"
    path.write_text(f"version: prometheus/v1\nservice: bench\nslos:\n  {slos}")
    return load_specs([path])


def _median_seconds(action: Callable[[], object]) -> float:
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def _counters(slos: int, minutes: int) -> tuple[CounterSamples, CounterSamples]:
    rng = np.random.default_rng(7)
    requests = rng.poisson(600, (slos, minutes)).astype(np.float64)
    errors = rng.binomial(requests.astype(np.int64), 0.0008).astype(np.float64)
    timestamps = np.arange(minutes, dtype=np.int64) * 60_000
    return CounterSamples(timestamps, np.cumsum(errors, axis=1)), CounterSamples(
        timestamps, np.cumsum(requests, axis=1)
    )


def main() -> None:
    options = RuleOptions()
    with tempfile.TemporaryDirectory() as scratch:
        thousand = _specs(1000, Path(scratch))
    hundred = thousand[:100]
    minutes = 30 * 24 * 60
    errors, totals = _counters(100, minutes)
    eval_ms = errors.timestamps_ms
    models = [SLOModel.from_spec(slo, options) for slo in hundred]

    def one_at_a_time() -> None:
        for s, model in enumerate(models):
            evaluate_counters(
                [model],
                CounterSamples(eval_ms, errors.values[s : s + 1]),
                CounterSamples(eval_ms, totals.values[s : s + 1]),
                eval_ms,
            )

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with console.status("measuring (median of 5 runs each)"):
        results = [
            ("rules: 1,000 SLOs, nova writer", _median_seconds(lambda: render(thousand, options)), 2.0),
            (
                "rules: 1,000 SLOs, PyYAML C emitter (baseline)",
                _median_seconds(lambda: yaml.dump({"groups": generate(thousand, options)}, Dumper=dumper)),
                None,
            ),
            (
                "evaluate: 100 SLOs x 30 days at 1 min, batched",
                _median_seconds(lambda: evaluate_counters(models, errors, totals, eval_ms)),
                1.0,
            ),
            ("evaluate: same, one SLO at a time (baseline)", _median_seconds(one_at_a_time), None),
        ]
    table = Table(title=f"SLO engine benchmark on {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    for column in ("case", "median s", "target s", "verdict"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for case, seconds, target in results:
        verdict = "" if target is None else ("[green]met[/green]" if seconds <= target else "[red]missed[/red]")
        table.add_row(case, f"{seconds:.3f}", "" if target is None else f"{target:g}", verdict)
    console.print(table)
    console.print(
        f"{len(generate(thousand, options))} rule groups; {minutes} steps per SLO; Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()

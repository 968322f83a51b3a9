"""The embedded scraper's rows on disk, for probes that run where no Prometheus does.

During a game day without Prometheus, the game day's embedded scraper (slo.scraper) appends one
row per step and service to `<data-dir>/embedded-metrics/<service>.csv`, in DESIGN.md's scenario columns.
The probes, which run in `chaos run`'s own process, read the trailing window from there: the
same numbers the game day's report is made of, so a hypothesis and the report cannot disagree.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

from slo.scraper import Row

FOLDER = "embedded-metrics"  # `metrics/` is the services' own (prometheus_client multiprocess)
COLUMNS = ("timestamp", "requests", "errors", "slow", "p99_ms", "cpu", "db_pool")


@dataclass(frozen=True)
class WindowTotals:
    """What the services answered over a trailing window, summed over its steps."""

    steps: int
    requests: int
    errors: int
    slow: int
    max_p99_ms: float  # the slowest step's p99: an upper bound on the window's p99


def metrics_file(data_dir: str | Path, service: str) -> Path:
    return Path(data_dir) / FOLDER / f"{service}.csv"


def append_row(data_dir: str | Path, service: str, row: Row) -> None:
    """Add one step; the header is written with the first row."""
    path = metrics_file(data_dir, service)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with path.open("a", newline="") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(COLUMNS)
        writer.writerow(
            [
                f"{row.timestamp:.3f}",
                row.requests,
                row.errors,
                row.slow,
                f"{row.p99_ms:.3f}",
                f"{row.cpu:.4f}",
                f"{row.db_pool:.4f}",
            ]
        )


def window_totals(data_dir: str | Path, service: str, seconds: float, now: float | None = None) -> WindowTotals:
    """The steps that ended within the last `seconds`; FileNotFoundError when nothing scrapes `service`."""
    since = (time.time() if now is None else now) - seconds
    steps = requests = errors = slow = 0
    p99 = 0.0
    with metrics_file(data_dir, service).open(newline="") as handle:
        for record in csv.DictReader(handle):
            if float(record["timestamp"]) <= since:
                continue
            steps += 1
            requests += int(record["requests"])
            errors += int(record["errors"])
            slow += int(record["slow"])
            p99 = max(p99, float(record["p99_ms"]))
    return WindowTotals(steps, requests, errors, slow, p99)

"""The samples the master (or local runner) holds during a run, written out as one time-ordered samples.csv.

Up to `SPOOL_RUN_SAMPLES` stay in memory; beyond that each batch is sorted and written to a
run file with `loadtests.samples`' writer, so a soak run does not grow the Locust master
without bound. `write` merges the runs and what is still in memory, streaming, in time order.
No Locust import: tested as plain code.
"""

from __future__ import annotations

import heapq
import shutil
from collections.abc import Iterator
from pathlib import Path

from loadtests.samples import RequestSample, read_samples, write_samples

SPOOL_RUN_SAMPLES = 100_000


class SampleSpool:
    """Samples in memory up to a run's size, then in time-sorted files; written out as one time-ordered CSV."""

    def __init__(self, directory: Path, run_samples: int = SPOOL_RUN_SAMPLES) -> None:
        self.directory = directory
        self.run_samples = run_samples
        self.memory: list[RequestSample] = []
        self.runs: list[Path] = []

    def add(self, sample: RequestSample) -> None:
        self.memory.append(sample)
        if len(self.memory) >= self.run_samples:
            self.directory.mkdir(parents=True, exist_ok=True)
            run = self.directory / f"run-{len(self.runs):05d}.csv"
            write_samples(run, sorted(self.memory))
            self.runs.append(run)
            self.memory = []

    def __iter__(self) -> Iterator[RequestSample]:
        return heapq.merge(*(read_samples(run) for run in self.runs), sorted(self.memory))

    def write(self, path: Path) -> int:
        """Write every sample to `path` in time order; the count written."""
        count = 0

        def counted() -> Iterator[RequestSample]:
            nonlocal count
            for sample in self:
                count += 1
                yield sample

        write_samples(path, counted())
        return count

    def clear(self) -> None:
        self.memory = []
        self.runs = []
        shutil.rmtree(self.directory, ignore_errors=True)

"""The master's sample spool: memory, then sorted run files, merged into one time-ordered samples.csv."""

from __future__ import annotations

import random
from pathlib import Path

from loadtests.sample_spool import SampleSpool
from loadtests.samples import RequestSample, read_samples


def _samples(count: int) -> list[RequestSample]:
    return [RequestSample(1000 + i / 4, "POST /v1/payments", 201, 1.5 + i, 1 + i % 2) for i in range(count)]


def test_samples_beyond_memory_go_to_sorted_runs_and_come_back_merged_in_time_order(tmp_path: Path) -> None:
    samples = _samples(10)
    shuffled = random.Random(7).sample(samples, len(samples))
    spool = SampleSpool(tmp_path / "spool", run_samples=3)

    for sample in shuffled:
        spool.add(sample)
    written = spool.write(tmp_path / "samples.csv")

    assert len(spool.runs) == 3 and len(spool.memory) == 1
    assert written == 10
    assert list(read_samples(tmp_path / "samples.csv")) == samples


def test_clearing_forgets_the_samples_and_removes_the_run_files(tmp_path: Path) -> None:
    spool = SampleSpool(tmp_path / "spool", run_samples=2)
    for sample in _samples(5):
        spool.add(sample)

    spool.clear()

    assert not (tmp_path / "spool").exists()
    assert spool.write(tmp_path / "samples.csv") == 0
    assert list(read_samples(tmp_path / "samples.csv")) == []

"""The machine a figure was measured on: without it a requests-per-second number cannot be compared."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

from loadtests.bench.cpu import others_share, read_cpu

IDLE_SAMPLE_SECONDS = 2.0
# Above this share of the CPUs taken by other processes, a figure is flagged as understated.
OTHERS_CPU_NOTICEABLE = 0.10


class Machine(NamedTuple):
    nproc: int
    cpu_model: str
    python: str
    wrk: str
    pgbench: str | None
    # Share of the CPUs other processes used in the seconds before the benchmark started anything.
    others_cpu_before: float

    def lines(self) -> list[str]:
        return [
            f"CPUs (nproc): {self.nproc}",
            f"CPU model:    {self.cpu_model}",
            f"Python:       {self.python} ({platform.python_implementation()})",
            f"wrk:          {self.wrk}",
            f"pgbench:      {self.pgbench or 'not installed (psycopg loop instead)'}",
            f"Others' CPU:  {self.others_cpu_before:.0%} of the CPUs used by other processes just before start"
            + (" - BUSY: figures will be understated" if self.others_cpu_before > OTHERS_CPU_NOTICEABLE else ""),
            "Load generator: wrk, on this same machine, competing with the servers for",
            "                its CPUs: every figure is a lower bound for the servers alone.",
        ]


def describe_machine(wrk: str, pgbench: str | None) -> Machine:
    return Machine(
        # What `nproc` prints: the CPUs this process may run on, not all the host has.
        nproc=len(os.sched_getaffinity(0)),
        cpu_model=_cpu_model(),
        python=platform.python_version(),
        wrk=_version_line([wrk, "--version"]),
        pgbench=_version_line([pgbench, "--version"]) if pgbench else None,
        others_cpu_before=_others_cpu(IDLE_SAMPLE_SECONDS),
    )


def _others_cpu(seconds: float) -> float:
    # Sampled, not the load average: that still carries the last minute's work, the benchmark's own included.
    before, started = read_cpu(), time.monotonic()
    time.sleep(seconds)
    return others_share(before, read_cpu(), time.monotonic() - started)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version_line(command: list[str]) -> str:
    # wrk prints its version with its usage text and exits 1, so the exit code is ignored.
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].split(" Copyright")[0] if lines else "unknown"

"""Locust as a child process: its command line, its environment, a bounded wait, and what it left.

`nova load` and the capacity search never import Locust (it monkey-patches sockets and
threads with gevent on import); they start `python -m locust -f loadtests/locustfile.py` with
the locustfile's own options and read `samples.csv`/`services.csv` when it has stopped.

The admin token goes to Locust in `NOVA_ADMIN_TOKEN` only, never on its command line, where
any user of the machine could read it in `ps`. Locust runs in its own session, so Ctrl-C in
the terminal reaches `nova load` alone, which then stops Locust (and, with `--processes`, its
forked workers: the same process group) by its PID, and nothing else.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loadtests.gate import Thresholds, evaluate_gate
from loadtests.open_model import open_load
from loadtests.processes import OwnedProcess, free_ports, log_tail
from loadtests.results import ResultFiles, RunParameters, RunSummary, write_results
from loadtests.samples import SAMPLES_FILE, SERVICES_FILE, read_samples, read_service_samples

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
REPO_ROOT = Path(__file__).resolve().parent.parent
LOG_FILE = "locust.log"
# Locust's start-up (imports, forking workers, the users' on_start) and stop (users finishing
# their task, the samples shipped and written) on top of the shape's duration.
GRACE_SECONDS = 90.0

Tick = Callable[[float], None]


class LocustError(RuntimeError):
    """Locust could not run, or stopped without leaving samples: there is nothing to judge."""


@dataclass(frozen=True)
class LocustRun:
    run: RunParameters
    results: Path
    admin_token: str
    web: bool = False
    locustfile: Path = LOCUSTFILE

    def command(self) -> list[str]:
        """The locustfile's command-line contract (loadtests/README.md)."""
        command = [sys.executable, "-m", "locust", "-f", str(self.locustfile)]
        if self.web:
            command += ["--web-host", "127.0.0.1"]
        else:
            command += ["--headless", "--only-summary"]
        command += [
            "--host",
            self.run.payments_url,
            "--portfolio-url",
            self.run.portfolio_url,
            "--shape",
            self.run.shape,
            "--peak-users",
            str(self.run.peak_users),
            "--duration",
            _number(self.run.duration_seconds),
            "--user-rate",
            _number(self.run.user_rate),
            "--mix",
            self.run.mix,
            "--nova-results",
            str(self.results),
        ]
        if self.run.rate > 0:
            command += ["--rate", _number(self.run.rate)]
        if self.run.processes > 1:
            # The forked workers reach their master on loopback; a port of its own (not Locust's
            # 5557 on every interface) lets several runs share a machine and keeps the port private.
            port = str(free_ports()[0])
            command += ["--processes", str(self.run.processes), "--master-bind-host", "127.0.0.1"]
            command += ["--master-bind-port", port, "--master-host", "127.0.0.1", "--master-port", port]
        return command

    def environment(self) -> dict[str, str]:
        return {**os.environ, "NOVA_ADMIN_TOKEN": self.admin_token}


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class LocustProcess(OwnedProcess):
    """A running Locust; a context manager that always stops it, its forked workers with it."""

    def __init__(self, spec: LocustRun) -> None:
        spec.results.mkdir(parents=True, exist_ok=True)
        self.spec = spec
        super().__init__(
            "Locust", spec.command(), spec.results / LOG_FILE, spec.environment(), cwd=REPO_ROOT, whole_group=True
        )

    def wait(self, timeout: float | None, tick: Tick | None = None) -> int:
        """Wait for Locust to exit, ticking a few times a second; stop it if `timeout` passes."""
        deadline = None if timeout is None else self.started + timeout
        while True:
            try:
                return self.popen.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                if tick is not None:
                    tick(self.elapsed)
                if deadline is not None and time.monotonic() > deadline:
                    self.stop()
                    raise LocustError(
                        f"Locust was still running {timeout:.0f} s after it started; stopped it ({self.log_tail(3)})"
                    ) from None


def run_headless(spec: LocustRun, tick: Tick | None = None) -> int:
    """Run to the end of the shape (bounded by its duration plus a grace period); Locust's exit code.

    Locust exits 1 whenever any request failed, so its code says nothing about the gate;
    what matters is whether it wrote the samples, which `collect` checks.
    """
    with LocustProcess(spec) as locust:
        return locust.wait(spec.run.duration_seconds + GRACE_SECONDS, tick)


def collect(
    spec: LocustRun, thresholds: Thresholds, exit_code: int, warmup_seconds: float = 0.0
) -> tuple[RunSummary, ResultFiles]:
    """The gate over what Locust left in the results folder, and the results files written beside it.

    `warmup_seconds`: requests sent that long after the first one are judged, earlier ones only
    recorded (the capacity search judges a step's sustained rate, not its ramp and set-up).
    """
    samples_path = spec.results / SAMPLES_FILE
    if not samples_path.is_file():
        raise LocustError(
            f"Locust exited with code {exit_code} without writing {samples_path} "
            f"({log_tail(spec.results / LOG_FILE, 3)}; full log in {spec.results / LOG_FILE})"
        )
    try:
        samples = list(read_samples(samples_path))
        services_path = spec.results / SERVICES_FILE
        services = list(read_service_samples(services_path)) if services_path.is_file() else []
    except (ValueError, OSError) as exc:
        raise LocustError(f"cannot read Locust's results: {exc}") from None
    judged = samples
    if warmup_seconds > 0 and samples:
        cutoff = min(s.timestamp for s in samples) + warmup_seconds
        judged = [s for s in samples if s.timestamp >= cutoff]
    timetable = spec.run.timetable
    summary = RunSummary(
        evaluate_gate(judged, thresholds), spec.run, open_load=open_load(samples, timetable) if timetable else None
    )
    return summary, write_results(spec.results, summary, samples, services)

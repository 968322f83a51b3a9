"""How many requests per second one core of load generator produces: Locust, with wrk as the baseline.

    python -m loadtests.bench.locust_rate [--runs 3] [--users 32] [--seconds 20] [--server-workers 1]

A load test can only find the platform's limits if the load generator is not the limit
first. This measures Locust's `FastHttpUser` (one Locust process, `--users` users with no
wait) against a bare ASGI app on the same machine (loadtests/bench/hello_asgi.py, served by
uvicorn as the services are), and reports requests per second per core of Locust's CPU,
which `hello_locustfile.py` reads from /proc inside the Locust process over a window after
the ramp. It quotes the median of `--runs` runs. Then, if `wrk` is installed, wrk with one
thread against the same endpoint as the baseline, its CPU from the kernel's accounting of
the finished process: what a generator written in C gets from the same core.

Dividing the capacity you want to test by Locust's figure gives the cores (`--processes`,
or workers on other machines) the load generator needs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from loadtests.bench.errors import BenchError
from loadtests.bench.hello_asgi import serve_command
from loadtests.bench.processes import REPO_ROOT, clean_environment
from loadtests.bench.wrk import parse_wrk
from loadtests.processes import OwnedProcess, ProcessError, free_ports

HELLO_LOCUSTFILE = Path(__file__).resolve().parent / "hello_locustfile.py"


@dataclass(frozen=True)
class GeneratorRun:
    requests: int
    failures: int
    seconds: float
    cpu_seconds: float

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds

    @property
    def cores(self) -> float:
        return self.cpu_seconds / self.seconds

    @property
    def per_core(self) -> float:
        return self.requests / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


@dataclass(frozen=True)
class Settings:
    runs: int
    users: int
    seconds: int
    warmup: int
    server_workers: int


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.locust_rate", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--runs", type=int, default=3, help="Locust runs; the median is quoted (default 3)")
    parser.add_argument("--users", type=int, default=32, help="Locust users, and wrk connections (default 32)")
    parser.add_argument("--seconds", type=int, default=20, help="length of each run (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of each run before measuring (default 5)")
    parser.add_argument("--server-workers", type=int, default=1, help="uvicorn workers of the hello app (default 1)")
    args = parser.parse_args(argv)
    if min(args.runs, args.users, args.server_workers) < 1 or args.seconds < args.warmup + 5:
        parser.error("--runs, --users, --server-workers must be >= 1 and --seconds at least --warmup + 5")
    return Settings(args.runs, args.users, args.seconds, args.warmup, args.server_workers)


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        locust, wrk = measure(settings, console)
    except (BenchError, ProcessError) as exc:
        Console(stderr=True).print(f"locust_rate: {exc}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt:
        return 130
    report(console, settings, locust, wrk)
    return 0


def measure(settings: Settings, console: Console) -> tuple[list[GeneratorRun], GeneratorRun | None]:
    with tempfile.TemporaryDirectory(prefix="nova-locust-rate-") as scratch:
        workdir = Path(scratch)
        (port,) = free_ports()
        url = f"http://127.0.0.1:{port}"
        command = serve_command(port, settings.server_workers)
        log = workdir / "hello.log"
        with OwnedProcess("hello-world ASGI", command, log, clean_environment(), cwd=REPO_ROOT) as app:
            app.wait_ready(url + "/")
            runs = []
            for number in range(1, settings.runs + 1):
                with console.status(f"Locust run {number} of {settings.runs} ({settings.seconds} s)"):
                    runs.append(locust_run(url, settings, workdir / f"run-{number}.json"))
            wrk = None
            if shutil.which("wrk"):
                with console.status(f"wrk baseline ({settings.seconds - settings.warmup} s)"):
                    wrk = wrk_run(url, settings.users, settings.seconds - settings.warmup)
    return runs, wrk


def locust_run(url: str, settings: Settings, out: Path) -> GeneratorRun:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(HELLO_LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--host",
        url,
        "-u",
        str(settings.users),
        "-r",
        str(settings.users),
        "-t",
        f"{settings.seconds}s",
        "--rate-out",
        str(out),
        "--rate-warmup",
        str(settings.warmup),
        "--rate-window",
        str(settings.seconds - settings.warmup - 2),
    ]
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=clean_environment(), capture_output=True, text=True, timeout=settings.seconds + 60
    )
    if not out.is_file():
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise BenchError(f"Locust exited with code {result.returncode} without measuring: {tail}")
    figures = json.loads(out.read_text())
    return GeneratorRun(figures["requests"], figures["failures"], figures["seconds"], figures["cpu_seconds"])


def wrk_run(url: str, connections: int, seconds: int) -> GeneratorRun:
    """wrk -t1, its CPU time from wait4's rusage (the whole process, every thread, until it exited)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url + "/"]
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True)
        _pid, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read()
    if process.returncode != 0:
        raise BenchError(f"wrk exited with code {process.returncode}: {text.strip()[:300]}")
    run = parse_wrk(text)
    return GeneratorRun(
        run.requests,
        run.socket_errors + run.non_2xx,
        run.requests / run.requests_per_second,
        usage.ru_utime + usage.ru_stime,
    )


def median_run(runs: list[GeneratorRun]) -> GeneratorRun:
    """The run with the median requests per core (an observed run, not a blend of several)."""
    ordered = sorted(runs, key=lambda run: run.per_core)
    return ordered[(len(ordered) - 1) // 2]


def report(console: Console, settings: Settings, runs: list[GeneratorRun], wrk: GeneratorRun | None) -> None:
    console.print(f"CPUs (nproc): {len(os.sched_getaffinity(0))}; hello app: {settings.server_workers} uvicorn workers")
    table = Table(title="Load generator rate against a bare endpoint on this machine")
    for column in ("generator", "run", "requests/s", "CPU (cores)", "requests/s per core", "failures"):
        table.add_column(column, justify="left" if column == "generator" else "right")
    for number, run in enumerate(runs, start=1):
        table.add_row(*_cells(f"Locust FastHttpUser, 1 process, {settings.users} users", str(number), run))
    median = median_run(runs)
    table.add_row(*_cells("Locust (median of runs)", "median", median), style="bold")
    if wrk is not None:
        table.add_row(*_cells(f"wrk -t1 -c{settings.users} (baseline)", "1", wrk))
    console.print(table)
    console.print(
        f"Locust: {median.per_core:,.0f} requests/s per core (median of {len(runs)}); "
        + (f"wrk: {wrk.per_core:,.0f} per core ({wrk.per_core / median.per_core:.1f}x)" if wrk else "wrk not installed")
    )


def _cells(name: str, label: str, run: GeneratorRun) -> list[str]:
    return [
        name,
        label,
        f"{run.requests_per_second:,.0f}",
        f"{run.cores:.2f}",
        f"{run.per_core:,.0f}",
        str(run.failures),
    ]


if __name__ == "__main__":
    sys.exit(main())

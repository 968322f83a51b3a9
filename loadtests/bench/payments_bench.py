"""How many payments per second the platform sustains, next to the ceilings that bound it.

    python -m loadtests.bench.payments_bench [--duration 15] [--connections 16]
        [--databases sqlite,postgresql] [--workers 2] [--repeat 3] [--json-out FILE]

For each database it starts `nova serve` on free ports with a fresh data dir (and a
scratch PostgreSQL database), funds 64 payers through the API, and drives
POST /v1/payments with wrk; then it asks the ledger to verify itself. Everything it
started or created is stopped and removed on the way out, Ctrl-C and failures included.
See loadtests/bench/README.md for how to read the table.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from loadtests.bench.baselines import (
    WARMUP_SECONDS,
    CommitRate,
    find_pgbench,
    http_ceiling,
    postgres_commit_rate,
    sqlite_commit_rate,
)
from loadtests.bench.errors import BenchError
from loadtests.bench.machine import describe_machine
from loadtests.bench.payers import PAYERS, Payer, seed_payers, write_wrk_script
from loadtests.bench.postgres import durability_settings, scratch_database
from loadtests.bench.processes import nova_serve
from loadtests.bench.report import print_machine, print_report, write_json
from loadtests.bench.results import (
    DATABASE_NAMES,
    BenchResult,
    DatabaseResult,
    LedgerCheck,
    PaymentsResult,
)
from loadtests.bench.wrk import WRK_THREADS, Tick, WrkRun, require_wrk, run_wrk
from loadtests.processes import ProcessError

RAW_COMMIT_SECONDS = 5
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class BenchSettings:
    duration: int
    connections: int
    databases: tuple[str, ...]
    workers: int
    repeat: int
    json_out: Path | None
    postgres_url: str

    def how(self) -> str:
        return (
            f"wrk -t{WRK_THREADS} -c{self.connections} -d{self.duration}s, {self.workers} workers per service, "
            f"{self.repeat} runs per database after a {WARMUP_SECONDS} s warm-up"
        )


def parse_args(argv: list[str] | None) -> BenchSettings:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.payments_bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--duration", type=_positive, default=15, help="seconds per wrk run (default 15)")
    parser.add_argument("--connections", type=_positive, default=16, help="wrk connections (default 16)")
    parser.add_argument("--databases", type=_databases, default=("sqlite", "postgresql"), help="sqlite,postgresql")
    parser.add_argument("--workers", type=_positive, default=2, help="worker processes per service (default 2)")
    parser.add_argument("--repeat", type=_positive, default=3, help="measured runs per database (default 3)")
    parser.add_argument("--json-out", type=Path, default=None, help="also write every figure to this JSON file")
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help=f"server to create scratch nova_bench_* databases on (default {DEFAULT_POSTGRES_URL})",
    )
    args = parser.parse_args(argv)
    if args.connections < WRK_THREADS:
        parser.error(f"--connections must be at least {WRK_THREADS}, wrk's thread count")
    return BenchSettings(**vars(args))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _databases(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in DATABASE_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"choose from {','.join(DATABASE_NAMES)}; got {text!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    # Wide enough for the table when the output goes to a file or a CI log, not a terminal.
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        result = run(settings, console)
    except (BenchError, ProcessError) as exc:
        Console(stderr=True).print(f"payments_bench: {exc}", markup=False, highlight=False)
        return 2
    except KeyboardInterrupt:
        Console(stderr=True).print("payments_bench: interrupted; servers stopped, scratch data removed")
        return 130
    print_report(console, result, settings.how())
    if settings.json_out is not None:
        write_json(settings.json_out, result, {**asdict(settings), "json_out": str(settings.json_out)})
        console.print(f"figures written to {settings.json_out}")
    return 0 if all(verdict.passed for verdict in result.verdicts()) else 1


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM cleans up as Ctrl-C does: servers stopped, scratch databases dropped."""
    raise KeyboardInterrupt


def run(settings: BenchSettings, console: Console) -> BenchResult:
    """Measure everything; temporary files and every process started are gone when this returns."""
    machine = describe_machine(require_wrk(), find_pgbench())
    print_machine(console, machine.lines())
    with tempfile.TemporaryDirectory(prefix="nova-bench-") as scratch, _stages(console) as stages:
        workdir = Path(scratch)
        ceiling = stages.measure_ceiling(settings, workdir)
        databases = [stages.measure_database(name, settings, workdir) for name in settings.databases]
    return BenchResult(machine, ceiling, databases)


@contextmanager
def _stages(console: Console) -> Iterator[Stages]:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        yield Stages(progress)


class Stages:
    """The benchmark's steps, each a line of the progress display that ends with its figure."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def measure_ceiling(self, settings: BenchSettings, workdir: Path) -> WrkRun:
        label = "HTTP ceiling: hello-world ASGI"
        task = self._start(label, settings.duration + WARMUP_SECONDS)
        run = http_ceiling(workdir, settings.connections, settings.duration, settings.workers, self._ticker(task))
        self._finish(task, f"{label}: {run.requests_per_second:,.0f} req/s, p99 {run.p99_ms:.2f} ms")
        return run

    def measure_database(self, database: str, settings: BenchSettings, workdir: Path) -> DatabaseResult:
        if database == "sqlite":
            raw = self._raw_commits(database, lambda tick: sqlite_commit_rate(workdir, RAW_COMMIT_SECONDS, tick))
            return DatabaseResult(database, raw, "", self.measure_payments(database, settings, workdir))
        with scratch_database(settings.postgres_url) as baseline_url:
            raw = self._raw_commits(
                database,
                lambda tick: postgres_commit_rate(
                    baseline_url, settings.connections, RAW_COMMIT_SECONDS, workdir, tick
                ),
            )
        with scratch_database(settings.postgres_url) as payments_url:
            detail = durability_settings(payments_url)
            payments = self.measure_payments(database, settings, workdir, payments_url)
        return DatabaseResult(database, raw, detail, payments)

    def _raw_commits(self, database: str, measure: Callable[[Tick], CommitRate]) -> CommitRate:
        label = f"{DATABASE_NAMES[database]} raw commit rate"
        task = self._start(label, RAW_COMMIT_SECONDS)
        raw = measure(self._ticker(task))
        self._finish(task, f"{label}: {raw.commits_per_second:,.0f}/s")
        return raw

    def measure_payments(
        self, database: str, settings: BenchSettings, workdir: Path, payments_db: str | None = None
    ) -> PaymentsResult:
        name = DATABASE_NAMES[database]
        data_dir = workdir / f"nova-{database}"
        marker = _database_name(payments_db)
        task = self._start(f"{name}: starting nova serve, funding {PAYERS} payers", None)
        with nova_serve(data_dir, settings.workers, payments_db) as (server, url, _):
            admin_token = (data_dir / "admin-token").read_text().strip()
            payers = seed_payers(url, admin_token)
            self._finish(task, f"{name}: nova serve up, {PAYERS} payers funded")
            load = _Load(url, payers, settings.connections, data_dir, marker)
            warmup = self._payments_run(f"{name} payments warm-up", load, WARMUP_SECONDS)
            runs = [
                self._payments_run(f"{name} payments run {n}/{settings.repeat}", load, settings.duration)
                for n in range(1, settings.repeat + 1)
            ]
            if server.popen.poll() is not None:
                raise BenchError(f"nova serve exited during the runs: {server.log_tail()}")
            ledger = _verify_ledger(url, admin_token, [warmup, *runs])
        if not ledger.accounted:
            self.progress.console.print(
                f"[red]warning[/red]: {name}: the ledger holds {ledger.payments:,} payments, fewer than the "
                f"{ledger.created_seen:,} wrk saw created (deposits included): answered 201 but not recorded"
            )
        return PaymentsResult(database, warmup, runs, ledger)

    def _payments_run(self, label: str, load: _Load, seconds: int) -> WrkRun:
        task = self._start(label, seconds)
        script = write_wrk_script(load.payers, load.directory, WRK_THREADS)
        run = run_wrk(load.url, load.connections, seconds, script, self._ticker(task), load.owned_marker)
        if run.statuses is None:
            raise BenchError("payments.lua did not report response statuses; is the script complete?")
        summary = f"{run.requests_per_second:,.0f} req/s, p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms"
        self._finish(task, f"{label}: {summary}, {run.errors} errors, others' CPU {run.others_cpu:.0%}")
        if run.errors:
            self.progress.console.print(f"[yellow]warning[/yellow]: {label}: {_error_detail(run)}")
        return run

    def _start(self, label: str, seconds: float | None) -> TaskID:
        return self.progress.add_task(label, total=seconds)

    def _ticker(self, task: TaskID) -> Tick:
        return partial(self._tick, task)

    def _tick(self, task: TaskID, elapsed: float) -> None:
        total = self.progress.tasks[task].total
        self.progress.update(task, completed=min(elapsed, total) if total is not None else None)

    def _finish(self, task: TaskID, description: str) -> None:
        total = self.progress.tasks[task].total or 1.0
        self.progress.update(task, description=description, total=total, completed=total)
        self.progress.stop_task(task)


class _Load(NamedTuple):
    """Where and how to send payments: the same for the warm-up and every run."""

    url: str
    payers: list[Payer]
    connections: int
    directory: Path
    owned_marker: str | None


def _database_name(url: str | None) -> str | None:
    if url is None:
        return None
    return urlsplit(url).path.lstrip("/") or None


def _verify_ledger(url: str, admin_token: str, runs: list[WrkRun]) -> LedgerCheck:
    response = httpx.get(f"{url}/v1/ledger/verify", headers={"Authorization": f"Bearer {admin_token}"}, timeout=60.0)
    if response.status_code != 200:
        raise BenchError(f"GET /v1/ledger/verify answered {response.status_code}: {response.text[:200]}")
    body = response.json()
    # The setup deposits are rows of `payments` too.
    return LedgerCheck(bool(body["balanced"]), int(body["payments"]), sum(run.created for run in runs) + PAYERS)


def _error_detail(run: WrkRun) -> str:
    statuses = ", ".join(
        f"{status}: {count}" for status, count in sorted((run.statuses or {}).items()) if status != 201
    )
    return f"non-201 responses {{{statuses}}}, socket errors {run.socket_errors}"


if __name__ == "__main__":
    sys.exit(main())

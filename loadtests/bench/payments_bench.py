"""How many payments per second the platform sustains, next to the ceilings that bound it.

    python -m loadtests.bench.payments_bench [--duration 15] [--connections 16]
        [--databases sqlite,postgresql] [--workers 2] [--repeat 5] [--json-out FILE]

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
from contextlib import ExitStack, contextmanager
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
    hello_server,
    postgres_commit_rate,
    sqlite_commit_rate,
)
from loadtests.bench.errors import BenchError
from loadtests.bench.machine import describe_machine
from loadtests.bench.payers import PAYERS, Payer, seed_payers, write_wrk_script
from loadtests.bench.postgres import durability_settings, scratch_database
from loadtests.bench.processes import REPO_ROOT, nova_serve
from loadtests.bench.report import print_machine, print_report, write_json
from loadtests.bench.results import (
    DATABASE_NAMES,
    BenchResult,
    DatabaseResult,
    LedgerCheck,
    PaymentsResult,
)
from loadtests.bench.wrk import WRK_THREADS, Tick, WrkRun, require_wrk, run_wrk
from loadtests.ledger_verification import LedgerVerification
from loadtests.processes import OwnedProcess, ProcessError
from loadtests.serve_state import read_admin_token

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
    compare_with: Path | None = None
    checkout: Path = REPO_ROOT

    def how(self) -> str:
        return (
            f"wrk -t{WRK_THREADS} -c{self.connections} -d{self.duration}s, {self.workers} workers per service, "
            f"{self.repeat} interleaved rounds after a {WARMUP_SECONDS} s warm-up"
        )


def parse_args(argv: list[str] | None) -> BenchSettings:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench.payments_bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--duration", type=_positive, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=_positive, default=16, help="wrk connections (default 16)")
    parser.add_argument("--databases", type=_databases, default=("sqlite", "postgresql"), help="sqlite,postgresql")
    parser.add_argument("--workers", type=_positive, default=2, help="worker processes per service (default 2)")
    parser.add_argument(
        "--repeat", type=_positive, default=5, help="measured rounds, each driving every server once (default 5)"
    )
    parser.add_argument(
        "--json-out", "--json", type=Path, default=None, help="also write every figure to this JSON file"
    )
    parser.add_argument(
        "--postgres-url",
        default=DEFAULT_POSTGRES_URL,
        help=f"server to create scratch nova_bench_* databases on (default {DEFAULT_POSTGRES_URL})",
    )
    parser.add_argument(
        "--compare-with",
        type=_checkout,
        default=None,
        metavar="DIR",
        help="another checkout of the suite (e.g. `git worktree add DIR <commit>`): its nova serve runs beside "
        "this one's, in the same rounds, and the table adds its CPU per payment and the paired ratio",
    )
    parser.add_argument(
        "--checkout",
        type=_checkout,
        default=REPO_ROOT,
        metavar="DIR",
        help="the checkout whose nova serve is measured (default: this one); with --compare-with, "
        "any two commits are compared with this benchmark",
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


def _checkout(text: str) -> Path:
    root = Path(text).resolve()
    if not (root / "nova" / "__main__.py").is_file():
        raise argparse.ArgumentTypeError(f"{text} is not a checkout of the suite (no nova/__main__.py)")
    return root


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
        write_json(settings.json_out, result, {name: _json_safe(value) for name, value in asdict(settings).items()})
        console.print(f"figures written to {settings.json_out}")
    return 0 if all(verdict.passed for verdict in result.verdicts()) else 1


def _json_safe(value: object) -> object:
    return str(value) if isinstance(value, Path) else value


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM cleans up as Ctrl-C does: servers stopped, scratch databases dropped."""
    raise KeyboardInterrupt


def run(settings: BenchSettings, console: Console) -> BenchResult:
    """Measure everything; temporary files and every process started are gone when this returns.

    The raw commit rates come first, on an otherwise idle benchmark. Then the
    hello-world server and one `nova serve` per database run side by side, and each
    round drives every one of them in turn (the order rotating from round to round),
    so that whatever the shared machine does meanwhile weighs on all of them alike.
    """
    machine = describe_machine(require_wrk(), find_pgbench())
    print_machine(console, machine.lines())
    with (
        tempfile.TemporaryDirectory(prefix="nova-bench-") as scratch,
        _stages(console) as stages,
        ExitStack() as running,
    ):
        workdir = Path(scratch)
        raws = {name: stages.raw_commits(name, settings, workdir) for name in settings.databases}
        hello, hello_url = running.enter_context(hello_server(workdir, settings.workers))
        ceiling = _Target("hello-world ASGI", hello_url, settings.connections, None, None, hello, None)
        targets = [ceiling] + [stages.start_payments(name, settings, workdir, running) for name in settings.databases]
        if settings.compare_with is not None:
            targets += [
                stages.start_payments(name, settings, workdir, running, settings.compare_with)
                for name in settings.databases
            ]
        warmups = {target.label: stages.drive(f"{target.label} warm-up", target, WARMUP_SECONDS) for target in targets}
        runs: dict[str, list[WrkRun]] = {target.label: [] for target in targets}
        for number in range(settings.repeat):
            shift = number % len(targets)
            for target in targets[shift:] + targets[:shift]:
                label = f"round {number + 1}/{settings.repeat}: {target.label}"
                runs[target.label].append(stages.drive(label, target, settings.duration))
        databases: list[DatabaseResult] = []
        baselines: list[DatabaseResult] = []
        for target in targets[1:]:
            assert target.database is not None
            ledger = stages.verify(target, [warmups[target.label], *runs[target.label]])
            payments = PaymentsResult(
                target.database, warmups[target.label], runs[target.label], ledger, runs[ceiling.label]
            )
            result = DatabaseResult(target.database, *raws[target.database], payments)
            (baselines if target.baseline else databases).append(result)
    return BenchResult(machine, runs[ceiling.label], databases, tuple(baselines))


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


class _Target(NamedTuple):
    """A server driven in every round: the hello-world ceiling, or payments on one database."""

    label: str
    url: str
    connections: int
    database: str | None
    load: _Load | None
    server: OwnedProcess
    admin_token: str | None
    baseline: bool = False

    @property
    def owned_marker(self) -> str | None:
        return self.load.owned_marker if self.load is not None else None


class Stages:
    """The benchmark's steps, each a line of the progress display that ends with its figure."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def raw_commits(self, database: str, settings: BenchSettings, workdir: Path) -> tuple[CommitRate, str]:
        """The database's own rate of small commits, and what a commit costs there (PostgreSQL's settings)."""
        if database == "sqlite":
            return self._raw_commits(database, lambda tick: sqlite_commit_rate(workdir, RAW_COMMIT_SECONDS, tick)), ""
        with scratch_database(settings.postgres_url) as baseline_url:
            raw = self._raw_commits(
                database,
                lambda tick: postgres_commit_rate(
                    baseline_url, settings.connections, RAW_COMMIT_SECONDS, workdir, tick
                ),
            )
            return raw, durability_settings(baseline_url)

    def _raw_commits(self, database: str, measure: Callable[[Tick], CommitRate]) -> CommitRate:
        label = f"{DATABASE_NAMES[database]} raw commit rate"
        task = self._start(label, RAW_COMMIT_SECONDS)
        raw = measure(self._ticker(task))
        self._finish(task, f"{label}: {raw.commits_per_second:,.0f}/s")
        return raw

    def start_payments(
        self, database: str, settings: BenchSettings, workdir: Path, running: ExitStack, baseline: Path | None = None
    ) -> _Target:
        """`nova serve` on `database` with its payers funded; stopped (database dropped) when `running` closes.

        `baseline`: the checkout to run instead of this one, for a comparison.
        """
        checkout = "" if settings.checkout == REPO_ROOT else f" ({settings.checkout})"
        name = DATABASE_NAMES[database] + (f" (baseline {baseline})" if baseline is not None else checkout)
        payments_db = running.enter_context(scratch_database(settings.postgres_url)) if database != "sqlite" else None
        data_dir = workdir / (f"nova-{database}" + ("-baseline" if baseline is not None else ""))
        task = self._start(f"{name}: starting nova serve, funding {PAYERS} payers", None)
        root = baseline if baseline is not None else settings.checkout
        server, url, _ = running.enter_context(nova_serve(data_dir, settings.workers, payments_db, root=root))
        admin_token = read_admin_token(data_dir, environ={})  # nova_serve strips NOVA_*: the file
        payers = seed_payers(url, admin_token)
        self._finish(task, f"{name}: nova serve up, {PAYERS} payers funded")
        load = _Load(url, payers, settings.connections, data_dir, _database_name(payments_db))
        return _Target(
            f"payments on {name}", url, settings.connections, database, load, server, admin_token, baseline is not None
        )

    def drive(self, label: str, target: _Target, seconds: int) -> WrkRun:
        task = self._start(label, seconds)
        load = target.load
        script = write_wrk_script(load.payers, load.directory, WRK_THREADS) if load is not None else None
        run = run_wrk(
            target.url, target.connections, seconds, script, self._ticker(task), target.owned_marker, target.server.pid
        )
        if load is not None and run.statuses is None:
            raise BenchError("payments.lua did not report response statuses; is the script complete?")
        summary = (
            f"{run.requests_per_second:,.0f} req/s, p99 {run.p99_ms:.2f} ms, CPU {run.cpu_ms_per_request:.3f} ms/req"
        )
        self._finish(task, f"{label}: {summary}, {run.errors} errors, others' CPU {run.others_cpu:.0%}")
        if run.errors:
            self.progress.console.print(f"[yellow]warning[/yellow]: {label}: {_error_detail(run)}")
        return run

    def verify(self, target: _Target, runs: list[WrkRun]) -> LedgerCheck:
        """The ledger after the runs, against the 201s wrk saw; the server must still be running."""
        assert target.admin_token is not None and target.database is not None
        if target.server.popen.poll() is not None:
            raise BenchError(f"nova serve exited during the runs: {target.server.log_tail()}")
        ledger = _verify_ledger(target.url, target.admin_token, runs)
        if not ledger.accounted:
            self.progress.console.print(
                f"[red]warning[/red]: {target.label}: the ledger holds {ledger.payments:,} "
                f"payments, fewer than the {ledger.created_seen:,} wrk saw created (deposits included): "
                "answered 201 but not recorded"
            )
        return ledger

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
    try:
        ledger = LedgerVerification.from_json(response.json())
    except ValueError as exc:
        raise BenchError(f"GET /v1/ledger/verify: {exc}") from None
    # The setup deposits are rows of `payments` too.
    return LedgerCheck(ledger.balanced, ledger.payments, sum(run.created for run in runs) + PAYERS)


def _error_detail(run: WrkRun) -> str:
    statuses = ", ".join(
        f"{status}: {count}" for status, count in sorted((run.statuses or {}).items()) if status != 201
    )
    return f"non-201 responses {{{statuses}}}, socket errors {run.socket_errors}"


if __name__ == "__main__":
    sys.exit(main())

"""What the suite's instrumentation costs, next to no instrumentation and the stock one.

    python -m loadtests.bench.overhead_bench [--duration 10] [--connections 16] [--rounds 3]

For each telemetry mode it starts `nova serve` (SQLite, 2 workers per service) with
`NOVA_TELEMETRY` and the standard OTEL_* sampler variables set, and drives
`POST /v1/payments` and `GET /v1/portfolios/{id}` with wrk. Modes run in rounds
(A, B, C, D, A, B, ...) so that drift of the shared machine spreads over all of them;
the table quotes medians and each mode's throughput as a share of the uninstrumented one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from loadtests.bench.errors import BenchError
from loadtests.bench.machine import describe_machine
from loadtests.bench.payers import Payer, seed_payers, write_wrk_script
from loadtests.bench.processes import nova_serve
from loadtests.bench.report import print_machine
from loadtests.bench.wrk import WRK_THREADS, WrkRun, require_wrk, run_wrk
from loadtests.processes import ProcessError


class Mode(NamedTuple):
    name: str
    env: dict[str, str]


MODES = (
    Mode("uninstrumented", {"NOVA_TELEMETRY": "off"}),
    Mode("suite, 100% sampled", {"NOVA_TELEMETRY": "suite", "OTEL_TRACES_SAMPLER": "parentbased_always_on"}),
    Mode(
        "suite, 10% parent-based",
        {
            "NOVA_TELEMETRY": "suite",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
    ),
    Mode("stock FastAPI instrumentation, 100%", {"NOVA_TELEMETRY": "stock", "OTEL_TRACES_SAMPLER": "always_on"}),
)
ENDPOINTS = ("POST /v1/payments", "GET /v1/portfolios/{id}")


class Platform(NamedTuple):
    payments_url: str
    portfolio_url: str
    payers: list[Payer]
    portfolio_script: Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench.overhead_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="runs of every mode, interleaved")
    args = parser.parse_args(argv)
    console = Console()
    try:
        print_machine(console, describe_machine(require_wrk(), None).lines())
        runs = measure(args.duration, args.connections, args.rounds, console)
    except (BenchError, ProcessError) as exc:
        console.print(f"[red]overhead benchmark failed:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    print_table(console, runs, args)
    return 0


def measure(seconds: int, connections: int, rounds: int, console: Console) -> dict[tuple[str, str], list[WrkRun]]:
    runs: dict[tuple[str, str], list[WrkRun]] = {}
    with tempfile.TemporaryDirectory(prefix="nova-overhead-") as scratch, Progress(console=console) as progress:
        task = progress.add_task("measuring", total=rounds * len(MODES) * len(ENDPOINTS))
        for round_number in range(rounds):
            for mode in MODES:
                data_dir = Path(scratch) / f"{round_number}-{MODES.index(mode)}"
                with running_platform(data_dir, mode) as platform:
                    for endpoint in ENDPOINTS:
                        progress.update(task, description=f"round {round_number + 1}: {mode.name}: {endpoint}")
                        run = drive(platform, endpoint, data_dir, connections, seconds)
                        if run.errors:
                            raise BenchError(f"{mode.name} {endpoint}: {run.errors} failed requests")
                        runs.setdefault((mode.name, endpoint), []).append(run)
                        progress.advance(task)
    return runs


@contextmanager
def running_platform(data_dir: Path, mode: Mode) -> Iterator[Platform]:
    with nova_serve(data_dir, 2, env=mode.env) as (_, payments_url, portfolio_url):
        admin_token = (data_dir / "admin-token").read_text().strip()
        payers = seed_payers(payments_url, admin_token)
        yield Platform(payments_url, portfolio_url, payers, portfolio_script(portfolio_url, payers[0], data_dir))


def portfolio_script(portfolio_url: str, trader: Payer, directory: Path) -> Path:
    """A wrk script reading one trader's portfolio, after one real order so it holds a position."""
    headers = {"Authorization": f"Bearer {trader.token}"}
    order = {"account_id": trader.from_account, "symbol": "NOVA", "side": "buy", "quantity": 3}
    placed = httpx.post(
        f"{portfolio_url}/v1/orders", json=order, headers={**headers, "Idempotency-Key": "bench"}, timeout=30.0
    )
    if placed.status_code != 201:
        raise BenchError(f"setup order answered {placed.status_code}: {placed.text[:200]}")
    script = directory / "portfolio.lua"
    script.write_text(
        f'wrk.method = "GET"\nwrk.path = "/v1/portfolios/{trader.from_account}"\n'
        f'wrk.headers["Authorization"] = "Bearer {trader.token}"\n'
        "statuses = {}\nfunction response(status) statuses[status] = (statuses[status] or 0) + 1 end\n"
    )
    return script


def drive(platform: Platform, endpoint: str, directory: Path, connections: int, seconds: int) -> WrkRun:
    if endpoint.startswith("POST"):
        script = write_wrk_script(platform.payers, directory, WRK_THREADS)
        return run_wrk(platform.payments_url, connections, seconds, script)
    return run_wrk(platform.portfolio_url, connections, seconds, platform.portfolio_script)


def print_table(console: Console, runs: dict[tuple[str, str], list[WrkRun]], args: argparse.Namespace) -> None:
    table = Table(
        title=f"Instrumentation overhead (wrk -c{args.connections} -d{args.duration}s, "
        f"median of {args.rounds} interleaved rounds, SQLite, 2 workers per service)"
    )
    for column in ("endpoint", "mode", "req/s", "of uninstrumented", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column in ("endpoint", "mode") else "right")
    for endpoint in ENDPOINTS:
        baseline = statistics.median(run.requests_per_second for run in runs[(MODES[0].name, endpoint)])
        for mode in MODES:
            mode_runs = runs[(mode.name, endpoint)]
            rate = statistics.median(run.requests_per_second for run in mode_runs)
            table.add_row(
                endpoint,
                mode.name,
                f"{rate:,.0f}",
                f"{rate / baseline:.1%}",
                f"{statistics.median(run.p50_ms for run in mode_runs):.2f}",
                f"{statistics.median(run.p99_ms for run in mode_runs):.2f}",
            )
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())

"""What the suite's instrumentation costs, in CPU per request, next to no instrumentation and the stock one.

    python -m loadtests.bench.overhead_bench [--duration 5] [--connections 16] [--rounds 7] [--json-out FILE]

It starts one `nova serve` (SQLite, 2 workers per service) per telemetry mode, side by
side, each with `NOVA_TELEMETRY` and the standard OTEL_* sampler variables set, and
drives `POST /v1/payments` and `GET /v1/portfolios/{id}` with wrk. Each round drives
every mode on every endpoint once, the order of the modes rotating from round to
round, so that drift of the shared machine weighs on all of them alike.

The primary figure is CPU per request of the platform's own processes (read from
/proc around each run): a busy neighbour halves requests per second but barely moves
it. A mode's overhead is the median over rounds of its CPU per request divided by the
uninstrumented one's in the same round, with a 95% bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from loadtests.bench.baselines import WARMUP_SECONDS
from loadtests.bench.errors import BenchError
from loadtests.bench.machine import describe_machine
from loadtests.bench.payers import Payer, seed_payers, write_wrk_script
from loadtests.bench.processes import nova_serve
from loadtests.bench.report import print_machine
from loadtests.bench.spread import Spread, paired_ratios
from loadtests.bench.wrk import WRK_THREADS, WrkRun, require_wrk, run_wrk
from loadtests.processes import ProcessError
from loadtests.serve_state import read_admin_token


class Mode(NamedTuple):
    key: str  # the mode's name in the JSON document
    name: str
    env: dict[str, str]
    # The most extra CPU per request this mode may cost over the uninstrumented one; None: not judged.
    budget: float | None


MODES = (
    Mode("uninstrumented", "uninstrumented", {"NOVA_TELEMETRY": "off"}, None),
    Mode(
        "suite_100",
        "suite, 100% sampled",
        {"NOVA_TELEMETRY": "suite", "OTEL_TRACES_SAMPLER": "parentbased_always_on"},
        0.05,
    ),
    Mode(
        "suite_10",
        "suite, 10% parent-based",
        {
            "NOVA_TELEMETRY": "suite",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.1",
        },
        0.02,
    ),
    Mode(
        "stock_100",
        "stock FastAPI instrumentation, 100%",
        {"NOVA_TELEMETRY": "stock", "OTEL_TRACES_SAMPLER": "always_on"},
        None,
    ),
)
BASELINE = MODES[0]
ENDPOINTS = ("POST /v1/payments", "GET /v1/portfolios/{id}")


class Platform(NamedTuple):
    payments_url: str
    portfolio_url: str
    payers: list[Payer]
    portfolio_script: Path
    directory: Path
    # `nova serve`: its process tree's CPU time is what a request costs the platform.
    pid: int


Runs = dict[tuple[str, str], list[WrkRun]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.bench.overhead_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--duration", type=_positive, default=5, help="seconds per wrk run (default 5)")
    parser.add_argument("--connections", type=_positive, default=16, help="wrk connections (default 16)")
    parser.add_argument("--rounds", type=_positive, default=7, help="rounds, each running every mode (default 7)")
    parser.add_argument("--json-out", "--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    try:
        print_machine(console, describe_machine(require_wrk(), None).lines())
        runs = measure(args.duration, args.connections, args.rounds, console)
    except (BenchError, ProcessError) as exc:
        console.print(f"[red]overhead benchmark failed:[/red] {exc}")
        return 2
    except KeyboardInterrupt:
        return 130
    print_table(console, runs, args)
    verdicts = judge(runs)
    for line, _ in verdicts:
        console.print(line)
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(document(runs, vars(args)), indent=2) + "\n")
        console.print(f"figures written to {args.json_out}")
    return 0 if all(passed for _, passed in verdicts) else 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def measure(seconds: int, connections: int, rounds: int, console: Console) -> Runs:
    """Every mode's platform up at once, warmed up; then `rounds` rounds over every endpoint and mode."""
    runs: Runs = {}
    with (
        tempfile.TemporaryDirectory(prefix="nova-overhead-") as scratch,
        Progress(console=console) as progress,
        ExitStack() as running,
    ):
        task = progress.add_task("starting one nova serve per mode", total=rounds * len(MODES) * len(ENDPOINTS))
        platforms = {
            mode.key: running.enter_context(running_platform(Path(scratch) / mode.key, mode)) for mode in MODES
        }
        for mode in MODES:
            for endpoint in ENDPOINTS:
                progress.update(task, description=f"warm-up: {mode.name}: {endpoint}")
                drive(platforms[mode.key], endpoint, connections, WARMUP_SECONDS)
        for round_number in range(rounds):
            shift = round_number % len(MODES)
            for endpoint in ENDPOINTS:
                for mode in MODES[shift:] + MODES[:shift]:
                    progress.update(task, description=f"round {round_number + 1}/{rounds}: {mode.name}: {endpoint}")
                    run = drive(platforms[mode.key], endpoint, connections, seconds)
                    if run.errors:
                        raise BenchError(f"{mode.name} {endpoint}: {run.errors} failed requests")
                    runs.setdefault((mode.key, endpoint), []).append(run)
                    progress.advance(task)
    return runs


@contextmanager
def running_platform(data_dir: Path, mode: Mode) -> Iterator[Platform]:
    with nova_serve(data_dir, 2, env=mode.env) as (server, payments_url, portfolio_url):
        admin_token = read_admin_token(data_dir, environ={})  # nova_serve strips NOVA_*: the file
        payers = seed_payers(payments_url, admin_token)
        script = portfolio_script(portfolio_url, payers[0], data_dir)
        yield Platform(payments_url, portfolio_url, payers, script, data_dir, server.pid)


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


def drive(platform: Platform, endpoint: str, connections: int, seconds: int) -> WrkRun:
    if endpoint.startswith("POST"):
        script = write_wrk_script(platform.payers, platform.directory, WRK_THREADS)
        return run_wrk(platform.payments_url, connections, seconds, script, service_pid=platform.pid)
    return run_wrk(platform.portfolio_url, connections, seconds, platform.portfolio_script, service_pid=platform.pid)


def cpu(runs: list[WrkRun]) -> Spread:
    return Spread.of([run.cpu_ms_per_request for run in runs])


def overhead(runs: Runs, mode: Mode, endpoint: str) -> Spread:
    """CPU per request over the uninstrumented mode's in the same round, minus one (0.03 = 3% more)."""
    ratios = paired_ratios(
        [run.cpu_ms_per_request for run in runs[(mode.key, endpoint)]],
        [run.cpu_ms_per_request for run in runs[(BASELINE.key, endpoint)]],
    )
    return Spread(ratios.median - 1, ratios.q1 - 1, ratios.q3 - 1, ratios.ci_low - 1, ratios.ci_high - 1, ratios.rounds)


def print_table(console: Console, runs: Runs, args: argparse.Namespace) -> None:
    table = Table(
        title=f"Instrumentation overhead (wrk -c{args.connections} -d{args.duration}s, "
        f"{args.rounds} interleaved rounds, SQLite, 2 workers per service)"
    )
    columns = ("endpoint", "mode", "CPU ms/req (±IQR/2)", "extra CPU [95% CI]", "req/s", "p50 ms", "p99 ms")
    for column in columns:
        table.add_column(column, justify="left" if column in ("endpoint", "mode") else "right")
    for endpoint in ENDPOINTS:
        for mode in MODES:
            mode_runs = runs[(mode.key, endpoint)]
            spread = cpu(mode_runs)
            extra = overhead(runs, mode, endpoint)
            table.add_row(
                endpoint,
                mode.name,
                f"{spread.median:.3f} ±{spread.relative_iqr / 2:.1%}",
                "-" if mode is BASELINE else f"{extra.median:+.1%} [{extra.ci_low:+.1%}, {extra.ci_high:+.1%}]",
                f"{statistics.median(run.requests_per_second for run in mode_runs):,.0f}",
                f"{statistics.median(run.p50_ms for run in mode_runs):.2f}",
                f"{statistics.median(run.p99_ms for run in mode_runs):.2f}",
                end_section=mode is MODES[-1],
            )
    console.print(table)


def judge(runs: Runs) -> list[tuple[str, bool]]:
    """One line per judged mode and endpoint: the median extra CPU per request against the budget."""
    lines = []
    for mode in MODES:
        if mode.budget is None:
            continue
        for endpoint in ENDPOINTS:
            extra = overhead(runs, mode, endpoint)
            passed = extra.median <= mode.budget
            verdict = "[green]PASS[/green]" if passed else "[red]FAIL[/red]"
            lines.append(
                (
                    f"{verdict} {mode.name}, {endpoint}: {extra.median:+.1%} CPU per request "
                    f"(95% CI {extra.ci_low:+.1%} to {extra.ci_high:+.1%}), budget +{mode.budget:.0%}",
                    passed,
                )
            )
    return lines


def document(runs: Runs, settings: dict[str, Any]) -> dict[str, Any]:
    """Every figure, per endpoint and mode, runs included."""
    return {
        "settings": {**settings, "json_out": str(settings.get("json_out"))},
        "endpoints": {
            endpoint: {
                mode.key: {
                    "name": mode.name,
                    "median_cpu_ms_per_request": cpu(runs[(mode.key, endpoint)]).median,
                    "cpu_ms_per_request": cpu(runs[(mode.key, endpoint)]).as_json(),
                    "extra_cpu": None if mode is BASELINE else overhead(runs, mode, endpoint).as_json(),
                    "budget": mode.budget,
                    "median_requests_per_second": statistics.median(
                        run.requests_per_second for run in runs[(mode.key, endpoint)]
                    ),
                    "median_p50_ms": statistics.median(run.p50_ms for run in runs[(mode.key, endpoint)]),
                    "median_p99_ms": statistics.median(run.p99_ms for run in runs[(mode.key, endpoint)]),
                    "runs": [
                        {**run._asdict(), "cpu_ms_per_request": run.cpu_ms_per_request}
                        for run in runs[(mode.key, endpoint)]
                    ],
                }
                for mode in MODES
            }
            for endpoint in ENDPOINTS
        },
    }


if __name__ == "__main__":
    sys.exit(main())

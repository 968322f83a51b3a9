"""The benchmark's report: one table read top to bottom, ceiling first, then each database.

Each payments row sits under its database's raw commit rate, so the two are read
together: the raw rate is what the database does with no service in front of it.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table

from loadtests.bench.machine import OTHERS_CPU_NOTICEABLE
from loadtests.bench.results import (
    DATABASE_NAMES,
    P99_LIMIT_MS,
    BenchResult,
    DatabaseResult,
    PaymentsResult,
    Verdict,
    cpu_against,
)
from loadtests.bench.spread import Spread
from loadtests.bench.wrk import WRK_THREADS, WrkRun

NONE = "-"
_COLUMNS: list[tuple[str, JustifyMethod]] = [
    ("measurement", "left"),
    ("rate", "right"),
    ("p50", "right"),
    ("p99", "right"),
    ("errors", "right"),
    ("of ceiling", "right"),
    ("CPU/req (IQR)", "right"),
    ("others' CPU", "right"),
    ("how", "left"),
]


def print_machine(console: Console, lines: list[str]) -> None:
    console.rule("machine")
    for line in lines:
        console.print(line, highlight=False, markup=False)


def print_report(console: Console, result: BenchResult, how: str) -> None:
    console.print(_table(result, how))
    for verdict in result.verdicts():
        console.print(_verdict_line(verdict))


def _table(result: BenchResult, how: str) -> Table:
    table = Table(title=f"Payments benchmark ({how})", title_justify="left")
    for column, justify in _COLUMNS:
        table.add_column(column, justify=justify)
    runs = result.ceiling_runs
    rates = " / ".join(f"{run.requests_per_second:,.0f}" for run in runs)
    table.add_row(
        "hello-world ASGI (HTTP ceiling)",
        f"{result.ceiling_requests_per_second:,.0f} req/s",
        _ms(statistics.median(run.p50_ms for run in runs)),
        _ms(statistics.median(run.p99_ms for run in runs)),
        str(sum(run.errors for run in runs)),
        "100%",
        _cpu(Spread.of([run.cpu_ms_per_request for run in runs])),
        _others(statistics.median(run.others_cpu for run in runs)),
        f"bare ASGI app, uvicorn as the services run it; median of {len(runs)} rounds ({rates} req/s)",
    )
    for database in result.databases:
        table.add_row(*_raw_row(database))
        baseline = result.baseline_of(database.database)
        table.add_row(*_payments_row(database.payments), end_section=baseline is None)
        if baseline is not None:
            change = cpu_against(database.payments, baseline)
            row = _payments_row(baseline)
            row[0] = f"{row[0]}, baseline"
            row[-1] = (
                f"this checkout's CPU/req vs the baseline's, paired by round: {change.median:+.1%} "
                f"[{change.ci_low:+.1%}, {change.ci_high:+.1%}]; " + row[-1]
            )
            table.add_row(*row, end_section=True)
    return table


def _raw_row(database: DatabaseResult) -> list[str]:
    name = DATABASE_NAMES[database.database]
    unit = "tps" if database.raw.method.startswith("pgbench") else "commits/s"
    latency = f", avg {_ms(database.raw.latency_avg_ms)}" if database.raw.latency_avg_ms is not None else ""
    return [
        f"{name} raw commits",
        f"{database.raw.commits_per_second:,.0f} {unit}",
        NONE,
        NONE,
        NONE,
        NONE,
        NONE,
        NONE,
        f"{database.raw.method}, {database.raw.seconds:.0f} s{latency}"
        + (f"; {database.raw_detail}" if database.raw_detail else ""),
    ]


def _payments_row(payments: PaymentsResult) -> list[str]:
    runs = " / ".join(f"{run.requests_per_second:,.0f}" for run in payments.runs)
    ledger = "balanced" if payments.ledger.balanced else "[red]NOT balanced[/red]"
    errors = str(payments.errors) if not payments.errors else f"[red]{payments.errors}[/red]"
    share = payments.share_of_ceiling
    database_cpu = (
        f"; database backends {payments.database_cpu_ms_per_request:.3f} ms/req"
        if payments.database == "postgresql"
        else ""
    )
    return [
        f"payments on {DATABASE_NAMES[payments.database]}",
        f"{payments.requests_per_second:,.0f} req/s",
        _ms(payments.p50_ms),
        _ms(payments.p99_ms),
        errors,
        f"{share.median:.2%} [{share.ci_low:.2%}, {share.ci_high:.2%}]",
        _cpu(payments.cpu),
        _others(payments.others_cpu),
        f"median of {len(payments.runs)} rounds ({runs} req/s); ledger {ledger}, "
        f"{payments.ledger.payments:,} payments ≥ {payments.ledger.created_seen:,} seen{database_cpu}",
    ]


def _cpu(spread: Spread) -> str:
    """`0.712 ms ±1.4%`: the median and half the interquartile range, relative."""
    return f"{spread.median:.3f} ms ±{spread.relative_iqr / 2:.1%}"


def _verdict_line(verdict: Verdict) -> str:
    name = DATABASE_NAMES[verdict.database]
    goal = (
        f"payments on {name} ≥ {verdict.target_share:.1%} of the same rounds' HTTP ceiling "
        f"with p99 ≤ {P99_LIMIT_MS:.0f} ms (medians)"
    )
    disturbed = ""
    if verdict.others_cpu > OTHERS_CPU_NOTICEABLE:
        disturbed = f" [yellow](other processes took {verdict.others_cpu:.0%} of the CPUs: understated)[/yellow]"
    if verdict.passed:
        return f"[green]PASS[/green] {goal}{disturbed}"
    return f"[red]FAIL[/red] {goal}: {'; '.join(verdict.shortfalls)}{disturbed}"


def _others(share: float) -> str:
    text = f"{share:.0%}"
    return f"[yellow]{text}[/yellow]" if share > OTHERS_CPU_NOTICEABLE else text


def _ms(value: float) -> str:
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def write_json(path: Path, result: BenchResult, settings: dict[str, Any]) -> None:
    """Every figure, runs included, for comparing runs over time; medians are recomputable from it."""
    document = {
        "settings": settings,
        "machine": result.machine._asdict(),
        "wrk_threads": WRK_THREADS,
        "http_ceiling": _ceiling_json(result),
        "databases": {database.database: _database_json(database, result) for database in result.databases},
        "verdicts": [verdict._asdict() for verdict in result.verdicts()],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _database_json(database: DatabaseResult, result: BenchResult) -> dict[str, Any]:
    document = _payments_json(database)
    baseline = result.baseline_of(database.database)
    if baseline is not None:
        document["baseline"] = _payments_json(DatabaseResult(database.database, database.raw, "", baseline))["payments"]
        document["cpu_vs_baseline"] = cpu_against(database.payments, baseline).as_json()
    return document


def _payments_json(database: DatabaseResult) -> dict[str, Any]:
    payments = database.payments
    return {
        "raw_commits": {**database.raw._asdict(), "detail": database.raw_detail},
        "payments": {
            "median_requests_per_second": payments.requests_per_second,
            "median_p50_ms": payments.p50_ms,
            "median_p99_ms": payments.p99_ms,
            "errors": payments.errors,
            "median_cpu_ms_per_request": payments.cpu_ms_per_request,
            "cpu_ms_per_request": payments.cpu.as_json(),
            "median_database_cpu_ms_per_request": payments.database_cpu_ms_per_request,
            "share_of_ceiling": payments.share_of_ceiling.as_json(),
            "median_others_cpu": payments.others_cpu,
            "statuses": {str(status): count for status, count in sorted(payments.statuses.items())},
            "warmup": _wrk_json(payments.warmup),
            "runs": [_wrk_json(run) for run in payments.runs],
            "ledger": {**payments.ledger._asdict(), "accounted": payments.ledger.accounted},
        },
    }


def _ceiling_json(result: BenchResult) -> dict[str, Any]:
    runs = result.ceiling_runs
    return {
        "requests_per_second": result.ceiling_requests_per_second,
        "median_p50_ms": statistics.median(run.p50_ms for run in runs),
        "median_p99_ms": statistics.median(run.p99_ms for run in runs),
        "median_cpu_ms_per_request": statistics.median(run.cpu_ms_per_request for run in runs),
        "runs": [_wrk_json(run) for run in runs],
    }


def _wrk_json(run: WrkRun) -> dict[str, Any]:
    figures = run._asdict()
    figures["statuses"] = None if run.statuses is None else {str(s): n for s, n in sorted(run.statuses.items())}
    figures["errors"] = run.errors
    figures["cpu_ms_per_request"] = run.cpu_ms_per_request
    figures["database_cpu_ms_per_request"] = run.database_cpu_ms_per_request
    figures["total_cpu_ms_per_request"] = run.total_cpu_ms_per_request
    return figures

"""The benchmark's report: one table read top to bottom, ceiling first, then each database.

Each payments row sits under its database's raw commit rate, so the two are read
together: the raw rate is what the database does with no service in front of it.
"""

from __future__ import annotations

import json
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
)
from loadtests.bench.wrk import WRK_THREADS, WrkRun

NONE = "-"
_COLUMNS: list[tuple[str, JustifyMethod]] = [
    ("measurement", "left"),
    ("rate", "right"),
    ("p50", "right"),
    ("p99", "right"),
    ("errors", "right"),
    ("of ceiling", "right"),
    ("CPU/req", "right"),
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
    ceiling = result.ceiling
    table.add_row(
        "hello-world ASGI (HTTP ceiling)",
        f"{ceiling.requests_per_second:,.0f} req/s",
        _ms(ceiling.p50_ms),
        _ms(ceiling.p99_ms),
        str(ceiling.errors),
        "100%",
        _ms(ceiling.cpu_ms_per_request),
        _others(ceiling.others_cpu),
        "bare ASGI app, uvicorn as the services run it",
    )
    for database in result.databases:
        table.add_row(*_raw_row(database))
        table.add_row(*_payments_row(database.payments, ceiling), end_section=True)
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


def _payments_row(payments: PaymentsResult, ceiling: WrkRun) -> list[str]:
    runs = " / ".join(f"{run.requests_per_second:,.0f}" for run in payments.runs)
    ledger = "balanced" if payments.ledger.balanced else "[red]NOT balanced[/red]"
    errors = str(payments.errors) if not payments.errors else f"[red]{payments.errors}[/red]"
    return [
        f"payments on {DATABASE_NAMES[payments.database]}",
        f"{payments.requests_per_second:,.0f} req/s",
        _ms(payments.p50_ms),
        _ms(payments.p99_ms),
        errors,
        f"{payments.requests_per_second / ceiling.requests_per_second:.0%}",
        _ms(payments.cpu_ms_per_request),
        _others(payments.others_cpu),
        f"median of {len(payments.runs)} runs ({runs} req/s); ledger {ledger}, "
        f"{payments.ledger.payments:,} payments ≥ {payments.ledger.created_seen:,} seen",
    ]


def _verdict_line(verdict: Verdict) -> str:
    name = DATABASE_NAMES[verdict.database]
    goal = f"≥ {verdict.target_per_second:,.0f} payments/s on {name} with p99 ≤ {P99_LIMIT_MS:.0f} ms (medians)"
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
        "http_ceiling": _wrk_json(result.ceiling),
        "databases": {database.database: _database_json(database) for database in result.databases},
        "verdicts": [verdict._asdict() for verdict in result.verdicts()],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


def _database_json(database: DatabaseResult) -> dict[str, Any]:
    payments = database.payments
    return {
        "raw_commits": {**database.raw._asdict(), "detail": database.raw_detail},
        "payments": {
            "median_requests_per_second": payments.requests_per_second,
            "median_p50_ms": payments.p50_ms,
            "median_p99_ms": payments.p99_ms,
            "errors": payments.errors,
            "median_cpu_ms_per_request": payments.cpu_ms_per_request,
            "median_others_cpu": payments.others_cpu,
            "statuses": {str(status): count for status, count in sorted(payments.statuses.items())},
            "warmup": _wrk_json(payments.warmup),
            "runs": [_wrk_json(run) for run in payments.runs],
            "ledger": {**payments.ledger._asdict(), "accounted": payments.ledger.accounted},
        },
    }


def _wrk_json(run: WrkRun) -> dict[str, Any]:
    figures = run._asdict()
    figures["statuses"] = None if run.statuses is None else {str(s): n for s, n in sorted(run.statuses.items())}
    figures["errors"] = run.errors
    figures["cpu_ms_per_request"] = run.cpu_ms_per_request
    return figures

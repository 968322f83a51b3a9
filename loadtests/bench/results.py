"""What one benchmark run measured, and the verdict against the throughput targets.

Figures over repeats are medians: one run disturbed by something else on the
machine moves a mean, not a median.
"""

from __future__ import annotations

import statistics
from typing import NamedTuple

from loadtests.bench.baselines import CommitRate
from loadtests.bench.machine import Machine
from loadtests.bench.wrk import WrkRun

# Payments per second each database must sustain, at a p99 no worse than P99_LIMIT_MS.
TARGETS = {"sqlite": 2000.0, "postgresql": 1000.0}
P99_LIMIT_MS = 50.0
DATABASE_NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


class LedgerCheck(NamedTuple):
    """GET /v1/ledger/verify after the runs, against what wrk saw succeed."""

    balanced: bool
    payments: int
    # 201s over the warm-up and every run, plus the setup deposits (also rows in `payments`).
    created_seen: int

    @property
    def accounted(self) -> bool:
        """Every 201 wrk saw is in the ledger; more is fine (requests in flight when wrk stopped)."""
        return self.payments >= self.created_seen


class PaymentsResult(NamedTuple):
    database: str
    warmup: WrkRun
    runs: list[WrkRun]
    ledger: LedgerCheck

    @property
    def requests_per_second(self) -> float:
        return statistics.median(run.requests_per_second for run in self.runs)

    @property
    def p50_ms(self) -> float:
        return statistics.median(run.p50_ms for run in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(run.p99_ms for run in self.runs)

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    @property
    def others_cpu(self) -> float:
        return statistics.median(run.others_cpu for run in self.runs)

    @property
    def cpu_ms_per_request(self) -> float:
        return statistics.median(run.cpu_ms_per_request for run in self.runs)

    @property
    def statuses(self) -> dict[int, int]:
        totals: dict[int, int] = {}
        for run in self.runs:
            for status, count in (run.statuses or {}).items():
                totals[status] = totals.get(status, 0) + count
        return totals


class DatabaseResult(NamedTuple):
    database: str
    raw: CommitRate
    raw_detail: str
    payments: PaymentsResult


class Verdict(NamedTuple):
    database: str
    target_per_second: float
    passed: bool
    shortfalls: list[str]
    others_cpu: float


class BenchResult(NamedTuple):
    machine: Machine
    ceiling: WrkRun
    databases: list[DatabaseResult]

    def verdicts(self) -> list[Verdict]:
        return [judge(result.payments) for result in self.databases]


def judge(result: PaymentsResult) -> Verdict:
    """Pass only at target throughput and tail latency with every payment answered 201 and in the ledger."""
    target = TARGETS[result.database]
    shortfalls = []
    if result.requests_per_second < target:
        shortfalls.append(f"{result.requests_per_second:,.0f}/s < {target:,.0f}/s")
    if result.p99_ms > P99_LIMIT_MS:
        shortfalls.append(f"p99 {result.p99_ms:.1f} ms > {P99_LIMIT_MS:.0f} ms")
    if result.errors:
        shortfalls.append(f"{result.errors} non-201 or socket errors")
    if not result.ledger.balanced:
        shortfalls.append("ledger not balanced")
    if not result.ledger.accounted:
        shortfalls.append(f"ledger has {result.ledger.payments} payments < {result.ledger.created_seen} seen created")
    return Verdict(result.database, target, not shortfalls, shortfalls, result.others_cpu)

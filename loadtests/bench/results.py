"""What one benchmark run measured, and the verdict against the targets.

Figures over rounds are medians: one run disturbed by something else on the
machine moves a mean, not a median. Each round measures the HTTP ceiling and every
database's payments minutes apart, so the share of the ceiling is taken round by
round and drift of a shared machine cancels out of it.
"""

from __future__ import annotations

import statistics
from typing import NamedTuple

from loadtests.bench.baselines import CommitRate
from loadtests.bench.machine import Machine
from loadtests.bench.spread import Spread, paired_ratios
from loadtests.bench.wrk import WrkRun

# Payments per second each database must sustain, as a share of the hello-world ceiling
# measured in the same rounds, at a p99 no worse than P99_LIMIT_MS.
TARGET_SHARES = {"sqlite": 0.065, "postgresql": 0.065}
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
    # The hello-world runs of the same rounds, in round order: the denominators of the share.
    ceiling_runs: list[WrkRun]

    @property
    def share_of_ceiling(self) -> Spread:
        """Payments/s over the same round's hello-world req/s, over the rounds."""
        return paired_ratios(
            [run.requests_per_second for run in self.runs],
            [run.requests_per_second for run in self.ceiling_runs],
        )

    @property
    def cpu(self) -> Spread:
        """CPU ms per payment of the service's own processes, over the rounds."""
        return Spread.of([run.cpu_ms_per_request for run in self.runs])

    @property
    def database_cpu_ms_per_request(self) -> float:
        return statistics.median(run.database_cpu_ms_per_request for run in self.runs)

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
    target_share: float
    passed: bool
    shortfalls: list[str]
    others_cpu: float


class BenchResult(NamedTuple):
    machine: Machine
    ceiling_runs: list[WrkRun]
    databases: list[DatabaseResult]
    # `--compare-with`: the same measurements of another checkout, in the same rounds.
    baselines: tuple[DatabaseResult, ...] = ()

    def baseline_of(self, database: str) -> PaymentsResult | None:
        return next((result.payments for result in self.baselines if result.database == database), None)

    @property
    def ceiling_requests_per_second(self) -> float:
        return statistics.median(run.requests_per_second for run in self.ceiling_runs)

    def verdicts(self) -> list[Verdict]:
        return [judge(result.payments) for result in self.databases]


def cpu_against(result: PaymentsResult, baseline: PaymentsResult) -> Spread:
    """CPU per payment over the baseline's in the same round, minus one (-0.2 = a fifth less)."""
    ratios = paired_ratios(
        [run.cpu_ms_per_request for run in result.runs], [run.cpu_ms_per_request for run in baseline.runs]
    )
    return Spread(ratios.median - 1, ratios.q1 - 1, ratios.q3 - 1, ratios.ci_low - 1, ratios.ci_high - 1, ratios.rounds)


def judge(result: PaymentsResult) -> Verdict:
    """Pass only at the target share of the ceiling and tail latency, every payment answered 201 and in the ledger."""
    target = TARGET_SHARES[result.database]
    shortfalls = []
    share = result.share_of_ceiling.median
    if share < target:
        shortfalls.append(f"{share:.2%} of the ceiling < {target:.1%}")
    if result.p99_ms > P99_LIMIT_MS:
        shortfalls.append(f"p99 {result.p99_ms:.1f} ms > {P99_LIMIT_MS:.0f} ms")
    if result.errors:
        shortfalls.append(f"{result.errors} non-201 or socket errors")
    if not result.ledger.balanced:
        shortfalls.append("ledger not balanced")
    if not result.ledger.accounted:
        shortfalls.append(f"ledger has {result.ledger.payments} payments < {result.ledger.created_seen} seen created")
    return Verdict(result.database, target, not shortfalls, shortfalls, result.others_cpu)

"""What a game day will do: which experiments, how long each part lasts, where it writes.

Kept apart from the runner so the command line can describe and check a game day without
importing what runs one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from chaos.errors import ChaosError

EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"
# The sustained-error experiment runs before the outage: an outage pages too, and a page still
# firing from it would hide whether the error burn paged on its own.
QUICK_EXPERIMENTS = ("worker-kill-under-load", "payments-flaky-network", "payments-error-burn", "db-outage")
FULL_EXPERIMENTS = (
    "worker-kill-under-load",
    "worker-freeze",
    "db-latency",
    "cpu-burn",
    "slow-dependency",
    "payments-flaky-network",
    "lock-contention-market-open",
    "connection-exhaustion",
    "payments-error-burn",
    "portfolio-payment-errors-5pct",
    "database-link-down",
    "db-outage",
)
# How each experiment breaks the platform, on SQLite and on PostgreSQL: the report names it.
# "in-app flag": the services obey a fault they are told about; the others happen outside their code.
FAULT_KINDS: dict[str, tuple[str, str]] = {
    "worker-kill-under-load": ("process", "process"),
    "worker-freeze": ("process", "process"),
    "db-latency": ("in-app flag", "in-app flag"),
    "cpu-burn": ("in-app flag", "in-app flag"),
    "slow-dependency": ("in-app flag", "in-app flag"),
    "payments-flaky-network": ("network proxy", "network proxy"),
    "lock-contention-market-open": ("database", "database"),
    "connection-exhaustion": ("database", "database"),
    "payments-error-burn": ("in-app flag", "in-app flag"),
    "portfolio-payment-errors-5pct": ("in-app flag", "in-app flag"),
    "database-link-down": ("network proxy", "network proxy"),
    "db-outage": ("in-app flag", "database"),
}
# Experiments whose fault only PostgreSQL has (a link to it, its locks and connections): skipped on SQLite.
POSTGRES_ONLY = frozenset({"database-link-down", "lock-contention-market-open", "connection-exhaustion"})
DB_OUTAGE = "db-outage"
DB_OUTAGE_SECONDS = 10  # the outage, quick or full
# Faults shorter than the timing's, per (quick, full): the outage, and the quick day's flaky network
# (its fourth experiment, which must still leave the quick day under 4 minutes).
SHORT_FAULTS: dict[str, tuple[int | None, int | None]] = {
    DB_OUTAGE: (DB_OUTAGE_SECONDS, DB_OUTAGE_SECONDS),
    "payments-flaky-network": (10, None),
}
# The case study's peak: what a game day offers (open model) unless told otherwise.
PEAK_RATE = 250.0
RATE_SHAPE = "steady"  # at a rate, every phase holds it (the closed model plays market_open)
# The full game day's own load phase: a burst to ten times the rate in the middle of a steady base
# (`loadtests.shapes`' spike_10x), capped at the measured capacity when there is one.
SPIKE = "spike_10x"
SPIKE_FACTOR = 10
SPIKE_SECONDS = 60


# The method's own steps (probes, the pauses between worker kills) run a little past the timings.
METHOD_SLACK_SECONDS = 4


class GameDayError(ChaosError):
    """The game day could not be run (bad input, a process that would not start)."""


@dataclass(frozen=True)
class Timing:
    """How long each part of a phase lasts, in seconds."""

    baseline: int
    warmup: int  # load running before the fault
    fault: int
    recovery: int  # after the fault, before the load ends
    load_users: int

    def load_seconds(self, fault: int) -> int:
        return self.warmup + fault + self.recovery + METHOD_SLACK_SECONDS


QUICK = Timing(baseline=20, warmup=8, fault=15, recovery=8, load_users=30)
FULL = Timing(baseline=60, warmup=20, fault=60, recovery=20, load_users=50)


@dataclass(frozen=True)
class GameDayOptions:
    out: Path
    quick: bool = True
    experiments: tuple[str, ...] = ()  # empty: the quick or full set
    payments_db: str | None = None
    portfolio_db: str | None = None
    workers: int = 2
    prometheus: bool = True  # use Prometheus and Alertmanager when installed
    rate: float = PEAK_RATE  # requests/s every phase offers (open model); 0: the closed model of load_users
    capacity_share: float | None = None  # offer this share of the measured capacity instead of `rate`
    capacity_file: Path | None = None  # capacity.json (nova load --find-capacity); None: calibrate at the start
    abort_budget: float | None = None  # percent of the 30-day error budget an experiment may burn

    @property
    def timing(self) -> Timing:
        return QUICK if self.quick else FULL

    @property
    def chosen(self) -> tuple[str, ...]:
        if self.experiments:
            return self.experiments
        planned = QUICK_EXPERIMENTS if self.quick else FULL_EXPERIMENTS
        return planned if self.payments_db else tuple(name for name in planned if name not in POSTGRES_ONLY)

    def fault_seconds(self, experiment: str) -> int:
        """How long the experiment's fault stays on."""
        short = SHORT_FAULTS.get(experiment, (None, None))[0 if self.quick else 1]
        return short if short is not None else self.timing.fault

    def fault_kind(self, experiment: str) -> str | None:
        """`in-app flag`, `network proxy`, `database` or `process` (None for the baseline)."""
        kinds = FAULT_KINDS.get(experiment)
        return None if kinds is None else kinds[1 if self.payments_db else 0]

    @property
    def data_dir(self) -> Path:
        return self.out / "platform"

    @property
    def load_phases(self) -> tuple[str, ...]:
        """Phases that are load only, run after the baseline: the full game day's spike."""
        return () if self.quick or self.experiments else (SPIKE,)


def available_experiments() -> list[str]:
    return sorted(path.stem for path in EXPERIMENTS_DIR.glob("*.json"))


def check_options(options: GameDayOptions) -> None:
    """Refuse bad input before anything starts (GameDayError, one line)."""
    known = available_experiments()
    unknown = [name for name in options.chosen if name not in known]
    if unknown:
        raise GameDayError(f"no such experiment: {', '.join(unknown)} (known: {', '.join(known)})")
    if len(set(options.chosen)) != len(options.chosen):
        raise GameDayError("an experiment is named twice")
    needs_postgres = [name for name in options.chosen if name in POSTGRES_ONLY]
    if needs_postgres and options.payments_db is None:
        raise GameDayError(f"{', '.join(needs_postgres)} need PostgreSQL: give --payments-db and --portfolio-db")
    if options.out.exists() and any(options.out.iterdir()):
        raise GameDayError(f"{options.out} is not empty; give --out a new folder")
    for url in (options.payments_db, options.portfolio_db):
        if url is not None and not url.startswith(("postgresql://", "postgres://")):
            raise GameDayError(f"a database URL must be postgresql://..., not {url.split('://')[0]}://...")
    if (options.payments_db is None) != (options.portfolio_db is None):
        raise GameDayError("give both --payments-db and --portfolio-db, or neither (SQLite)")
    if not (math.isfinite(options.rate) and options.rate >= 0):
        raise GameDayError(f"--rate must be 0 (closed model) or a positive number of requests/s, not {options.rate}")
    share = options.capacity_share
    if share is not None and not (math.isfinite(share) and 0 < share <= 10):
        raise GameDayError(f"--capacity-share must be above 0 and at most 10 (a share of capacity), not {share}")
    if options.capacity_file is not None:
        if share is None:
            raise GameDayError("--capacity is read for --capacity-share: give both")
        if not options.capacity_file.is_file():
            raise GameDayError(f"--capacity {options.capacity_file}: no such file")
    budget = options.abort_budget
    if budget is not None and not (math.isfinite(budget) and 0 < budget <= 100):
        raise GameDayError(f"--abort-budget must be a percent above 0 and at most 100, not {budget}")

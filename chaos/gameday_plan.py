"""What a game day will do: which experiments, how long each part lasts, where it writes.

Kept apart from the runner so the command line can describe and check a game day without
importing what runs one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaos.errors import ChaosError
from chaos.gameday_model import BASELINE

EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"
# The sustained-error experiment runs before the outage: an outage pages too, and a page still
# firing from it would hide whether the error burn paged on its own. On PostgreSQL the experiments
# that burn the most budget without a page check to pass (a held row lock, a lost database link:
# a quarter to half of all requests fail) run last, for the same reason: the burn-rate page's
# 6h/30m pair keeps it firing up to 30 minutes after such an incident.
QUICK_EXPERIMENTS = ("worker-kill-under-load", "payments-flaky-network", "payments-error-burn", "db-outage")
FULL_EXPERIMENTS = (
    "worker-kill-under-load",
    "worker-freeze",
    "db-latency",
    "cpu-burn",
    "slow-dependency",
    "payments-flaky-network",
    "connection-exhaustion",
    "payments-error-burn",
    "portfolio-payment-errors-5pct",
    "db-outage",
    "lock-contention-market-open",
    "database-link-down",
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


# -- the checks each phase is judged by: data, read by chaos.gameday_evidence's table of check kinds --

GAMEDAY_EXTENSION = "nova-gameday"  # an experiment's own checks: `{"name": "nova-gameday", "checks": [...]}`
# Every kind of check a phase may declare (chaos.gameday_evidence.CHECKS judges each):
# ledger: the ledger balanced after the phase; no-page: no burn-rate page fired during it;
# availability: customers saw the objective after retries; audit: no acknowledged payment lost;
# guardrail: not stopped by --abort-budget; hypothesis: the steady state held before and after;
# outage-answer: the method's `probe` (a provider func) got 503 with Retry-After;
# recovery: served again within `within_seconds` of the fault's end; page: `slo`'s page fired.
CHECK_KINDS = (
    *("ledger", "no-page", "availability", "audit", "guardrail", "hypothesis"),
    *("outage-answer", "recovery", "page"),
)
DEFAULT_RECOVERY_SECONDS = 5.0


@dataclass(frozen=True)
class CheckRule:
    """One check a phase is judged by, with what that kind of check needs to know."""

    check: str  # one of CHECK_KINDS
    probe: str | None = None  # outage-answer: the provider func whose output is the answer
    slo: str | None = None  # page: the SLO (sloth id) whose page must fire during the fault
    within_seconds: float | None = None  # recovery: the limit

    def to_json(self) -> dict[str, Any]:
        fields = {"probe": self.probe, "slo": self.slo, "within_seconds": self.within_seconds}
        return {"check": self.check, **{key: value for key, value in fields.items() if value is not None}}

    @classmethod
    def from_json(cls, document: Any) -> CheckRule:
        """A rule from an experiment's extension; GameDayError naming what is wrong."""
        if isinstance(document, str):
            document = {"check": document}
        if not isinstance(document, Mapping) or document.get("check") not in CHECK_KINDS:
            raise GameDayError(f"a game-day check must name one of {', '.join(CHECK_KINDS)}: {document!r}")
        rule = cls(
            check=str(document["check"]),
            probe=_optional_text(document, "probe"),
            slo=_optional_text(document, "slo"),
            within_seconds=_optional_seconds(document, "within_seconds"),
        )
        needed = {"outage-answer": rule.probe, "page": rule.slo}
        if rule.check in needed and needed[rule.check] is None:
            what = "probe" if rule.check == "outage-answer" else "slo"
            raise GameDayError(f"game-day check {rule.check!r} needs {what!r}")
        return rule


def _optional_text(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise GameDayError(f"game-day check field {key!r} must be a non-empty string")
    return value


def _optional_seconds(document: Mapping[str, Any], key: str) -> float | None:
    value = document.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value) and value > 0):
        raise GameDayError(f"game-day check field {key!r} must be a positive number of seconds")
    return float(value)


# Phases of load alone: each is judged by its row. Experiments: by the common rows, then their own.
LOAD_PHASE_CHECKS: dict[str, tuple[CheckRule, ...]] = {
    BASELINE: (CheckRule("ledger"), CheckRule("no-page"), CheckRule("availability")),
    SPIKE: (CheckRule("ledger"), CheckRule("audit")),
}
OTHER_LOAD_PHASE_CHECKS = LOAD_PHASE_CHECKS[SPIKE]  # load alone, judged on what must hold anyway
EXPERIMENT_CHECKS = (CheckRule("ledger"), CheckRule("guardrail"), CheckRule("hypothesis"), CheckRule("audit"))


def declared_checks(experiment: Mapping[str, Any]) -> tuple[CheckRule, ...] | None:
    """The checks an experiment document declares (its `nova-gameday` extension); None if it has none."""
    for extension in experiment.get("extensions") or []:
        if isinstance(extension, Mapping) and extension.get("name") == GAMEDAY_EXTENSION:
            rules = extension.get("checks")
            if not isinstance(rules, list):
                raise GameDayError(f"the {GAMEDAY_EXTENSION} extension must list its 'checks'")
            return tuple(CheckRule.from_json(rule) for rule in rules)
    return None


def experiment_checks(name: str, experiment: Mapping[str, Any] | None = None) -> tuple[CheckRule, ...]:
    """The checks an experiment phase is judged by: the common ones, then its own.

    Its own come from `experiment` (the document that ran, from its journal) when that declares
    them, else from `chaos/experiments/<name>.json`; an experiment that declares none has only the
    common ones.
    """
    declared = declared_checks(experiment) if experiment is not None else None
    if declared is None:
        path = EXPERIMENTS_DIR / f"{name}.json"
        try:
            document = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            document = None
        declared = declared_checks(document) if isinstance(document, Mapping) else None
    return EXPERIMENT_CHECKS + (declared or ())


def load_phase_checks(name: str) -> tuple[CheckRule, ...]:
    return LOAD_PHASE_CHECKS.get(name, OTHER_LOAD_PHASE_CHECKS)


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
    for name in options.chosen:
        try:
            experiment_checks(name)
        except GameDayError as exc:
            raise GameDayError(f"{name}: {exc}") from None
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

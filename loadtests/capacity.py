"""Capacity search: the highest request rate the platform sustains while the SLO gate passes.

The policy (`find_capacity`) is pure: it is given `run_step(rate) -> StepResult` and decides
which rates to offer. It starts at `start_rate` and multiplies by `growth` until a step fails
(or `max_rate` is reached), then bisects between the last passing and the first failing rate
`refinements` times, or until the two are within `tolerance` of each other. Load tests are
noisy and every step costs real minutes, so it does not chase the boundary further than a
few percent.

A step counts as a pass only if the gate passed AND the achieved rate was at least
`SUSTAINED_SHARE` of the offered rate: when the service slows down, users with a fixed
request rate fall behind, and a gate computed on the lower rate they managed says nothing
about the offered one. The capacity reported is the highest *achieved* rate of a passing step:
what was actually served within the SLO, not what was asked for.

`LocustStep` is the real `run_step`: Locust's `steady` shape for a fixed number of seconds,
with `users x user_rate = rate` (users at the given per-user rate, rounded up, then the rate
shared out evenly so the product is exact). Requests sent in the step's first
`warmup_seconds` (ramp and the users' set-up calls) are recorded but not judged.

`CapacityReport` is `capacity.json`, one search's figures per mix: its one typed home, written by
`nova load --find-capacity` and read by the capacity plan and the game day (`--capacity`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from loadtests.gate import GateError, Thresholds
from loadtests.locust_process import LocustRun, Tick, collect, run_headless
from loadtests.results import RunParameters, RunSummary

SUSTAINED_SHARE = 0.9
LIMIT_GATE = "gate"
LIMIT_SUSTAIN = "not sustained"
LIMIT_MAX_RATE = "max rate"


@dataclass(frozen=True)
class StepResult:
    offered_rate: float  # requests/s asked of the load generator
    achieved_rate: float  # requests/s judged by the gate
    gate_passed: bool
    requests: int
    failures: int
    availability: float
    p99_ms: float
    breaches: tuple[str, ...] = ()
    results: str = ""  # folder with the step's samples and summary, if it ran for real

    @property
    def sustained(self) -> bool:
        return self.achieved_rate >= SUSTAINED_SHARE * self.offered_rate

    @property
    def passed(self) -> bool:
        return self.gate_passed and self.sustained

    @property
    def reason(self) -> str:
        """Why the step failed, in one phrase; empty if it passed."""
        if not self.gate_passed:
            if not self.breaches:
                return "gate failed"
            more = f" (and {len(self.breaches) - 1} more)" if len(self.breaches) > 1 else ""
            return self.breaches[0] + more
        if not self.sustained:
            return f"achieved {self.achieved_rate:.1f}/s of {self.offered_rate:.1f}/s offered"
        return ""


@dataclass(frozen=True)
class CapacityResult:
    capacity: float | None  # highest achieved rate of a passing step; None if no step passed
    limited_by: str  # LIMIT_GATE, LIMIT_SUSTAIN (first failure was a rate not reached) or LIMIT_MAX_RATE
    steps: tuple[StepResult, ...]  # in the order they ran

    @property
    def best(self) -> StepResult | None:
        passing = [step for step in self.steps if step.passed]
        return max(passing, key=lambda step: step.achieved_rate) if passing else None


CAPACITY_FILE = "capacity.json"


@dataclass(frozen=True)
class CapacitySearchRun:
    """How the search's steps were run (`run` in capacity.json)."""

    max_user_rate: float = 0.0
    processes: int = 1
    payments_url: str = ""
    portfolio_url: str = ""
    # Worker processes per service, from serve.json (what the capacity plan divides by); None: not known.
    service_workers: dict[str, int] | None = None
    shape: str = "steady"

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "shape": self.shape,
            "max_user_rate": self.max_user_rate,
            "processes": self.processes,
            "payments_url": self.payments_url,
            "portfolio_url": self.portfolio_url,
        }
        if self.service_workers:
            document["service_workers"] = dict(self.service_workers)
        return document

    @classmethod
    def from_json(cls, document: Any) -> CapacitySearchRun:
        if not isinstance(document, Mapping):
            return cls()
        workers = document.get("service_workers")
        if workers is not None and not (
            isinstance(workers, Mapping)
            and all(isinstance(value, int) and not isinstance(value, bool) for value in workers.values())
        ):
            raise ValueError(f"run.service_workers must map each service to a count of workers, got {workers!r}")
        return cls(
            max_user_rate=float(document.get("max_user_rate", 0.0)),
            processes=int(document.get("processes", 1)),
            payments_url=str(document.get("payments_url", "")),
            portfolio_url=str(document.get("portfolio_url", "")),
            service_workers=dict(workers) if workers else None,
            shape=str(document.get("shape", "steady")),
        )


@dataclass(frozen=True)
class CapacityReport:
    """`capacity.json`: the thresholds judged against, the step timings, the run, each mix's result.

    `from_json` reads what `to_json` wrote; parts it lacks take their defaults (the plan and the
    game day need only the mixes' capacities and the services' workers).
    """

    mixes: dict[str, CapacityResult]
    thresholds: Thresholds = field(default_factory=Thresholds)
    step_seconds: float = 0.0
    warmup_seconds: float = 0.0
    run: CapacitySearchRun = field(default_factory=CapacitySearchRun)

    def to_json(self) -> dict[str, Any]:
        def step(item: StepResult) -> dict[str, Any]:
            return {**asdict(item), "sustained": item.sustained, "passed": item.passed}

        return {
            "thresholds": asdict(self.thresholds),
            "step_seconds": self.step_seconds,
            "warmup_seconds": self.warmup_seconds,
            "run": self.run.to_json(),
            "mixes": {
                mix: {
                    "capacity_rps": result.capacity,
                    "limited_by": result.limited_by,
                    "steps": [step(item) for item in result.steps],
                }
                for mix, result in self.mixes.items()
            },
        }

    @classmethod
    def from_json(cls, document: Any) -> CapacityReport:
        """The report from its JSON document; ValueError (one line) naming what is wrong."""
        mixes = document.get("mixes") if isinstance(document, Mapping) else None
        if not isinstance(mixes, Mapping) or not mixes:
            raise ValueError("not a capacity.json from nova load --find-capacity (no mixes)")
        assert isinstance(document, Mapping)
        results = {str(name): _mix_from_json(str(name), found) for name, found in mixes.items()}
        thresholds = document.get("thresholds")
        try:
            return cls(
                mixes=results,
                thresholds=Thresholds(float(thresholds["p99_ms"]), float(thresholds["availability"]))
                if isinstance(thresholds, Mapping)
                else Thresholds(),
                step_seconds=float(document.get("step_seconds", 0.0)),
                warmup_seconds=float(document.get("warmup_seconds", 0.0)),
                run=CapacitySearchRun.from_json(document.get("run")),
            )
        except (KeyError, TypeError, GateError) as exc:
            raise ValueError(f"not a capacity.json from nova load --find-capacity ({exc})") from None

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n")


def _mix_from_json(name: str, document: Any) -> CapacityResult:
    found = document if isinstance(document, Mapping) else {}
    value = found.get("capacity_rps")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0
    ):
        raise ValueError(f"mix {name}: capacity_rps must be a positive number, got {value!r}")
    known = {f.name for f in fields(StepResult)}
    try:
        steps = tuple(
            StepResult(
                **{**{key: item[key] for key in known if key in item}, "breaches": tuple(item.get("breaches", ()))}
            )
            for item in found.get("steps") or []
        )
    except (TypeError, AttributeError) as exc:
        raise ValueError(f"mix {name}: a step is not a capacity step ({exc})") from None
    return CapacityResult(float(value) if value is not None else None, str(found.get("limited_by", "")), steps)


RunStep = Callable[[float], StepResult]


def find_capacity(
    run_step: RunStep,
    start_rate: float,
    max_rate: float,
    growth: float = 2.0,
    refinements: int = 3,
    tolerance: float = 0.05,
) -> CapacityResult:
    """Step the offered rate up geometrically until a step fails, then bisect; see the module docstring."""
    if not 0 < start_rate <= max_rate:
        raise ValueError(f"need 0 < start rate <= max rate, got {start_rate} and {max_rate}")
    if growth <= 1:
        raise ValueError(f"growth must be above 1, got {growth}")
    steps: list[StepResult] = []
    highest_pass, lowest_fail = 0.0, math.inf
    rate = start_rate
    while True:
        step = run_step(rate)
        steps.append(step)
        if not step.passed:
            lowest_fail = rate
            break
        highest_pass = rate
        if rate >= max_rate:
            break
        rate = min(rate * growth, max_rate)
    if math.isinf(lowest_fail):
        return _result(steps, LIMIT_MAX_RATE)
    first_failure = steps[-1]
    for _ in range(refinements):
        # With nothing passed yet, the lower bound is zero and the bisection walks down from the failure.
        if highest_pass > 0 and lowest_fail / highest_pass - 1 <= tolerance:
            break
        rate = (highest_pass + lowest_fail) / 2
        step = run_step(rate)
        steps.append(step)
        if step.passed:
            highest_pass = rate
        else:
            lowest_fail = rate
    return _result(steps, LIMIT_GATE if not first_failure.gate_passed else LIMIT_SUSTAIN)


def _result(steps: list[StepResult], limited_by: str) -> CapacityResult:
    passing = [step.achieved_rate for step in steps if step.passed]
    return CapacityResult(max(passing) if passing else None, limited_by, tuple(steps))


def users_for_rate(rate: float, user_rate: float) -> tuple[int, float]:
    """(users, per-user rate) with users x per-user rate == rate and per-user rate <= `user_rate`."""
    users = max(1, math.ceil(rate / user_rate - 1e-9))
    return users, rate / users


@dataclass
class LocustStep:
    """The real `run_step`: one short steady Locust run per offered rate, each in its own folder."""

    base: RunParameters  # urls, mix, processes and the per-user rate; shape and users are set per step
    results: Path
    admin_token: str
    thresholds: Thresholds
    step_seconds: float
    warmup_seconds: float
    tick: Tick | None = None
    on_step: Callable[[int, float], None] | None = None  # (step number, rate) as each starts, for progress
    count: int = 0

    def __call__(self, rate: float) -> StepResult:
        self.count += 1
        if self.on_step is not None:
            self.on_step(self.count, rate)
        users, user_rate = users_for_rate(rate, self.base.user_rate)
        # Offered on the open model's timetable: closed-model users started together keep sending
        # together, and their synchronized bursts (every user at once, once a second at a user rate
        # of 1) failed the gate at a third of the rate the services hold when the same load is spread.
        run = replace(
            self.base,
            shape="steady",
            peak_users=users,
            user_rate=user_rate,
            duration_seconds=self.step_seconds,
            rate=rate,
        )
        spec = LocustRun(run, self.results / f"step-{self.count:02d}-{rate:.0f}rps", self.admin_token)
        code = run_headless(spec, self.tick)
        try:
            summary, _files = collect(spec, self.thresholds, code, self.warmup_seconds)
        except GateError as exc:  # nothing answered after the warm-up: as clear a failure as any
            return StepResult(rate, 0.0, False, 0, 0, 0.0, 0.0, (str(exc),), str(spec.results))
        return step_result(rate, summary, str(spec.results))


def step_result(rate: float, summary: RunSummary, results: str = "") -> StepResult:
    overall = summary.gate.overall
    return StepResult(
        offered_rate=rate,
        achieved_rate=overall.requests_per_second,
        gate_passed=summary.gate.passed,
        requests=overall.requests,
        failures=overall.failures,
        availability=overall.availability,
        p99_ms=overall.p99_ms,
        breaches=tuple(summary.gate.breaches),
        results=results,
    )

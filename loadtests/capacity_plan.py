"""Capacity plan: what `nova load --find-capacity` measured, turned into pods and database connections.

The input is `capacity.json` (one capacity search): per mix, `capacity_rps`, the highest rate a
passing step actually served within the SLO gate. The search ran against a platform whose
services each ran `measured_workers` worker processes (from `run.service_workers` in the file,
which `nova load` records from `serve.json`, or given by the operator), so one worker of each
service sustains `capacity_rps / measured_workers` requests/s of that mix. Both services took
part in every request mix, and the platform's rate is bounded by the slower one, so the same
per-worker figure sizes both: conservative for the one that was not the bottleneck.

For a load of `rps` (today's peak, and 10x it):

    target      = rps x (1 + headroom)
    workers     = ceil(target / per-worker rate)                 per service
    pods        = max(min_pods, ceil(workers / workers_per_pod)) per service
    connections = pods x workers_per_pod x (pool_size + max_overflow)   per service's database

A worker's SQLAlchemy pool holds at most `pool_size + max_overflow` connections (the services use
`max_overflow = pool_size // 2`, core_services/database.py); each service has its own database,
so each database's `max_connections` budget is checked against its service's connections.
Nothing here is a constant of the platform: every rate comes from the measured file.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtests.capacity import CapacityReport

SERVICES = ("payments", "portfolio")
GROWTH = 10
PLAN_FILE = "plan.json"


class CapacityPlanError(ValueError):
    """Bad input to the plan (a file that is not capacity.json, a figure out of range); one line."""


@dataclass(frozen=True)
class Measured:
    """What one capacity search found for one mix."""

    mix: str
    capacity_rps: float  # highest achieved rate of a passing step
    measured_workers: int  # worker processes per service during the search
    source: str  # the capacity.json it came from

    @property
    def per_worker_rps(self) -> float:
        return self.capacity_rps / self.measured_workers


@dataclass(frozen=True)
class PlanInputs:
    peak_rps: float  # today's peak, requests/s of the same mix
    headroom: float = 0.3  # spare share above the load: 0.3 plans for 130%
    workers_per_pod: int = 2  # NOVA_WORKERS in core_services/deploy/
    pool_size: int = 4  # NOVA_DB_POOL_SIZE in core_services/deploy/
    max_overflow: int | None = None  # None: pool_size // 2, as the services configure it
    max_connections: int = 200  # each database's budget for its service
    min_pods: int = 2  # one pod is a single point of failure
    growth: int = GROWTH

    def __post_init__(self) -> None:
        if not (math.isfinite(self.peak_rps) and self.peak_rps > 0):
            raise CapacityPlanError(f"--peak-rps must be above 0, got {self.peak_rps:g}")
        if not (math.isfinite(self.headroom) and 0 <= self.headroom < 10):
            raise CapacityPlanError(f"--headroom must be a share from 0 (none) below 10, got {self.headroom:g}")
        for name, value, least in (
            ("--workers-per-pod", self.workers_per_pod, 1),
            ("--pool-size", self.pool_size, 1),
            ("--max-connections", self.max_connections, 1),
            ("--min-pods", self.min_pods, 1),
            ("--max-overflow", self.overflow, 0),
        ):
            if value < least:
                raise CapacityPlanError(f"{name} must be at least {least}, got {value}")

    @property
    def overflow(self) -> int:
        return self.pool_size // 2 if self.max_overflow is None else self.max_overflow

    @property
    def connections_per_worker(self) -> int:
        return self.pool_size + self.overflow


@dataclass(frozen=True)
class Tier:
    """The platform sized for one load."""

    name: str  # "today" or "10x"
    load_rps: float
    target_rps: float  # load with headroom
    workers: int  # per service
    pods: int  # per service
    connections: int  # per service, i.e. per database
    fits: bool  # connections <= max_connections


@dataclass(frozen=True)
class CapacityPlan:
    measured: Measured
    inputs: PlanInputs
    tiers: tuple[Tier, ...]

    def served_rps(self, tier: Tier) -> float:
        """What the tier's pods serve at the measured per-worker rate."""
        return tier.pods * self.inputs.workers_per_pod * self.measured.per_worker_rps

    def document(self) -> dict[str, Any]:
        inputs = {**asdict(self.inputs), "max_overflow": self.inputs.overflow}
        return {
            "measured": {**asdict(self.measured), "per_worker_rps": self.measured.per_worker_rps},
            "inputs": inputs,
            "services": list(SERVICES),
            "tiers": [
                {
                    "name": tier.name,
                    "load_rps": tier.load_rps,
                    "target_rps": tier.target_rps,
                    "workers_per_service": tier.workers,
                    "pods_per_service": {service: tier.pods for service in SERVICES},
                    "db_connections_per_service": {service: tier.connections for service in SERVICES},
                    "db_connections_total": tier.connections * len(SERVICES),
                    "served_rps": self.served_rps(tier),
                    "max_connections": self.inputs.max_connections,
                    "fits_max_connections": tier.fits,
                }
                for tier in self.tiers
            ],
        }


def read_capacity(path: Path, mix: str | None = None, measured_workers: int | None = None) -> Measured:
    """The measured figure of `mix` in a capacity.json (default: the mix with the lowest capacity)."""
    try:
        document: Any = json.loads(path.read_text())
    except FileNotFoundError:
        raise CapacityPlanError(f"{path}: no such file (write one with nova load --find-capacity)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CapacityPlanError(f"{path}: cannot read it ({exc})") from None
    except json.JSONDecodeError as exc:
        raise CapacityPlanError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        report = CapacityReport.from_json(document)
    except ValueError as exc:
        raise CapacityPlanError(f"{path}: {exc}") from None
    mixes = report.mixes
    capacities = {name: found.capacity for name, found in mixes.items() if found.capacity is not None}
    if mix is not None:
        if mix not in mixes:
            raise CapacityPlanError(f"{path}: no mix {mix!r} (it has {', '.join(mixes)})")
        if mix not in capacities:
            raise CapacityPlanError(f"{path}: no step of the {mix} mix passed the gate: nothing to plan from")
        chosen = mix
    else:
        if not capacities:
            raise CapacityPlanError(f"{path}: no step of any mix passed the gate: nothing to plan from")
        chosen = min(capacities, key=lambda name: (capacities[name], name))
    workers = measured_workers if measured_workers is not None else _recorded_workers(report, path)
    if workers < 1:
        raise CapacityPlanError(f"--measured-workers must be at least 1, got {workers}")
    return Measured(chosen, capacities[chosen], workers, str(path))


def _recorded_workers(report: CapacityReport, path: Path) -> int:
    recorded = report.run.service_workers
    if not recorded:
        raise CapacityPlanError(
            f"{path} does not record the services' workers: give --measured-workers "
            "(worker processes per service during the search; nova serve's default is 2)"
        )
    values = set(recorded.values())
    if len(values) != 1 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
        raise CapacityPlanError(
            f"{path}: run.service_workers must be one positive count for every service, got {recorded}"
        )
    return int(values.pop())


def plan(measured: Measured, inputs: PlanInputs) -> CapacityPlan:
    """Pods and connections per service for today's peak and for `growth` times it."""
    tiers = tuple(
        _tier(name, rps, measured, inputs)
        for name, rps in (("today", inputs.peak_rps), (f"{inputs.growth}x", inputs.peak_rps * inputs.growth))
    )
    return CapacityPlan(measured, inputs, tiers)


def _tier(name: str, load_rps: float, measured: Measured, inputs: PlanInputs) -> Tier:
    target = load_rps * (1 + inputs.headroom)
    # A hair of tolerance so that 300.0000001 workers from float arithmetic is 300, not 301.
    workers = max(1, math.ceil(target / measured.per_worker_rps - 1e-9))
    pods = max(inputs.min_pods, math.ceil(workers / inputs.workers_per_pod))
    connections = pods * inputs.workers_per_pod * inputs.connections_per_worker
    return Tier(name, load_rps, target, workers, pods, connections, connections <= inputs.max_connections)


def write_plan(path: Path, capacity_plan: CapacityPlan) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(capacity_plan.document(), indent=2, allow_nan=False) + "\n")

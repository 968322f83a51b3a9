"""Training data for predictive alerting: metric scenarios of a payments API with labelled incidents.

A scenario (DESIGN.md "Metric scenarios") is built in three layers:

1. **Traffic**: a diurnal curve (quiet at 03:00 UTC, busiest mid-afternoon UTC), a market-open
   bump at 13:30 UTC every day, slow wobble and Poisson noise.
2. **Faults and near-misses**, as *pressures* on the service: extra traffic, extra CPU demand,
   extra database-pool demand, extra latency (a slow dependency, GC pauses) and extra error share.
3. **One service model** turns pressures into every column, so the columns stay coherent:
   CPU and pool occupancy follow traffic; latency adds queueing delay as CPU or pool utilisation
   nears 1 (M/M/1-like `rho / (1 - rho)`); demand beyond capacity becomes timeouts and shed
   requests (5xx); `slow` is the share of a log-normal latency distribution with the step's p99
   above 200 ms (so p99 = 200 ms means 1% slow); errors and slow requests are binomial draws.

Each incident kind develops the way such incidents do, with a precursor that shows 10-60 minutes
before the SLO breaches (the signal a predictive alert can use); a minority (big-bang bad
deploys, very steep surges) breach within minutes. Magnitudes are drawn per incident, so some
incidents never breach. Near-misses (market-open surges, short error blips, CPU and pool spikes)
look alarming but must not page: after composing, the SLO engine's page condition
(`slo.scenario.breach_condition`) is checked and any near-miss that would make it hold is scaled
down (and dropped if that is not enough). Incident breach times come from the SLO engine: the
first row of the incident's span where `slo.scenario.breach_condition` holds, which is
`slo.scenario.first_breach(scenario, start, end)` with the condition evaluated once per scenario
instead of once per incident (the tests hold every breach to `first_breach`).

`incidents.json` lists only the real incidents; near-misses are kept on the side
(`generate_labelled` returns them beside the scenario) and not written.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from alerts.incidents import label_incidents, shrink_near_misses
from slo.scenario import STEP_SECONDS, Scenario, breach_condition, write_scenario
from slo.targets import suite_targets

INCIDENT_KINDS: tuple[str, ...] = (
    "pool_exhaustion",
    "memory_gc",
    "bad_deploy",
    "slow_dependency",
    "capacity_surge",
    "slow_burn",
)
NEAR_MISS_KINDS: tuple[str, ...] = ("market_open_surge", "blip", "cpu_spike", "pool_spike")

DEFAULT_START = 1_790_000_000
MINUTE = 60 // STEP_SECONDS  # rows per minute
HOUR = 60 * MINUTE
MARKET_OPEN_UTC_S = 13 * 3600 + 30 * 60
LATE_GRACE_ROWS = 30 * MINUTE  # DESIGN.md's grace after an incident's end
CLEAN_START_ROWS = HOUR  # no event before one full hour of history
INCIDENT_GAP_ROWS = HOUR  # quiet time between an incident and any other event
NEAR_MISS_GAP_ROWS = 15 * MINUTE
_LOG_SIGMA = 1.0  # log-normal latency spread: p99 = 200 ms <=> 1% of requests slower than 200 ms
_Z99 = 2.3263478740408408  # standard normal quantile at 0.99
_THRESHOLD_MS = suite_targets().latency_threshold_ms  # slo/specs: what a slow request is
_KIND_WEIGHTS = {
    "pool_exhaustion": 0.2,
    "memory_gc": 0.18,
    "bad_deploy": 0.14,
    "slow_dependency": 0.18,
    "capacity_surge": 0.15,
    "slow_burn": 0.15,
}
_NEAR_MISS_WEIGHTS = {"blip": 0.4, "cpu_spike": 0.3, "pool_spike": 0.3}

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class NearMiss:
    """An event that looks like trouble and must not page (not written to incidents.json)."""

    kind: str
    start: float
    end: float


@dataclass
class _Pressure:
    """What faults do to the service, per row; the service model turns this into metrics."""

    traffic: Floats  # multiplier on the normal request rate
    cpu: Floats  # extra CPU demand (share of the busiest process)
    pool: Floats  # extra database connections demanded (share of the pool)
    latency_ms: Floats  # extra latency on the slow path (dependency, GC pauses)
    errors: Floats  # extra 5xx share (bad code, OOM kills)

    @classmethod
    def none(cls, rows: int) -> _Pressure:
        return cls(np.ones(rows), np.zeros(rows), np.zeros(rows), np.zeros(rows), np.zeros(rows))


@dataclass(frozen=True)
class _Service:
    """The healthy service: traffic level, how load maps to CPU and pool, latency floor, error floor."""

    peak_requests: float  # requests per 15 s step at the diurnal peak
    cpu_idle: float
    cpu_per_load: float
    pool_idle: float
    pool_per_load: float
    latency_floor_ms: float
    error_share: float
    slow_share: float  # requests slow whatever the load (cold caches, big ledgers)
    cpu_wait_ms: float
    pool_wait_ms: float


@dataclass
class _Event:
    """A planned incident or near-miss: when it starts, how long it lasts, and its drawn shape."""

    kind: str
    rows: int  # fault start to the end of its drain
    params: dict[str, float]
    incident: bool
    start: int = 0
    scale: float = 1.0  # near-misses shrink when they would page
    fault_rows: int = 0  # fault start to fault end (before the drain)


def _ramp(index: Floats, start: float, end: float) -> Floats:
    """0 before `start`, rising linearly to 1 at `end`, 1 after."""
    if end <= start:
        return (index >= start).astype(np.float64)
    return np.clip((index - start) / (end - start), 0.0, 1.0)


def _envelope(index: Floats, start: int, rise: int, hold: int, fall: int) -> Floats:
    """Trapezoid: rises over `rise` rows from `start`, holds, falls over `fall` rows; 0 elsewhere."""
    up = _ramp(index, start, start + rise)
    down = 1.0 - _ramp(index, start + rise + hold, start + rise + hold + fall)
    return up * down


def _minutes(rng: np.random.Generator, low: float, high: float) -> int:
    return round(rng.uniform(low, high) * MINUTE)


def _slow_share(p99_ms: Floats) -> Floats:
    """Share of requests above the latency threshold (200 ms) for a log-normal latency with the given p99."""
    z = (np.log(_THRESHOLD_MS / np.maximum(p99_ms, 1e-3)) + _Z99 * _LOG_SIGMA) / _LOG_SIGMA
    return np.asarray(0.5 * _erfc(z / math.sqrt(2.0)), dtype=np.float64)


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


# --- planning: each kind draws its shape and duration --------------------------------------------


def _plan_incident(kind: str, rng: np.random.Generator) -> _Event:
    p: dict[str, float] = {}
    if kind == "pool_exhaustion":
        # A connection leak or slow queries: pool occupancy climbs steadily towards 1, latency
        # rises as requests wait for connections, then requests time out once it saturates.
        p["climb"] = _minutes(rng, 25, 50)  # rows until demand reaches the whole pool
        p["peak"] = rng.uniform(1.04, 1.5) if rng.random() < 0.78 else rng.uniform(0.86, 0.99)
        p["hold"] = _minutes(rng, 4, 25)
        p["drain"] = _minutes(rng, 3, 10)
        fault = p["climb"] * min(p["peak"], 1.6) + p["hold"]
    elif kind == "memory_gc":
        # A memory leak: GC runs more often and longer, so CPU and p99 creep up for 30-60 min,
        # then the heap thrashes and workers are OOM-killed (5xx) until a restart.
        p["creep"] = _minutes(rng, 30, 60)
        p["cpu"] = rng.uniform(0.2, 0.4)
        p["gc_ms"] = rng.uniform(120, 450)
        breaches = rng.random() < 0.78
        p["thrash"] = _minutes(rng, 5, 25) if breaches else 0
        p["errors"] = 10 ** rng.uniform(-2.1, -1.0) if breaches else 0.0
        p["reach"] = 1.0 if breaches else rng.uniform(0.6, 0.95)  # restarted before thrashing
        p["drain"] = _minutes(rng, 2, 6)
        fault = p["creep"] * p["reach"] + p["thrash"]
    elif kind == "bad_deploy":
        # Either a big-bang deploy (errors at once; breaches within minutes) or a staged
        # rollout whose error share steps up with each stage until it is rolled back.
        p["big_bang"] = float(rng.random() < 0.35)
        p["errors"] = 10 ** rng.uniform(-3.3, -1.1)
        p["stages"] = 1 if p["big_bang"] else int(rng.integers(3, 5))
        p["stage_rows"] = _minutes(rng, 4, 10)
        p["rollback"] = _minutes(rng, 6, 25)
        p["latency_ms"] = rng.uniform(0, 60)
        p["drain"] = _minutes(rng, 2, 5)
        fault = p["stages"] * p["stage_rows"] + p["rollback"] if not p["big_bang"] else p["rollback"]
    elif kind == "slow_dependency":
        # A downstream (card network, FX rates) slows down: latency ramps up, connections are
        # held longer, and calls past the client timeout fail.
        p["ramp"] = _minutes(rng, 15, 45)
        p["latency_ms"] = 10 ** rng.uniform(2.5, 3.6)
        p["timeout_ms"] = rng.uniform(800, 1600)
        p["pool"] = rng.uniform(0.05, 0.3)
        p["hold"] = _minutes(rng, 10, 40)
        p["drain"] = _minutes(rng, 3, 10)
        fault = p["ramp"] + p["hold"]
    elif kind == "capacity_surge":
        # A traffic surge beyond capacity (a partner's batch, a news event): traffic climbs to 2-4x
        # by day (more at night, when there is headroom), CPU saturates, latency follows, then
        # load shedding and timeouts.
        p["ramp"] = _minutes(rng, 15, 45) if rng.random() < 0.85 else _minutes(rng, 3, 8)
        p["cpu_target"] = rng.uniform(0.95, 1.6)
        p["hold"] = _minutes(rng, 10, 40)
        p["drain"] = _minutes(rng, 8, 20)
        fault = p["ramp"] + p["hold"]
    elif kind == "slow_burn":
        # A small share of payments failing (one card range, one currency) or a slow query plan:
        # 3-10x the budget for hours. Only the 6x 30m+6h pair can catch it, late or never.
        p["latency"] = float(rng.random() < 0.3)
        p["burn"] = rng.uniform(3.0, 10.0)
        p["latency_ms"] = rng.uniform(200, 450)
        p["rise"] = _minutes(rng, 10, 30)
        p["hold"] = _minutes(rng, 3 * 60, 8 * 60)
        p["drain"] = _minutes(rng, 5, 15)
        fault = p["rise"] + p["hold"]
    else:
        raise ValueError(f"unknown incident kind {kind!r}; expected one of {', '.join(INCIDENT_KINDS)}")
    fault_rows = round(fault)
    return _Event(kind, fault_rows + round(p["drain"]), p, incident=True, fault_rows=fault_rows)


def _plan_near_miss(kind: str, rng: np.random.Generator) -> _Event:
    p: dict[str, float] = {}
    if kind == "market_open_surge":
        # The opening bell on a busy day: traffic about 2x for half an hour, CPU high, SLO fine.
        p["traffic"] = rng.uniform(1.6, 2.5)
        p["rise"] = _minutes(rng, 1, 4)
        p["hold"] = _minutes(rng, 15, 30)
        p["fall"] = _minutes(rng, 8, 15)
    elif kind == "blip":
        # A worker restart or a network hiccup: 1-2 minutes of errors, too short for the 1h window.
        p["rows"] = int(rng.integers(4, 9))
        p["load"] = rng.uniform(0.25, 0.9)  # share of what would page over 1h
        p["latency_ms"] = rng.uniform(30, 300)
    elif kind == "cpu_spike":
        # A batch job or a cache rebuild: CPU to 0.8-0.97 for a few minutes, then back.
        p["target"] = rng.uniform(0.8, 0.97)
        p["rise"] = _minutes(rng, 0.5, 2)
        p["hold"] = _minutes(rng, 2, 10)
        p["fall"] = _minutes(rng, 1, 3)
    elif kind == "pool_spike":
        # A report query or a migration holding connections: pool to 0.8-0.97, then released.
        p["target"] = rng.uniform(0.8, 0.97)
        p["rise"] = _minutes(rng, 0.5, 3)
        p["hold"] = _minutes(rng, 2, 10)
        p["fall"] = _minutes(rng, 0.5, 2)
    else:
        raise ValueError(f"unknown near-miss kind {kind!r}; expected one of {', '.join(NEAR_MISS_KINDS)}")
    rows = round(p["rows"]) if kind == "blip" else round(p["rise"] + p["hold"] + p["fall"])
    return _Event(kind, rows, p, incident=False, fault_rows=rows)


# --- applying: each kind adds its pressures ------------------------------------------------------


def _apply(event: _Event, pressure: _Pressure, service: _Service, load: Floats) -> None:
    """Add the event's pressures (`load` is the normal traffic relative to the diurnal peak)."""
    index = np.arange(load.shape[0], dtype=np.float64)
    p, s, a = event.params, event.start, event.start + event.fault_rows
    drain = event.rows - event.fault_rows
    after = 1.0 - _ramp(index, a, a + max(drain, 1))  # fades out over the drain
    active = (index >= s) * after
    kind = event.kind
    if kind == "pool_exhaustion":
        normal = service.pool_idle + service.pool_per_load * float(load[s])
        slope = (1.0 - normal) / p["climb"]
        extra = np.minimum(slope * (index - s), p["peak"] - normal)
        pressure.pool += np.clip(extra, 0.0, None) * active
    elif kind == "memory_gc":
        progress = _ramp(index, s, s + p["creep"]) * p["reach"]
        thrash_start = s + p["creep"] * p["reach"]
        thrash = _ramp(index, thrash_start, thrash_start + 2 * MINUTE) if p["thrash"] else np.zeros_like(index)
        pressure.cpu += (p["cpu"] * progress**1.5 + 0.1 * thrash) * active
        pressure.latency_ms += (p["gc_ms"] * progress**2 * (1.0 + thrash)) * active
        pressure.errors += p["errors"] * thrash * active
    elif kind == "bad_deploy":
        stages = int(p["stages"])
        fractions = (1.0,) if stages == 1 else (0.1, 0.25, 0.5, 1.0)[4 - stages :]
        share = np.zeros_like(index)
        for k, fraction in enumerate(fractions):
            begin = s + k * p["stage_rows"]
            share = np.where(index >= begin, fraction, share)
            restart = _envelope(index, round(begin), 1, 2 * MINUTE, MINUTE)
            pressure.cpu += 0.15 * fraction * restart  # new workers warming up
        pressure.errors += p["errors"] * share * active
        pressure.latency_ms += p["latency_ms"] * share * active
    elif kind == "slow_dependency":
        progress = _ramp(index, s, s + p["ramp"]) ** 2
        extra = p["latency_ms"] * progress * active
        pressure.latency_ms += extra
        pressure.pool += p["pool"] * progress * active
        timed_out = np.clip(1.0 - p["timeout_ms"] / np.maximum(extra, 1.0), 0.0, 1.0)
        pressure.errors += 0.3 * timed_out
    elif kind == "capacity_surge":
        normal = service.cpu_per_load * float(load[s])
        multiplier = float(np.clip((p["cpu_target"] - service.cpu_idle) / max(normal, 1e-6), 1.6, 6.0))
        pressure.traffic *= 1.0 + (multiplier - 1.0) * _ramp(index, s, s + p["ramp"]) * active
    elif kind == "slow_burn":
        rise = _ramp(index, s, s + p["rise"]) * active
        if p["latency"]:
            pressure.latency_ms += p["latency_ms"] * rise
        else:
            pressure.errors += p["burn"] * 1e-4 * rise
    elif kind == "market_open_surge":
        shape = _envelope(index, s, round(p["rise"]), round(p["hold"]), round(p["fall"]))
        pressure.traffic *= 1.0 + (p["traffic"] - 1.0) * event.scale * shape
    elif kind == "blip":
        rows = round(p["rows"])
        shape = _envelope(index, s, 0, rows, 0)
        # keeps the 1h window under 14.4x the budget on its own: share x rows < 14.4 x 1e-4 x 240
        blip_share = p["load"] * event.scale * 14.4e-4 * HOUR / rows
        pressure.errors += blip_share * shape
        pressure.latency_ms += p["latency_ms"] * event.scale * shape
    elif kind in ("cpu_spike", "pool_spike"):
        shape = _envelope(index, s, round(p["rise"]), round(p["hold"]), round(p["fall"]))
        if kind == "cpu_spike":
            normal = service.cpu_idle + service.cpu_per_load * float(load[s])
            pressure.cpu += max(p["target"] - normal, 0.0) * event.scale * shape
        else:
            normal = service.pool_idle + service.pool_per_load * float(load[s])
            pressure.pool += max(p["target"] - normal, 0.0) * event.scale * shape


# --- the service model ---------------------------------------------------------------------------


def _service_model(
    service: _Service, normal_requests: Floats, pressure: _Pressure, rng: np.random.Generator
) -> dict[str, npt.NDArray[np.int64] | Floats]:
    rows = normal_requests.shape[0]
    expected = normal_requests * pressure.traffic
    requests = rng.poisson(expected).astype(np.int64)
    load = expected / service.peak_requests
    cpu_demand = service.cpu_idle + service.cpu_per_load * load + pressure.cpu
    pool_demand = service.pool_idle + service.pool_per_load * load + pressure.pool
    cpu_rho = np.minimum(cpu_demand, 0.985)
    pool_rho = np.minimum(pool_demand, 0.985)
    queueing = (
        service.cpu_wait_ms * cpu_rho / (1 - cpu_rho)
        + service.pool_wait_ms * pool_rho / (1 - pool_rho)
        + 3000.0 * np.clip(cpu_demand - 1.0, 0.0, None)
        + 4000.0 * np.clip(pool_demand - 1.0, 0.0, None)
    )
    p99 = (service.latency_floor_ms + queueing + pressure.latency_ms) * np.exp(rng.normal(0.0, 0.06, rows))
    p99 = np.round(np.minimum(p99, 30000.0), 1)
    # demand beyond capacity: requests that find no connection or no CPU time out or are shed
    # (a little CPU overload only queues; shedding starts once the queues are full)
    overload = 0.6 * np.clip(pool_demand - 1.0, 0.0, None) / np.maximum(pool_demand, 1.0) + 0.5 * np.clip(
        cpu_demand - 1.05, 0.0, None
    ) / np.maximum(cpu_demand, 1.0)
    error_share = np.clip(service.error_share + pressure.errors + overload, 0.0, 1.0)
    errors = rng.binomial(requests, error_share).astype(np.int64)
    slow = rng.binomial(requests, np.clip(service.slow_share + _slow_share(p99), 0.0, 1.0)).astype(np.int64)
    cpu = np.round(np.clip(cpu_demand + rng.normal(0.0, 0.015, rows), 0.01, 1.0), 4)
    pool = np.round(np.clip(pool_demand + rng.normal(0.0, 0.01, rows), 0.0, 1.0), 4)
    return {"requests": requests, "errors": errors, "slow": slow, "p99_ms": p99, "cpu": cpu, "db_pool": pool}


def _normal_traffic(timestamps: npt.NDArray[np.int64], rng: np.random.Generator, peak: float) -> Floats:
    """Requests per step without faults: diurnal curve, daily market-open bump, slow wobble."""
    seconds = (timestamps % 86400).astype(np.float64)
    hour = seconds / 3600.0
    shape = 0.5 - 0.5 * np.cos(2 * np.pi * (hour - 3.0) / 24.0)  # 0 at 03:00 UTC, 1 at 15:00 UTC
    diurnal = 0.15 + 0.85 * shape
    since_open = seconds - MARKET_OPEN_UTC_S
    bump = np.where(since_open >= 0, np.exp(-since_open / rng.uniform(1200, 2400)), 0.0)
    bump *= np.clip(since_open / 120.0, 0.0, 1.0) * rng.uniform(0.15, 0.35)
    wobble = np.zeros_like(hour)
    for _ in range(4):
        period = rng.uniform(1200, 4 * 3600)
        wobble += rng.normal(0, 0.03) * np.sin(2 * np.pi * seconds / period + rng.uniform(0, 2 * np.pi))
    return peak * diurnal * (1.0 + bump) * np.exp(wobble)


def _place(events: list[_Event], rows: int, rng: np.random.Generator, fixed: dict[int, int]) -> list[_Event]:
    """Give each event a start so nothing overlaps; events that cannot fit are left out."""
    placed: list[_Event] = []

    def fits(event: _Event, start: int) -> bool:
        tail = LATE_GRACE_ROWS if event.incident else 0  # an incident's late pages must fit too
        if start < CLEAN_START_ROWS or start + event.rows + tail >= rows:
            return False
        for other in placed:
            gap = INCIDENT_GAP_ROWS if event.incident or other.incident else NEAR_MISS_GAP_ROWS
            if start < other.start + other.rows + gap and other.start < start + event.rows + gap:
                return False
        return True

    for position, event in enumerate(events):
        if position in fixed:
            candidates = [fixed[position]]
        else:
            high = rows - event.rows - (LATE_GRACE_ROWS if event.incident else 0)
            candidates = list(rng.integers(CLEAN_START_ROWS, high, 60)) if high > CLEAN_START_ROWS else []
        for start in candidates:
            if fits(event, int(start)):
                event.start = int(start)
                placed.append(event)
                break
    return sorted(placed, key=lambda e: e.start)


def generate_scenario(
    seed: int,
    *,
    hours: float = 24.0,
    name: str | None = None,
    start: int = DEFAULT_START,
    incident_kinds: Sequence[str] | None = None,
    near_miss_kinds: Sequence[str] | None = None,
) -> Scenario:
    """One scenario (15 s rows, DESIGN format) with a realistic diurnal traffic pattern and 0..N
    incidents and near-misses, incidents' breach computed by slo.scenario.first_breach (null if never).

    `incident_kinds` / `near_miss_kinds` choose the events (each placed at random where it fits)
    instead of drawing them; `()` means none. Events that do not fit in `hours` are left out.
    The same arguments always give the same scenario.
    """
    scenario, _ = generate_labelled(
        seed,
        hours=hours,
        name=name,
        start=start,
        incident_kinds=incident_kinds,
        near_miss_kinds=near_miss_kinds,
    )
    return scenario


def generate_labelled(
    seed: int,
    *,
    hours: float = 24.0,
    name: str | None = None,
    start: int = DEFAULT_START,
    incident_kinds: Sequence[str] | None = None,
    near_miss_kinds: Sequence[str] | None = None,
) -> tuple[Scenario, list[NearMiss]]:
    """`generate_scenario`, with the near-misses it holds (after any shrinking; dropped ones left out)."""
    rows = round(hours * 3600 / STEP_SECONDS)
    if rows < 2 * HOUR:
        raise ValueError("a scenario needs at least 2 hours (one of clean history, one for events)")
    rng = np.random.default_rng(seed)
    timestamps = start + STEP_SECONDS * (np.arange(rows, dtype=np.int64) + 1)
    service = _Service(
        peak_requests=rng.uniform(1200, 3600),
        cpu_idle=rng.uniform(0.05, 0.1),
        cpu_per_load=rng.uniform(0.38, 0.46),
        pool_idle=rng.uniform(0.06, 0.1),
        pool_per_load=rng.uniform(0.2, 0.28),
        latency_floor_ms=rng.uniform(42, 60),
        error_share=rng.uniform(5e-6, 2e-5),
        slow_share=rng.uniform(1e-3, 2.5e-3),
        cpu_wait_ms=rng.uniform(10, 14),
        pool_wait_ms=rng.uniform(6, 10),
    )
    normal = _normal_traffic(timestamps, rng, service.peak_requests)
    load = normal / service.peak_requests

    days = hours / 24
    if incident_kinds is None:
        count = int(rng.choice([0, 1, 2, 3, 4], p=[0.12, 0.35, 0.3, 0.16, 0.07]) * min(days, 1.0) + 0.5)
        count += int(rng.poisson(2.0 * max(days - 1.0, 0.0)))
        kinds = list(_KIND_WEIGHTS)
        incident_kinds = [str(k) for k in rng.choice(kinds, size=count, p=list(_KIND_WEIGHTS.values()))]
    near_fixed: list[str] = []
    if near_miss_kinds is None:
        kinds = list(_NEAR_MISS_WEIGHTS)
        count = int(rng.integers(1, 5) * min(days, 1.0) + 0.5) + int(rng.poisson(2.5 * max(days - 1.0, 0.0)))
        near_miss_kinds = [str(k) for k in rng.choice(kinds, size=count, p=list(_NEAR_MISS_WEIGHTS.values()))]
        if rng.random() < 0.5:
            near_fixed = ["market_open_surge"]
    for kind in (*incident_kinds, *near_miss_kinds):
        if kind not in INCIDENT_KINDS and kind not in NEAR_MISS_KINDS:
            raise ValueError(f"unknown event kind {kind!r}")

    # slow burns first (they need hours), then incidents, then market opens at 13:30 UTC, then the rest
    ordered_incidents = sorted(incident_kinds, key=lambda k: k != "slow_burn")
    near_ordered = [*near_fixed, *near_miss_kinds]
    near_ordered = sorted(near_ordered, key=lambda k: k != "market_open_surge")
    events = [_plan_incident(k, rng) for k in ordered_incidents] + [_plan_near_miss(k, rng) for k in near_ordered]
    row_starts = (timestamps - STEP_SECONDS) % 86400  # the row holding 13:30:00 UTC
    at_open = (row_starts >= MARKET_OPEN_UTC_S) & (row_starts < MARKET_OPEN_UTC_S + STEP_SECONDS)
    opens = [int(i) for i in np.flatnonzero(at_open) if i >= CLEAN_START_ROWS]
    fixed: dict[int, int] = {}
    for position, event in enumerate(events):
        if event.kind == "market_open_surge":
            fixed[position] = opens.pop(0) if opens else -1
    placed = _place(events, rows, rng, fixed)

    noise_seed = int(rng.integers(0, 2**63 - 1))
    label = name or f"scenario-{seed}"

    def build(events: list[_Event]) -> tuple[Scenario, npt.NDArray[np.bool_]]:
        return _build(timestamps, service, normal, load, events, noise_seed, label)

    scenario, _, _ = shrink_near_misses(placed, build, build(placed), LATE_GRACE_ROWS)
    near = [
        NearMiss(e.kind, float(timestamps[e.start]), float(timestamps[e.start + e.rows]))
        for e in placed
        if not e.incident
    ]
    return scenario, near


def _build(
    timestamps: npt.NDArray[np.int64],
    service: _Service,
    normal: Floats,
    load: Floats,
    events: list[_Event],
    noise_seed: int,
    name: str,
) -> tuple[Scenario, npt.NDArray[np.bool_]]:
    """The scenario the events make, labelled, and the SLO engine's page condition on it."""
    pressure = _Pressure.none(timestamps.shape[0])
    for event in events:
        _apply(event, pressure, service, load)
    columns = _service_model(service, normal, pressure, np.random.default_rng(noise_seed))
    scenario = Scenario.from_columns(timestamps, columns, name=name)
    holds = breach_condition(scenario)
    return replace(scenario, incidents=label_incidents(events, timestamps, holds)), holds


def generate_set(seed: int, count: int, *, hours: float = 24.0) -> list[Scenario]:
    """`count` scenarios back to back in time (scenario i starts `i x hours` after the first),
    named `scenario-<seed>-<i>` (three digits); scenario i is seeded from (seed, i)."""
    scenarios = []
    span = round(hours * 3600 / STEP_SECONDS) * STEP_SECONDS
    for i in range(count):
        child = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        scenarios.append(
            generate_scenario(child, hours=hours, name=f"scenario-{seed}-{i:03d}", start=DEFAULT_START + i * span)
        )
    return scenarios


def write_set(folder: Path, scenarios: Sequence[Scenario]) -> list[Path]:
    """One sub-folder per scenario, named after it (write_scenario); returns the folders in order."""
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise ValueError("scenario names must be unique: each becomes a folder")
    paths = []
    for scenario in scenarios:
        path = folder / scenario.name
        write_scenario(path, scenario)
        paths.append(path)
    return paths

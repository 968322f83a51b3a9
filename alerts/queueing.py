"""A second incident simulator, different in structure from `alerts.generator`, to test transfer.

`alerts.generator` (simulator A) shapes each column from pressures on one smooth service model:
a diurnal curve with a New York open bump at 13:30 UTC every day, sine wobble, an M/M/1-like
delay term. A model tuned on it can learn its shapes rather than how systems fail. This module
(simulator B) builds the same DESIGN.md scenarios ("Metric scenarios") from different parts:

- **Calendar**: a London trading day (weekdays 08:00-16:30 UTC): a 2-6x open surge decaying over
  10-30 min, a lunch dip, a closing-auction bump at 16:25; nights and weekends at 5-15% of the
  day's level; weekend batch jobs (Saturday and Sunday 02:00 UTC) that hold database connections
  and CPU for 1-2 hours. Scenarios are three days long and start on any weekday.
- **Service**: a queueing model. `c` CPU workers with Erlang-C waits (M/M/c); a pool of `N`
  connections whose occupancy follows Little's law (arrival rate x hold time, plus leaked or
  batch-held connections) with its own Erlang-C waits; latency a mixture of two log-normals
  (fast path and slow path) whose p99 is solved numerically; demand beyond capacity times out;
  clients retry a failed request once with probability 0.5, which adds load.
- **Noise**: multiplicative AR(1) on the arrival rate, Laplace noise on the gauges, p99 sampling
  noise that shrinks with the request count, Poisson and binomial counts.
- **Incident mechanisms** (kinds named as the operators name them): `db_pool_exhaustion` (a
  connection leak, or lock contention stretching hold times), `memory_leak` (heap growth, GC
  overhead on every request, then OOM kills), `bad_deploy` (canary then rollout, or big-bang;
  errors or a latency regression), `dependency_slowdown` (a downstream call slowing
  exponentially: pool hold times, then client timeouts), `traffic_surge` (logistic growth to
  0.7-1.6x the CPU capacity, 2-30x the traffic), `slow_burn` (3-10x the error budget, or a slow share, for 4-10 hours).
- **Near-misses** that must not page: the open surges and weekend batches themselves, GC pause
  blips, deploy restarts (a minute of errors), failovers (pool spike), half-height surges.

Breaches are the SLO engine's page condition, as in simulator A; near-misses that would make it
hold are scaled down, then dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from alerts.incidents import label_incidents, shrink_near_misses
from slo.scenario import STEP_SECONDS, Scenario, breach_condition

Floats = npt.NDArray[np.float64]

INCIDENT_KINDS: tuple[str, ...] = (
    "db_pool_exhaustion",
    "memory_leak",
    "bad_deploy",
    "dependency_slowdown",
    "traffic_surge",
    "slow_burn",
)
NEAR_MISS_KINDS: tuple[str, ...] = ("gc_pause", "deploy_restart", "failover", "half_surge")
_KIND_WEIGHTS = (0.2, 0.17, 0.16, 0.17, 0.15, 0.15)
MINUTE = 60 // STEP_SECONDS
HOUR = 60 * MINUTE
DAY_S = 86400
START = 1_800_000_000 - 1_800_000_000 % (7 * DAY_S) + 4 * DAY_S  # a Monday 00:00 UTC (1970-01-01 was a Thursday)
OPEN_S, CLOSE_S = 8 * 3600, 16 * 3600 + 30 * 60
CLEAN_ROWS = 2 * HOUR
GAP_ROWS = HOUR
GRACE_ROWS = 30 * MINUTE
CLIENT_TIMEOUT_MS = 2000.0


@dataclass(frozen=True)
class _Service:
    peak_rps: float  # arrivals per second at the day's plateau
    workers: int  # CPU workers (M/M/c)
    cpu_ms: float  # CPU service time per request
    pool_size: int  # database connections
    hold_ms: float  # connection hold time per request
    fast_ms: float  # median of the fast path
    slow_path: float  # share of requests on the slow path
    slow_ms: float  # median of the slow path
    error_share: float


@dataclass
class _Faults:
    """Per-row changes the faults make to the service; the queueing model turns them into metrics."""

    traffic: Floats
    cpu_factor: Floats  # multiplies the CPU service time (GC, a regression)
    hold_factor: Floats  # multiplies the connection hold time (slow queries, a slow dependency)
    held: Floats  # connections held whatever the load (leaks, batch jobs), as a share of the pool
    cpu_busy: Floats  # CPU taken by other work (batch), as a share of the workers
    errors: Floats  # extra 5xx share
    dependency_ms: Floats  # extra latency of a downstream call on every request
    slow_extra: Floats  # extra share of requests on the slow path

    @classmethod
    def none(cls, rows: int) -> _Faults:
        zeros, ones = np.zeros(rows), np.ones(rows)
        return cls(ones.copy(), ones.copy(), ones.copy(), zeros.copy(), zeros.copy(), zeros.copy(), zeros.copy(), zeros)


@dataclass
class _Event:
    kind: str
    rows: int  # fault start to the end of its effect
    params: dict[str, float]
    incident: bool
    start: int = 0
    scale: float = 1.0
    placed: bool = field(default=False)


def _ramp(index: Floats, start: float, end: float) -> Floats:
    if end <= start:
        return (index >= start).astype(np.float64)
    return np.clip((index - start) / (end - start), 0.0, 1.0)


def _window(index: Floats, start: float, rows: float) -> Floats:
    return ((index >= start) & (index < start + rows)).astype(np.float64)


# --- the calendar --------------------------------------------------------------------------------


def _arrivals(
    timestamps: npt.NDArray[np.int64], rng: np.random.Generator, peak_rps: float, open_surge: float
) -> Floats:
    """Arrival rate (requests/s) without faults: London trading days, quiet nights and weekends."""
    t = timestamps.astype(np.float64)
    seconds = t % DAY_S
    weekday = ((t // DAY_S + 3) % 7).astype(int)  # 0 = Monday
    trading = weekday < 5
    day = np.where((seconds >= OPEN_S - 1800) & (seconds < CLOSE_S + 3600), 1.0, 0.0)
    edge = _ramp(seconds, OPEN_S - 1800, OPEN_S) * (1 - _ramp(seconds, CLOSE_S, CLOSE_S + 3600))
    lunch = 1 - 0.25 * np.exp(-(((seconds - 12.5 * 3600) / 2400) ** 2))
    level = np.where(trading, 0.1 + 0.9 * edge * day * lunch, rng.uniform(0.05, 0.12))
    since_open = seconds - OPEN_S
    surge = open_surge * np.where(since_open >= 0, np.exp(-since_open / rng.uniform(600, 1800)), 0.0)
    surge *= np.clip(since_open / 60.0, 0.0, 1.0) * trading
    auction = rng.uniform(0.5, 1.5) * np.exp(-(((seconds - (CLOSE_S - 300)) / 400) ** 2)) * trading
    night = 0.08 * (1 - trading)
    wobble = np.empty(t.shape[0])
    state = 0.0
    shocks: list[float] = np.asarray(rng.normal(0.0, 0.012, t.shape[0])).tolist()
    for i, shock in enumerate(shocks):  # AR(1), phi 0.98: a slow, persistent wander
        state = 0.98 * state + shock
        wobble[i] = state
    return np.asarray(peak_rps * (level + surge + auction + night) * np.exp(wobble), dtype=np.float64)


def _weekend_batch(timestamps: npt.NDArray[np.int64], rng: np.random.Generator, faults: _Faults) -> None:
    """Saturday and Sunday 02:00 UTC: a batch job holds connections and CPU for 1-2 hours (routine)."""
    t = timestamps.astype(np.float64)
    weekday = ((t // DAY_S + 3) % 7).astype(int)
    seconds = t % DAY_S
    for day in (5, 6):
        length = rng.uniform(3600, 7200)
        running = (weekday == day) & (seconds >= 2 * 3600) & (seconds < 2 * 3600 + length)
        shape = running * (1 - np.exp(-(seconds - 2 * 3600).clip(0) / 300))
        faults.held += rng.uniform(0.3, 0.55) * shape
        faults.cpu_busy += rng.uniform(0.2, 0.4) * shape


# --- the incident mechanisms (one function per kind: a table, not a chain) -------------------------


def _db_pool_exhaustion(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    p = e.params
    if p["leak"]:  # leaked connections: a straight climb to `peak` of the pool, held until the restart
        climb = _ramp(i, e.start, e.start + p["climb"]) * _window(i, e.start, e.rows)
        f.held += max(p["peak"] - base_pool, 0.05) * climb
    else:  # lock contention: hold times stretch exponentially
        growth = np.exp(np.clip(i - e.start, 0, None) / p["climb"] * math.log(p["stretch"])) - 1
        f.hold_factor *= 1 + np.minimum(growth, p["stretch"]) * _window(i, e.start, e.rows)


def _memory_leak(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    p = e.params
    heap = np.clip((i - e.start) / p["to_oom"], 0.0, None) * p["reach"]
    inside = _window(i, e.start, e.rows)
    gc = 0.15 / np.maximum(1.05 - np.minimum(heap, 1.0), 0.05) ** 2 * np.minimum(heap, 1.0) ** 2
    f.cpu_factor *= 1 + gc * inside
    f.dependency_ms += 40 * np.minimum(heap, 1.0) ** 3 * inside  # stop-the-world pauses
    oom = (heap >= 1.0) * inside
    f.errors += p["oom_errors"] * oom  # workers killed and restarting


def _bad_deploy(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    p = e.params
    inside = _window(i, e.start, e.rows)
    canary = p["canary"]
    share = np.where(i >= e.start + p["canary_rows"], 1.0, canary) if canary < 1 else np.ones_like(i)
    if p["latency"]:
        f.cpu_factor *= 1 + p["regression"] * share * inside
        f.slow_extra += 0.02 * p["regression"] * share * inside
    else:
        f.errors += p["errors"] * share * inside


def _dependency_slowdown(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    p = e.params
    inside = _window(i, e.start, e.rows)
    extra = p["first_ms"] * (np.exp(np.clip(i - e.start, 0, None) / p["double"] * math.log(2)) - 1)
    extra = np.minimum(extra, p["cap_ms"]) * inside
    f.dependency_ms += extra
    f.hold_factor *= 1 + extra / s.hold_ms * p["in_transaction"]
    f.errors += np.clip((extra - CLIENT_TIMEOUT_MS) / CLIENT_TIMEOUT_MS, 0.0, 1.0) * 0.5


def _traffic_surge(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    """Logistic growth to `reach` x the CPU capacity (2-30x the traffic it starts from: a bot storm at night)."""
    p = e.params
    cpu_now = max(base_pool * s.pool_size / s.hold_ms * s.cpu_ms / s.workers, 1e-3)  # the CPU share at the start
    multiplier = float(np.clip(p["reach"] / cpu_now, 2.0, 30.0))
    x = np.clip((i - e.start - p["rise"] / 2) / (p["rise"] / 8), -50, 50)
    f.traffic *= 1 + (multiplier - 1) / (1 + np.exp(-x)) * _window(i, e.start, e.rows)


def _slow_burn(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    p = e.params
    on = _ramp(i, e.start, e.start + 20 * MINUTE) * _window(i, e.start, e.rows)
    if p["latency"]:
        f.slow_extra += p["slow_share"] * on
    else:
        f.errors += p["burn"] * 1e-4 * on


def _gc_pause(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    f.dependency_ms += e.params["ms"] * e.scale * _window(i, e.start, e.rows)


def _deploy_restart(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    f.errors += e.params["errors"] * e.scale * _window(i, e.start, e.rows)


def _failover(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    f.held += max(e.params["peak"] - base_pool, 0.0) * e.scale * _window(i, e.start, e.rows)


def _half_surge(e: _Event, i: Floats, f: _Faults, s: _Service, base_pool: float) -> None:
    shape = _ramp(i, e.start, e.start + 5 * MINUTE) * (1 - _ramp(i, e.start + e.rows - 5 * MINUTE, e.start + e.rows))
    f.traffic *= 1 + (e.params["multiplier"] - 1) * e.scale * shape


Mechanism = Callable[[_Event, Floats, _Faults, _Service, float], None]
MECHANISMS: dict[str, Mechanism] = {
    "db_pool_exhaustion": _db_pool_exhaustion,
    "memory_leak": _memory_leak,
    "bad_deploy": _bad_deploy,
    "dependency_slowdown": _dependency_slowdown,
    "traffic_surge": _traffic_surge,
    "slow_burn": _slow_burn,
    "gc_pause": _gc_pause,
    "deploy_restart": _deploy_restart,
    "failover": _failover,
    "half_surge": _half_surge,
}


def _minutes(rng: np.random.Generator, low: float, high: float) -> float:
    return float(rng.uniform(low, high) * MINUTE)


Plan = tuple[dict[str, float], float]  # the drawn parameters, and the event's rows


def _plan_pool(rng: np.random.Generator) -> Plan:
    peak = rng.uniform(0.8, 0.95) if rng.random() < 0.2 else rng.uniform(1.05, 1.3)
    p = {"leak": float(rng.random() < 0.6), "climb": _minutes(rng, 15, 50), "peak": peak}
    p["stretch"] = float(rng.uniform(4, 12))
    return p, p["climb"] + _minutes(rng, 20, 40)


def _plan_leak(rng: np.random.Generator) -> Plan:
    p = {"to_oom": _minutes(rng, 40, 120), "reach": 0.85 if rng.random() < 0.2 else 1.2, "oom_errors": 0.1}
    return p, p["to_oom"] * 1.1 + _minutes(rng, 15, 30)


def _plan_deploy(rng: np.random.Generator) -> Plan:
    p = {
        "canary": 1.0 if rng.random() < 0.35 else float(rng.uniform(0.05, 0.2)),
        "canary_rows": _minutes(rng, 10, 30),
        "latency": float(rng.random() < 0.3),
        "regression": float(rng.uniform(0.8, 3.0)),
        "errors": float(rng.uniform(0.004, 0.05)),
    }
    return p, p["canary_rows"] + _minutes(rng, 20, 40)


def _plan_dependency(rng: np.random.Generator) -> Plan:
    p = {"first_ms": float(rng.uniform(5, 20)), "double": _minutes(rng, 4, 12), "cap_ms": float(rng.uniform(600, 5000))}
    p["in_transaction"] = float(rng.uniform(0.3, 1.0))
    return p, _minutes(rng, 50, 90)


def _plan_surge(rng: np.random.Generator) -> Plan:
    reach = rng.uniform(0.7, 0.95) if rng.random() < 0.2 else rng.uniform(1.05, 1.6)
    p = {"reach": float(reach), "rise": _minutes(rng, 10, 60)}
    return p, p["rise"] + _minutes(rng, 20, 45)


def _plan_burn(rng: np.random.Generator) -> Plan:
    p = {"latency": float(rng.random() < 0.35), "burn": float(rng.uniform(3, 10))}
    p["slow_share"] = float(rng.uniform(0.03, 0.1))
    return p, _minutes(rng, 240, 600)


PLANNERS: dict[str, Callable[[np.random.Generator], Plan]] = {
    "db_pool_exhaustion": _plan_pool,
    "memory_leak": _plan_leak,
    "bad_deploy": _plan_deploy,
    "dependency_slowdown": _plan_dependency,
    "traffic_surge": _plan_surge,
    "slow_burn": _plan_burn,
    "gc_pause": lambda rng: ({"ms": float(rng.uniform(150, 600))}, _minutes(rng, 1, 2)),
    "deploy_restart": lambda rng: ({"errors": float(rng.uniform(0.01, 0.04))}, _minutes(rng, 0.5, 1.5)),
    "failover": lambda rng: ({"peak": float(rng.uniform(0.8, 0.97))}, _minutes(rng, 2, 6)),
    "half_surge": lambda rng: ({"multiplier": float(rng.uniform(1.3, 1.8))}, _minutes(rng, 15, 30)),
}


def _plan(kind: str, rng: np.random.Generator) -> _Event:
    params, rows = PLANNERS[kind](rng)
    return _Event(kind, round(rows), params, kind in INCIDENT_KINDS)


# --- the queueing model --------------------------------------------------------------------------


def _erlang_c(servers: int, offered: Floats) -> Floats:
    """P(wait) in M/M/c with `servers` and offered load `offered` (Erlangs), via Erlang B's recursion."""
    b = np.ones_like(offered)
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    rho = np.minimum(offered / servers, 0.999)
    return np.asarray(b / (1 - rho * (1 - b)), dtype=np.float64)


def _queue_wait(servers: int, offered: Floats, service_ms: Floats) -> Floats:
    """Mean wait (ms) in M/M/c: P(wait) / (c mu - lambda), with the load held just under capacity."""
    held = np.minimum(offered, servers * 0.995)
    return np.asarray(_erlang_c(servers, held) * service_ms / (servers - held), dtype=np.float64)


def _mixture_quantile(weights: Floats, fast: Floats, slow: Floats, sigma: float, q: float) -> Floats:
    """The q-quantile of a two-component log-normal mixture (medians `fast`, `slow`), by bisection."""
    lo, hi = np.log(np.minimum(fast, slow) * 0.1), np.log(np.maximum(fast, slow) * 100)
    for _ in range(24):
        mid = (lo + hi) / 2
        below = (1 - weights) * _norm_cdf((mid - np.log(fast)) / sigma) + weights * _norm_cdf(
            (mid - np.log(slow)) / sigma
        )
        lo, hi = np.where(below < q, mid, lo), np.where(below < q, hi, mid)
    return np.asarray(np.exp((lo + hi) / 2), dtype=np.float64)


def _norm_cdf(z: Floats) -> Floats:
    """Standard normal CDF via Abramowitz and Stegun 7.1.26 (error < 1.5e-7), vectorised."""
    x = np.abs(np.asarray(z, dtype=np.float64)) / math.sqrt(2)
    t = 1 / (1 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1 - poly * np.exp(-x * x)
    return np.asarray(0.5 * (1 + np.sign(z) * erf), dtype=np.float64)


def _measure(
    s: _Service, arrivals: Floats, f: _Faults, rng: np.random.Generator
) -> dict[str, npt.NDArray[np.int64] | Floats]:
    rows = arrivals.shape[0]
    error_share = np.full(rows, s.error_share)
    rate = arrivals * f.traffic
    for _ in range(2):  # clients retry a failed request once with probability 0.5
        rate = arrivals * f.traffic * (1 + 0.5 * np.clip(error_share, 0, 1))
        cpu_offered = rate * s.cpu_ms * f.cpu_factor / 1000 + f.cpu_busy * s.workers
        cpu_rho = cpu_offered / s.workers
        connections = rate * s.hold_ms * f.hold_factor / 1000 + f.held * s.pool_size  # Little's law
        pool_rho = connections / s.pool_size
        shed = np.clip(1 - 1 / np.maximum(cpu_rho, 1e-9), 0, 1) + np.clip(1 - 1 / np.maximum(pool_rho, 1e-9), 0, 1)
        error_share = np.clip(s.error_share + f.errors + shed, 0, 1)
    cpu_wait = _queue_wait(s.workers, cpu_offered, s.cpu_ms * f.cpu_factor)
    pool_wait = _queue_wait(s.pool_size, connections, s.hold_ms * f.hold_factor)
    wait = np.minimum(cpu_wait + pool_wait, CLIENT_TIMEOUT_MS)
    fast = s.fast_ms * f.cpu_factor + wait + f.dependency_ms
    slow = s.slow_ms * f.cpu_factor + wait + f.dependency_ms
    weights = np.clip(s.slow_path + f.slow_extra, 0, 1)
    requests = rng.poisson(rate * STEP_SECONDS).astype(np.int64)
    p99 = _mixture_quantile(weights, fast, slow, 0.45, 0.99)
    p99 *= np.exp(rng.normal(0, 1, rows) * 0.5 / np.sqrt(np.maximum(requests, 1)) ** 0.5)
    over_200 = (1 - weights) * (1 - _norm_cdf((np.log(200) - np.log(fast)) / 0.45)) + weights * (
        1 - _norm_cdf((np.log(200) - np.log(slow)) / 0.45)
    )
    errors = rng.binomial(requests, error_share).astype(np.int64)
    slow_count = rng.binomial(requests, np.clip(over_200, 0, 1)).astype(np.int64)
    cpu = np.clip(np.minimum(cpu_rho, 1.0) + rng.laplace(0, 0.008, rows), 0.01, 1.0)
    pool = np.clip(np.minimum(pool_rho, 1.0) + rng.laplace(0, 0.006, rows), 0.0, 1.0)
    return {
        "requests": requests,
        "errors": errors,
        "slow": slow_count,
        "p99_ms": np.round(np.minimum(p99, 30000.0), 1),
        "cpu": np.round(cpu, 4),
        "db_pool": np.round(pool, 4),
    }


# --- composing a scenario ------------------------------------------------------------------------


def _place(events: list[_Event], rows: int, rng: np.random.Generator) -> list[_Event]:
    placed: list[_Event] = []
    for event in events:
        high = rows - event.rows - GRACE_ROWS
        if high <= CLEAN_ROWS:
            continue
        for start in rng.integers(CLEAN_ROWS, high, 80):
            start = int(start)
            if all(start >= o.start + o.rows + GAP_ROWS or o.start >= start + event.rows + GAP_ROWS for o in placed):
                event.start = start
                placed.append(event)
                break
    return sorted(placed, key=lambda e: e.start)


def _build(
    timestamps: npt.NDArray[np.int64], s: _Service, arrivals: Floats, events: list[_Event], seed: int, name: str
) -> tuple[Scenario, npt.NDArray[np.bool_]]:
    rows = timestamps.shape[0]
    index = np.arange(rows, dtype=np.float64)
    noise = np.random.default_rng(seed)
    faults = _Faults.none(rows)
    _weekend_batch(timestamps, noise, faults)
    for event in events:
        base_pool = float(arrivals[event.start] * s.hold_ms / 1000 / s.pool_size)
        MECHANISMS[event.kind](event, index, faults, s, base_pool)
    scenario = Scenario.from_columns(timestamps, _measure(s, arrivals, faults, noise), name=name)
    holds = breach_condition(scenario)
    return replace(scenario, incidents=label_incidents(events, timestamps, holds)), holds


def generate_scenario(seed: int, *, hours: float = 72.0, name: str | None = None, start: int = START) -> Scenario:
    """One simulator-B scenario (15 s rows) starting at `start`; the same seed gives the same scenario."""
    rows = round(hours * 3600 / STEP_SECONDS)
    if rows < 4 * HOUR:
        raise ValueError("a scenario needs at least 4 hours")
    rng = np.random.default_rng(seed)
    timestamps = start + STEP_SECONDS * (np.arange(rows, dtype=np.int64) + 1)
    workers = int(rng.integers(8, 17))
    peak = float(rng.uniform(40, 160))
    open_surge = float(rng.uniform(1.0, 5.0))  # the open adds 1-5x the plateau: 2-6x the traffic
    busiest = peak * (1 + open_surge)  # provisioned so that the open surge peaks at 55-80% CPU
    service = _Service(
        peak_rps=peak,
        workers=workers,
        cpu_ms=float(workers * 1000 * rng.uniform(0.55, 0.8) / busiest),
        pool_size=int(rng.integers(20, 51)),
        hold_ms=0.0,
        fast_ms=float(rng.uniform(25, 45)),
        slow_path=float(rng.uniform(0.002, 0.006)),
        slow_ms=float(rng.uniform(90, 130)),
        error_share=float(rng.uniform(3e-6, 1.5e-5)),
    )
    service = replace(service, hold_ms=service.pool_size * 1000 * float(rng.uniform(0.45, 0.7)) / busiest)
    arrivals = _arrivals(timestamps, rng, peak, open_surge)
    days = hours / 24
    kinds = [str(k) for k in rng.choice(INCIDENT_KINDS, size=int(rng.poisson(1.6 * days)), p=_KIND_WEIGHTS)]
    near = [str(k) for k in rng.choice(NEAR_MISS_KINDS, size=int(rng.poisson(2.5 * days)))]
    events = [_plan(k, rng) for k in sorted(kinds, key=lambda k: k != "slow_burn")] + [_plan(k, rng) for k in near]
    placed = _place(events, rows, rng)
    noise_seed = int(rng.integers(0, 2**63 - 1))
    label = name or f"queue-{seed}"

    def build(events: list[_Event]) -> tuple[Scenario, npt.NDArray[np.bool_]]:
        return _build(timestamps, service, arrivals, events, noise_seed, label)

    scenario, _, settled = shrink_near_misses(placed, build, build(placed), GRACE_ROWS)
    if not settled:  # routine load (an open surge, a weekend batch) breached: draw another service
        return generate_scenario(seed + 1_000_003, hours=hours, name=label, start=start)
    return scenario


def generate_set(seed: int, count: int, *, hours: float = 72.0) -> list[Scenario]:
    """`count` scenarios named `queue-<seed>-<i>`, each starting on a weekday drawn from (seed, i)."""
    scenarios = []
    for i in range(count):
        child = int(np.random.SeedSequence([seed, i, 2]).generate_state(1)[0])
        weekday = child % 7
        start = START + (i * 7 + weekday) * DAY_S
        scenarios.append(generate_scenario(child, hours=hours, name=f"queue-{seed}-{i:03d}", start=start))
    return scenarios


def describe(scenarios: Sequence[Scenario]) -> dict[str, int]:
    """Incidents per kind, and how many breach, over a set (for the README and tests)."""
    counts: dict[str, int] = {}
    for scenario in scenarios:
        for incident in scenario.incidents:
            counts[incident.kind] = counts.get(incident.kind, 0) + 1
            if incident.breach is not None:
                counts[f"{incident.kind} breaching"] = counts.get(f"{incident.kind} breaching", 0) + 1
    return counts

"""Fault flags of one service: which faults exist, which are on, until when, and how every worker learns of it.

A game day turns faults on through the admin fault API (`core_services.fault_api`); the
hooks that act on them live where the fault happens (`http.FaultInjection` for request
latency and errors, `database.Database` for the database, the portfolio's payments
client for payments). This module owns the model and the shared state, and needs no
web framework:

- the settings of each fault (`Latency`, `ErrorRate`, ...), validated strictly, and which
  faults each service has (`fault_kinds`);
- `FaultBoard`, the active faults as one worker sees them. Every worker of a service
  shares `<data-dir>/faults/<service>.json`, which whichever worker received the change
  rewrites atomically; the others notice at most `CHECK_EVERY_SECONDS` later by one
  `stat`. Each fault carries its absolute wall-clock deadline, so it ends on its own even
  if the experiment that set it crashed, and the hot path costs one cached check while
  nothing is on;
- `CpuBurner`, the background thread that burns a share of a core while `cpu_burn` is on.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

log = logging.getLogger("nova.faults")

# How stale a worker's view of the shared file may be: long enough that a busy worker
# pays one `stat` per interval, not per request; short enough for an experiment's steps.
CHECK_EVERY_SECONDS = 0.15
MAX_TTL_SECONDS = 3600
MAX_DELAY_MS = 60_000
# The slice in which `CpuBurner` burns its share and then rests.
BURN_SLICE_SECONDS = 0.1
FILE_VERSION = 1
_S = TypeVar("_S", bound="LastingFault")


class FaultSettings(BaseModel):
    """A fault's settings as the API takes them: unknown fields and loose types are refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LastingFault(FaultSettings):
    """A fault that stays on until its TTL runs out (or it is cleared)."""

    ttl_seconds: Annotated[int, Field(ge=1, le=MAX_TTL_SECONDS, description="Seconds until the fault ends by itself")]


Millis = Annotated[int, Field(ge=0, le=MAX_DELAY_MS)]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
RouteTemplate = Annotated[
    str | None,
    Field(
        max_length=200,
        description="A route template of the service, e.g. /v1/payments or /v1/accounts/{account_id}; "
        "default: every /v1/ route",
    ),
]


class _Delay(LastingFault):
    ms: Annotated[Millis, Field(description="Added delay in milliseconds")]
    jitter_ms: Annotated[Millis, Field(description="Each delay is ms plus or minus up to this much")] = 0

    def delay_seconds(self, rng: random.Random) -> float:
        """One delay: uniform in [ms - jitter_ms, ms + jitter_ms], never below zero."""
        jitter = rng.uniform(-self.jitter_ms, self.jitter_ms) if self.jitter_ms else 0.0
        return max(0.0, self.ms + jitter) / 1000.0


class _Routed(LastingFault):
    route: RouteTemplate = None

    def applies_to(self, path: str) -> bool:
        """Whether a request for `path` (already known to be an API route) is one this fault targets."""
        return self.route is None or route_pattern(self.route).fullmatch(path) is not None


class Latency(_Delay, _Routed):
    """Requests wait before their route runs, as if the service were slow."""

    probability: Annotated[Share, Field(description="Share of the targeted requests that are delayed")] = 1.0


class ErrorRate(_Routed):
    """A share of requests is refused with a problem+json `fault_injected` before its route runs."""

    rate: Annotated[Share, Field(description="Share of the targeted requests that fail")]
    status: Annotated[int, Field(ge=500, le=599, description="The status they fail with")] = 503


class DbLatency(_Delay):
    """Each database transaction waits before it starts, as if the database were far away or slow."""


class DbUnavailable(LastingFault):
    """The database cannot be reached: 503 with Retry-After, /readyz not ready, nothing written."""


class CpuBurn(LastingFault):
    """Each worker burns this share of a core in a background thread."""

    share: Annotated[float, Field(gt=0.0, le=1.0, description="Share of one core, per worker")]


class PaymentsLatency(_Delay):
    """Portfolio's calls to payments wait first, as if payments were slow (a wait past the timeout is one)."""


class PaymentsErrors(LastingFault):
    """A share of portfolio's calls to payments get 503, as if payments were failing."""

    rate: Annotated[Share, Field(description="Share of calls to payments that fail")]


class WorkerKill(FaultSettings):
    """Kill the worker process that receives this; the supervisor starts a replacement. Instantaneous."""

    signal: Literal["SIGKILL", "SIGTERM"] = "SIGKILL"


_SHARED_KINDS: dict[str, type[LastingFault]] = {
    "latency": Latency,
    "error_rate": ErrorRate,
    "db_latency": DbLatency,
    "db_unavailable": DbUnavailable,
    "cpu_burn": CpuBurn,
}
_PORTFOLIO_KINDS: dict[str, type[LastingFault]] = {
    "payments_latency": PaymentsLatency,
    "payments_errors": PaymentsErrors,
}
WORKER_KILL = "worker_kill"


def fault_kinds(service: str) -> dict[str, type[LastingFault]]:
    """The lasting faults `service` has, by name (`worker_kill` is every service's, and not lasting)."""
    return {**_SHARED_KINDS, **(_PORTFOLIO_KINDS if service == "portfolio" else {})}


@functools.lru_cache(maxsize=64)
def route_pattern(template: str) -> re.Pattern[str]:
    """The paths a route template matches: each `{param}` is one path segment."""
    parts = re.split(r"(\{[^{}/]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts))


@dataclass(frozen=True, slots=True)
class ActiveFault:
    name: str
    settings: LastingFault
    expires_at: float  # unix seconds

    def seconds_left(self, now: float) -> float:
        return max(0.0, self.expires_at - now)

    def as_json(self, now: float) -> dict[str, Any]:
        """The fault as the API shows it: its settings as given, its deadline, and the time it has left."""
        return {
            "name": self.name,
            "settings": self.settings.model_dump(),
            "expires_at": datetime.fromtimestamp(self.expires_at, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "seconds_left": round(self.seconds_left(now), 3),
        }


class FaultSet:
    """The faults on at one moment, immutable; false when there are none (the hot path's one check)."""

    __slots__ = ("_faults",)

    def __init__(self, faults: Mapping[str, ActiveFault]) -> None:
        self._faults = dict(faults)

    def __bool__(self) -> bool:
        return bool(self._faults)

    def __iter__(self) -> Iterator[ActiveFault]:
        return iter(sorted(self._faults.values(), key=lambda fault: fault.name))

    def __contains__(self, name: object) -> bool:
        return name in self._faults

    def settings(self, name: str) -> LastingFault | None:
        fault = self._faults.get(name)
        return fault.settings if fault is not None else None

    @property
    def latency(self) -> Latency | None:
        return _typed(self.settings("latency"), Latency)

    @property
    def error_rate(self) -> ErrorRate | None:
        return _typed(self.settings("error_rate"), ErrorRate)

    @property
    def db_latency(self) -> DbLatency | None:
        return _typed(self.settings("db_latency"), DbLatency)

    @property
    def db_unavailable(self) -> bool:
        return "db_unavailable" in self._faults

    @property
    def cpu_burn(self) -> CpuBurn | None:
        return _typed(self.settings("cpu_burn"), CpuBurn)

    @property
    def payments_latency(self) -> PaymentsLatency | None:
        return _typed(self.settings("payments_latency"), PaymentsLatency)

    @property
    def payments_errors(self) -> PaymentsErrors | None:
        return _typed(self.settings("payments_errors"), PaymentsErrors)


def _typed(settings: LastingFault | None, kind: type[_S]) -> _S | None:
    return settings if isinstance(settings, kind) else None


NO_FAULTS = FaultSet({})


class FaultBoard:
    """The faults of one service as this process sees them, kept in the file its workers share.

    `current()` is what hooks call on every request: while the cached view is fresh it
    is one clock read; then one `stat` says whether the file changed. Changes (`put`,
    `remove`, `clear`) lock the file, drop what has expired, and replace it whole.
    """

    def __init__(
        self,
        data_dir: Path,
        service: str,
        *,
        clock: Callable[[], float] = time.time,
        check_every_seconds: float = CHECK_EVERY_SECONDS,
    ) -> None:
        self.service = service
        self.kinds = fault_kinds(service)
        self.path = fault_file(data_dir, service)
        # Decides which requests a partial fault touches; tests seed it.
        self.random = random.Random()
        self._clock = clock
        self._check_every = check_every_seconds
        self._current = NO_FAULTS
        self._fresh_until = -math.inf  # monotonic seconds
        self._seen: tuple[int, int, int] | None = None
        self._loaded: dict[str, ActiveFault] = {}
        self._refreshing = threading.Lock()

    def now(self) -> float:
        """Unix seconds by the clock the deadlines are kept in."""
        return self._clock()

    def current(self) -> FaultSet:
        """The faults on now, at most `check_every_seconds` stale (never past a fault's deadline)."""
        if time.monotonic() < self._fresh_until:
            return self._current
        return self._refresh()

    def put(self, name: str, settings: LastingFault) -> ActiveFault:
        """Turn `name` on (or replace its settings) until `settings.ttl_seconds` from now."""
        if not isinstance(settings, self.kinds[name]):
            raise TypeError(f"{name} takes {self.kinds[name].__name__}, not {type(settings).__name__}")
        fault = ActiveFault(name, settings, self._clock() + settings.ttl_seconds)
        self._change(lambda faults: {**faults, name: fault})
        return fault

    def remove(self, name: str) -> None:
        self._change(lambda faults: {other: fault for other, fault in faults.items() if other != name})

    def clear(self) -> None:
        self._change(lambda _faults: {})

    def gauge_samples(self) -> list[tuple[tuple[str, str], float]]:
        """`(service, fault)` labels and 1 or 0 for every fault this service has: the `nova_fault_active` gauge."""
        on = self.current()
        return [((self.service, name), 1.0 if name in on else 0.0) for name in self.kinds]

    def _refresh(self, *, wait: bool = False) -> FaultSet:
        # One thread re-reads; the others go on with the view they have, a moment old at most
        # (unless they `wait`: a worker that just changed the file must see its own change).
        if not self._refreshing.acquire(blocking=wait):
            return self._current
        try:
            try:
                stat = os.stat(self.path)
                seen: tuple[int, int, int] | None = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            except FileNotFoundError:
                seen = None
            if seen != self._seen:
                self._loaded = self._read() if seen is not None else {}
                self._seen = seen
            now = self._clock()
            active = {name: fault for name, fault in self._loaded.items() if fault.expires_at > now}
            self._current = FaultSet(active) if active else NO_FAULTS
            next_expiry = min((fault.expires_at - now for fault in active.values()), default=math.inf)
            self._fresh_until = time.monotonic() + min(self._check_every, next_expiry)
            return self._current
        finally:
            self._refreshing.release()

    def _read(self) -> dict[str, ActiveFault]:
        """The faults in the file; an entry that does not validate is skipped (and logged), not fatal."""
        try:
            document = json.loads(self.path.read_text())
            entries = document["faults"]
            if not isinstance(entries, dict):
                raise TypeError("faults is not an object")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable fault file %s: %s", self.path, exc)
            return {}
        faults = {}
        for name, entry in entries.items():
            kind = self.kinds.get(name)
            try:
                if kind is None:
                    raise ValueError(f"{self.service} has no fault {name}")
                faults[name] = ActiveFault(name, kind.model_validate(entry["settings"]), float(entry["expires_at"]))
            except (ValidationError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring fault %s in %s: %s", name, self.path, exc)
        return faults

    def _change(self, change: Callable[[dict[str, ActiveFault]], dict[str, ActiveFault]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path.with_suffix(".lock")):
            now = self._clock()
            faults = change({name: fault for name, fault in self._read().items() if fault.expires_at > now})
            self._write(faults)
        self._fresh_until = -math.inf
        self._refresh(wait=True)

    def _write(self, faults: Mapping[str, ActiveFault]) -> None:
        document = {
            "version": FILE_VERSION,
            "service": self.service,
            "faults": {
                name: {"expires_at": fault.expires_at, "settings": fault.settings.model_dump()}
                for name, fault in sorted(faults.items())
            },
        }
        draft = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        draft.write_text(json.dumps(document, indent=2) + "\n")
        # Readers compare (inode, mtime, size). A freed inode can come back and the file
        # clock ticks coarsely, so each version gets an mtime strictly after the last one.
        try:
            previous = os.stat(self.path).st_mtime_ns
        except FileNotFoundError:
            previous = 0
        mtime = max(time.time_ns(), previous + 1_000)
        os.utime(draft, ns=(mtime, mtime))
        os.replace(draft, self.path)


def fault_file(data_dir: Path, service: str) -> Path:
    return data_dir / "faults" / f"{service}.json"


def forget_faults(data_dir: Path, service: str) -> None:
    """Drop whatever faults a previous run left: a service starts with none on."""
    fault_file(data_dir, service).unlink(missing_ok=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock shared by every process on `path`: two changes never interleave."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class CpuBurner:
    """A daemon thread that, while `cpu_burn` is on, spins for `share` of every slice and rests for the rest.

    It holds the GIL while it spins, so the worker's own threads compete with it the way
    they would with any CPU-bound neighbour; it also keeps the board's view fresh.
    """

    def __init__(self, board: FaultBoard, slice_seconds: float = BURN_SLICE_SECONDS) -> None:
        self._board = board
        self._slice = slice_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self._board.service}-cpu-burn", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self._slice + 1)
            self._thread = None

    def _run(self) -> None:
        clock = time.perf_counter
        while not self._stop.is_set():
            burn = self._board.current().cpu_burn
            if burn is None:
                self._stop.wait(self._slice)
                continue
            busy_until = clock() + burn.share * self._slice
            while clock() < busy_until:
                pass
            self._stop.wait((1.0 - burn.share) * self._slice)

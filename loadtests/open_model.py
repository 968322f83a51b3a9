"""The open model (`nova load --rate R`): a timetable of sends that does not wait for answers, and what it achieved.

A closed model (each Locust user sending its next request when the last one answered, paced
by `constant_throughput`) offers less load the slower the service gets, and its latencies
leave out the time requests would have waited to be sent (coordinated omission). Here, as in
wrk2 and k6's arrival-rate executors, each load generator (one per Locust process) sends on a
timetable fixed in advance: `R / generators` sends a second, scaled over the run by the
shape (`market_open`, `spike_10x`, ...), each send its own greenlet, whatever the service does.

Every sample of such a run carries its scheduled send time (`RequestSample.scheduled`), so
latency is reported twice: service time (sent to answered) and from the scheduled time
(`corrected_millis`). A send made more than `LATE_SEND_SECONDS` after its time is late: the
generator, not the service, fell behind. A run whose generators could not keep up (more than
`LATE_SHARE_LIMIT` of sends late, or fewer sent than `KEPT_UP_SHARE` of the timetable) says
so and fails: the offered load is never lowered silently.

No Locust import here (it patches the process with gevent): `users.Arrivals` plays a `Timetable`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Any

from loadtests.samples import RequestSample
from loadtests.shapes import Stage, stages, users_at

LATE_SEND_SECONDS = 0.1
LATE_SHARE_LIMIT = 0.01
KEPT_UP_SHARE = 0.9
SHAPE_RESOLUTION = 1000  # the shape is played as this many "users" and read back as a share of the rate
IDLE_RATE = 0.5  # sends/s under which a generator waits instead of scheduling one far ahead
IDLE_STEP_SECONDS = 0.1


@dataclass(frozen=True)
class Timetable:
    """When one generator sends: `rate / generators` a second, scaled by `shape` over `duration` seconds."""

    rate: float  # requests/s offered by all generators together at the shape's peak
    shape: str
    duration: float
    generators: int = 1

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"the rate must be above 0 requests/s, got {self.rate:g}")
        if self.generators < 1:
            raise ValueError(f"a timetable needs at least one generator, got {self.generators}")
        _ = self.plan  # the shape's own checks, now

    @cached_property
    def plan(self) -> list[Stage]:
        return stages(self.shape, SHAPE_RESOLUTION, self.duration)

    def share_at(self, elapsed: float) -> float:
        """The shape's level `elapsed` seconds in, 0..1 of the peak rate."""
        return users_at(self.plan, elapsed) / SHAPE_RESOLUTION

    def rate_at(self, elapsed: float) -> float:
        """This generator's sends a second `elapsed` seconds into the run."""
        return self.rate * self.share_at(elapsed) / self.generators

    def sends(self, until: float | None = None) -> Iterator[float]:
        """Every send time of this generator, in seconds since its start, up to `until` (default: the run)."""
        end = self.duration if until is None else min(until, self.duration)
        elapsed = 0.0
        while elapsed < end:
            rate = self.rate_at(elapsed)
            if rate < IDLE_RATE:
                elapsed += IDLE_STEP_SECONDS
                continue
            yield elapsed
            elapsed += 1.0 / rate

    @cached_property
    def offered(self) -> int:
        """Sends all generators together make over the run."""
        return sum(1 for _ in self.sends()) * self.generators

    def offered_rps(self) -> float:
        """What all generators together offer on average over the run, requests/s."""
        return self.offered / self.duration


@dataclass(frozen=True)
class OpenLoad:
    """What the timetable asked for and what the generators did (`summary.json`'s top-level figures)."""

    rate: float  # the peak rate asked for (--rate)
    offered_rps: float  # the timetable's average over the run
    achieved_rps: float  # operations sent (first attempts on the timetable) over the timetable's span
    sends: int
    late_sends: int  # sent more than LATE_SEND_SECONDS after their scheduled time

    @property
    def kept_up(self) -> bool:
        return (
            self.late_sends <= LATE_SHARE_LIMIT * self.sends and self.achieved_rps >= KEPT_UP_SHARE * self.offered_rps
        )

    def breach(self) -> str | None:
        """Why the generators could not offer the load, in one phrase; None when they kept up."""
        if self.kept_up:
            return None
        return (
            f"the load generator could not keep up: {self.achieved_rps:.0f} of {self.offered_rps:.0f} requests/s "
            f"sent, {self.late_sends} of {self.sends} sends more than {LATE_SEND_SECONDS * 1000:.0f} ms late "
            "(give it more --processes or a smaller --rate)"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "kept_up": self.kept_up}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> OpenLoad:
        return cls(
            rate=float(document["rate"]),
            offered_rps=float(document["offered_rps"]),
            achieved_rps=float(document["achieved_rps"]),
            sends=int(document["sends"]),
            late_sends=int(document["late_sends"]),
        )


def open_load(samples: Iterable[RequestSample], timetable: Timetable) -> OpenLoad:
    """The open-model figures of a run's samples (those without a scheduled time are ignored).

    Both rates are taken over the same window: from the first scheduled send to the last answer
    (at most the timetable's length), so a run stopped early is judged on what its timetable
    asked for until then, and a generator that fell behind (whose last sends never went out)
    shows it as an achieved rate below the offered one.
    """
    first, answered, sends, late = float("inf"), float("-inf"), 0, 0
    for sample in samples:
        if not sample.scheduled:
            continue
        answered = max(answered, sample.timestamp + sample.millis / 1000.0)
        if sample.attempt != 1:
            continue
        sends += 1
        first = min(first, sample.scheduled)
        late += sample.timestamp - sample.scheduled > LATE_SEND_SECONDS
    if not sends:
        return OpenLoad(timetable.rate, timetable.offered_rps(), 0.0, 0, 0)
    window = min(max(answered - first, 1e-3), timetable.duration)
    offered = sum(1 for _ in timetable.sends(until=window)) * timetable.generators / window
    return OpenLoad(timetable.rate, offered, sends / window, sends, late)

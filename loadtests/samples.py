"""Exact per-request records of a load run: what the SLO gate is computed from.

Locust's own percentiles are rounded into buckets; the gate needs every response time, so each
Locust process records one `RequestSample` per request (workers ship theirs to the master) and
the run ends with `samples.csv` in the results folder. `services.csv` holds what the services
said about themselves during the run (CPU of the busiest process, database pool in use).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

SAMPLES_FILE = "samples.csv"
SERVICES_FILE = "services.csv"
CONNECTION_FAILED = 0  # status recorded when no HTTP response arrived (refused, reset, timed out)


class RequestSample(NamedTuple):
    timestamp: float  # unix seconds when the request was sent
    endpoint: str  # method and route template: "POST /v1/payments"
    status: int  # HTTP status, or CONNECTION_FAILED
    millis: float  # time to the full response
    attempt: int  # 1 for the first attempt, 2 and up for retries with the same Idempotency-Key
    # Open model (`--rate`): unix seconds when the timetable said to send the operation this attempt
    # belongs to; 0 in a closed-model run, whose users send when they are ready.
    scheduled: float = 0.0

    @property
    def failed(self) -> bool:
        """What the availability SLO counts against the service: a 5xx or no answer at all."""
        return self.status == CONNECTION_FAILED or self.status >= 500

    @property
    def corrected_millis(self) -> float:
        """Latency from the scheduled send time (corrected for coordinated omission): the wait for a
        late send, and for a retry the attempts before it, added to the service time; the service
        time itself in a closed-model run."""
        if not self.scheduled:
            return self.millis
        return max(self.millis, (self.timestamp - self.scheduled) * 1000.0 + self.millis)


class ServiceSample(NamedTuple):
    timestamp: float
    service: str
    cpu: float  # busiest process's CPU share since the previous scrape, 0..1 per core
    db_pool: float  # share of database connections in use, 0..1


def write_samples(path: Path, samples: Iterable[RequestSample]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(RequestSample._fields)
        writer.writerows(
            (f"{s.timestamp:.6f}", s.endpoint, s.status, f"{s.millis:.3f}", s.attempt, f"{s.scheduled:.6f}")
            for s in samples
        )


def read_samples(path: Path) -> Iterator[RequestSample]:
    """The samples of a file this module wrote (or one from before the `scheduled` column: closed model)."""
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = tuple(next(reader, ()))
        if header not in (RequestSample._fields, RequestSample._fields[:-1]):
            raise ValueError(f"{path}: not a samples file (header {','.join(RequestSample._fields)})")
        for row in reader:
            timestamp, endpoint, status, millis, attempt = row[:5]
            scheduled = float(row[5]) if len(row) > 5 else 0.0
            yield RequestSample(float(timestamp), endpoint, int(status), float(millis), int(attempt), scheduled)


def write_service_samples(path: Path, samples: Iterable[ServiceSample]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ServiceSample._fields)
        writer.writerows((f"{s.timestamp:.3f}", s.service, f"{s.cpu:.4f}", f"{s.db_pool:.4f}") for s in samples)


def read_service_samples(path: Path) -> Iterator[ServiceSample]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        if tuple(next(reader, ())) != ServiceSample._fields:
            raise ValueError(f"{path}: not a services file (header {','.join(ServiceSample._fields)})")
        for timestamp, service, cpu, db_pool in reader:
            yield ServiceSample(float(timestamp), service, float(cpu), float(db_pool))

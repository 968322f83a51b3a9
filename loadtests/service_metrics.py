"""What a service says about itself on `GET /metrics`, as a load run records it in `services.csv`.

* `db_pool`: `db_client_connections_in_use / db_client_connections_max`, each summed over the
  service's series (label `service`); 0 when the service reports no pool.
* `cpu`: the busiest worker's share of a core between two scrapes, from the per-worker
  counter `process_cpu_seconds_total{pid}` (one series per worker under `nova serve`); 0.0
  when it is absent. A worker seen in only one of the two scrapes (just started, or gone) is
  left out.

No Locust import: `recording.py` scrapes, this module reads what came back.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families

from loadtests.samples import ServiceSample

POOL_IN_USE = "db_client_connections_in_use"
POOL_MAX = "db_client_connections_max"
CPU_SECONDS = "process_cpu_seconds_total"


class Scrape(NamedTuple):
    service: str
    at: float  # unix seconds when the scrape was taken
    pool_in_use: float
    pool_max: float
    cpu_seconds: dict[str, float]  # per worker pid


def parse_scrape(service: str, at: float, exposition: str) -> Scrape:
    """Read the pool and the per-worker CPU counters out of a Prometheus text exposition."""
    in_use = pool_max = 0.0
    cpu: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name in (POOL_IN_USE, POOL_MAX) and sample.labels.get("service", service) == service:
                if sample.name == POOL_IN_USE:
                    in_use += sample.value
                else:
                    pool_max += sample.value
            elif sample.name == CPU_SECONDS and "pid" in sample.labels:
                cpu[sample.labels["pid"]] = sample.value
    return Scrape(service, at, in_use, pool_max, cpu)


def service_sample(previous: Scrape | None, current: Scrape) -> ServiceSample:
    """The row for `current`: pool share now, busiest worker's CPU share since `previous`."""
    pool = current.pool_in_use / current.pool_max if current.pool_max > 0 and math.isfinite(current.pool_max) else 0.0
    cpu = 0.0
    if previous is not None and current.at > previous.at:
        elapsed = current.at - previous.at
        shares = [
            (seconds - previous.cpu_seconds[pid]) / elapsed
            for pid, seconds in current.cpu_seconds.items()
            if pid in previous.cpu_seconds
        ]
        cpu = max([0.0, *shares])
    return ServiceSample(current.at, current.service, cpu, pool)

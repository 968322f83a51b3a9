"""What a service says about itself on `GET /metrics`, as a load run records it in `services.csv`.

* `db_pool`: `db_client_connections_in_use / db_client_connections_max` of the service; 0 when
  it reports no pool.
* `cpu`: the busiest worker's share of a core between two scrapes, from the per-worker counter
  `process_cpu_seconds_total{pid}`; 0.0 without it. A worker seen in only one of the two scrapes
  (just started, or gone) is left out.

The reading itself is the embedded scraper's (`slo.scraper`), so a load run and a game day
measure the services the same way. No Locust import: `recording.py` scrapes, this module reads.
"""

from __future__ import annotations

from typing import NamedTuple

from loadtests.samples import ServiceSample
from slo.scraper import Totals, busiest_cpu_share, parse_totals, pool_share


class Scrape(NamedTuple):
    service: str
    at: float  # unix seconds when the scrape was taken
    totals: Totals


def parse_scrape(service: str, at: float, exposition: str) -> Scrape:
    return Scrape(service, at, parse_totals(exposition, service))


def service_sample(previous: Scrape | None, current: Scrape) -> ServiceSample:
    """The row for `current`: pool share now, busiest worker's CPU share since `previous`."""
    cpu = 0.0
    if previous is not None and current.at > previous.at:
        cpu = busiest_cpu_share(previous.totals, current.totals, current.at - previous.at)
    return ServiceSample(current.at, current.service, cpu, pool_share(current.totals))

"""services.csv rows from two scrapes of a service's /metrics: pool share and busiest worker's CPU."""

from __future__ import annotations

import pytest

from loadtests.service_metrics import parse_scrape, service_sample

POOL = """# TYPE db_client_connections_in_use gauge
db_client_connections_in_use{service="payments"} 6.0
# TYPE db_client_connections_max gauge
db_client_connections_max{service="payments"} 30.0
"""


def _cpu(name: str, kind: str, per_pid: dict[str, float]) -> str:
    lines = [f"# TYPE {name} {kind}"] + [f'{name}_total{{pid="{pid}"}} {value}' for pid, value in per_pid.items()]
    return "\n".join(lines) + "\n"


def test_pool_share_and_the_busiest_workers_cpu_share_between_scrapes() -> None:
    before = parse_scrape("payments", 100.0, POOL + _cpu("process_cpu_seconds", "counter", {"11": 1.0, "12": 4.0}))
    after = parse_scrape("payments", 105.0, POOL + _cpu("process_cpu_seconds", "counter", {"11": 3.0, "12": 4.5}))

    row = service_sample(before, after)

    assert (row.timestamp, row.service) == (105.0, "payments")
    assert row.db_pool == pytest.approx(0.2)
    assert row.cpu == pytest.approx(0.4)  # worker 11: 2 s of CPU in 5 s


def test_without_a_previous_scrape_or_per_worker_cpu_the_share_is_zero() -> None:
    first = parse_scrape("payments", 1.0, POOL)

    assert service_sample(None, first).cpu == 0.0
    assert service_sample(first, parse_scrape("payments", 6.0, POOL)).cpu == 0.0


def test_a_worker_seen_once_is_left_out_and_an_unlimited_pool_reads_as_zero() -> None:
    before = parse_scrape("payments", 0.0, _cpu("process_cpu_seconds", "counter", {"1": 5.0}))
    after = parse_scrape(
        "payments",
        2.0,
        _cpu("process_cpu_seconds", "counter", {"1": 5.5, "2": 40.0})
        + '# TYPE db_client_connections_max gauge\ndb_client_connections_max{service="payments"} +Inf\n',
    )

    row = service_sample(before, after)

    assert row.cpu == pytest.approx(0.25)
    assert row.db_pool == 0.0


def test_only_the_scraped_services_pool_counts() -> None:
    both = (
        "# TYPE db_client_connections_in_use gauge\n"
        'db_client_connections_in_use{service="payments"} 6.0\n'
        'db_client_connections_in_use{service="portfolio"} 9.0\n'
        "# TYPE db_client_connections_max gauge\n"
        'db_client_connections_max{service="payments"} 30.0\n'
        'db_client_connections_max{service="portfolio"} 10.0\n'
    )

    scrape = parse_scrape("payments", 0.0, both)

    assert (scrape.totals.pool_in_use, scrape.totals.pool_max) == (6.0, 30.0)

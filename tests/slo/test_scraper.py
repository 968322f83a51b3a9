"""The embedded scraper: services' `/metrics` turned into DESIGN.md scenario rows."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
import numpy as np
import pytest

from slo.scenario import read_scenario, scenario_timelines, write_scenario
from slo.scraper import EmbeddedScraper, Totals, histogram_quantile, parse_totals, row_between
from tests.nova.conftest import RunPlatform, free_port

BOUNDS = ("0.1", "0.2", "0.5", "+Inf")
ACCOUNT = "/v1/accounts/{account_id}"


def exposition(
    requests: Mapping[tuple[str, str], float] | None = None,
    durations: Mapping[str, tuple[float, float, float, float]] | None = None,
    cpu: Mapping[str, float] | None = None,
    pool: tuple[float, float] | None = None,
    service: str = "payments",
) -> str:
    """A Prometheus text exposition shaped like `instrumentation.metrics` writes it.

    `requests`: (route, code) -> count; `durations`: route -> cumulative counts of BOUNDS.
    """
    lines = ["# TYPE http_server_requests_total counter"]
    for (route, code), value in (requests or {}).items():
        lines.append(
            f'http_server_requests_total{{code="{code}",method="GET",route="{route}",service="{service}"}} {value}'
        )
    lines.append("# TYPE http_server_request_duration_seconds histogram")
    for route, counts in (durations or {}).items():
        labels = f'method="GET",route="{route}",service="{service}"'
        for bound, count in zip(BOUNDS, counts, strict=True):
            lines.append(f'http_server_request_duration_seconds_bucket{{le="{bound}",{labels}}} {count}')
        lines.append(f"http_server_request_duration_seconds_count{{{labels}}} {counts[-1]}")
        lines.append(f"http_server_request_duration_seconds_sum{{{labels}}} 1.0")
    lines.append("# TYPE process_cpu_seconds_total counter")
    for pid, seconds in (cpu or {}).items():
        lines.append(f'process_cpu_seconds_total{{pid="{pid}"}} {seconds}')
    if pool is not None:
        lines.append("# TYPE db_client_connections_in_use gauge")
        lines.append(f'db_client_connections_in_use{{service="{service}"}} {pool[0]}')
        lines.append("# TYPE db_client_connections_max gauge")
        lines.append(f'db_client_connections_max{{service="{service}"}} {pool[1]}')
    return "\n".join(lines) + "\n"


def totals(
    requests: Mapping[tuple[str, str], float], durations: Mapping[str, tuple[float, float, float, float]]
) -> Totals:
    return parse_totals(exposition(requests, durations), "payments")


def test_probe_metrics_and_admin_routes_are_not_customer_traffic() -> None:
    text = exposition(
        requests={
            ("/healthz", "200"): 7,
            ("/readyz", "503"): 3,
            ("/metrics", "200"): 5,
            ("/admin/faults", "500"): 2,
            (ACCOUNT, "200"): 11,
        },
        durations={"/readyz": (3, 3, 3, 3), "/admin/faults": (0, 0, 2, 2), ACCOUNT: (11, 11, 11, 11)},
    )
    totals = parse_totals(text, "payments")
    assert (totals.requests, totals.errors, totals.slow) == (11, 0, 0)


def test_unmatched_paths_are_customer_traffic() -> None:
    totals = parse_totals(exposition(requests={("unmatched", "404"): 4}), "payments")
    assert totals.requests == 4


def test_another_services_series_are_ignored() -> None:
    text = exposition(requests={(ACCOUNT, "200"): 9}, service="portfolio")
    assert parse_totals(text, "payments").requests == 0


def test_only_5xx_responses_are_errors() -> None:
    text = exposition(requests={(ACCOUNT, "200"): 10, (ACCOUNT, "401"): 4, (ACCOUNT, "500"): 2, (ACCOUNT, "503"): 1})
    totals = parse_totals(text, "payments")
    assert (totals.requests, totals.errors) == (17, 3)


def test_slow_requests_are_the_count_above_the_200ms_bucket() -> None:
    text = exposition(durations={ACCOUNT: (50, 90, 98, 100), "unmatched": (1, 2, 3, 3)})
    assert parse_totals(text, "payments").slow == (100 - 90) + (3 - 2)


def test_a_histogram_without_the_200ms_bucket_is_refused() -> None:
    text = exposition(durations={ACCOUNT: (1, 1, 1, 1)}).replace('le="0.2"', 'le="0.25"')
    with pytest.raises(ValueError, match=r"no le=0\.2 bucket"):
        parse_totals(text, "payments")


def test_a_row_holds_the_deltas_of_the_step() -> None:
    before = totals({(ACCOUNT, "200"): 100, (ACCOUNT, "500"): 1}, {ACCOUNT: (90, 99, 101, 101)})
    after = totals({(ACCOUNT, "200"): 160, (ACCOUNT, "500"): 4}, {ACCOUNT: (140, 155, 162, 164)})
    row = row_between(before, after, at=1_700_000_015.0, elapsed=15.0)
    assert (row.timestamp, row.requests, row.errors, row.slow) == (1_700_000_015.0, 63, 3, (164 - 155) - (101 - 99))


def test_p99_interpolates_linearly_within_the_bucket_like_histogram_quantile() -> None:
    # Step deltas: 50 <= 0.1 s, 40 in (0.1, 0.2], 10 in (0.2, 0.5]. Rank 99 is the 9th of the
    # 10 in (0.2, 0.5]: 0.2 + 0.3 * 9/10 = 0.47 s.
    before = parse_totals(exposition(durations={ACCOUNT: (10, 10, 10, 10)}), "payments")
    after = parse_totals(exposition(durations={ACCOUNT: (60, 100, 110, 110)}), "payments")
    assert row_between(before, after, at=15.0, elapsed=15.0).p99_ms == pytest.approx(470.0)


def test_p99_in_the_inf_bucket_is_the_largest_finite_bound() -> None:
    assert histogram_quantile(0.99, ((0.1, 0.0), (0.2, 0.0), (0.5, 1.0), (float("inf"), 100.0))) == 0.5


def test_p99_of_a_step_without_requests_is_zero() -> None:
    totals = parse_totals(exposition(durations={ACCOUNT: (5, 5, 5, 5)}), "payments")
    assert row_between(totals, totals, at=15.0, elapsed=15.0).p99_ms == 0.0


def test_a_counter_that_went_down_counts_its_current_value() -> None:
    before = totals({(ACCOUNT, "200"): 500, (ACCOUNT, "500"): 9}, {ACCOUNT: (509, 509, 509, 509)})
    after = totals({(ACCOUNT, "200"): 20, (ACCOUNT, "500"): 2}, {ACCOUNT: (20, 21, 22, 22)})
    row = row_between(before, after, at=15.0, elapsed=15.0)
    assert (row.requests, row.errors, row.slow) == (22, 2, 1)


def test_cpu_is_the_busiest_worker_over_the_pids_seen_in_both_scrapes() -> None:
    before = parse_totals(exposition(cpu={"10": 1.0, "11": 2.0, "12": 0.0}), "payments")
    after = parse_totals(exposition(cpu={"10": 4.0, "11": 8.0, "13": 100.0}), "payments")
    assert row_between(before, after, at=15.0, elapsed=10.0).cpu == pytest.approx(0.6)


def test_db_pool_is_the_share_in_use_and_zero_without_a_pool() -> None:
    empty = Totals()
    used = parse_totals(exposition(pool=(3, 12)), "payments")
    unbounded = parse_totals(exposition(pool=(3, float("inf"))), "payments")
    assert row_between(empty, used, at=15.0, elapsed=15.0).db_pool == 0.25
    assert row_between(empty, unbounded, at=15.0, elapsed=15.0).db_pool == 0.0
    assert row_between(empty, empty, at=15.0, elapsed=15.0).db_pool == 0.0


def test_a_step_shorter_than_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="step_seconds"):
        EmbeddedScraper({"payments": "http://127.0.0.1:9"}, step_seconds=0.1)


def test_a_service_that_is_down_gets_no_rows_and_one_warning_per_outage(caplog: pytest.LogCaptureFixture) -> None:
    down = {"down": f"http://127.0.0.1:{free_port()}"}
    with (
        caplog.at_level(logging.WARNING, logger="nova.slo.scraper"),
        EmbeddedScraper(down, step_seconds=0.2) as scraper,
    ):
        time.sleep(1.0)
    assert scraper.rows("down") == []
    assert scraper.rows() == []
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


def test_stop_returns_promptly_in_the_middle_of_a_long_step() -> None:
    scraper = EmbeddedScraper({"down": f"http://127.0.0.1:{free_port()}"}, step_seconds=15.0).start()
    began = time.monotonic()
    scraper.stop()
    assert time.monotonic() - began < 1.0


def test_the_platform_scraped_live_counts_exactly_the_requests_sent(run_platform: RunPlatform, tmp_path: Path) -> None:
    sent = 100
    with run_platform(workers=2) as platform:
        urls = {service: platform.options.url(service) for service in ("payments", "portfolio")}
        with EmbeddedScraper(urls, step_seconds=0.5) as scraper:
            with httpx.Client(base_url=urls["payments"], timeout=10.0) as http:
                for _ in range(sent):
                    assert http.get("/v1/accounts/acc_00000000000000000000000000").status_code == 401
                    time.sleep(0.01)
            time.sleep(1.0)  # a response reaches the client just before the server counts it
        payments, portfolio, combined = scraper.rows("payments"), scraper.rows("portfolio"), scraper.rows()

    assert sum(row.requests for row in payments) == sent
    assert sum(row.requests for row in portfolio) == 0
    assert sum(row.requests for row in combined) == sent
    assert sum(row.errors for row in combined) == 0
    assert len(combined) >= 3
    assert combined[0].timestamp % 0.5 == 0
    assert np.diff([row.timestamp for row in combined]) == pytest.approx(0.5)
    assert scraper.latest(window_rows=len(combined))["availability"] == 1.0

    scenario = scraper.scenario("payments")
    write_scenario(tmp_path / "live", scenario)
    loaded = read_scenario(tmp_path / "live")
    assert int(loaded.requests.sum()) == sent
    for column in ("timestamps", "requests", "errors", "slow"):
        assert np.array_equal(getattr(loaded, column), getattr(scenario, column)), column
    assert [timeline.slo for timeline in scenario_timelines(loaded)] == ["availability", "latency"]

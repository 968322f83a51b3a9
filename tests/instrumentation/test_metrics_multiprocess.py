"""Metrics across worker processes: prometheus-client's multiprocess mode plus the suite's exemplar files.

The platform tests run `nova serve` for real (two workers per service, sharing one
socket); the exemplar tests run small worker processes over one metrics folder, as the
supervisor sets it up, so they can make chosen spans current without the tracing stack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict

from instrumentation.metrics import PUBLISH_EVERY_SECONDS
from nova.serve import Platform
from tests.instrumentation.conftest import OPENMETRICS, promtool_check_metrics, samples, value
from tests.nova.conftest import RunPlatform, worker_pids

REQUESTS = "http_server_requests_total"
HEALTHZ = {"service": "payments", "route": "/healthz", "method": "GET", "code": "200"}


def metrics_dir(platform: Platform, service: str = "payments") -> Path:
    return platform.options.data_dir / "metrics" / service


def healthz_count_per_worker(platform: Platform) -> dict[int, float]:
    """What each worker (dead ones included) has written for GET /healthz in its own counter file."""
    counts = {}
    for path in metrics_dir(platform).glob("counter_*.db"):
        total = 0.0
        written = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
        for key, count, _timestamp, _position in written:
            _metric, sample, labels, _help = json.loads(key)
            if sample == REQUESTS and labels == HEALTHZ:
                total += count
        counts[int(path.stem.removeprefix("counter_"))] = total
    return counts


def live_workers(platform: Platform) -> set[int]:
    """Workers that have built their app: each has created its live gauge file."""
    workers = worker_pids(platform.processes["payments"].pid)
    return {pid for pid in workers if list(metrics_dir(platform).glob(f"gauge_live*_{pid}.db"))}


def fresh_connection_get(url: str) -> int:
    # A new connection per request: the kernel hands each to whichever worker accepts first.
    return httpx.get(url, timeout=10.0).status_code


def scrape(platform: Platform, accept: str | None = None) -> str:
    headers = {"Accept": accept} if accept else {}
    return httpx.get(platform.options.url("payments") + "/metrics", headers=headers, timeout=10.0).text


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_request_counts_add_up_across_workers_and_survive_a_killed_worker(run_platform: RunPlatform) -> None:
    with run_platform(workers=2) as platform:
        url = platform.options.url("payments") + "/healthz"
        sent = 0
        with ThreadPoolExecutor(max_workers=8) as pool:
            # Concurrent requests on fresh connections until both workers have served some.
            while sent < 4000 and sum(1 for count in healthz_count_per_worker(platform).values() if count) < 2:
                assert set(pool.map(fresh_connection_get, [url] * 100)) == {200}
                sent += 100
        per_worker = healthz_count_per_worker(platform)
        assert len([count for count in per_worker.values() if count]) == 2, per_worker

        scraped = scrape(platform)
        assert value(scraped, REQUESTS, **HEALTHZ) == sent
        assert value(scraped, "http_server_request_duration_seconds_count", route="/healthz") == sent
        assert value(scraped, "http_server_active_requests", service="payments") == 0
        workers = worker_pids(platform.processes["payments"].pid)
        assert {s.labels["pid"] for s in samples(scraped) if s.name == "process_cpu_seconds_total"} == {
            str(pid) for pid in workers
        }
        promtool_check_metrics(scraped)

        killed = max(per_worker, key=lambda pid: per_worker[pid])
        os.kill(killed, signal.SIGKILL)
        # The supervisor replaces the worker and forgets its live gauges; its counts stay.
        wait_for(lambda: killed not in worker_pids(platform.processes["payments"].pid), "the worker's replacement")
        wait_for(lambda: not list(metrics_dir(platform).glob(f"gauge_live*_{killed}.db")), "the worker to be forgotten")
        wait_for(lambda: len(live_workers(platform)) == 2, "the replacement to build its app")

        after = scrape(platform)
        assert value(after, REQUESTS, **HEALTHZ) == sent
        assert value(after, "http_server_request_duration_seconds_count", route="/healthz") == sent
        live = {s.labels["pid"] for s in samples(after) if s.name == "process_cpu_seconds_total"}
        assert str(killed) not in live
        assert value(after, "db_client_connections_max", service="payments") == 2 * 15  # two live pools of 10 + 5
        promtool_check_metrics(after)
        assert samples(scrape(platform, OPENMETRICS), openmetrics=True)  # the strict OpenMetrics parser


def test_every_worker_answers_a_scrape_with_the_newest_trace_across_workers(run_platform: RunPlatform) -> None:
    with run_platform(workers=2) as platform:
        url = platform.options.url("payments") + "/healthz"
        sent: list[str] = []
        while len([count for count in healthz_count_per_worker(platform).values() if count]) < 2:
            assert len(sent) < 2000, "one worker never accepted a connection"
            trace_id = os.urandom(16).hex()
            sent.append(trace_id)
            traceparent = f"00-{trace_id}-{os.urandom(8).hex()}-01"
            httpx.get(url, headers={"traceparent": traceparent}, timeout=10.0).raise_for_status()
        time.sleep(PUBLISH_EVERY_SECONDS * 1.5)  # the other worker's exemplars are at most this old

        for _ in range(10):  # fresh connections: both workers answer some of these scrapes
            found = {
                s.labels["le"]: s.exemplar.labels["trace_id"]
                for s in samples(scrape(platform, OPENMETRICS), openmetrics=True)
                if s.name == "http_server_request_duration_seconds_bucket"
                and s.labels["route"] == "/healthz"
                and s.exemplar is not None
            }
            assert set(found.values()) <= set(sent)
            assert sent[-1] in found.values()  # nothing newer fell into its bucket


def test_a_new_supervisor_starts_from_an_empty_metrics_folder(run_platform: RunPlatform) -> None:
    with run_platform(workers=1) as platform:
        httpx.get(platform.options.url("payments") + "/healthz").raise_for_status()
        assert value(scrape(platform), REQUESTS, **HEALTHZ) == 1
        (metrics_dir(platform) / "counter_1.db").write_bytes(b"left over by an earlier run")
    with run_platform(workers=1) as platform:
        assert not (metrics_dir(platform) / "counter_1.db").exists()
        assert value(scrape(platform), REQUESTS, **HEALTHZ) == 0


# -- exemplars across workers ----------------------------------------------------------------------

# One worker: makes a sampled span current, observes one request of `seconds` on `route`
# inside it, counts `widgets`, prints the trace id, then either publishes at once or leaves
# it to the publishing thread (and stays alive a little longer than its period).
WORKER = """
import sys, time
from opentelemetry.sdk.trace import TracerProvider
from instrumentation import metrics

route, seconds, widgets, wait = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "wait"
http = metrics.HttpServerMetrics("payments")
with TracerProvider().get_tracer("worker").start_as_current_span("request") as span:
    http.observe(route, "GET", 200, seconds)
metrics.counter("nova_test_widgets_total", "Widgets made in tests.", ["colour"]).labels("blue").inc(widgets)
print(format(span.get_span_context().trace_id, "032x"), flush=True)
if wait:
    time.sleep(metrics.PUBLISH_EVERY_SECONDS * 2)
else:
    metrics.publish(metrics.MULTIPROCESS_DIR)
"""

SCRAPER = """
import sys
from instrumentation.metrics import exposition
sys.stdout.write(exposition(sys.argv[1])[0].decode())
"""


@pytest.fixture
def run_in_worker(tmp_path: Path) -> Callable[..., str]:
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}

    def run(script: str, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def scraped_exemplars(exposition: str) -> dict[tuple[str, str], str]:
    """(route, le) -> trace id of every latency exemplar."""
    return {
        (s.labels["route"], s.labels["le"]): s.exemplar.labels["trace_id"]
        for s in samples(exposition, openmetrics=True)
        if s.name == "http_server_request_duration_seconds_bucket" and s.exemplar is not None
    }


def test_a_scrape_shows_exemplars_and_counts_from_every_worker(run_in_worker: Callable[..., str]) -> None:
    first = run_in_worker(WORKER, "/v1/accounts/{account_id}", "0.003", "2", "publish").strip()
    second = run_in_worker(WORKER, "/v1/payments", "0.18", "3", "publish").strip()

    scraped = run_in_worker(SCRAPER, OPENMETRICS)

    assert scraped_exemplars(scraped) == {
        ("/v1/accounts/{account_id}", "0.005"): first,
        ("/v1/payments", "0.2"): second,
    }
    plain = run_in_worker(SCRAPER, "")
    assert value(plain, "nova_test_widgets_total", colour="blue") == 5
    assert value(plain, "http_server_request_duration_seconds_count") == 2


def test_the_newest_exemplar_of_a_bucket_wins_across_workers(run_in_worker: Callable[..., str]) -> None:
    run_in_worker(WORKER, "/v1/payments", "0.012", "1", "publish")
    newest = run_in_worker(WORKER, "/v1/payments", "0.02", "1", "publish").strip()
    assert scraped_exemplars(run_in_worker(SCRAPER, OPENMETRICS)) == {("/v1/payments", "0.025"): newest}


def test_a_worker_publishes_its_exemplars_within_a_second_on_its_own(run_in_worker: Callable[..., str]) -> None:
    trace_id = run_in_worker(WORKER, "/v1/quotes/{symbol}", "0.6", "1", "wait").strip()
    assert scraped_exemplars(run_in_worker(SCRAPER, OPENMETRICS)) == {("/v1/quotes/{symbol}", "0.75"): trace_id}

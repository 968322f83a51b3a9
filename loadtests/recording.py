"""Every request of a run into `samples.csv`, and what the services said about themselves into `services.csv`.

Listeners on Locust's events, attached by `attach()` in each Locust process:

* Every process turns each `request` event into one `RequestSample` (endpoint from the request
  name, `[retry]` removed; status 0 when no answer came; the attempt number from the request's
  context; Locust's own start time and exact response time).
* A worker ships what it buffered with each stats report (`report_to_master`); when its test
  stops, it sends the rest in a final message. The master keeps them as they arrive
  (`worker_report` and that message).
* In headless runs the master stops without waiting for its workers (the shape's end quits the
  runner), so at `test_stop` the master asks each worker that has not sent its final samples
  yet to stop its users and send them, and waits for the answers (at most `FLUSH_TIMEOUT_SECONDS`)
  before it writes `samples.csv`. Both counts then agree with Locust's own statistics.
* The master (or the single local runner) scrapes both services' `/metrics` every 5 s while the
  test runs, and once more when it stops, for `services.csv`.

The master keeps samples in a `SampleSpool` (memory, then time-sorted files), so a soak run
does not grow it without bound; `samples.csv` lists them in time order.
"""

from __future__ import annotations

import logging
import os
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]
from locust.env import Environment
from locust.event import EventHook
from locust.rpc import Message
from locust.runners import STATE_MISSING, STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner

from loadtests.sample_spool import SampleSpool
from loadtests.samples import (
    CONNECTION_FAILED,
    SAMPLES_FILE,
    SERVICES_FILE,
    RequestSample,
    ServiceSample,
    write_service_samples,
)
from loadtests.service_metrics import Scrape, parse_scrape, service_sample
from loadtests.traffic import endpoint_of

log = logging.getLogger("nova.load")

SCRAPE_SECONDS = 5.0
SCRAPE_TIMEOUT_SECONDS = 2.0
FLUSH_TIMEOUT_SECONDS = 10.0
REPORT_KEY = "nova_samples"
FLUSH_REQUEST = "nova_flush_samples"
FINAL_SAMPLES = "nova_final_samples"


def attach(environment: Environment, results: Path, services: dict[str, str]) -> None:
    """Record this process's part of the run; `services` maps service name to base URL (scraped by the master)."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _WorkerRecorder(environment)
    else:
        _RunRecorder(environment, results, services)


def _listen(hook: EventHook, handler: Callable[..., None]) -> None:
    hook.add_listener(handler)  # type: ignore[no-untyped-call]


def sample_of(name: str, start_time: float, response_time: float, response: Any, context: Any) -> RequestSample:
    """The sample of one Locust `request` event."""
    status = int(getattr(response, "status_code", 0) or CONNECTION_FAILED)
    attempt = context.get("attempt", 1) if isinstance(context, dict) else 1
    return RequestSample(float(start_time), endpoint_of(name), status, float(response_time), int(attempt))


class _WorkerRecorder:
    """A worker's samples, buffered between stats reports and shipped to the master."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment
        self.buffer: list[RequestSample] = []  # msgpack ships each as an array
        events = environment.events
        _listen(events.request, self.on_request)
        _listen(events.report_to_master, self.on_report_to_master)
        _listen(events.test_stop, self.on_test_stop)
        _listen(events.quitting, self.on_quitting)
        assert environment.runner is not None
        environment.runner.register_message(FLUSH_REQUEST, self.on_flush_request)

    def on_request(
        self, name: str, response_time: float, response: Any = None, context: Any = None, **kwargs: Any
    ) -> None:
        start_time = kwargs.get("start_time") or time.time() - response_time / 1000
        self.buffer.append(sample_of(name, start_time, response_time, response, context))

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        data[REPORT_KEY] = self._drain()

    def on_test_stop(self, **_kwargs: Any) -> None:
        runner = self.environment.runner
        assert isinstance(runner, WorkerRunner)
        # A stats report now (it carries the buffered samples too) rather than at the master's quit,
        # which waits only half a second for it: Locust's own counts are complete when ours are.
        runner._send_stats()
        runner.send_message(FINAL_SAMPLES, {REPORT_KEY: self._drain()})

    def on_flush_request(self, environment: Environment, msg: Message, **_kwargs: Any) -> None:
        if not self._stop_users():
            self.on_test_stop()

    def on_quitting(self, **_kwargs: Any) -> None:
        # Quitting listeners run last-registered first, so this comes before Locust's own, which tells
        # the master this worker quit; a master that loses its last worker stops reading messages.
        self._stop_users()

    def _stop_users(self) -> bool:
        """Stop this worker's users if they run (its test_stop then sends the final samples)."""
        runner = self.environment.runner
        assert runner is not None
        if runner.state not in (STATE_SPAWNING, STATE_RUNNING):
            return False
        runner.stop()
        return True

    def _drain(self) -> list[RequestSample]:
        drained, self.buffer = self.buffer, []
        return drained


class _RunRecorder:
    """The master's (or local runner's) record of the run: every sample, the services' scrapes, the files."""

    def __init__(self, environment: Environment, results: Path, services: dict[str, str]) -> None:
        self.environment = environment
        self.results = results
        self.services = services
        results.mkdir(parents=True, exist_ok=True)
        self.spool = SampleSpool(results / ".samples-spool")
        self.service_rows: list[ServiceSample] = []
        self.last_scrape: dict[str, Scrape] = {}
        self.unreachable: set[str] = set()  # services whose last scrape failed (warned once per outage)
        self.scraper: Any = None
        self.written = False  # this test's files are written: a second test_stop leaves them alone
        self.workers: set[str] = set()
        self.finished_workers: set[str] = set()
        events = environment.events
        _listen(events.request, self.on_request)
        _listen(events.test_start, self.on_test_start)
        _listen(events.test_stop, self.on_test_stop)
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            _listen(events.worker_connect, self.on_worker_connect)
            _listen(events.worker_report, self.on_worker_report)
            runner.register_message(FINAL_SAMPLES, self.on_final_samples)

    def on_request(
        self, name: str, response_time: float, response: Any = None, context: Any = None, **kwargs: Any
    ) -> None:
        start_time = kwargs.get("start_time") or time.time() - response_time / 1000
        self.spool.add(sample_of(name, start_time, response_time, response, context))

    def on_worker_connect(self, client_id: str, **_kwargs: Any) -> None:
        self.workers.add(client_id)

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        self.workers.add(client_id)
        self._keep(data.get(REPORT_KEY))

    def on_final_samples(self, environment: Environment, msg: Message, **_kwargs: Any) -> None:
        self._keep((msg.data or {}).get(REPORT_KEY))
        self.finished_workers.add(msg.node_id)

    def _keep(self, rows: Iterable[Any] | None) -> None:
        for timestamp, endpoint, status, millis, attempt in rows or ():
            self.spool.add(RequestSample(float(timestamp), str(endpoint), int(status), float(millis), int(attempt)))

    def on_test_start(self, **_kwargs: Any) -> None:
        self.spool.clear()
        self.service_rows.clear()
        self.last_scrape.clear()
        self.finished_workers.clear()
        self.written = False
        self.scraper = gevent.spawn(self._scrape_every, SCRAPE_SECONDS)

    def on_test_stop(self, **_kwargs: Any) -> None:
        if self.written:
            return
        self.written = True
        if self.scraper is not None:
            self.scraper.kill(block=True)
            self.scraper = None
        self._scrape(record=True, unless_newer_than=1.0)  # the end of the run, unless just scraped
        if isinstance(self.environment.runner, MasterRunner):
            self._collect_final_samples(self.environment.runner)
        self._write()

    def _collect_final_samples(self, runner: MasterRunner) -> None:
        missing = {client.id for client in runner.clients.all if client.state == STATE_MISSING}
        pending = self.workers - self.finished_workers - missing
        for client_id in pending:
            runner.send_message(FLUSH_REQUEST, None, client_id)
        deadline = time.monotonic() + FLUSH_TIMEOUT_SECONDS
        while pending - self.finished_workers and time.monotonic() < deadline:
            gevent.sleep(0.05)
        if silent := pending - self.finished_workers:
            log.warning("no final samples from %d worker(s) within %.0f s", len(silent), FLUSH_TIMEOUT_SECONDS)

    def _write(self) -> None:
        samples_path = self.results / SAMPLES_FILE
        partial = samples_path.with_name(SAMPLES_FILE + ".partial")
        count = self.spool.write(partial)
        os.replace(partial, samples_path)
        self.spool.clear()
        write_service_samples(self.results / SERVICES_FILE, self.service_rows)
        log.info("wrote %d request samples and %d service samples to %s", count, len(self.service_rows), self.results)

    def _scrape_every(self, seconds: float) -> None:
        self._scrape(record=False)  # the baseline the first CPU shares are measured from
        while True:
            gevent.sleep(seconds)
            self._scrape(record=True)

    def _scrape(self, record: bool, unless_newer_than: float = 0.0) -> None:
        for service, url in self.services.items():
            last = self.last_scrape.get(service)
            if last is not None and time.time() - last.at < unless_newer_than:
                continue
            try:
                with urllib.request.urlopen(f"{url}/metrics", timeout=SCRAPE_TIMEOUT_SECONDS) as answer:
                    scrape = parse_scrape(service, time.time(), answer.read().decode())
            except (OSError, ValueError) as exc:
                # A service that is down (a game day, a crash) has nothing to say; its rows are skipped.
                if service not in self.unreachable:
                    log.warning("cannot scrape %s at %s/metrics: %s", service, url, exc)
                self.unreachable.add(service)
                continue
            self.unreachable.discard(service)
            if record:
                self.service_rows.append(service_sample(self.last_scrape.get(service), scrape))
            self.last_scrape[service] = scrape

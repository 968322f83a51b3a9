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
* The payment audit (loadtests/audit.py) runs in every process that runs users, at its
  `test_stop`: Locust fires it once `stop_users` has stopped (killed) every user of the
  process, so no payment is settled after the audit looked, and a user killed mid-request
  leaves its payment in flight, an unknown outcome. The single local runner audits its own
  users and writes `audit.json` after `samples.csv`. A worker sends its final samples first,
  then audits and sends its audit document (counts and ids, never a token) in a message of its
  own; the master, once `samples.csv` is written, waits for every worker's audit (at most
  `AUDIT_WAIT_SECONDS`) and writes them merged as one `audit.json` (`merge_audits`). A worker
  whose audit never came counts in `processes_missing`, and the audit does not pass.

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

from loadtests import audit as payment_audit
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
AUDIT_MESSAGE = "nova_audit"
AUDIT_KEY = "audit"
AUDIT_WAIT_SECONDS = payment_audit.RECONCILE_TIMEOUT_SECONDS + payment_audit.AUDIT_TIMEOUT_SECONDS + 10.0


def attach(environment: Environment, results: Path, services: dict[str, str]) -> None:
    """Record this process's part of the run; `services` maps service name to base URL (scraped by the master)."""
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        _WorkerRecorder(environment, services["payments"])
    else:
        _RunRecorder(environment, results, services)


def _listen(hook: EventHook, handler: Callable[..., None]) -> None:
    hook.add_listener(handler)  # type: ignore[no-untyped-call]


def audit_this_process(environment: Environment, payments_url: str) -> payment_audit.PaymentAudit | None:
    """This process's payment audit (its users must have stopped); None if it could not be made."""
    url = (environment.host or payments_url).rstrip("/")
    try:
        document = payment_audit.run_audit(payment_audit.BOOK, url)
    except Exception:  # a bug or an unexpected answer must not lose the samples already sent
        log.exception("the payment audit of this process failed")
        return None
    log.info(document.summary_line())
    return document


def sample_of(name: str, start_time: float, response_time: float, response: Any, context: Any) -> RequestSample:
    """The sample of one Locust `request` event."""
    status = int(getattr(response, "status_code", 0) or CONNECTION_FAILED)
    attempt = context.get("attempt", 1) if isinstance(context, dict) else 1
    scheduled = context.get("scheduled", 0.0) if isinstance(context, dict) else 0.0
    return RequestSample(
        float(start_time), endpoint_of(name), status, float(response_time), int(attempt), float(scheduled or 0.0)
    )


class _WorkerRecorder:
    """A worker's samples, buffered between stats reports and shipped to the master."""

    def __init__(self, environment: Environment, payments_url: str) -> None:
        self.environment = environment
        self.payments_url = payments_url
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
        # The users have stopped (test_stop fires after stop_users): audit them, then report.
        own = audit_this_process(self.environment, self.payments_url)
        runner.send_message(AUDIT_MESSAGE, {AUDIT_KEY: own.to_json() if own is not None else None})

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
        self.audits: dict[str, payment_audit.PaymentAudit | None] = {}  # worker id -> its audit (None: it failed)
        events = environment.events
        _listen(events.request, self.on_request)
        _listen(events.test_start, self.on_test_start)
        _listen(events.test_stop, self.on_test_stop)
        runner = environment.runner
        if isinstance(runner, MasterRunner):
            _listen(events.worker_connect, self.on_worker_connect)
            _listen(events.worker_report, self.on_worker_report)
            runner.register_message(FINAL_SAMPLES, self.on_final_samples)
            runner.register_message(AUDIT_MESSAGE, self.on_audit)

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

    def on_audit(self, environment: Environment, msg: Message, **_kwargs: Any) -> None:
        document = (msg.data or {}).get(AUDIT_KEY)
        try:
            self.audits[msg.node_id] = payment_audit.PaymentAudit.from_json(document) if document is not None else None
        except ValueError:
            log.warning("worker %s sent an audit that is not one", msg.node_id)
            self.audits[msg.node_id] = None

    def _keep(self, rows: Iterable[Any] | None) -> None:
        for timestamp, endpoint, status, millis, attempt, *scheduled in rows or ():
            when = float(scheduled[0]) if scheduled else 0.0
            self.spool.add(
                RequestSample(float(timestamp), str(endpoint), int(status), float(millis), int(attempt), when)
            )

    def on_test_start(self, **_kwargs: Any) -> None:
        self.spool.clear()
        self.service_rows.clear()
        self.last_scrape.clear()
        self.finished_workers.clear()
        self.audits.clear()
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
        runner = self.environment.runner
        if isinstance(runner, MasterRunner):
            self._collect_final_samples(runner)
        self._write()
        if isinstance(runner, MasterRunner):
            document = self._collect_audits(runner)
        else:  # the local runner ran the users itself
            own = audit_this_process(self.environment, self.services["payments"])
            document = payment_audit.merge_audits([own] if own is not None else [], missing=0 if own is not None else 1)
        path = payment_audit.write_audit(self.results, document)
        log.info("wrote the payment audit (%s) to %s", "passed" if document.passed else "FAILED", path)

    def _collect_audits(self, runner: MasterRunner) -> payment_audit.PaymentAudit:
        """Every worker's audit, merged; a worker that sent none (or a failed one) counts as missing."""
        missing = {client.id for client in runner.clients.all if client.state == STATE_MISSING}
        deadline = time.monotonic() + AUDIT_WAIT_SECONDS
        while (self.workers - missing) - set(self.audits) and time.monotonic() < deadline:
            gevent.sleep(0.05)
        documents = [document for document in self.audits.values() if document is not None]
        absent = len(self.workers - set(self.audits)) + sum(1 for document in self.audits.values() if document is None)
        if absent:
            log.warning("no payment audit from %d worker(s)", absent)
        return payment_audit.merge_audits(documents, missing=absent)

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

"""The game day's monitoring stack with the real Prometheus and Alertmanager binaries.

A tiny exposition server on loopback plays the service: a 500s counter that grows at every
scrape (so `rate(...) > 0` fires at once) and a gauge the test switches on and off (so an
alert can be seen to resolve). Skipped without the binaries, except in CI, which installs them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from chaos.drill import read_pagerduty, read_pages
from chaos.monitoring import (
    MonitoringBinaries,
    MonitoringError,
    MonitoringStack,
    Notification,
    PagerRoute,
    find_binaries,
)
from tests.chaos.conftest import REPO

T = TypeVar("T")

RULES = """\
groups:
  - name: gameday-test
    rules:
      - alert: PaymentsErrorsBurning
        expr: rate(http_server_requests_total{code="500"}[10s]) > 0
        labels: {sloth_severity: page, sloth_id: payments-availability}
      - alert: PaymentsFaultActive
        expr: gameday_fault_active > 0
        labels: {sloth_severity: ticket, sloth_id: payments-latency}
"""


class Service:
    """The exposition a scrape reads: the counter grows by 5 per scrape; the gauge is `fault`."""

    def __init__(self) -> None:
        self.errors = 0
        self.fault = 0
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.errors += 5
                body = (
                    "# TYPE http_server_requests_total counter\n"
                    'http_server_requests_total{service="payments",route="/v1/payments",code="500"} '
                    f"{service.errors}\n"
                    "# TYPE gameday_fault_active gauge\n"
                    f'gameday_fault_active{{service="payments"}} {service.fault}\n'
                ).encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Running:
    stack: MonitoringStack
    service: Service
    started: float


def _binaries() -> MonitoringBinaries:
    """Both binaries; CI must have them (Debian's prometheus and prometheus-alertmanager)."""
    binaries = find_binaries()
    if binaries.prometheus is None or binaries.alertmanager is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus and prometheus-alertmanager must be installed in CI")
        pytest.skip("prometheus or alertmanager is not installed")
    return binaries


def _eventually(read: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = read()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"never saw {what} within {timeout:.0f} s")


def _processes_mentioning(folder: Path) -> list[int]:
    """PIDs whose command line names `folder` (only this test's binaries use it)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(folder).encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            pass
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    running = Service()
    yield running
    running.close()


@pytest.fixture(scope="module")
def running(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    binaries = _binaries()
    folder = tmp_path_factory.mktemp("monitoring")
    (folder / "rules.yml").write_text(RULES)
    stack = MonitoringStack(
        folder,
        folder / "rules.yml",
        {"payments": service.url},
        binaries=binaries,
        scrape_interval_seconds=1.0,
        evaluation_interval_seconds=1.0,
        pager=PagerRoute(folder / "pager", REPO),
    )
    started = time.time()
    with stack:
        yield Running(stack, service, started)


@pytest.fixture(scope="module")
def fault_episode(running: Running) -> tuple[float, float]:
    """The gauge switched on until Alertmanager delivered its alert, then off: (on, off) times."""
    switched_on = time.time()
    running.service.fault = 1
    _eventually(lambda: _delivered(running.stack, "PaymentsFaultActive", "firing"), "the fault alert delivered")
    running.service.fault = 0
    return switched_on, time.time()


def _delivered(stack: MonitoringStack, alertname: str, status: str) -> list[Notification]:
    return [n for n in stack.notifications() if n.alertname == alertname and n.status == status]


def test_stack_starts_prometheus_and_alertmanager(running: Running) -> None:
    stack = running.stack
    assert stack.mode == "prometheus+alertmanager"
    assert httpx.get(f"{stack.prometheus_url}/-/ready").status_code == 200
    assert stack.alertmanager_url is not None
    assert httpx.get(f"{stack.alertmanager_url}/-/ready").status_code == 200
    assert len(stack.pids) == 3 and all(_alive(pid) for pid in stack.pids)  # and the pager


def test_prometheus_scrapes_each_target_as_its_service_job(running: Running) -> None:
    def up() -> list[dict[str, Any]]:
        body = httpx.get(f"{running.stack.prometheus_url}/api/v1/query", params={"query": "up == 1"}).json()
        return list(body["data"]["result"])

    (series,) = _eventually(up, "the payments target up")
    assert series["metric"]["job"] == "payments"


def test_firing_alert_shows_in_alert_intervals_with_its_labels(running: Running) -> None:
    def burning() -> list[Any]:
        rows = running.stack.alert_intervals(running.started, time.time())
        return [(a, sloth_id) for a, sloth_id in rows if a.alert == "PaymentsErrorsBurning"]

    (interval, sloth_id), *_ = _eventually(burning, "PaymentsErrorsBurning in ALERTS")
    assert interval.severity == "page"
    assert sloth_id == "payments-availability"
    assert interval.start >= running.started - 1
    assert interval.end is None  # the counter still grows


def test_alertmanager_delivers_the_firing_alert_to_the_receiver(running: Running) -> None:
    first, *_ = _eventually(
        lambda: _delivered(running.stack, "PaymentsErrorsBurning", "firing"), "a firing notification"
    )
    assert first.severity == "page"
    assert first.sloth_id == "payments-availability"
    assert first.starts_at is not None and running.started - 1 <= first.starts_at <= first.received_at


def test_alertmanager_routes_the_alert_to_the_real_pager_which_delivers_it(running: Running) -> None:
    route = running.stack.pager
    assert route is not None and running.stack.pager_url is not None
    assert httpx.get(f"{running.stack.pager_url}/healthz", timeout=5.0).json() == {"status": "ok"}

    pages = _eventually(
        lambda: [p for p in read_pages(route.pages) if p.alert == "PaymentsErrorsBurning" and p.event == "trigger"],
        "the pager's page",
    )

    page = pages[0]
    assert page.delivered_at >= running.started and page.severity == "page"
    assert page.text.startswith("# [PAGE] FIRING PaymentsErrorsBurning")
    assert page.text in (route.folder / "pages.md").read_text()
    events = _eventually(
        lambda: [e for _, e in read_pagerduty(route.pagerduty_events) if e.get("dedup_key") == page.dedup_key],
        "the PagerDuty event",
    )
    assert events[0]["event_action"] == "trigger" and events[0]["payload"]["severity"] == "critical"
    assert page.dedup_key in route.state.read_text()


def test_resolved_alert_has_an_end_in_alert_intervals(running: Running, fault_episode: tuple[float, float]) -> None:
    switched_on, switched_off = fault_episode

    def ended() -> list[Any]:
        rows = running.stack.alert_intervals(switched_on - 1, time.time())
        return [a for a, _ in rows if a.alert == "PaymentsFaultActive" and a.end is not None]

    (interval,) = _eventually(ended, "PaymentsFaultActive end")
    assert interval.severity == "ticket"
    assert interval.end is not None
    assert switched_on - 1 <= interval.start < interval.end <= time.time()
    assert interval.end >= switched_off - 1


def test_resolved_alert_is_delivered_as_resolved(running: Running, fault_episode: tuple[float, float]) -> None:
    resolved, *_ = _eventually(
        lambda: _delivered(running.stack, "PaymentsFaultActive", "resolved"), "a resolved notification"
    )
    assert resolved.sloth_id == "payments-latency"
    assert resolved.received_at >= fault_episode[1]


def test_stop_leaves_none_of_its_processes_alive(service: Service, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    stack = MonitoringStack(tmp_path, tmp_path / "rules.yml", {"payments": service.url}, binaries=_binaries())
    stack.start()
    stack.start()  # already running: nothing more is started
    pids = stack.pids
    assert len(pids) == 2
    stack.stop()
    stack.stop()  # a second stop has nothing left to do
    assert not [pid for pid in pids if _alive(pid)]
    assert stack.pids == []


def test_without_alertmanager_prometheus_runs_alone(service: Service, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    binaries = MonitoringBinaries(prometheus=_binaries().prometheus, alertmanager=None)
    with MonitoringStack(tmp_path, tmp_path / "rules.yml", {"payments": service.url}, binaries=binaries) as stack:
        assert stack.mode == "prometheus"
        assert stack.alertmanager_url is None
        assert len(stack.pids) == 1
        assert "alerting" not in (tmp_path / "prometheus.yml").read_text()
        assert stack.notifications() == []


def test_missing_binary_is_a_one_line_monitoring_error(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    missing = tmp_path / "no-such-prometheus"
    stack = MonitoringStack(
        tmp_path, tmp_path / "rules.yml", {}, binaries=MonitoringBinaries(prometheus=missing, alertmanager=None)
    )
    with pytest.raises(MonitoringError) as error:
        stack.start()
    assert "\n" not in str(error.value)
    assert str(missing) in str(error.value)
    assert stack.pids == []


def test_failed_start_stops_what_it_already_started(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    binaries = MonitoringBinaries(prometheus=tmp_path / "no-such-prometheus", alertmanager=_binaries().alertmanager)
    with pytest.raises(MonitoringError, match="prometheus"):
        MonitoringStack(tmp_path, tmp_path / "rules.yml", {}, binaries=binaries).start()
    assert (tmp_path / "alertmanager.log").exists()  # Alertmanager did start...
    assert _processes_mentioning(tmp_path) == []  # ...and was stopped


def test_prometheus_exiting_at_start_up_is_a_one_line_error_with_its_log(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text("groups: [{name: broken, rules: [{alert: X, expr: 'rate('}]}]\n")
    binaries = MonitoringBinaries(prometheus=_binaries().prometheus, alertmanager=None)
    with pytest.raises(MonitoringError, match="prometheus exited with code") as error:
        MonitoringStack(tmp_path, tmp_path / "rules.yml", {}, binaries=binaries).start()
    assert "\n" not in str(error.value)


def test_firing_pages_names_the_page_alerts_of_the_given_slos_firing_now(running: Running) -> None:
    pages = _eventually(lambda: running.stack.firing_pages(["payments-availability"]), "the payments page firing")

    assert pages == ["PaymentsErrorsBurning"]
    assert running.stack.firing_pages(["portfolio-availability"]) == []

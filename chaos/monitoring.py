"""The game day's own monitoring stack: a real Prometheus and Alertmanager, started and stopped by it.

Prometheus scrapes each service's `/metrics` and evaluates the generated SLO rules; Alertmanager
routes what fires to a webhook receiver served inside this process, so the game day can compare
what Prometheus evaluated (`ALERTS`) with what would have paged someone (the notifications).
Given a `PagerRoute`, Alertmanager also routes every alert to a real `nova pager serve` started
here, as on-call runs it: it delivers each page as Markdown (`pages.md`), as JSON lines the game
day reads back (`pages.jsonl`), and as PagerDuty Events API v2 events posted to a capture endpoint
inside this process (`pagerduty.jsonl`: no network beyond loopback), keeping its dedup state in
`pager-state.json`. Only processes started here are ever signalled, by PID. Without an
Alertmanager binary the stack runs Prometheus alone (`mode == "prometheus"`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import yaml

from chaos.errors import ChaosError
from loadtests.processes import OwnedProcess, ProcessError, free_ports
from slo.errors import SourceError
from slo.evaluator import firing_intervals
from slo.prometheus_api import PrometheusAPI
from slo.timeline import AlertInterval

RECEIVER_PATH = "/alerts"
PAGERDUTY_PATH = "/v2/enqueue"
# The pager reads its PagerDuty routing key from this variable; the capture endpoint needs no real one.
PAGERDUTY_KEY_ENV = "NOVA_GAMEDAY_PAGERDUTY_KEY"
PAGERDUTY_KEY = "gameday-local-capture"


class MonitoringError(ChaosError):
    """The monitoring stack could not be started or read (binary missing, exited, never ready)."""


@dataclass(frozen=True)
class MonitoringBinaries:
    prometheus: Path | None
    alertmanager: Path | None


def find_binaries() -> MonitoringBinaries:
    """Prometheus and Alertmanager on PATH (Debian names the latter `prometheus-alertmanager`)."""
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    return MonitoringBinaries(
        prometheus=Path(prometheus) if prometheus else None,
        alertmanager=Path(alertmanager) if alertmanager else None,
    )


@dataclass(frozen=True)
class Notification:
    """One alert as Alertmanager delivered it to the webhook receiver."""

    received_at: float  # unix seconds, when the receiver got it
    status: str  # firing | resolved
    alertname: str
    severity: str  # label sloth_severity, else severity, else ""
    sloth_id: str
    starts_at: float | None  # unix seconds, None if Alertmanager sent none


class _Receiver:
    """The Alertmanager webhook (payload version 4), on a daemon thread, recording each alert in order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._notifications: list[Notification] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path != RECEIVER_PATH:
                    self.send_response(404)
                else:
                    try:
                        receiver.record(json.loads(body))
                        self.send_response(200)
                    except (ValueError, TypeError, AttributeError):
                        self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the game day's output is its own; Alertmanager's retries show in its log

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="alert-receiver", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{RECEIVER_PATH}"

    def record(self, payload: dict[str, Any]) -> None:
        received = time.time()
        rows = []
        for alert in payload.get("alerts", []):
            labels: dict[str, str] = alert.get("labels", {})
            rows.append(
                Notification(
                    received_at=received,
                    status=str(alert.get("status", payload.get("status", ""))),
                    alertname=labels.get("alertname", ""),
                    severity=labels.get("sloth_severity", labels.get("severity", "")),
                    sloth_id=labels.get("sloth_id", ""),
                    starts_at=_timestamp(alert.get("startsAt")),
                )
            )
        with self._lock:
            self._notifications.extend(rows)

    def notifications(self) -> list[Notification]:
        with self._lock:
            return list(self._notifications)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


@dataclass(frozen=True)
class PagerRoute:
    """A real `nova pager serve` behind Alertmanager: where it writes, and what it reads."""

    folder: Path  # pages.md, pages.jsonl, pagerduty.jsonl, pager-state.json, pager.log
    runbook_root: Path  # where the alerts' runbook_url paths (runbooks/...) are found
    env: Mapping[str, str] | None = None  # the pager's environment (None: this process's)

    @property
    def pages(self) -> Path:
        return self.folder / "pages.jsonl"

    @property
    def pagerduty_events(self) -> Path:
        return self.folder / "pagerduty.jsonl"

    @property
    def state(self) -> Path:
        return self.folder / "pager-state.json"


class _PagerDutyCapture:
    """PagerDuty's Events API v2 endpoint on loopback: records each event as a JSON line, answers 202."""

    def __init__(self, path: Path) -> None:
        self.path = path
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = json.loads(body)
                    if self.path != PAGERDUTY_PATH or not isinstance(event, dict):
                        raise ValueError(self.path)
                except ValueError:
                    self._answer(400, {"status": "invalid event", "message": "not an Events API v2 event"})
                    return
                line = json.dumps({"received_at": time.time(), "event": event}, sort_keys=True) + "\n"
                with lock, path.open("a", encoding="utf-8") as file:
                    file.write(line)
                self._answer(
                    202, {"status": "success", "message": "Event processed", "dedup_key": event.get("dedup_key")}
                )

            def _answer(self, status: int, document: dict[str, Any]) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="pagerduty-capture", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{PAGERDUTY_PATH}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


def _start(name: str, command: list[str], log_path: Path, env: Mapping[str, str] | None = None) -> OwnedProcess:
    try:
        return OwnedProcess(name, command, log_path, env)
    except OSError as exc:
        raise MonitoringError(f"cannot start {name} ({command[0]}): {exc.strerror or exc}") from None


def _wait_ready(process: OwnedProcess, url: str, deadline: float) -> None:
    try:
        process.wait_ready(url, max(0.0, deadline - time.monotonic()))
    except ProcessError as exc:
        raise MonitoringError(str(exc)) from None


class MonitoringStack:
    """Prometheus (and Alertmanager when its binary is known) scraping `targets` and running `rules_file`
    (and `extra_rule_files`)."""

    def __init__(
        self,
        folder: Path,
        rules_file: Path,
        targets: Mapping[str, str],
        *,
        binaries: MonitoringBinaries,
        scrape_interval_seconds: float = 2.0,
        evaluation_interval_seconds: float = 2.0,
        extra_rule_files: Sequence[Path] = (),
        pager: PagerRoute | None = None,
    ) -> None:
        self.folder = folder
        self.rules_file = rules_file
        self.extra_rule_files = tuple(extra_rule_files)
        self.targets = dict(targets)  # service -> base URL, scraped at <base>/metrics as job=<service>
        self.binaries = binaries
        self.scrape_interval_seconds = scrape_interval_seconds
        self.evaluation_interval_seconds = evaluation_interval_seconds
        self.prometheus_url = ""
        self.alertmanager_url: str | None = None
        self.pager = pager
        self.pager_url: str | None = None  # the running pager's base URL (None: no pager)
        self._pager_port = 0
        self._prometheus_port = 0  # chosen with the pager's, which is told Prometheus's URL before it runs
        self._processes: list[OwnedProcess] = []
        self._receiver: _Receiver | None = None
        self._pagerduty: _PagerDutyCapture | None = None

    @property
    def mode(self) -> str:
        return "prometheus+alertmanager" if self.binaries.alertmanager is not None else "prometheus"

    @property
    def pids(self) -> list[int]:
        return [process.popen.pid for process in self._processes]

    def start(self, timeout_seconds: float = 30.0) -> MonitoringStack:
        """Start everything and wait until each answers `/-/ready`; on any failure, stop what started.

        Starting a running stack does nothing, so `with MonitoringStack(...).start() as stack:` works.
        """
        if self._processes:
            return self
        if self.binaries.prometheus is None:
            raise MonitoringError("cannot start prometheus: no binary found (Debian package prometheus)")
        deadline = time.monotonic() + timeout_seconds
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            if self.binaries.alertmanager is not None:
                self._start_alertmanager(self.binaries.alertmanager, deadline)
            # The pager starts beside Prometheus (its imports take seconds), and is waited for after it.
            pager = self._start_pager() if self._pager_port else None
            self._start_prometheus(self.binaries.prometheus, deadline)
            if pager is not None:
                url = f"http://127.0.0.1:{self._pager_port}"
                _wait_ready(pager, f"{url}/healthz", deadline)
                self.pager_url = url
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every process this stack started (newest first) and the receiver; safe to call again."""
        while self._processes:
            process = self._processes[-1]
            try:
                process.stop()
            finally:
                self._processes.pop()
        if self._receiver is not None:
            receiver, self._receiver = self._receiver, None
            receiver.stop()
        if self._pagerduty is not None:
            capture, self._pagerduty = self._pagerduty, None
            capture.stop()

    def __enter__(self) -> MonitoringStack:
        return self.start()

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    def alert_intervals(self, start: float, end: float) -> list[tuple[AlertInterval, str]]:
        """Each firing run of each `ALERTS` series in `[start, end]`, with the series' sloth_id.

        Read at the evaluation interval (at least 1 s), so a run is consecutive evaluations; a run
        still firing at the last step has no end.
        """
        step = max(1, round(self.evaluation_interval_seconds))
        grid = start + np.arange(math.floor((end - start) / step + 1e-9) + 1, dtype=np.float64) * step
        series = self._firing_alerts(start, end, step)
        found: list[tuple[AlertInterval, str]] = []
        for labels, points in series:
            present = np.zeros(grid.shape[0], dtype=bool)
            for t, _ in points:
                i = round((float(t) - start) / step)
                if 0 <= i < grid.shape[0]:
                    present[i] = True
            severity = labels.get("sloth_severity", labels.get("severity", ""))
            sloth_id = labels.get("sloth_id", "")
            found += [(a, sloth_id) for a in firing_intervals(present, grid, labels["alertname"], severity)]
        return sorted(found, key=lambda row: (row[0].start, row[0].alert, row[0].severity, row[1]))

    def firing_pages(self, sloth_ids: Sequence[str]) -> list[str]:
        """The page-severity alerts of these SLOs (sloth ids) that Prometheus has firing now."""
        now = time.time()
        series = self._firing_alerts(now, now, 1)
        return sorted(
            {
                labels["alertname"]
                for labels, _ in series
                if labels.get("sloth_id") in sloth_ids
                and labels.get("sloth_severity", labels.get("severity")) == "page"
            }
        )

    def _firing_alerts(
        self, start: float, end: float, step: int
    ) -> list[tuple[dict[str, str], list[list[float | str]]]]:
        """Prometheus's firing `ALERTS` series over `[start, end]`; MonitoringError when it cannot answer."""
        if not self.prometheus_url:
            raise MonitoringError("the monitoring stack is not running")
        api = PrometheusAPI(self.prometheus_url)
        try:
            return api.query_range('ALERTS{alertstate="firing"}', start, end, step)
        except SourceError as exc:
            raise MonitoringError(str(exc)) from None
        finally:
            api.close()

    def notifications(self) -> list[Notification]:
        """What Alertmanager delivered to the webhook so far, in arrival order (empty without it)."""
        return [] if self._receiver is None else self._receiver.notifications()

    def _start_alertmanager(self, binary: Path, deadline: float) -> None:
        self._receiver = _Receiver()
        webhooks = [{"url": self._receiver.url, "send_resolved": True}]
        if self.pager is not None:
            # The pager starts after Prometheus (it reads burn rates from it); its port is fixed now.
            self._pager_port, self._prometheus_port = free_ports(2)
            webhooks.append({"url": f"http://127.0.0.1:{self._pager_port}/alerts", "send_resolved": True})
        config = {
            "route": {
                "receiver": "gameday",
                "group_by": ["alertname", "sloth_id", "sloth_severity"],
                "group_wait": "1s",
                "group_interval": "5s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "gameday", "webhook_configs": webhooks}],
        }
        config_path = self.folder / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = free_ports()[0]
        command = [
            str(binary),
            f"--config.file={config_path}",
            f"--storage.path={self.folder / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # a lone instance: no gossip port, no peers
        ]
        process = _start("alertmanager", command, self.folder / "alertmanager.log")
        self._processes.append(process)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(process, f"{url}/-/ready", deadline)
        self.alertmanager_url = url

    def _start_prometheus(self, binary: Path, deadline: float) -> None:
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": _duration(self.scrape_interval_seconds),
                "evaluation_interval": _duration(self.evaluation_interval_seconds),
            },
            "rule_files": [str(path.resolve()) for path in (self.rules_file, *self.extra_rule_files)],
            "scrape_configs": [_scrape_config(service, url) for service, url in self.targets.items()],
        }
        if self.alertmanager_url is not None:
            target = urlsplit(self.alertmanager_url).netloc
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [target]}]}]}
        config_path = self.folder / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        port = self._prometheus_port or free_ports()[0]
        command = [
            str(binary),
            f"--config.file={config_path}",
            f"--storage.tsdb.path={self.folder / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        process = _start("prometheus", command, self.folder / "prometheus.log")
        self._processes.append(process)
        url = f"http://127.0.0.1:{port}"
        _wait_ready(process, f"{url}/-/ready", deadline)
        self.prometheus_url = url

    def _start_pager(self) -> OwnedProcess:
        """`nova pager serve` as on-call runs it, delivering to files and to the PagerDuty capture."""
        assert self.pager is not None
        route = self.pager
        route.folder.mkdir(parents=True, exist_ok=True)
        self._pagerduty = _PagerDutyCapture(route.pagerduty_events)
        env = dict(route.env if route.env is not None else os.environ)
        env[PAGERDUTY_KEY_ENV] = PAGERDUTY_KEY
        command = [
            sys.executable, "-m", "nova", "pager", "serve",
            "--listen", f"127.0.0.1:{self._pager_port}",
            "--deliver", f"file:{route.folder / 'pages.md'}",
            "--deliver", f"jsonl:{route.pages}",
            "--pagerduty-routing-key-env", PAGERDUTY_KEY_ENV,
            "--pagerduty-url", self._pagerduty.url,
            "--prometheus", f"http://127.0.0.1:{self._prometheus_port}",
            "--runbook-root", str(route.runbook_root),
            "--state", str(route.state),
        ]  # fmt: skip
        process = _start("nova pager serve", command, route.folder / "pager.log", env)
        self._processes.append(process)
        return process


def _scrape_config(service: str, base_url: str) -> dict[str, Any]:
    parts = urlsplit(base_url)
    if not parts.netloc:
        raise MonitoringError(f"target {service!r} is not a base URL such as http://127.0.0.1:8001: {base_url!r}")
    return {
        "job_name": service,
        "scheme": parts.scheme or "http",
        "metrics_path": parts.path.rstrip("/") + "/metrics",
        "static_configs": [{"targets": [parts.netloc]}],
    }


def _duration(seconds: float) -> str:
    """A Prometheus duration; milliseconds keep sub-second intervals exact."""
    if seconds <= 0:
        raise MonitoringError(f"intervals must be positive, got {seconds} s")
    milliseconds = round(seconds * 1000)
    return f"{milliseconds // 1000}s" if milliseconds % 1000 == 0 else f"{milliseconds}ms"


def _timestamp(value: object) -> float | None:
    """RFC 3339 (`2026-11-25T15:36:31.123456789Z`) as unix seconds; Go's zero time is no time."""
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None

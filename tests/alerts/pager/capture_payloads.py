"""Regenerate `payloads/`: what a real Alertmanager sends for the suite's alert shapes.

    .venv/bin/python -m tests.alerts.pager.capture_payloads

Starts `prometheus-alertmanager` routing to a loopback receiver, posts alerts with the
labels the SLO rules and the predictive alerts carry to its API v2, and saves each
notification as it arrived. Review the diff: times and fingerprints change, shapes should not.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from loadtests.processes import OwnedProcess
from tests.nova.conftest import free_port

PAYLOADS = Path(__file__).parent / "payloads"
BINARY = "/usr/bin/prometheus-alertmanager"
SLO_LABELS = {"owner": "payments-sre", "tier": "1", "sloth_service": "payments"}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _alerts(now: datetime) -> dict[str, dict[str, Any]]:
    return {
        "page": {
            "labels": {
                "alertname": "PaymentsAvailabilityBurn",
                "category": "availability",
                "severity": "critical",
                "sloth_severity": "page",
                "sloth_id": "payments-availability",
                "sloth_slo": "availability",
                **SLO_LABELS,
            },
            "annotations": {
                "dashboard": "grafana/slo-payments-availability.json",
                "runbook_url": "runbooks/payments-availability-page.md",
                "summary": "payments availability SLO error budget burn rate is over expected.",
                "title": "(page) payments availability SLO error budget burn rate is too fast.",
            },
            "startsAt": _iso(now - timedelta(minutes=1)),
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=slo%3Asli_error%3Aratio_rate5m",
        },
        "exhaustion": {
            "labels": {
                "alertname": "PaymentsLatencyBurnBudgetExhaustion",
                "category": "latency",
                "severity": "warning",
                "sloth_severity": "ticket",
                "sloth_id": "payments-latency",
                "sloth_slo": "latency",
                **SLO_LABELS,
            },
            "annotations": {
                "dashboard": "grafana/slo-payments-latency.json",
                "runbook_url": "runbooks/payments-latency-budget-exhaustion.md",
                "summary": "payments latency SLO error budget runs out within 3d at the current burn rate.",
                "title": "(ticket) payments latency SLO error budget exhausted in 2d 4h.",
            },
            "startsAt": _iso(now - timedelta(minutes=2)),
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=slo%3Atime_to_error_budget_exhaustion%3Aseconds",
        },
        # As alerts/watch.py sends them.
        "predictive": {
            "labels": {
                "alertname": "PaymentsAvailabilityPredictedBurn",
                "severity": "page",
                "slo": "availability",
                "service": "payments",
                "kind": "predictive",
            },
            "annotations": {
                "summary": "payments availability: the fast-burn page is likely within 12 minutes (p=0.87)",
                "runbook_url": "runbooks/payments-availability-predictive.md",
                "predicted_breach_in": "~12m",
                "signal": "db_pool full in ~12m",
            },
            "startsAt": _iso(now - timedelta(seconds=30)),
        },
        # As alerts/rules/platform.yml fires it: no SLO, a service label from `sum by (service)`.
        "platform": {
            "labels": {
                "alertname": "NovaServiceNotReady",
                "severity": "page",
                "owner": "platform-oncall",
                "service": "payments",
            },
            "annotations": {
                "summary": "payments is not ready: its database is unreachable",
                "description": "payments answers 503 on /readyz, or to most customer requests, for over a minute: "
                "it runs but cannot reach its database. Run `nova runbooks run NovaServiceNotReady`.",
                "runbook_url": "runbooks/nova-service-not-ready.md",
            },
            "startsAt": _iso(now - timedelta(minutes=2)),
            "generatorURL": "http://prometheus.example:9090/graph?g0.expr=http_server_requests_total",
        },
    }


def main() -> None:
    received: list[dict[str, Any]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory(prefix="nova-am-") as scratch:
        config = {
            "route": {
                "receiver": "nova-pager",
                "group_by": ["alertname", "sloth_id", "sloth_severity", "slo"],
                "group_wait": "1s",
                "group_interval": "2s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "nova-pager",
                    "webhook_configs": [
                        {"url": f"http://127.0.0.1:{receiver.server_address[1]}/alerts", "send_resolved": True}
                    ],
                }
            ],
        }
        (Path(scratch) / "alertmanager.yml").write_text(json.dumps(config))
        port = free_port()
        command = [
            BINARY,
            f"--config.file={scratch}/alertmanager.yml",
            f"--storage.path={scratch}/data",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
            "--web.external-url=http://alertmanager.example:9093",
        ]
        with OwnedProcess("alertmanager", command, Path(scratch) / "alertmanager.log") as alertmanager:
            url = f"http://127.0.0.1:{port}"
            alertmanager.wait_ready(f"{url}/-/ready")

            def post(alerts: list[dict[str, Any]], names: list[str]) -> None:
                before = len(received)
                httpx.post(f"{url}/api/v2/alerts", json=alerts).raise_for_status()
                deadline = time.monotonic() + 15
                while len(received) < before + len(names) and time.monotonic() < deadline:
                    time.sleep(0.1)
                notifications = sorted(received[before:], key=lambda n: n["groupKey"])
                if len(notifications) != len(names):
                    raise SystemExit(f"expected {len(names)} notifications, got {len(notifications)}")
                for name, notification in zip(names, notifications, strict=True):
                    (PAYLOADS / f"{name}.json").write_text(json.dumps(notification, indent=2) + "\n")

            now = datetime.now(UTC)
            alerts = _alerts(now)
            post([alerts["page"]], ["availability-page-firing"])
            # Named in group key order: PaymentsAvailabilityPredictedBurn sorts before PaymentsLatency...
            post([alerts["exhaustion"], alerts["predictive"]], ["predictive-firing", "budget-exhaustion-firing"])
            post([alerts["platform"]], ["platform-not-ready-firing"])
            # A second alert joins the page's group: same group labels, another instance.
            joined = json.loads(json.dumps(alerts["page"]))
            joined["labels"]["instance"] = "payments-2"
            joined["startsAt"] = _iso(now)
            post([alerts["page"], joined], ["availability-page-two-alerts"])
            ended = _iso(datetime.now(UTC) - timedelta(seconds=1))
            post([{**alerts["page"], "endsAt": ended}, {**joined, "endsAt": ended}], ["availability-page-resolved"])
    receiver.shutdown()


if __name__ == "__main__":
    main()

"""A real Alertmanager routing to a real `nova pager serve`: the page arrives, then its resolve;
and the predictive watch's alerts, posted to that Alertmanager, page through it.

Needs Debian's `prometheus-alertmanager`; outside CI it skips without it, in CI (`CI=true`) it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from loadtests.processes import OwnedProcess
from nova.alerts_cli import alerts_app
from slo.scenario import write_scenario
from tests.alerts.pager.conftest import running_pager
from tests.alerts.test_model import small_training_set, train_small_model
from tests.nova.conftest import free_port

BINARY = "/usr/bin/prometheus-alertmanager"
DELIVERY_TIMEOUT_SECONDS = 20.0


def _alertmanager_binary() -> str:
    binary = BINARY if os.access(BINARY, os.X_OK) else shutil.which("prometheus-alertmanager")
    if binary is None:
        message = f"{BINARY} not found: install Debian's prometheus-alertmanager"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture
def alertmanager_routing_to(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Alertmanager's URL, routing every alert to a `nova pager serve` that writes pages to the returned file."""
    binary = _alertmanager_binary()
    pages = tmp_path / "pages.md"
    with running_pager(tmp_path, f"--deliver=file:{pages}") as (pager_url, _):
        config = {
            "route": {
                "receiver": "nova-pager",
                "group_by": ["alertname", "sloth_id", "sloth_severity"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {"name": "nova-pager", "webhook_configs": [{"url": f"{pager_url}/alerts", "send_resolved": True}]}
            ],
        }
        (tmp_path / "alertmanager.yml").write_text(json.dumps(config))
        port = free_port()
        command = [
            binary,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ]
        with OwnedProcess("alertmanager", command, tmp_path / "alertmanager.log") as alertmanager:
            url = f"http://127.0.0.1:{port}"
            alertmanager.wait_ready(f"{url}/-/ready")
            yield url, pages


def test_alertmanager_pages_through_nova_pager_and_resolves(alertmanager_routing_to: tuple[str, Path]) -> None:
    url, pages = alertmanager_routing_to
    alert: dict[str, Any] = {
        "labels": {
            "alertname": "PaymentsAvailabilityBurn",
            "category": "availability",
            "severity": "critical",
            "sloth_severity": "page",
            "sloth_id": "payments-availability",
            "sloth_service": "payments",
            "sloth_slo": "availability",
        },
        "annotations": {
            "runbook_url": "runbooks/payments-availability-page.md",
            "summary": "payments availability SLO error budget burn rate is over expected.",
        },
        "startsAt": _rfc3339(datetime.now(UTC) - timedelta(minutes=1)),
    }

    httpx.post(f"{url}/api/v2/alerts", json=[alert]).raise_for_status()
    firing = _wait_for(pages, "# [PAGE] FIRING PaymentsAvailabilityBurn")
    httpx.post(f"{url}/api/v2/alerts", json=[{**alert, "endsAt": _rfc3339(datetime.now(UTC) - timedelta(seconds=1))}])
    resolved = _wait_for(pages, "# [PAGE] RESOLVED PaymentsAvailabilityBurn")

    assert "`nova runbooks run PaymentsAvailabilityBurn`" in firing
    assert resolved.count("# [PAGE] FIRING") == 1


def test_predictive_watch_pages_through_alertmanager_before_the_breach(
    alertmanager_routing_to: tuple[str, Path], tmp_path: Path
) -> None:
    url, pages = alertmanager_routing_to
    model = tmp_path / "model.skops"
    train_small_model(model)
    scenario = small_training_set(1)[0]  # a pool exhaustion the model learnt the signs of
    write_scenario(tmp_path / "drill", scenario)
    breach = scenario.incidents[0].breach
    assert breach is not None
    until_breach = str(int((breach - scenario.timestamps[0]) // 15) + 1)

    drill = ["--replay", str(tmp_path / "drill"), "--max-steps", until_breach]
    result = CliRunner().invoke(alerts_app, ["watch", "--model", str(model), *drill, "--alertmanager", url])
    assert result.exit_code == 0, result.output

    page = _wait_for(pages, "PredictedBurn")
    assert "# [PAGE] FIRING Payments" in page
    assert "Predicted breach of the page condition in ~" in page
    assert "-predictive.md" in page


def _wait_for(path: Path, text: str) -> str:
    deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {path} within {DELIVERY_TIMEOUT_SECONDS:.0f} s: {content!r}")


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

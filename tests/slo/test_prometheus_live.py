"""`nova slo status` and `nova slo report` against a real Prometheus running the generated rules,
scraping a real `nova serve`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from loadtests.processes import OwnedProcess
from nova.serve import Platform
from slo.rules import RuleOptions, render
from slo.spec import load_specs
from tests.nova.conftest import RunPlatform, free_port
from tests.slo.promtool import promtool

SPECS = sorted(Path(__file__).resolve().parents[2].joinpath("slo", "specs").glob("*.yaml"))


def _prometheus_binary() -> str:
    promtool()  # same rule as promtool: required in CI, skipped elsewhere
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("promtool is installed but prometheus is not (both come from Debian's prometheus)")
    return binary


@pytest.fixture
def platform(run_platform: RunPlatform) -> Iterator[Platform]:
    with run_platform(workers=1) as running:
        yield running


@pytest.fixture
def prometheus(platform: Platform, tmp_path: Path) -> Iterator[str]:
    """Prometheus scraping both services every second and evaluating the suite's SLO rules."""
    binary = _prometheus_binary()
    (tmp_path / "slo-rules.yml").write_text(render(load_specs(SPECS), RuleOptions()))
    targets = {name: platform.options.url(name).removeprefix("http://") for name in ("payments", "portfolio")}
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["slo-rules.yml"],
        "scrape_configs": [{"job_name": name, "static_configs": [{"targets": [t]}]} for name, t in targets.items()],
    }
    (tmp_path / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    command = [
        binary,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with OwnedProcess("prometheus", command, tmp_path / "prometheus.log") as server:
        url = f"http://127.0.0.1:{port}"
        server.wait_ready(f"{url}/-/ready")
        _wait_for_targets(url)
        yield url


def _traffic(platform: Platform, seconds: float) -> None:
    """Requests the SLIs count (a 404 is an answered request, not an error)."""
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=platform.options.url("payments"), timeout=5.0) as client:
        while time.monotonic() < deadline:
            client.get("/v1/accounts/acc_00000000000000000000000000")
            time.sleep(0.02)


def _wait_for_targets(url: str, timeout: float = 30.0) -> None:
    """Discovery hands targets over after a few seconds; traffic before the first scrape is never a rate."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        targets = httpx.get(f"{url}/api/v1/targets").json()["data"]["activeTargets"]
        if len(targets) == 2 and all(t["health"] == "up" for t in targets):
            return
        time.sleep(0.3)
    pytest.fail("Prometheus never scraped both services")


def _wait_for_series(url: str, query: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = httpx.get(f"{url}/api/v1/query", params={"query": query}).json()["data"]["result"]
        if result:
            return
        time.sleep(0.5)
    targets = httpx.get(f"{url}/api/v1/targets").json()["data"]["activeTargets"]
    health = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in targets]
    pytest.fail(f"Prometheus never recorded {query}; targets: {health}")


def _nova(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nova", *args], capture_output=True, text=True, check=False)


def test_status_reads_the_recorded_slo_series(platform: Platform, prometheus: str) -> None:
    _traffic(platform, 4.0)
    _wait_for_series(prometheus, 'slo:period_error_budget_remaining:ratio{sloth_id="payments-availability"}')
    result = _nova("slo", "status", "--prometheus", prometheus, "--json", *map(str, SPECS))
    assert result.returncode == 0, result.stderr
    rows = {row["sloth_id"]: row for row in json.loads(result.stdout)}
    availability = rows["payments-availability"]
    assert availability["sli"] == 1.0
    assert availability["budget_remaining"] == 1.0
    assert availability["burn_rates"]["5m"] == 0.0
    assert availability["firing"] == []
    assert set(rows) == {"payments-availability", "payments-latency", "portfolio-availability", "portfolio-latency"}


def test_report_from_prometheus_has_every_slo(platform: Platform, prometheus: str, tmp_path: Path) -> None:
    _traffic(platform, 4.0)
    _wait_for_series(prometheus, 'slo:sli_error:ratio_rate5m{sloth_id="payments-latency"}')
    out = tmp_path / "report"
    result = _nova("slo", "report", "--prometheus", prometheus, "--since", "2m", "--step", "5s", "--out", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    latency = next(slo for slo in report["slos"] if slo["sloth_id"] == "payments-latency")
    assert latency["sli"] == 1.0
    assert latency["latency"]["threshold_ms"] == 200.0
    assert (out / "report.html").stat().st_size > 10_000

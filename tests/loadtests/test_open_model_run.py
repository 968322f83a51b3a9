"""The open model (`--rate`) through real Locust against the real platform.

Short runs on loopback (a few seconds at 40-60 requests/s); Locust is a subprocess as
`nova load` runs it, and the latency fault goes through the admin fault API.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from loadtests.gate import evaluate_gate
from loadtests.open_model import Timetable, open_load
from loadtests.samples import read_samples
from nova.serve import Platform
from tests.nova.conftest import RunPlatform, admin_client, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO_ROOT / "loadtests" / "locustfile.py"
DURATION_SECONDS = 8


def run_open_model(platform: Platform, results: Path, rate: float, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "--host", platform.options.url("payments"), "--portfolio-url", platform.options.url("portfolio"),
        "--shape", "steady", "--duration", str(DURATION_SECONDS), "--rate", str(rate),
        "--mix", "trading", "--nova-results", str(results), *extra,
    ]  # fmt: skip
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=DURATION_SECONDS + 80)


def test_the_rate_is_shared_by_locust_processes_and_every_send_is_scheduled(
    run_platform: RunPlatform, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    with run_platform() as platform:
        port = str(free_port())
        distributed = ("--processes", "2", "--master-bind-port", port, "--master-port", port)
        locust = run_open_model(platform, results, 60.0, *distributed)

    assert locust.returncode == 0, locust.stderr[-3000:]
    samples = list(read_samples(results / "samples.csv"))
    work = [s for s in samples if s.scheduled]
    assert work
    figures = open_load(samples, Timetable(60.0, "steady", DURATION_SECONDS, generators=2))
    assert figures.achieved_rps >= 0.9 * figures.offered_rps, figures
    # both workers' timetables: sends from two generators interleave, each at half the rate
    assert figures.sends >= 0.9 * figures.offered_rps * (DURATION_SECONDS - 3)


def test_a_latency_fault_slows_the_service_but_not_the_offered_rate(run_platform: RunPlatform, tmp_path: Path) -> None:
    """Open model: the timetable does not wait for the slow answers, and latency from the
    scheduled send (corrected for coordinated omission) is at least the service time."""
    results = tmp_path / "results"
    with run_platform(enable_faults=True) as platform:
        for service in ("payments", "portfolio"):
            with admin_client(platform, service) as admin:
                fault = admin.put("/admin/faults/latency", json={"ms": 250, "ttl_seconds": 60})
                assert fault.status_code == 200, fault.text
        locust = run_open_model(platform, results, 40.0)

    assert locust.returncode in (0, 1), locust.stderr[-3000:]
    samples = [s for s in read_samples(results / "samples.csv") if s.scheduled]
    figures = open_load(samples, Timetable(40.0, "steady", DURATION_SECONDS))
    assert figures.achieved_rps >= 0.9 * figures.offered_rps, figures  # a closed model would send a fraction
    gate = evaluate_gate(samples)
    assert gate.overall.p99_ms >= 250.0  # the service was slow
    assert gate.overall.p99_corrected_ms > gate.overall.p99_ms

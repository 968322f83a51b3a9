"""Fault injection end to end: `nova serve --enable-faults`, real worker processes, driven over HTTP only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from typer.testing import CliRunner

from nova import cli
from nova.serve import Platform, ServeOptions
from tests.conftest import ADMIN_TOKEN
from tests.nova.conftest import RunPlatform, admin_client, worker_pids
from tests.nova.test_serve import workers_once_replaced

THREADS, REQUESTS_PER_THREAD = 8, 25
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def refused_by_worker(platform: Platform, service: str, pids: set[int]) -> dict[int, float]:
    """How many 5xx answers each worker gave, from its own counter file in the service's metrics folder."""
    folder = platform.options.data_dir / "metrics" / service
    counts = {}
    for pid in pids:
        families = MultiProcessCollector.merge([str(folder / f"counter_{pid}.db")], accumulate=False)  # type: ignore[no-untyped-call]
        counts[pid] = sum(
            sample.value
            for family in families
            for sample in family.samples
            if sample.name == "http_server_requests_total" and sample.labels["code"].startswith("5")
        )
    return counts


def test_a_fault_put_through_one_worker_reaches_every_worker(run_platform: RunPlatform) -> None:
    with run_platform(workers=2, enable_faults=True) as platform:
        url = platform.options.url("payments")
        with admin_client(platform) as admin:
            put = admin.put("/admin/faults/error_rate", json={"rate": 1.0, "ttl_seconds": 60})
        time.sleep(0.3)  # the other worker looks at the shared file every 150 ms
        statuses: list[int] = []

        def operator() -> None:
            for _ in range(REQUESTS_PER_THREAD):
                # a new connection each time, so the requests spread over the workers
                statuses.append(httpx.get(f"{url}/v1/ledger/verify", headers=ADMIN).status_code)

        threads = [threading.Thread(target=operator) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        refused = refused_by_worker(platform, "payments", worker_pids(platform.processes["payments"].pid))

    assert put.status_code == 200, put.text
    assert statuses == [503] * THREADS * REQUESTS_PER_THREAD
    assert len(refused) == 2
    assert all(count > 0 for count in refused.values()), refused


def test_worker_kill_kills_the_worker_and_the_supervisor_replaces_it(run_platform: RunPlatform) -> None:
    with run_platform(workers=2, enable_faults=True) as platform:
        supervisor = platform.processes["payments"].pid
        before = worker_pids(supervisor)
        with admin_client(platform) as admin:
            killed = admin.put("/admin/faults/worker_kill", json={"signal": "SIGKILL"})
        victim = killed.json()["pid"]
        deadline = time.monotonic() + 10
        while victim in worker_pids(supervisor) and time.monotonic() < deadline:
            time.sleep(0.05)
        after = workers_once_replaced(supervisor, 2)
        with admin_client(platform) as admin:
            serving = admin.get("/v1/ledger/verify")

    assert killed.status_code == 202, killed.text
    assert victim in before
    assert victim not in after
    assert len(after) == 2
    assert serving.status_code == 200


def test_serve_options_pass_fault_injection_to_the_workers_only_when_asked(tmp_path: Path) -> None:
    assert ServeOptions(data_dir=tmp_path, enable_faults=True).environment()["NOVA_ENABLE_FAULTS"] == "1"
    assert ServeOptions(data_dir=tmp_path).environment()["NOVA_ENABLE_FAULTS"] == "0"


@pytest.mark.parametrize(("args", "enabled"), [(["--enable-faults"], True), ([], False)])
def test_nova_serve_enable_faults_flag_reaches_the_platform(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], enabled: bool
) -> None:
    started: list[ServeOptions] = []

    class RecordingPlatform:
        def __init__(self, options: ServeOptions) -> None:
            started.append(options)

        def serve_forever(self, on_ready: Callable[[], None]) -> None:
            on_ready()

    monkeypatch.delenv("NOVA_ENABLE_FAULTS", raising=False)
    monkeypatch.setattr(cli, "Platform", RecordingPlatform)

    result = CliRunner().invoke(cli.app, ["serve", "--data-dir", str(tmp_path), *args])

    assert result.exit_code == 0, result.output
    assert [options.enable_faults for options in started] == [enabled]
    assert ("fault injection on" in result.output) is enabled

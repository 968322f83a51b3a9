"""The service supervisor, as a real process: a lost worker is named in the log at the default level."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_TOKEN
from tests.nova.conftest import free_port, worker_pids


def test_a_killed_worker_is_logged_with_its_pid_and_signal(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "supervisor.log"
    env = {**os.environ, "NOVA_DATA_DIR": str(tmp_path / "data"), "NOVA_ADMIN_TOKEN": ADMIN_TOKEN}
    env.pop("NOVA_LOG_LEVEL", None)  # the default level: warnings
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "core_services.server", "payments", "--port", str(port), "--workers", "1"],
            env=env,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 90  # a loaded machine starts a worker slowly
        while True:
            assert time.monotonic() < deadline, log_path.read_text()[-2000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        [worker] = worker_pids(server.pid)
        os.kill(worker, signal.SIGKILL)
        expected = f"payments worker {worker} was killed by SIGKILL; replaced"
        while expected not in log_path.read_text():
            assert time.monotonic() < deadline + 30, log_path.read_text()[-2000:]
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(20)

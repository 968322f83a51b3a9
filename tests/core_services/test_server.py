"""The service supervisor: a lost worker is named in the log at the default level, and noticed at once;
a new worker still starting is not taken for a hung one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from multiprocessing import Pipe
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
from uvicorn.supervisors.multiprocess import Process

from core_services.server import STARTUP_GRACE_SECONDS, Supervisor, healthcheck_unless_dead
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


def _worker(alive: bool) -> tuple[Process, Any]:
    """A worker as the supervisor sees it (its end of the health-check pipe, its process) and the worker's end."""
    supervisor_end, worker_end = Pipe()
    process = SimpleNamespace(parent_conn=supervisor_end, process=SimpleNamespace(is_alive=lambda: alive))
    return cast(Process, process), worker_end


def test_a_health_check_answered_gives_the_workers_startup_flag() -> None:
    process, worker_end = _worker(alive=True)
    worker_end.send(True)
    assert healthcheck_unless_dead(process, timeout=5) is True
    assert worker_end.recv() == b"ping"


def test_a_health_check_of_a_worker_that_died_ends_at_once_not_at_the_timeout() -> None:
    process, _worker_end = _worker(alive=False)
    started = time.monotonic()
    assert healthcheck_unless_dead(process, timeout=5) is None
    assert time.monotonic() - started < 1


def test_a_live_worker_that_does_not_answer_fails_its_health_check_at_the_timeout() -> None:
    process, _worker_end = _worker(alive=True)
    started = time.monotonic()
    assert healthcheck_unless_dead(process, timeout=0.3) is None
    assert time.monotonic() - started >= 0.3


def _supervisor_that_first_saw(process: Process, seconds_ago: float) -> Supervisor:
    """A supervisor's health-check state alone (uvicorn's __init__ would take this process's signals)."""
    supervisor = Supervisor.__new__(Supervisor)
    supervisor._first_seen = {process.pid: time.monotonic() - seconds_ago}
    supervisor._answered = set()
    return supervisor


def _numbered_worker(alive: bool, pid: int) -> tuple[Process, Any]:
    process, worker_end = _worker(alive)
    cast(SimpleNamespace, process).pid = pid
    return process, worker_end


def test_a_new_worker_still_importing_is_not_taken_for_hung() -> None:
    process, _worker_end = _numbered_worker(alive=True, pid=101)
    supervisor = _supervisor_that_first_saw(process, seconds_ago=1)
    assert supervisor.healthcheck(process, timeout=0.1) is False


def test_a_new_worker_silent_past_its_startup_grace_is_hung() -> None:
    process, _worker_end = _numbered_worker(alive=True, pid=102)
    supervisor = _supervisor_that_first_saw(process, seconds_ago=STARTUP_GRACE_SECONDS + 1)
    assert supervisor.healthcheck(process, timeout=0.1) is None


def test_a_worker_that_answered_once_gets_no_grace_when_it_falls_silent() -> None:
    process, worker_end = _numbered_worker(alive=True, pid=103)
    supervisor = _supervisor_that_first_saw(process, seconds_ago=1)
    worker_end.send(True)
    assert supervisor.healthcheck(process, timeout=0.1) is True
    assert supervisor.healthcheck(process, timeout=0.1) is None  # frozen now: SIGSTOP in worker-freeze


def test_a_new_worker_that_died_while_starting_fails_its_health_check() -> None:
    process, _worker_end = _numbered_worker(alive=False, pid=104)
    supervisor = _supervisor_that_first_saw(process, seconds_ago=1)
    assert supervisor.healthcheck(process, timeout=0.1) is None

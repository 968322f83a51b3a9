"""A frozen worker (SIGSTOP, then SIGCONT): a GC pause or a noisy neighbour, as a Chaos Toolkit action and rollback.

The worker stays alive and keeps its sockets, so the supervisor does not replace it: connections
it accepted wait, and the kernel keeps queueing new ones on its listening socket. Only a worker
of the named service is ever signalled (a child of that service's supervisor started as a
multiprocessing worker); the frozen PIDs are written to `<data-dir>/chaos-frozen.json`, so the
rollback thaws them even from another process, and a detached timer thaws them after `seconds` anyway.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from chaos.errors import PlatformError
from chaos.platform import find_platform

FROZEN_FILE = "chaos-frozen.json"
MAX_FREEZE_SECONDS = 300


def workers_of(service: str, data_dir: str = ".nova") -> list[int]:
    """The worker PIDs under the service's supervisor (its spawned children), lowest first."""
    supervisor = find_platform(data_dir).service(service).supervisor_pid
    try:
        children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    except OSError as exc:
        raise PlatformError(f"cannot list the workers of {service} (pid {supervisor}): {exc}") from None
    return sorted(int(pid) for pid in children if "spawn_main" in _cmdline(int(pid)))


def process_state(pid: int) -> str:
    """The kernel's one-letter state of `pid` (`R`, `S`, `T` stopped, ...) from /proc; "" when it has gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return ""


def stopped(state: str) -> bool:
    """A stopped process (`T` by a signal, `t` by a tracer): alive, holding its sockets, answering nothing."""
    return state in ("T", "t")


def worker_states(service: str, data_dir: str = ".nova") -> dict[int, str]:
    """Each worker of `service` (the supervisor's children) and its state, as an operator's `ps` shows it."""
    return {pid: process_state(pid) for pid in workers_of(service, data_dir)}


def freeze_worker(service: str = "payments", seconds: float = 10, data_dir: str = ".nova") -> dict[str, Any]:
    """SIGSTOP one worker of `service` for `seconds` (then SIGCONT); returns its PID."""
    if not 0 < seconds <= MAX_FREEZE_SECONDS:
        raise PlatformError(f"seconds must be in (0, {MAX_FREEZE_SECONDS}], not {seconds}")
    workers = workers_of(service, data_dir)
    if not workers:
        raise PlatformError(f"{service} has no worker to freeze")
    pid = workers[0]
    frozen = _read(data_dir)
    frozen.append(pid)
    _write(data_dir, frozen)
    # The thaw is a detached process of its own: it happens even if `chaos run` dies before its rollback.
    subprocess.Popen(
        ["sh", "-c", f"sleep {float(seconds)}; kill -CONT {pid} 2>/dev/null"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.kill(pid, signal.SIGSTOP)
    _wait_stopped(pid)
    return {"fault": "worker_freeze", "service": service, "pid": pid, "seconds": seconds}


def _wait_stopped(pid: int, timeout_seconds: float = 2.0) -> None:
    """A signal is delivered asynchronously: return once the worker is stopped, so the fault is on."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        state = process_state(pid)
        if not state or stopped(state):
            return
        time.sleep(0.01)


def thaw_workers(data_dir: str = ".nova") -> dict[str, Any]:
    """The rollback: SIGCONT every worker a freeze stopped (a stopped process that has gone is skipped)."""
    return {"thawed": _thaw(data_dir, None)}


def _thaw(data_dir: str, pids: list[int] | None) -> list[int]:
    frozen = _read(data_dir)
    chosen = frozen if pids is None else [pid for pid in frozen if pid in pids]
    thawed = []
    for pid in chosen:
        try:
            os.kill(pid, signal.SIGCONT)
            thawed.append(pid)
        except ProcessLookupError:
            pass
    _write(data_dir, [pid for pid in frozen if pid not in chosen])
    return thawed


def _read(data_dir: str) -> list[int]:
    try:
        return [int(pid) for pid in json.loads((Path(data_dir) / FROZEN_FILE).read_text())["pids"]]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError) as exc:
        raise PlatformError(f"{Path(data_dir) / FROZEN_FILE}: unreadable ({exc!r})") from None


def _write(data_dir: str, pids: list[int]) -> None:
    path = Path(data_dir) / FROZEN_FILE
    if pids:
        path.write_text(json.dumps({"pids": pids}) + "\n")
    else:
        path.unlink(missing_ok=True)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""

"""Owned processes: started in their own session, stopped by escalation, leftovers of their group cleared."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from loadtests.processes import RESERVED_PORTS, OwnedProcess, ProcessError, free_ports


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers signal 0 until its parent reaps it
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:  # reaped between the two looks
        return False
    return stat.split(") ")[1][0] != "Z"


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_child_runs_in_a_session_of_its_own(tmp_path: Path) -> None:
    with OwnedProcess("sleeper", ["sleep", "30"], tmp_path / "log") as child:
        assert os.getsid(child.pid) == child.pid != os.getsid(0)


def test_stop_clears_what_the_child_left_in_its_group(tmp_path: Path) -> None:
    orphan = tmp_path / "orphan.pid"
    command = ["sh", "-c", f"sleep 30 & echo $! > {orphan}; exec sleep 30"]
    child = OwnedProcess("parent", command, tmp_path / "log")
    while not orphan.exists() or not orphan.read_text().strip():
        time.sleep(0.05)
    left = int(orphan.read_text())
    child.stop()
    assert not child.running
    deadline = time.monotonic() + 5
    while _alive(left) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(left)


def test_the_polite_signal_comes_first_and_is_given_its_grace(tmp_path: Path) -> None:
    said = tmp_path / "said"
    code = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGINT, lambda *_: (open({str(said)!r}, 'w').write('int'), sys.exit(0)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    child = OwnedProcess("polite", _python(code), tmp_path / "log")
    while "ready" not in child.log_tail():
        time.sleep(0.05)
    child.stop(signal.SIGINT, grace_seconds=10)
    assert said.read_text() == "int"
    assert child.popen.returncode == 0


def test_a_child_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    child = OwnedProcess("stubborn", _python(code), tmp_path / "log")
    while "ready" not in child.log_tail():
        time.sleep(0.05)
    child.stop(grace_seconds=0.5)
    assert child.popen.returncode == -signal.SIGKILL


def test_wait_ready_names_a_child_that_exited_with_its_last_words(tmp_path: Path) -> None:
    child = OwnedProcess("doomed", ["sh", "-c", "echo cannot bind; exit 3"], tmp_path / "log")
    with pytest.raises(ProcessError, match=r"doomed exited with code 3: cannot bind"):
        child.wait_ready("http://127.0.0.1:9/", timeout=10)


def test_wait_ready_gives_up_after_its_timeout(tmp_path: Path) -> None:
    with (
        OwnedProcess("mute", ["sleep", "30"], tmp_path / "log") as child,
        pytest.raises(ProcessError, match=re.escape("mute was not ready at http://127.0.0.1:9/ within 1 s")),
    ):
        child.wait_ready("http://127.0.0.1:9/", timeout=1)


def test_free_ports_are_distinct_and_never_the_services_defaults() -> None:
    ports = free_ports(50)
    assert len(set(ports)) == 50
    assert not set(ports) & RESERVED_PORTS


def test_free_ports_lie_below_the_range_the_kernel_gives_outgoing_connections() -> None:
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert all(port < ephemeral_low for port in free_ports(50))

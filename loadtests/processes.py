"""Processes the suite's tools start and own: each in its own session, its output in a log, stopped by its PID.

`nova load` starts Locust, a game day starts `nova serve`, `chaos run`, Prometheus and
Alertmanager, the benchmarks start servers. Each child runs in a session of its own, so a
terminal's Ctrl-C reaches the tool alone, which then stops its children in the order it
chooses (a game day stops `chaos run` first, so its rollbacks run). Stopping escalates from a
polite signal to SIGTERM to SIGKILL, then clears what is left of the child's process group
(workers that outlived their supervisor, Locust's forked workers): the group id stays the
child's while any member lives, so nothing else on the machine is ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

READY_TIMEOUT_SECONDS = 90.0
KILL_AFTER_SECONDS = 15.0
LEFTOVER_GRACE_SECONDS = 5.0
# The ports `nova serve` listens on by default: an instance an operator runs there is left alone.
RESERVED_PORTS = frozenset({8001, 8002})


class ProcessError(RuntimeError):
    """A child that could not start or did not become ready; the message is one line."""


class OwnedProcess:
    """One child process and its log; a context manager that always stops it. Raises OSError if
    the command cannot be started. `env` is the child's whole environment (None: this one's);
    `whole_group` sends stop signals to the child's process group, for a child that forks
    workers of its own and leaves them to the signal (Locust with `--processes`)."""

    def __init__(
        self,
        name: str,
        command: list[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        *,
        cwd: Path | None = None,
        whole_group: bool = False,
    ) -> None:
        self.name = name
        self.whole_group = whole_group
        self.log_path = log_path
        self.started = time.monotonic()
        with log_path.open("wb") as log:  # the child keeps its own descriptor
            self.popen = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def log_tail(self, lines: int = 1) -> str:
        return log_tail(self.log_path, lines)

    def wait_ready(self, url: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
        """Return once `url` answers 200; ProcessError, with the log's last lines, if the child
        exits first or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise ProcessError(f"{self.name} exited with code {self.popen.returncode}: {self.log_tail(5)}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ProcessError(f"{self.name} was not ready at {url} within {timeout:.0f} s: {self.log_tail(5)}")

    def stop(self, first: signal.Signals = signal.SIGTERM, grace_seconds: float = KILL_AFTER_SECONDS) -> None:
        """`first`, then SIGTERM, then SIGKILL, each after the one before had its time; then the
        process group's leftovers. Idempotent."""
        steps = [(first, grace_seconds)]
        if first != signal.SIGTERM:
            steps.append((signal.SIGTERM, LEFTOVER_GRACE_SECONDS))
        for sig, wait in steps:
            if self.popen.poll() is not None:
                break
            if self.whole_group:
                self._signal_group(sig)
            else:
                with contextlib.suppress(ProcessLookupError):
                    self.popen.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(wait)
        if self.popen.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.popen.wait()
        self._reap_leftovers()

    def _signal_group(self, sig: int) -> bool:
        """Signal the group start_new_session created (the child and its children); False if empty."""
        try:
            os.killpg(self.popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _reap_leftovers(self) -> None:
        if not self._signal_group(signal.SIGTERM):
            return
        deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if not self._signal_group(0):
                return
        self._signal_group(signal.SIGKILL)


def log_tail(path: Path, lines: int = 1) -> str:
    """The last non-blank lines of a log, joined with " | ", for a one-line error."""
    try:
        text = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(no output)"


def free_ports(count: int = 1) -> list[int]:
    """Loopback ports nothing listens on now, all distinct and never handed out twice by this process.

    They come from below the kernel's ephemeral range: a port the kernel picks for `bind(0)` is
    from the range it also gives outgoing connections, so between the pick and the child's
    `listen` a client connection (the load, a scrape) can take it. The ports `nova serve` uses by
    default are never handed out.
    """
    low, high = _UNEPHEMERAL_PORTS
    ports: list[int] = []
    for _ in range(_PICK_ATTEMPTS):
        if len(ports) == count:
            return ports
        port = _RANDOM.randrange(low, high)
        if port in RESERVED_PORTS or port in _HANDED_OUT or not _bindable(port):
            continue
        _HANDED_OUT.add(port)
        ports.append(port)
    raise ProcessError(f"no {count} free loopback ports between {low} and {high}")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _unephemeral_ports() -> tuple[int, int]:
    """[low, high): ports under the kernel's ephemeral range (Linux's default starts at 32768)."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    return 10000, max(ephemeral_low, 11000)


_UNEPHEMERAL_PORTS = _unephemeral_ports()
_PICK_ATTEMPTS = 1000
_RANDOM = random.SystemRandom()
_HANDED_OUT: set[int] = set()

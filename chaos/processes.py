"""Processes a game day starts and owns: each in its own session, its output in a log, stopped by its PID.

Its own session keeps a terminal's Ctrl-C away from children (the game day decides the order
they stop in: `chaos run` first, so its rollbacks run); stopping escalates from a polite signal
to SIGTERM to SIGKILL, and never signals anything but the PID this object started.
"""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Mapping
from pathlib import Path

KILL_AFTER_SECONDS = 5.0


class OwnedProcess:
    """One child process; raises OSError if it cannot be started."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                command,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 1) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no output)"
        return " | ".join(line.strip() for line in text[-lines:]) or "(no output)"

    def stop(self, first: signal.Signals = signal.SIGTERM, grace_seconds: float = KILL_AFTER_SECONDS) -> None:
        """`first`, then SIGTERM, then SIGKILL, each after the one before had its time; idempotent."""
        for sig, wait in ((first, grace_seconds), (signal.SIGTERM, KILL_AFTER_SECONDS), (signal.SIGKILL, None)):
            if self.popen.poll() is not None:
                return
            try:
                self.popen.send_signal(sig)
                self.popen.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return


def free_ports(count: int = 1) -> list[int]:
    """Loopback ports nothing listens on now (the kernel picks them, all distinct)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()

"""The servers the benchmark starts, and only those: each in its own session, stopped by its PID.

A server runs in a new session so that Ctrl-C in the terminal reaches the benchmark
alone, which then stops its servers in order (SIGTERM, and SIGKILL for the server's
own process group only if it has not exited 15 s later). Nothing else on the machine
is signalled, whatever its name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

from loadtests.bench.errors import BenchError

# The ports `nova serve` listens on by default: an instance an operator runs there is left alone.
RESERVED_PORTS = frozenset({8001, 8002})
READY_TIMEOUT_SECONDS = 90.0
KILL_AFTER_SECONDS = 15.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port(taken: set[int]) -> int:
    """A port nothing listens on now; the kernel picks it, so it is outside the reserved ones."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port not in RESERVED_PORTS and port not in taken:
            return port


def clean_environment() -> dict[str, str]:
    """This process's environment without NOVA_* settings.

    `nova serve` reads NOVA_PAYMENTS_DB, NOVA_ADMIN_TOKEN and friends from the
    environment; an operator's own values would silently change what is measured.
    """
    return {name: value for name, value in os.environ.items() if not name.startswith("NOVA_")}


class OwnedProcess:
    """A server subprocess this benchmark started; a context manager that always stops it."""

    def __init__(self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        try:
            self.popen = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env={**clean_environment(), **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            raise

    def __enter__(self) -> OwnedProcess:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()

    def wait_ready(self, url: str) -> None:
        """Return once `url` answers 200; fail early, with the server's log, if it exits."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise BenchError(f"{self.name} exited with code {self.popen.returncode}: {self.log_tail()}")
            try:
                if httpx.get(url, timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} was not ready at {url} within {READY_TIMEOUT_SECONDS:.0f} s")

    def log_tail(self, lines: int = 5) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").strip().splitlines()
        return " | ".join(text[-lines:]) or "(no output)"

    def stop(self) -> None:
        """SIGTERM by PID, then SIGKILL to the process group if it outlives the grace period."""
        try:
            if self.popen.poll() is None:
                self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=KILL_AFTER_SECONDS)
            except subprocess.TimeoutExpired:
                self._kill_group()
                self.popen.wait()
            self._reap_leftovers()
        finally:
            self._log.close()

    def _kill_group(self, sig: int = signal.SIGKILL) -> bool:
        """Signal the group start_new_session created (this server and its children); False if empty."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def _reap_leftovers(self) -> None:
        """Stop workers that outlived their supervisor; the group id stays ours while any exists."""
        if not self._kill_group(signal.SIGTERM):
            return
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if not self._kill_group(0):
                return
        self._kill_group()


@contextmanager
def nova_serve(
    data_dir: Path, workers: int, payments_db: str | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[OwnedProcess, str, str]]:
    """`nova serve` on two free ports, ready on both; yields it with the payments and portfolio URLs.

    Stopped (SIGTERM, then SIGKILL) on exit. `env` adds settings such as NOVA_TELEMETRY.
    """
    payments_port = free_port(set())
    portfolio_port = free_port({payments_port})
    command = [
        sys.executable,
        "-m",
        "nova",
        "serve",
        "--data-dir",
        str(data_dir),
        "--payments-port",
        str(payments_port),
        "--portfolio-port",
        str(portfolio_port),
        "--workers",
        str(workers),
    ]
    if payments_db is not None:
        command += ["--payments-db", payments_db]
    url = f"http://127.0.0.1:{payments_port}"
    with OwnedProcess("nova serve", command, data_dir.with_suffix(".log"), env=env) as server:
        server.wait_ready(f"{url}/readyz")
        # Portfolio starts after payments; waiting keeps its start-up off the measured CPUs.
        server.wait_ready(f"http://127.0.0.1:{portfolio_port}/readyz")
        yield server, url, f"http://127.0.0.1:{portfolio_port}"

"""Driving wrk and reading its report.

wrk prints durations with their own unit (`612.00us`, `1.02ms`, `1.20s`, `2.00m`), so
every duration is converted to milliseconds before figures are compared or
averaged; reading `612.00us` as 612 ms would make a fast run look like a disaster.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from loadtests.bench.cpu import database_seconds, others_share, own_seconds, read_cpu, service_seconds
from loadtests.bench.errors import BenchError

WRK_THREADS = 2
_MS_PER_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = r"([\d.]+)(us|ms|s|m|h)"

Tick = Callable[[float], None]


class WrkRun(NamedTuple):
    """One wrk invocation, as wrk and the Lua script reported it."""

    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int
    # Per-status counts from payments.lua's `done`; None for runs without that script.
    statuses: dict[int, int] | None
    # Share of all CPUs that processes outside the benchmark used during the run (see cpu.py).
    others_cpu: float = 0.0
    # CPU seconds the benchmark's own processes used during the run, wrk included.
    own_cpu_seconds: float = 0.0
    # CPU seconds of the measured server's process tree alone (no wrk, no database backends).
    service_cpu_seconds: float = 0.0
    # CPU seconds of the PostgreSQL backends serving the scratch database.
    database_cpu_seconds: float = 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        """What one request costs the service's own processes; unlike requests/s, barely moved by other work."""
        return self._per_request(self.service_cpu_seconds)

    @property
    def database_cpu_ms_per_request(self) -> float:
        return self._per_request(self.database_cpu_seconds)

    @property
    def total_cpu_ms_per_request(self) -> float:
        """Everything the benchmark ran: service, database backends and wrk itself."""
        return self._per_request(self.own_cpu_seconds)

    def _per_request(self, seconds: float) -> float:
        return seconds * 1000 / self.requests if self.requests else 0.0

    @property
    def created(self) -> int:
        return (self.statuses or {}).get(201, 0)

    @property
    def errors(self) -> int:
        """Requests that did not get the answer the scenario expects, socket errors included."""
        if self.statuses is None:
            return self.non_2xx + self.socket_errors
        return sum(count for status, count in self.statuses.items() if status != 201) + self.socket_errors


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError("wrk is not installed (Debian: apt-get install wrk)")
    return path


def run_wrk(
    url: str,
    connections: int,
    seconds: int,
    script: Path | None = None,
    tick: Tick | None = None,
    owned_marker: str | None = None,
    service_pid: int | None = None,
) -> WrkRun:
    """Run wrk to completion, calling `tick(elapsed_seconds)` a few times a second for a progress display.

    `owned_marker` names the scratch database whose PostgreSQL backends count as the
    benchmark's own CPU time rather than other work's; `service_pid` is the server
    whose process tree's CPU time is the run's CPU per request.
    """
    command = [require_wrk(), f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    before, started = read_cpu(owned_marker, service_pid), time.monotonic()
    output, errors, code = _run_with_ticks(command, tick)
    after = read_cpu(owned_marker, service_pid)
    if code != 0:
        raise BenchError(f"wrk exited with code {code}: {(errors or output).strip()[:300]}")
    return parse_wrk(output)._replace(
        others_cpu=others_share(before, after, time.monotonic() - started),
        own_cpu_seconds=own_seconds(before, after),
        service_cpu_seconds=service_seconds(before, after),
        database_cpu_seconds=database_seconds(before, after),
    )


def _run_with_ticks(command: list[str], tick: Tick | None) -> tuple[str, str, int]:
    started = time.monotonic()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            while True:
                try:
                    output, errors = process.communicate(timeout=0.25)
                    return output, errors, process.returncode
                except subprocess.TimeoutExpired:
                    if tick is not None:
                        tick(time.monotonic() - started)
        except BaseException:
            process.kill()  # our own child, by PID; a half-finished run is worth nothing
            raise


def parse_wrk(output: str) -> WrkRun:
    """The figures of a `wrk --latency` report; BenchError if a required one is missing."""
    return WrkRun(
        requests=int(_required(r"(\d+) requests in", output)),
        requests_per_second=float(_required(r"Requests/sec:\s+([\d.]+)", output)),
        p50_ms=_latency_ms("50", output),
        p99_ms=_latency_ms("99", output),
        socket_errors=_socket_errors(output),
        non_2xx=int(_optional(r"Non-2xx or 3xx responses:\s+(\d+)", output) or 0),
        statuses=_statuses(output),
    )


def duration_ms(text: str) -> float:
    """`612.00us` -> 0.612; `1.02ms` -> 1.02; `1.20s` -> 1200.0."""
    match = re.fullmatch(_DURATION, text.strip())
    if match is None:
        raise BenchError(f"wrk printed a duration this benchmark cannot read: {text!r}")
    return float(match.group(1)) * _MS_PER_UNIT[match.group(2)]


def _latency_ms(percentile: str, output: str) -> float:
    # Anchored to the distribution block: `--latency` prints it as lines like "     99%    3.20ms".
    block = _required(r"Latency Distribution\n((?:\s+\d+%\s+\S+\n?)+)", output)
    match = re.search(rf"^\s+{percentile}%\s+(\S+)", block, re.MULTILINE)
    if match is None:
        raise BenchError(f"wrk's latency distribution has no {percentile}% line")
    return duration_ms(match.group(1))


def _socket_errors(output: str) -> int:
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return sum(int(count) for count in match.groups()) if match else 0


def _statuses(output: str) -> dict[int, int] | None:
    line = _optional(r"^nova-statuses ?(.*)$", output)
    if line is None:
        return None
    pairs = (item.split(":") for item in line.split(",") if item)
    return {int(status): int(count) for status, count in pairs}


def _required(pattern: str, output: str) -> str:
    found = _optional(pattern, output)
    if found is None:
        raise BenchError(f"wrk's report has no match for {pattern!r}: {output.strip()[:300]}")
    return found


def _optional(pattern: str, output: str) -> str | None:
    match = re.search(pattern, output, re.MULTILINE)
    return match.group(1) if match else None

"""How much of the machine's CPU other work took while a figure was measured.

On a shared machine, a test suite running next door can halve requests per second,
and a table that does not say so invites the wrong conclusion about the service. So
every wrk run is bracketed by two readings of /proc: all CPU time spent, and the time
spent by this benchmark's own processes (its descendants, plus the PostgreSQL
backends serving its scratch database, which are the postmaster's children). The
difference is other processes' share of the machine.

The same readings give the primary figure, CPU per request: the CPU time of the
service's own process tree (the server and its workers, not wrk, not this process)
divided by the requests answered. A busy neighbour stretches wall-clock time and
halves requests per second, but barely moves the CPU a request costs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

_PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


class CpuReading(NamedTuple):
    # Jiffies summed over all CPUs; interrupts are left out, as they mostly serve the load's own packets.
    busy: int
    ours: int
    # The measured server's process tree (server and workers), and the database backends serving it.
    service: int = 0
    database: int = 0


class _Process(NamedTuple):
    ppid: int
    jiffies: int  # own user+system time plus that of its reaped children
    command: str


def read_cpu(owned_marker: str | None = None, service_pid: int | None = None) -> CpuReading:
    """`owned_marker`: text in a command line that makes a process ours (a scratch database's name).

    `service_pid`: the measured server; it and its descendants are the service's CPU time.
    """
    processes = _processes(owned_marker is not None)
    ours = _descendants(os.getpid(), processes)
    database: set[int] = set()
    if owned_marker is not None:
        database = {pid for pid, process in processes.items() if owned_marker in process.command}
        ours |= database
    service = _descendants(service_pid, processes) if service_pid is not None else set()
    return CpuReading(
        _machine_busy(), _jiffies(ours, processes), _jiffies(service, processes), _jiffies(database, processes)
    )


def own_seconds(before: CpuReading, after: CpuReading) -> float:
    """CPU seconds the benchmark's own processes (servers, wrk, their database backends) spent in between."""
    return (after.ours - before.ours) / _TICKS_PER_SECOND


def service_seconds(before: CpuReading, after: CpuReading) -> float:
    """CPU seconds the measured server's own processes spent in between: no wrk, no database."""
    return (after.service - before.service) / _TICKS_PER_SECOND


def database_seconds(before: CpuReading, after: CpuReading) -> float:
    """CPU seconds the PostgreSQL backends serving the scratch database spent in between."""
    return (after.database - before.database) / _TICKS_PER_SECOND


def others_share(before: CpuReading, after: CpuReading, seconds: float) -> float:
    """Other processes' CPU time as a share of all CPUs' capacity over `seconds` (0.25 = a quarter)."""
    capacity = seconds * _TICKS_PER_SECOND * len(os.sched_getaffinity(0))
    if capacity <= 0:
        return 0.0
    return max(0, (after.busy - before.busy) - (after.ours - before.ours)) / capacity


def _jiffies(pids: set[int], processes: dict[int, _Process]) -> int:
    return sum(processes[pid].jiffies for pid in pids)


def _machine_busy() -> int:
    fields = (_PROC / "stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, _irq, _softirq, steal = (int(value) for value in fields[:8])
    # Steal is time the hypervisor gave to other guests: interference as much as a neighbour's process.
    return user + nice + system + steal


def _processes(with_commands: bool) -> dict[int, _Process]:
    found: dict[int, _Process] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (
                (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace") if with_commands else ""
            )
        except OSError:  # exited between listing and reading
            continue
        # The command name may contain spaces and parentheses; the fields after its closing one do not.
        fields = stat.rsplit(")", 1)[1].split()
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        found[int(entry.name)] = _Process(int(fields[1]), utime + stime + cutime + cstime, command)
    return found


def _descendants(root: int, processes: dict[int, _Process]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, process in processes.items():
        children.setdefault(process.ppid, []).append(pid)
    found, frontier = {root}, [root]
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found & processes.keys()

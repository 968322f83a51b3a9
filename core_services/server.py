"""Run one service as a supervised group of worker processes.

uvicorn's multiprocess supervisor binds the socket once, shares it with N workers,
and starts a replacement whenever a worker dies, so a killed worker costs only the
requests it was holding. It is used for N = 1 too: one worker is still supervised.

The workers share one Prometheus metrics folder, `<data-dir>/metrics/<service>/`, made
empty here before the first worker starts; a worker that dies is forgotten there, so
its live gauges go while what it counted still counts.

    python -m core_services.server payments --port 8001 --workers 2
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import pickle
import signal
import socket
import sys
import time
from pathlib import Path

import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

from core_services.connections import GuardedConfig, default_max_connections
from core_services.faults import forget_faults
from core_services.settings import ServiceSettings, SettingsError
from instrumentation.multiprocess import forget_worker, prepare_metrics_dir

log = logging.getLogger("nova.supervisor")
# How often a health check that has no answer yet looks whether its worker is still alive.
HEALTHCHECK_SLICE_SECONDS = 0.05
# How long a new worker that has never answered a health check may stay silent before it counts
# as hung. A replacement answers only once it has imported the supervisor's modules (about 0.9 s
# of CPU); on a machine saturated by the load that lost a worker that took over 5 s, so uvicorn
# killed healthy replacements as hung and started others, each costing that CPU again.
STARTUP_GRACE_SECONDS = 20.0

APPS = {
    "payments": "core_services.payments.api:worker_app",
    "portfolio": "core_services.portfolio.api:worker_app",
}


def serve(
    service: str,
    host: str,
    port: int,
    workers: int,
    metrics_dir: Path,
    access_log: bool = False,
    max_connections: int = 0,
) -> None:
    prepare_metrics_dir(metrics_dir)
    # prometheus-client reads this in each worker, before any metric exists.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    # Bounded heads, read deadlines and a connection cap (core_services.connections); keep-alive is the read timeout.
    config = GuardedConfig(
        APPS[service],
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        max_connections=max_connections or default_max_connections(),
        access_log=access_log,
        log_level=os.environ.get("NOVA_LOG_LEVEL", "warning"),
        timeout_graceful_shutdown=10,
    )
    sock = config.bind_socket()
    Supervisor(config, [sock], metrics_dir, service).run()


class Supervisor(Multiprocess):
    """uvicorn's supervisor, which also says which worker it lost and how (at the default log level),
    and forgets, in the metrics folder, each worker it has lost or retired."""

    def __init__(
        self, config: uvicorn.Config, sockets: list[socket.socket], metrics_dir: Path, service: str = "service"
    ) -> None:
        super().__init__(config, sockets)
        self.metrics_dir = metrics_dir
        self.service = service
        self._workers: set[int] = set()
        self._first_seen: dict[int | None, float] = {}
        self._answered: set[int | None] = set()

    def keep_subprocess_alive(self) -> None:
        before = list(self.processes)
        hung: set[int | None] = set()
        for process in before:
            self._first_seen.setdefault(process.pid, time.monotonic())
            process.kill = functools.partial(_kill_noting_hung, process, hung)  # type: ignore[method-assign]
            process._healthcheck = functools.partial(self.healthcheck, process)  # type: ignore[method-assign]
        super().keep_subprocess_alive()  # replaces dead workers, and kills and replaces hung ones
        if self.should_exit.is_set():
            return
        for process in before:
            if process not in self.processes:
                how = "did not answer its health check; killed" if process.pid in hung else _ended_by(process.exitcode)
                log.warning("%s worker %s %s; replaced", self.service, process.pid, how)
        self._forget_departed_workers()

    def healthcheck(self, process: Process, timeout: float) -> bool | None:
        """The worker's startup flag; None (hung or dead) unless it is a new worker that has never
        answered and is still within its startup grace: that one is alive and not started (False)."""
        answer = healthcheck_unless_dead(process, timeout)
        if answer is not None:
            self._answered.add(process.pid)
            return answer
        age = time.monotonic() - self._first_seen.get(process.pid, 0.0)
        if process.pid not in self._answered and age < STARTUP_GRACE_SECONDS and process.process.is_alive():
            return False
        return None

    def handle_signals(self) -> None:
        super().handle_signals()  # SIGHUP and SIGTTOU retire workers
        self._forget_departed_workers()

    def _forget_departed_workers(self) -> None:
        current = {process.pid for process in self.processes if process.pid is not None}
        for pid in self._workers - current:
            forget_worker(pid, self.metrics_dir)
            self._first_seen.pop(pid, None)
            self._answered.discard(pid)
        self._workers = current


def healthcheck_unless_dead(process: Process, timeout: float) -> bool | None:
    """uvicorn's health check (the worker's startup flag, None without an answer), given up as
    soon as the worker has exited.

    uvicorn waits out the whole timeout (5 s) for a worker that died after the ping was
    sent: the pipe's far end stays open in the supervisor, so no end-of-file comes. The
    supervisor checks its workers one at a time, so a kill landing mid-ping left a
    service a worker short for 5 s, at peak load the worst 5 s of a game day.
    """
    deadline = time.monotonic() + timeout
    try:
        process.parent_conn.send(b"ping")
        while not process.parent_conn.poll(HEALTHCHECK_SLICE_SECONDS):
            if not process.process.is_alive() or time.monotonic() >= deadline:
                return None
        started: bool = process.parent_conn.recv()
        return started
    except (OSError, EOFError, pickle.UnpicklingError):
        return None


def _kill_noting_hung(process: Process, hung: set[int | None]) -> None:
    """uvicorn kills a worker whose health check failed; it was hung only if it was still running
    then. One that died by itself meanwhile (a SIGKILL takes a moment on a loaded machine) was not."""
    if process.process.exitcode is None:
        hung.add(process.pid)
    Process.kill(process)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core_services.server", description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=sorted(APPS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        # Migrate once, here, before any worker starts: workers then never need the
        # database to boot, so a worker replaced during a database outage still comes up.
        settings = ServiceSettings.from_env()
        _migrate(args.service, settings)
        # A fresh start has no faults on, whatever a previous run's experiment left.
        forget_faults(settings.data_dir, args.service)
    except (SettingsError, SQLAlchemyError) as exc:
        print(f"{args.service}: cannot start: {_one_line(exc)}", file=sys.stderr)
        return 2
    metrics_dir = (settings.data_dir / "metrics" / args.service).absolute()
    serve(args.service, args.host, args.port, args.workers, metrics_dir, args.access_log, settings.max_connections)
    return 0


def _migrate(service: str, settings: ServiceSettings) -> None:
    from core_services.database import Database

    if service == "payments":
        from core_services.payments.schema import MIGRATIONS, metadata

        url = settings.payments_db
    else:
        from core_services.portfolio.schema import MIGRATIONS, metadata

        url = settings.portfolio_db
    database = Database(url, pool_size=1)
    try:
        database.migrate(metadata, MIGRATIONS)
    finally:
        database.dispose()


def _ended_by(exitcode: int | None) -> str:
    """How a worker ended, from its exit code (negative: the signal that killed it)."""
    if exitcode is not None and exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"


def _one_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).strip().splitlines()[0]


if __name__ == "__main__":
    sys.exit(main())

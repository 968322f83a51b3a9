"""The ceilings a payment is read against, measured in the same run on the same machine.

A payments figure alone says little: 3,000/s is excellent if bare HTTP tops out at
4,000/s and poor if it tops out at 40,000/s. So the benchmark also measures the HTTP
ceiling (a bare ASGI app under the services' uvicorn settings) and each database's
raw rate of small committed transactions.
"""

from __future__ import annotations

import glob
import re
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import psycopg

from loadtests.bench.errors import BenchError
from loadtests.bench.hello_asgi import serve_command
from loadtests.bench.processes import REPO_ROOT, clean_environment
from loadtests.bench.wrk import WRK_THREADS, Tick
from loadtests.processes import OwnedProcess, free_ports

WARMUP_SECONDS = 3
_COMMIT_TABLE = (
    "CREATE TABLE commits (id {serial} PRIMARY KEY, payload VARCHAR(32) NOT NULL, created_at VARCHAR(32) NOT NULL)"
)
_PAYLOAD = "pay_0123456789abcdef"
_CREATED_AT = "2025-01-01T00:00:00.000000Z"


class CommitRate(NamedTuple):
    commits_per_second: float
    method: str
    seconds: float
    latency_avg_ms: float | None = None


@contextmanager
def hello_server(workdir: Path, workers: int) -> Iterator[tuple[OwnedProcess, str]]:
    """A bare ASGI app served exactly as the services are (uvloop, httptools, no access log), warmed up.

    Yields the server and its URL; stopped on exit. Its wrk runs are the HTTP ceiling.
    """
    (port,) = free_ports()
    command = serve_command(port, workers)
    url = f"http://127.0.0.1:{port}/"
    log = workdir / "hello-asgi.log"
    with OwnedProcess("hello-world ASGI", command, log, clean_environment(), cwd=REPO_ROOT) as server:
        server.wait_ready(url)
        yield server, url


def sqlite_commit_rate(workdir: Path, seconds: float, tick: Tick) -> CommitRate:
    """One small INSERT per transaction, WAL and synchronous=NORMAL, as the payments service configures SQLite."""
    conn = sqlite3.connect(workdir / "commits.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_COMMIT_TABLE.format(serial="INTEGER"))
        commits, elapsed = _commit_loop(conn, seconds, tick)
    finally:
        conn.close()
    return CommitRate(
        commits / elapsed, "Python sqlite3 loop, 1 INSERT per transaction, WAL, synchronous=NORMAL", elapsed
    )


def _commit_loop(conn: sqlite3.Connection, seconds: float, tick: Tick) -> tuple[int, float]:
    commits, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        # BEGIN IMMEDIATE, as the service's writes do: the write lock is taken up front.
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO commits (payload, created_at) VALUES (?, ?)", (_PAYLOAD, _CREATED_AT))
        conn.execute("COMMIT")
        commits += 1
        if commits % 2000 == 0:
            tick(elapsed)
    return commits, elapsed


def postgres_commit_rate(database_url: str, clients: int, seconds: int, workdir: Path, tick: Tick) -> CommitRate:
    """pgbench with one INSERT per transaction at the load's client count; a psycopg loop if pgbench is absent."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(_COMMIT_TABLE.format(serial="BIGSERIAL"))
    pgbench = find_pgbench()
    if pgbench is None:
        return _psycopg_commit_rate(database_url, clients, seconds, tick)
    return _pgbench_commit_rate(pgbench, database_url, clients, seconds, workdir, tick)


def find_pgbench() -> str | None:
    """On PATH (Debian's postgresql-contrib wrapper), else the server's own bin directory."""
    found = shutil.which("pgbench")
    if found is not None:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"))
    return candidates[-1] if candidates else None


def _pgbench_commit_rate(
    pgbench: str, database_url: str, clients: int, seconds: int, workdir: Path, tick: Tick
) -> CommitRate:
    script = workdir / "one-insert.sql"
    script.write_text(f"INSERT INTO commits (payload, created_at) VALUES ('{_PAYLOAD}', '{_CREATED_AT}');\n")
    jobs = min(WRK_THREADS, clients)
    command = [pgbench, "-n", "-c", str(clients), "-j", str(jobs), "-T", str(seconds), "-f", str(script), database_url]
    output = _run_ticking(command, tick)
    tps = re.search(r"^tps = ([\d.]+)", output, re.MULTILINE)
    if tps is None:
        raise BenchError(f"pgbench printed no tps line: {output.strip()[:300]}")
    latency = re.search(r"^latency average = ([\d.]+) ms", output, re.MULTILINE)
    return CommitRate(
        float(tps.group(1)),
        f"pgbench -c {clients} -j {jobs}, 1 INSERT per transaction",
        float(seconds),
        float(latency.group(1)) if latency else None,
    )


def _run_ticking(command: list[str], tick: Tick) -> str:
    started = time.monotonic()
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        try:
            while True:
                try:
                    output, _ = process.communicate(timeout=0.25)
                    break
                except subprocess.TimeoutExpired:
                    tick(time.monotonic() - started)
        except BaseException:
            process.kill()
            raise
    if process.returncode != 0:
        raise BenchError(f"{Path(command[0]).name} exited with code {process.returncode}: {output.strip()[:300]}")
    return output


def _psycopg_commit_rate(database_url: str, clients: int, seconds: int, tick: Tick) -> CommitRate:
    counts = [0] * clients
    deadline = time.monotonic() + seconds
    failures: list[BaseException] = []
    threads = [
        threading.Thread(target=_psycopg_client, args=(database_url, deadline, counts, index, failures.append))
        for index in range(clients)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        tick(time.monotonic() - started)
        time.sleep(0.25)
    if failures:
        raise BenchError(f"psycopg commit loop failed: {failures[0]}")
    elapsed = time.monotonic() - started
    return CommitRate(sum(counts) / elapsed, f"psycopg loop, {clients} threads (pgbench not installed)", elapsed)


def _psycopg_client(
    database_url: str, deadline: float, counts: list[int], index: int, fail: Callable[[BaseException], None]
) -> None:
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            while time.monotonic() < deadline:
                conn.execute("INSERT INTO commits (payload, created_at) VALUES (%s, %s)", (_PAYLOAD, _CREATED_AT))
                counts[index] += 1
    except Exception as exc:  # reported by the caller, which owns the error message
        fail(exc)

"""What the benchmarks start: `nova serve` on free ports, ready, in an environment of its own.

The processes themselves are `loadtests.processes.OwnedProcess`: their own session, stopped
by their PID, nothing else on the machine signalled.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from loadtests.processes import OwnedProcess, free_ports

REPO_ROOT = Path(__file__).resolve().parents[2]


def clean_environment() -> dict[str, str]:
    """This process's environment without NOVA_* settings.

    `nova serve` reads NOVA_PAYMENTS_DB, NOVA_ADMIN_TOKEN and friends from the
    environment; an operator's own values would silently change what is measured.
    """
    return {name: value for name, value in os.environ.items() if not name.startswith("NOVA_")}


@contextmanager
def nova_serve(
    data_dir: Path,
    workers: int,
    payments_db: str | None = None,
    env: dict[str, str] | None = None,
    root: Path = REPO_ROOT,
) -> Iterator[tuple[OwnedProcess, str, str]]:
    """`nova serve` on two free ports, ready on both; yields it with the payments and portfolio URLs.

    Stopped (SIGTERM, then SIGKILL) on exit. `env` adds settings such as NOVA_TELEMETRY.
    `root` is the checkout whose code it runs (another one: a baseline to compare with).
    """
    payments_port, portfolio_port = free_ports(2)
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
    environment = {**clean_environment(), **(env or {})}
    if root != REPO_ROOT:
        environment["PYTHONPATH"] = str(root)
    with OwnedProcess("nova serve", command, data_dir.with_suffix(".log"), environment, cwd=root) as server:
        server.wait_ready(f"{url}/readyz")
        # Portfolio starts after payments; waiting keeps its start-up off the measured CPUs.
        server.wait_ready(f"http://127.0.0.1:{portfolio_port}/readyz")
        yield server, url, f"http://127.0.0.1:{portfolio_port}"

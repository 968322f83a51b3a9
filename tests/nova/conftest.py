"""Fixtures that run the real platform: `nova serve` processes on free loopback ports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtests.processes import free_ports
from nova.serve import Platform, ServeOptions
from tests.conftest import ADMIN_TOKEN


def free_port() -> int:
    """A loopback port outside the kernel's ephemeral range, so no client connection takes it first."""
    return free_ports()[0]


def worker_pids(supervisor_pid: int) -> set[int]:
    """The uvicorn workers under a service supervisor (its spawned children)."""
    children = Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children").read_text().split()
    return {int(pid) for pid in children if "spawn_main" in _cmdline(int(pid))}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


RunPlatform = Callable[..., AbstractContextManager[Platform]]


@contextmanager
def serving(data_dir: Path, **options: Any) -> Iterator[Platform]:
    """`nova serve`'s platform on free loopback ports with the tests' admin token; always stopped.

    `options`: other ServeOptions fields (workers, databases, fault API, fault proxy port).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NOVA_ADMIN_TOKEN", ADMIN_TOKEN)
        platform = Platform(
            ServeOptions(data_dir=data_dir, payments_port=free_port(), portfolio_port=free_port(), **options)
        )
        platform.start()
        try:
            yield platform
        finally:
            platform.stop()


@pytest.fixture
def run_platform(tmp_path: Path) -> RunPlatform:
    """Start both services as real supervised processes; always stopped afterwards."""

    def run(
        workers: int = 2, payments_db: str | None = None, enable_faults: bool = False
    ) -> AbstractContextManager[Platform]:
        return serving(tmp_path / "data", workers=workers, payments_db=payments_db, enable_faults=enable_faults)

    return run


def admin_client(platform: Platform, service: str = "payments") -> httpx.Client:
    return httpx.Client(
        base_url=platform.options.url(service), timeout=10.0, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )

"""Fixtures that run the real platform: `nova serve` processes on free loopback ports."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx
import pytest

from nova.serve import Platform, ServeOptions
from tests.conftest import ADMIN_TOKEN


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


@pytest.fixture
def run_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RunPlatform:
    """Start both services as real supervised processes; always stopped afterwards."""
    monkeypatch.setenv("NOVA_ADMIN_TOKEN", ADMIN_TOKEN)

    @contextmanager
    def run(workers: int = 2, payments_db: str | None = None, enable_faults: bool = False) -> Iterator[Platform]:
        options = ServeOptions(
            data_dir=tmp_path / "data",
            payments_port=free_port(),
            portfolio_port=free_port(),
            workers=workers,
            payments_db=payments_db,
            enable_faults=enable_faults,
        )
        platform = Platform(options)
        platform.start()
        try:
            yield platform
        finally:
            platform.stop()

    return run


def admin_client(platform: Platform, service: str = "payments") -> httpx.Client:
    return httpx.Client(
        base_url=platform.options.url(service), timeout=10.0, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )

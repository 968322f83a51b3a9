"""A frozen worker on the real platform: requests wait while it is stopped, and the rollback thaws it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chaos.process_faults import FROZEN_FILE, freeze_worker, thaw_workers, workers_of
from nova.serve import Platform
from tests.nova.conftest import serving


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with serving(tmp_path_factory.mktemp("freeze") / "data", workers=1) as running:
        yield running


def test_a_frozen_worker_stalls_requests_until_the_rollback_thaws_it(platform: Platform) -> None:
    data_dir = str(platform.options.data_dir)
    [worker] = workers_of("payments", data_dir)
    frozen = freeze_worker("payments", seconds=60, data_dir=data_dir)
    assert frozen["pid"] == worker and process_state(worker) == "T"
    assert (Path(data_dir) / FROZEN_FILE).exists()
    with pytest.raises(httpx.ReadTimeout):  # a stopped worker answers nothing
        httpx.get(f"{platform.options.url('payments')}/readyz", timeout=1.0)
    assert thaw_workers(data_dir)["thawed"] == [worker]
    assert process_state(worker) != "T"
    assert httpx.get(f"{platform.options.url('payments')}/readyz", timeout=5.0).status_code == 200
    assert workers_of("payments", data_dir) == [worker]  # thawed, not replaced
    assert not (Path(data_dir) / FROZEN_FILE).exists()


def test_a_freeze_thaws_by_itself_after_its_seconds(platform: Platform) -> None:
    data_dir = str(platform.options.data_dir)
    pid = freeze_worker("payments", seconds=1, data_dir=data_dir)["pid"]
    deadline = time.monotonic() + 10
    while process_state(pid) == "T" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_state(pid) != "T"
    thaw_workers(data_dir)

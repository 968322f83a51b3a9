"""`serve.json` and the admin token have one typed home that every reader goes through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.serve_state import (
    ServedService,
    ServeState,
    ServeStateError,
    read_admin_token,
    read_serve_state,
    running_serve_state,
)

# As DESIGN.md and `nova serve` lay it out: the supervisor, the fault API flag, the services, the proxy.
WRITTEN = """{
  "pid": 4242,
  "faults_enabled": true,
  "services": {
    "payments": {
      "pid": 4243,
      "url": "http://127.0.0.1:8001",
      "workers": 2
    },
    "portfolio": {
      "pid": 4244,
      "url": "http://127.0.0.1:8002",
      "workers": 2
    }
  },
  "fault_proxy": {
    "url": "http://127.0.0.1:8474"
  }
}
"""


def ended_pid() -> int:
    """The PID of a process that has ended, as a SIGKILLed nova serve's has."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def state(pid: int, proxy: str | None = "http://127.0.0.1:8474") -> ServeState:
    services = {
        "payments": ServedService("http://127.0.0.1:8001", pid + 1, 2),
        "portfolio": ServedService("http://127.0.0.1:8002", pid + 2, 2),
    }
    return ServeState(pid, services, faults_enabled=True, fault_proxy_url=proxy)


def test_the_written_file_is_byte_for_byte_the_documented_layout(tmp_path: Path) -> None:
    state(4242).write(tmp_path)
    assert (tmp_path / "serve.json").read_text() == WRITTEN
    assert not (tmp_path / "serve.json.partial").exists()


def test_a_state_read_back_is_the_state_written(tmp_path: Path) -> None:
    written = state(4242)
    written.write(tmp_path)
    assert read_serve_state(tmp_path) == written


def test_without_a_fault_proxy_the_file_has_no_fault_proxy_key() -> None:
    assert "fault_proxy" not in state(4242, proxy=None).to_json()


def test_a_service_without_a_worker_count_runs_one() -> None:
    document = {"pid": 7, "services": {"payments": {"pid": 8, "url": "http://127.0.0.1:8001"}}}
    assert ServeState.from_json(document).services["payments"].workers == 1


def test_no_file_is_no_state_but_a_running_platform_is_required_by_name(tmp_path: Path) -> None:
    assert read_serve_state(tmp_path) is None
    with pytest.raises(ServeStateError, match=r"serve.json: no such file; is `nova serve --data-dir .*` running\?"):
        running_serve_state(tmp_path)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{", "not JSON"),
        ("[]", "not a serve state file"),
        ('{"pid": 7}', "'services' must be an object"),
        ('{"pid": "7", "services": {}}', "'pid' must be a positive integer"),
        ('{"pid": 7, "services": {"payments": {"pid": 8}}}', "'url' must be a non-empty string"),
        ('{"pid": 7, "services": {}, "fault_proxy": "http://x"}', "'fault_proxy' must be an object"),
    ],
)
def test_a_file_that_is_not_a_serve_state_is_refused_with_the_reason(tmp_path: Path, text: str, says: str) -> None:
    (tmp_path / "serve.json").write_text(text)
    with pytest.raises(ServeStateError, match=says):
        read_serve_state(tmp_path)


def test_a_state_left_by_a_killed_nova_serve_is_not_a_running_platform(tmp_path: Path) -> None:
    stale = state(ended_pid())
    stale.write(tmp_path)
    assert not stale.supervisor_alive()
    with pytest.raises(ServeStateError, match=rf"the platform \(pid {stale.pid}\) is not running"):
        running_serve_state(tmp_path)


def test_a_state_written_by_a_live_process_is_a_running_platform(tmp_path: Path) -> None:
    state(os.getpid()).write(tmp_path)
    assert running_serve_state(tmp_path).pid == os.getpid()


def test_the_admin_token_comes_from_the_environment_before_the_file(tmp_path: Path) -> None:
    (tmp_path / "admin-token").write_text("from-the-file\n")
    assert read_admin_token(tmp_path, {"NOVA_ADMIN_TOKEN": "from-the-environment"}) == "from-the-environment"
    assert read_admin_token(tmp_path, {}) == "from-the-file"


def test_no_admin_token_anywhere_is_one_line_naming_both_places(tmp_path: Path) -> None:
    with pytest.raises(ServeStateError, match=r"no admin token: NOVA_ADMIN_TOKEN is unset and .*admin-token"):
        read_admin_token(tmp_path, {})
    (tmp_path / "admin-token").write_text("\n")
    with pytest.raises(ServeStateError, match="admin-token is empty"):
        read_admin_token(tmp_path, {})

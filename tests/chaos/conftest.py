"""Fixtures for the chaos extension: the real platform (with faults) and the real `chaos` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.nova.conftest import run_platform  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
CHAOS = Path(sys.executable).with_name("chaos")


def run_chaos(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """The real `chaos` command line, with this repository importable (the extension is `chaos.*`)."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), environment.get("PYTHONPATH", "")]))
    return subprocess.run(
        [str(CHAOS), "--no-log-file", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )

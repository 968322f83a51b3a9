"""Fixtures for the runbooks: the real platform (`nova serve` processes), and the command line in-process."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from typer.testing import CliRunner, Result

from nova.runbooks_cli import runbooks_app
from tests.nova.conftest import run_platform  # noqa: F401


def runbooks(*args: str) -> Result:
    """`nova runbooks ARGS` as the command line runs it (stdout and stderr kept apart)."""
    return CliRunner().invoke(runbooks_app, list(args), catch_exceptions=False)


@contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """Processes started inside write their stderr to `path` (as `nova serve 2>serve.log`): the supervisors' log."""
    saved = os.dup(2)
    with path.open("ab") as file:
        os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def wait_for_line(path: Path, text: str, timeout_seconds: float = 30.0) -> str:
    """The first line of `path` containing `text`, once it is written."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if text in line:
                return line
        time.sleep(0.2)
    raise AssertionError(f"no line with {text!r} in {path} within {timeout_seconds} s")

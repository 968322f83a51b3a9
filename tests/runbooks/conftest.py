"""Fixtures for the runbooks: the real platform (`nova serve` processes), and the command line in-process."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from nova.runbooks_cli import runbooks_app
from tests.nova.conftest import run_platform  # noqa: F401


def runbooks(*args: str) -> Result:
    """`nova runbooks ARGS` as the command line runs it (stdout and stderr kept apart)."""
    return CliRunner().invoke(runbooks_app, list(args), catch_exceptions=False)

"""Fixtures shared with the command-line tests: the real platform under `nova serve`."""

from tests.nova.conftest import run_platform  # noqa: F401 (a fixture, found by name)

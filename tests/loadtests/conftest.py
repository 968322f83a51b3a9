"""Fixtures for the load-test tests: the real platform, as `nova serve` processes on free ports."""

from tests.nova.conftest import run_platform  # noqa: F401

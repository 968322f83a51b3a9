"""Helpers for the metrics tests: reading an exposition, and promtool as the final judge."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.samples import Sample

from tests.nova.conftest import run_platform

__all__ = ["run_platform"]

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def samples(exposition: str, *, openmetrics: bool = False) -> list[Sample]:
    parse = parse_openmetrics if openmetrics else parse_text
    return [sample for family in parse(exposition) for sample in family.samples]


def value(exposition: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when there are none)."""
    return sum(sample.value for sample in samples(exposition) if sample.name == name and _has(sample.labels, labels))


def _has(sample_labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    return all(sample_labels.get(name) == wanted_value for name, wanted_value in wanted.items())


def promtool_check_metrics(exposition: str) -> None:
    """`promtool check metrics` must accept the exposition (lint included).

    Skips outside CI when promtool is not installed; in CI (.ci/run installs it) it fails.
    """
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is not on PATH; .ci/run installs Debian's prometheus package")
        pytest.skip("promtool is not on PATH (Debian package prometheus)")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr

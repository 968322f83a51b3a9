"""Ask the real promtool what Prometheus computes from generated rules over given series.

`promtool test rules` is the judge: each query is written as a `promql_expr_test` that
expects nothing, so promtool reports what it got, at full precision (`%E` with every digit).
Groups are evaluated in the rule file's order at each instant (`group_eval_order`), which is
what the evaluator models.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import yaml

_BLOCK = re.compile(r'expr: "((?:[^"\\]|\\.)*)", time: (\S+),\s*\n\s*exp: .*\n\s*got: (.*)')
_SAMPLE = re.compile(r"(\{[^}]*\}) ([^\s,]+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float


def promtool() -> str:
    """The promtool binary; CI must have it (Debian's `prometheus`), elsewhere its tests skip."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is not installed (Debian package prometheus)")
        pytest.skip("promtool is not installed")
    return path


def seconds_of(duration: str) -> float:
    """promtool prints times as Prometheus durations (`1d2h5m`, `0s`)."""
    return sum(float(n) * _UNITS[u] for n, u in re.findall(r"(\d+)(ms|[smhdwy])", duration))


def query_promtool(
    rules_text: str,
    series: Mapping[str, npt.ArrayLike],
    *,
    scrape_interval: int,
    evaluation_interval: int,
    queries: Sequence[str],
    eval_times: Sequence[int],
    workdir: Path,
) -> dict[tuple[str, float], list[Sample]]:
    """What each query returns at each eval time (seconds from 0), after promtool ran the rules."""
    (workdir / "rules.yml").write_text(rules_text)
    tests = [{"expr": query, "eval_time": f"{t}s", "exp_samples": []} for t in eval_times for query in queries]
    input_series = [
        {"series": name, "values": " ".join(repr(float(v)) for v in np.asarray(values, dtype=float))}
        for name, values in series.items()
    ]
    # Without an explicit order promtool evaluates groups in random order, so an alert could see
    # its recording rule's value from the previous evaluation; the file's order is the meaning.
    group_order = [group["name"] for group in yaml.safe_load(rules_text)["groups"]]
    suite = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": f"{evaluation_interval}s",
        "group_eval_order": group_order,
        "tests": [{"interval": f"{scrape_interval}s", "input_series": input_series, "promql_expr_test": tests}],
    }
    (workdir / "test.yml").write_text(yaml.safe_dump(suite, width=1 << 20))
    result = subprocess.run(
        [promtool(), "test", "rules", "test.yml"], cwd=workdir, capture_output=True, text=True, check=False
    )
    output = result.stdout + result.stderr
    if "FAILED" not in output and result.returncode != 0:
        raise AssertionError(f"promtool could not run the test: {output[-2000:]}")
    got: dict[tuple[str, float], list[Sample]] = {(q, float(t)): [] for t in eval_times for q in queries}
    for expr, time, samples in _BLOCK.findall(output):
        key = (expr.encode().decode("unicode_escape"), seconds_of(time))
        got[key] = [Sample(dict(_LABEL.findall(labels)), float(value)) for labels, value in _SAMPLE.findall(samples)]
    if result.returncode == 0 and any(got.values()):
        raise AssertionError("promtool passed a test that expects nothing but got samples")
    return got

"""The proxy benchmark runs end to end and measures both paths in the same run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_measures_direct_and_proxied_in_one_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    options = ["--rounds", "1", "--requests", "200", "--seconds", "1", "--connections", "4", "--json-out", str(out)]
    done = subprocess.run(
        [sys.executable, "-m", "chaos.fault_proxy.bench", *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    for path in ("direct", "proxied"):
        assert result[path]["p50_ms"] > 0 and result[path]["requests_per_second"] > 0
    assert result["added_p50_ms"] == result["proxied"]["p50_ms"] - result["direct"]["p50_ms"]
    assert 0 < result["throughput_ratio"] < 5
    assert "through the proxy" in done.stdout


def test_bench_refuses_a_zero_round_count() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "chaos.fault_proxy.bench", "--rounds", "0"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "at least 1" in done.stderr

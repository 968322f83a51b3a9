"""`python -m loadtests.deploy.judge`: the gate over a results folder the in-cluster master left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtests.deploy.judge import main
from loadtests.samples import RequestSample, write_samples

RUN = ["--shape", "steady", "--peak-users", "10", "--duration", "60"]


def record(folder: Path, millis: float, status: int = 201) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    samples = [RequestSample(1_700_000_000 + i / 10, "POST /v1/payments", status, millis, 1) for i in range(50)]
    write_samples(folder / "samples.csv", samples)


def test_a_run_within_the_slo_passes_and_leaves_a_summary(tmp_path: Path) -> None:
    record(tmp_path, millis=20)
    assert main([str(tmp_path), *RUN]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["run"]["shape"] == "steady"


def test_a_slow_run_fails_naming_the_breach(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record(tmp_path, millis=250)
    assert main([str(tmp_path), *RUN, "--p99-ms", "200"]) == 1
    assert "SLO gate failed: overall: p99 250.0 ms >= 200 ms" in capsys.readouterr().out


def test_a_failed_audit_fails_the_run(tmp_path: Path) -> None:
    record(tmp_path, millis=20)
    (tmp_path / "audit.json").write_text(json.dumps({"passed": False, "payments_lost": 1, "lost": ["pay_1"]}))
    assert main([str(tmp_path), *RUN]) == 1


def test_a_folder_without_samples_cannot_be_judged(tmp_path: Path) -> None:
    assert main([str(tmp_path), *RUN]) == 2

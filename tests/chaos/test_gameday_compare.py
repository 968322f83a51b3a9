"""`nova gameday compare A B` on two recorded game days, one with a latency regression injected."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.gameday_compare import compare_game_days
from chaos.gameday_model import BASELINE, GameDayResult, LoadFigures, PhaseResult, Window
from chaos.gameday_report import sanitize
from loadtests.samples import RequestSample, write_samples

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = 1_800_000_000.0
PHASES = (BASELINE, "worker-kill-under-load")


def record_game_day(folder: Path, slower: dict[str, float], seed: int) -> Path:
    """A game-day folder as `nova gameday` leaves it, reduced to what compare reads: report.json and
    each phase's load samples; `slower` adds milliseconds to every request of the named phases."""
    rng = random.Random(seed)
    phases = []
    for index, name in enumerate(PHASES):
        start = T0 + index * 60
        samples = [
            RequestSample(
                start + i * 0.01,
                "GET /v1/quotes/{symbol}",
                200,
                rng.lognormvariate(2.5, 0.4) + slower.get(name, 0.0),
                1,
            )
            for i in range(2_000)
        ]
        results = folder / "load" / name
        results.mkdir(parents=True)
        write_samples(results / "samples.csv", samples)
        load = LoadFigures(
            requests=len(samples), failures=0, availability=1.0, availability_after_retries=1.0,
            p99_ms=max(s.millis for s in samples), gate_passed=True, statuses={"200": len(samples)},
            audit=None, results_dir=f"load/{name}",
        )  # fmt: skip
        fault = None if name == BASELINE else Window(start + 10, start + 25)
        phases.append(PhaseResult(name, name, Window(start, start + 50), fault, "passed", "", load=load))
    result = GameDayResult(T0, T0 + 120, True, "sqlite", "embedded", "test", phases=phases)
    (folder / "report.json").write_text(json.dumps(sanitize(result.document())))
    return folder


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    a = record_game_day(tmp_path / "a", {}, seed=1)
    again = record_game_day(tmp_path / "again", {}, seed=2)
    slower = record_game_day(tmp_path / "b", {"worker-kill-under-load": 8.0}, seed=3)
    return a, again, slower


def nova_compare(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "nova", "gameday", "compare", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


def test_a_latency_regression_exits_1_naming_the_phase(runs: tuple[Path, Path, Path], tmp_path: Path) -> None:
    a, _again, slower = runs
    done = nova_compare(str(a), str(slower), "--out", str(tmp_path / "cmp"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "worker-kill-under-load" in done.stderr and "baseline" not in done.stderr.split("worse than A in")[1][:40]
    document = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert document["worse_phases"] == ["worker-kill-under-load"]
    assert (tmp_path / "cmp" / "compare.md").read_text().count("B worse") == 1
    assert "worker-kill-under-load" in (tmp_path / "cmp" / "compare.html").read_text()


def test_two_runs_of_the_same_platform_are_not_significantly_different(runs: tuple[Path, Path, Path]) -> None:
    a, again, _slower = runs
    comparison = compare_game_days(a, again)
    assert [phase.phase for phase in comparison.phases] == list(PHASES)
    assert not comparison.worse
    assert nova_compare(str(a), str(again)).returncode == 0


def test_a_folder_without_a_report_is_refused_in_one_line(tmp_path: Path) -> None:
    done = nova_compare(str(tmp_path), str(tmp_path))
    assert done.returncode == 2
    assert "no report.json" in done.stderr and len(done.stderr.strip().splitlines()) == 1

"""`nova gameday --abort-budget`: an experiment that burns past its cap is stopped within seconds.

One real game day (quick timings, embedded monitoring, 40 requests/s): the baseline, then
payments-error-burn (5% of payments answered 500, 500 times the 99.99% budget) under a cap of
0.05% of the 30-day budget, which it crosses a few seconds into the fault.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from chaos.guardrail import budget_burned
from loadtests.samples import RequestSample, read_samples
from loadtests.traffic import PLACE_ORDER, PORTFOLIO, QUOTE

REPO_ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = "payments-error-burn"
CAP_PERCENT = 0.05
PLANNED_FAULT_SECONDS = 15  # the quick game day's fault
PERIOD_SECONDS = 30 * 86400
PORTFOLIO_ENDPOINTS = {PLACE_ORDER.name, PORTFOLIO.name, QUOTE.name}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("guardrail") / "gameday"
    command = [
        sys.executable, "-m", "nova", "gameday", "--quick", "--embedded", "--experiments", EXPERIMENT,
        "--rate", "40", "--abort-budget", str(CAP_PERCENT), "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    return done, out


def _phase(out: Path) -> dict[str, Any]:
    report = json.loads((out / "report.json").read_text())
    return next(phase for phase in report["phases"] if phase["name"] == EXPERIMENT)


def _crossing(samples: Sequence[RequestSample], since: float) -> float | None:
    """When the client's own records first show a service past the cap (the guard reads the servers')."""
    counts = {"payments": [0, 0], "portfolio": [0, 0]}
    for sample in sorted(samples, key=lambda s: s.timestamp + s.millis / 1000):
        done = sample.timestamp + sample.millis / 1000
        if done < since:
            continue
        count = counts["portfolio" if sample.endpoint in PORTFOLIO_ENDPOINTS else "payments"]
        count[0] += 1
        count[1] += sample.failed
        if budget_burned(count[0], count[1], 0.9999, done - since, PERIOD_SECONDS) * 100 > CAP_PERCENT:
            return done
    return None


def test_the_guardrail_fails_the_game_day_and_the_report_names_why(
    guarded: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, out = guarded
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    assert "within the error-budget guardrail" in done.stderr
    phase = _phase(out)
    assert phase["status"] == "aborted"
    assert phase["aborted"].startswith(f"--abort-budget {CAP_PERCENT:g}%")
    assert "--abort-budget" in (out / "report.md").read_text()


def test_the_experiment_is_stopped_within_seconds_of_crossing_the_cap(
    guarded: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _done, out = guarded
    phase = _phase(out)
    fault, window = phase["fault"], phase["window"]
    stopped = fault["end"]
    assert stopped - fault["start"] < PLANNED_FAULT_SECONDS  # cut short, not played to its end
    # The guard's own reading when it stopped: just past the cap, not a multiple of it.
    burned = float(re.search(r"burned ([0-9.]+)% of its 30-day", phase["aborted"]).group(1))  # type: ignore[union-attr]
    assert CAP_PERCENT < burned <= 3 * CAP_PERCENT, phase["aborted"]
    # The client's own records tell the same story (the guard reads the servers' counters, which
    # count a failure before its answer reaches the client; a few events apart at this cap).
    samples = list(read_samples(out / phase["load"]["results_dir"] / "samples.csv"))
    crossed = _crossing(samples, window["start"])
    if crossed is not None:
        assert stopped - crossed <= 5.0, f"stopped {stopped - crossed:.1f} s after the cap was crossed"


def test_the_fault_is_cleared_when_the_guardrail_stops_it(
    guarded: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _done, out = guarded
    phase = _phase(out)
    journal = json.loads((out / "journals" / f"{EXPERIMENT}.json").read_text())
    rollbacks = {entry["activity"]["name"]: entry["status"] for entry in journal.get("rollbacks") or []}
    assert rollbacks == {"stop-background-load": "succeeded", "clear-all-faults": "succeeded"}
    for service in ("payments", "portfolio"):  # what the services themselves read their faults from
        assert json.loads((out / "platform" / "faults" / f"{service}.json").read_text())["faults"] == {}
    samples = list(read_samples(out / phase["load"]["results_dir"] / "samples.csv"))
    after = [s for s in samples if s.timestamp > phase["fault"]["end"] + 1.0]
    assert not [s for s in after if s.status == 500 and s.endpoint not in PORTFOLIO_ENDPOINTS]

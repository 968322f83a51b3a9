"""The drill: a delivered page runs its runbook against a live platform, graded against the injected cause.

The platform is real (`nova serve --enable-faults`, an injected `error_rate`), the runbook runs as
`nova runbooks run` in a child process started by `chaos.drill.Drill`, and the grading reads what
the drill recorded, as the game day does; only the page is written by hand instead of by the pager.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from chaos.drill import (
    RIGHT,
    SILENT,
    WRONG,
    Drill,
    RunbookRun,
    StepFinding,
    accuracy_of,
    attach,
    grade,
    read_pages,
    read_runs,
)
from chaos.gameday_model import PhaseResult, Window
from chaos.process_faults import freeze_worker, thaw_workers
from nova.serve import Platform
from runbooks.catalog import RUNBOOKS_DIR
from tests.nova.conftest import RunPlatform, admin_client
from tests.runbooks.conftest import stderr_to, wait_for_line

ALERT = "PaymentsAvailabilityBurn"
RUNBOOK = "payments-availability-page.md"
# A runnable step that declares causes: its whole fenced block, so blinding removes the diagnostic.
_CAUSE_STEP = re.compile(r"^```(?:promql|nova-check)[^\n]*\bcauses=\"[^\"]*\"[^\n]*\n.*?^```\n", re.M | re.S)


def blind(text: str) -> str:
    """The runbook with every diagnostic that could name a cause removed (the rest untouched)."""
    blinded, removed = _CAUSE_STEP.subn("", text)
    assert removed > 0
    return blinded


@pytest.fixture
def erroring_platform(run_platform: RunPlatform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """Payments answering 500 on one route through the fault API, with a few customers hit by it."""
    monkeypatch.delenv("NOVA_PROMETHEUS_URL", raising=False)
    with run_platform(workers=1, enable_faults=True) as platform:
        fault = {"rate": 1.0, "status": 500, "route": "/v1/payments/{payment_id}", "ttl_seconds": 120}
        with admin_client(platform) as client:
            assert client.put("/admin/faults/error_rate", json=fault).status_code == 200
        with httpx.Client(base_url=platform.options.url("payments"), timeout=10.0) as client:
            assert all(client.get("/v1/payments/pay_missing").status_code == 500 for _ in range(3))
        yield platform


@pytest.fixture
def platform_after_a_freeze(
    run_platform: RunPlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Platform]:
    """A payments worker frozen (SIGSTOP) until its supervisor killed it for not answering, as in worker-freeze;
    `nova serve`'s log (the supervisors' lines) is where the runbooks' `workers` check reads it."""
    monkeypatch.delenv("NOVA_PROMETHEUS_URL", raising=False)
    log = tmp_path / "serve.log"
    with ExitStack() as stack:
        with stderr_to(log):
            platform = stack.enter_context(run_platform(workers=2))
        data_dir = str(platform.options.data_dir)
        pid = freeze_worker("payments", seconds=60, data_dir=data_dir)["pid"]
        wait_for_line(log, f"payments worker {pid} did not answer its health check")
        thaw_workers(data_dir)
        monkeypatch.setenv("NOVA_SERVE_LOG", str(log))  # as the game day gives its drill
        yield platform


def drill_a_page(
    platform: Platform,
    out: Path,
    runbooks: Path | None = None,
    cause: str = "error_rate",
    experiment: str = "payments-error-burn",
) -> PhaseResult:
    """Deliver one page for ALERT as the pager's `jsonl:` line, let the drill run it, grade the phase."""
    pages = out / "pager" / "pages.jsonl"
    pages.parent.mkdir(parents=True)
    drill = Drill(pages, out / "drill", out, platform.options.data_dir, "", dict(os.environ), runbooks)
    drill.start()
    delivered = time.time()
    page = {
        "delivered_at": delivered,
        "event": "trigger",
        "dedup_key": "d" * 64,
        "severity": "page",
        "text": f"# [PAGE] FIRING {ALERT}: payments availability\n",
        "alerts": [{"alertname": ALERT, "severity": "page", "runbook_url": f"runbooks/{RUNBOOK}"}],
    }
    pages.write_text(json.dumps(page) + "\n")
    drill.stop()
    phase = PhaseResult(
        name=experiment,
        title=experiment,
        window=Window(delivered - 30, delivered + 120),
        fault=Window(delivered - 20, delivered + 60),
        status="passed",
        reason="",
        cause=cause,
    )
    attach([phase], read_pages(pages), read_runs(out / "drill" / "runs.jsonl"))
    return phase


def test_a_page_runs_its_runbook_which_names_the_injected_cause(erroring_platform: Platform, tmp_path: Path) -> None:
    phase = drill_a_page(erroring_platform, tmp_path / "gd")

    (diagnosis,) = phase.diagnosis
    assert (diagnosis.alert, diagnosis.runbook, diagnosis.verdict) == (ALERT, RUNBOOK, RIGHT)
    assert "error_rate" in diagnosis.named and "database_unavailable" not in diagnosis.named
    assert diagnosis.seconds_to_cause is not None and 0 < diagnosis.seconds_to_cause < 60
    assert any(finding.startswith("Active faults on both services") for finding in diagnosis.findings)
    output = json.loads((tmp_path / "gd" / diagnosis.output).read_text())
    assert output["causes"] == diagnosis.named and len(output["steps"]) == diagnosis.steps
    assert phase.checks[-1].passed and phase.checks[-1].name.endswith("(error_rate)")
    assert phase.pages[0].seconds_after_fault == pytest.approx(20.0)


def test_a_blinded_runbook_is_silent_and_fails_the_check(erroring_platform: Platform, tmp_path: Path) -> None:
    runbooks = tmp_path / "blinded-runbooks"
    runbooks.mkdir()
    (runbooks / RUNBOOK).write_text(blind((RUNBOOKS_DIR / RUNBOOK).read_text()))

    phase = drill_a_page(erroring_platform, tmp_path / "gd", runbooks)

    (diagnosis,) = phase.diagnosis
    assert (diagnosis.verdict, diagnosis.named, diagnosis.seconds_to_cause) == (SILENT, [], None)
    assert diagnosis.steps > 0  # it ran: what it still has found trouble but names no cause
    check = phase.checks[-1]
    assert not check.passed and "silent" in check.detail
    assert not phase.passed
    shutil.rmtree(runbooks)


def test_a_page_after_a_worker_froze_names_it_from_the_supervisors_log(
    platform_after_a_freeze: Platform, tmp_path: Path
) -> None:
    phase = drill_a_page(platform_after_a_freeze, tmp_path / "gd", cause="worker_frozen", experiment="worker-freeze")

    (diagnosis,) = phase.diagnosis
    assert (diagnosis.runbook, diagnosis.verdict) == (RUNBOOK, RIGHT)
    assert "worker_frozen" in diagnosis.named and "error_rate" not in diagnosis.named
    assert diagnosis.seconds_to_cause is not None and diagnosis.seconds_to_cause > 0
    assert any(finding.startswith("Workers now") for finding in diagnosis.findings)
    assert phase.checks[-1].passed and phase.checks[-1].name.endswith("(worker_frozen)")


def _run(causes_per_step: list[list[str]], delivered: float = 100.0) -> RunbookRun:
    steps = [
        StepFinding(f"step {i}", "attention", causes, delivered + i + 1) for i, causes in enumerate(causes_per_step)
    ]
    names = list(dict.fromkeys(c for step in steps for c in step.causes))
    return RunbookRun(ALERT, "page", "k", delivered, delivered, delivered + 9, 0, RUNBOOK, names, steps)


def test_grading_tells_right_wrong_and_silent_apart_and_times_the_first_naming() -> None:
    right = grade(ALERT, "page", "error_rate", [_run([[], ["database_unavailable"], ["error_rate"]])])
    wrong = grade(ALERT, "page", "error_rate", [_run([["database_unavailable"]])])
    silent = grade(ALERT, "page", "error_rate", [_run([[], []])])

    assert (right.verdict, right.seconds_to_cause) == (RIGHT, 3.0)
    assert (wrong.verdict, wrong.named, wrong.seconds_to_cause) == (WRONG, ["database_unavailable"], None)
    assert (silent.verdict, silent.named) == (SILENT, [])


def test_precision_is_the_share_of_named_causes_that_were_injected_and_lists_the_others() -> None:
    pages = [
        grade(ALERT, "page", "error_rate", [_run([["error_rate", "worker_restarts"]])]),
        grade(ALERT, "page", "error_rate", [_run([["error_rate"]])]),
        grade(ALERT, "page", "error_rate", [_run([["worker_restarts", "cpu_saturation"]])]),
    ]

    accuracy = accuracy_of("error-burn", pages)

    assert (accuracy.right, accuracy.causes_named, accuracy.precision) == (2, 5, 0.4)
    assert accuracy.extra == (("worker_restarts", 2), ("cpu_saturation", 1))

"""The extension against the real platform: one short experiment through the real `chaos run`, and the actions."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from chaos.actions import (
    active_faults,
    clear_all_faults,
    inject_fault,
    kill_worker,
    start_background_load,
    start_database,
    start_postgresql,
    stop_background_load,
    stop_database,
    stop_postgresql,
)
from chaos.errors import DatabaseControlError, FaultAPIError, LoadError, PlatformError
from chaos.journal import experiment_outcome
from chaos.platform import find_platform
from chaos.probes import background_load_verdict, ledger_verification, load_results, readiness, write_during_outage
from tests.chaos.conftest import run_chaos
from tests.nova.conftest import RunPlatform, worker_pids


def latency_experiment() -> dict[str, Any]:
    def python(module: str, func: str, **arguments: Any) -> dict[str, Any]:
        return {"type": "python", "module": f"chaos.{module}", "func": func, "arguments": arguments}

    data_dir = {"data_dir": "${data_dir}"}
    return {
        "version": "1.0.0",
        "title": "Payments stay ready and balanced with 50 ms more latency",
        "description": "A short smoke experiment for the test suite.",
        "configuration": {"data_dir": {"type": "env", "key": "NOVA_DATA_DIR"}},
        "steady-state-hypothesis": {
            "title": "ready and balanced",
            "probes": [
                {
                    "type": "probe",
                    "name": "ready",
                    "tolerance": True,
                    "provider": python("probes", "readiness", **data_dir),
                },
                {
                    "type": "probe",
                    "name": "balanced",
                    "tolerance": True,
                    "provider": python("probes", "ledger_balanced", **data_dir),
                },
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "payments-latency",
                "provider": python(
                    "actions",
                    "inject_fault",
                    service="payments",
                    fault="latency",
                    ms=50,
                    route="/v1/payments",
                    ttl_seconds=30,
                    **data_dir,
                ),
                "pauses": {"after": 1},
            },
            {"type": "probe", "name": "faults-on", "provider": python("actions", "active_faults", **data_dir)},
        ],
        "rollbacks": [
            {"type": "action", "name": "clear", "provider": python("actions", "clear_all_faults", **data_dir)}
        ],
    }


def test_a_latency_experiment_runs_and_leaves_no_fault(run_platform: RunPlatform, tmp_path: Path) -> None:
    with run_platform(workers=1, enable_faults=True) as platform:
        data_dir = str(platform.options.data_dir)
        path = tmp_path / "experiment.json"
        path.write_text(json.dumps(latency_experiment()))
        journal_path = tmp_path / "journal.json"
        done = run_chaos(
            "run", "--journal-path", str(journal_path), str(path), cwd=tmp_path, env={"NOVA_DATA_DIR": data_dir}
        )
        assert done.returncode == 0, done.stderr[-3000:]
        journal = json.loads(journal_path.read_text())
        outcome = experiment_outcome(journal)
        assert outcome.passed, outcome.reason
        assert outcome.steady_state_before_met and outcome.steady_state_after_met
        assert outcome.rollbacks_run == 1 and outcome.rollbacks_failed == 0
        injected, during = (run["output"] for run in journal["run"])
        assert injected["name"] == "latency" and injected["settings"]["ms"] == 50
        assert during["payments"] == ["latency"]
        assert active_faults(data_dir) == {"payments": [], "portfolio": []}

        # The actions outside Chaos Toolkit: a kill is replaced; SQLite has no server to stop.
        before = worker_pids(platform.processes["payments"].pid)
        killed = kill_worker("payments", data_dir)
        assert killed["pid"] in before
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = worker_pids(platform.processes["payments"].pid)
            if killed["pid"] not in now and len(now) == len(before) and readiness(data_dir):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the killed payments worker was not replaced within 30 s")
        assert ledger_verification(data_dir)["balanced"] is True
        with pytest.raises(DatabaseControlError, match="SQLite"):
            stop_postgresql(data_dir)
        with pytest.raises(FaultAPIError, match="422"):
            inject_fault("payments", "latency", data_dir, ms="slow")
        inject_fault("portfolio", "cpu_burn", data_dir, share=0.1, ttl_seconds=5)
        assert clear_all_faults(data_dir) == {"cleared": ["payments", "portfolio"]}
        assert active_faults(data_dir) == {"payments": [], "portfolio": []}


def test_failed_before_still_completes_with_exit_0(tmp_path: Path) -> None:
    """The 1.19 behaviour journal.py exists for, seen through the real CLI."""
    experiment = {
        "title": "a steady state that cannot hold",
        "description": "`true` exits 0, the tolerance wants 1",
        "steady-state-hypothesis": {
            "title": "impossible",
            "probes": [
                {"type": "probe", "name": "exit-1", "tolerance": 1, "provider": {"type": "process", "path": "true"}}
            ],
        },
        "method": [{"type": "probe", "name": "noop", "provider": {"type": "process", "path": "true"}}],
    }
    path = tmp_path / "experiment.json"
    path.write_text(json.dumps(experiment))
    journal_path = tmp_path / "journal.json"
    done = run_chaos("run", "--journal-path", str(journal_path), str(path), cwd=tmp_path)
    journal = json.loads(journal_path.read_text())
    outcome = experiment_outcome(journal)
    assert (done.returncode, outcome.status) == (0, "completed")
    assert outcome.steady_state_before_met is False and not outcome.method_ran
    assert not outcome.passed


def test_no_platform_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match=r"serve\.json: no such file"):
        readiness(str(tmp_path))


def test_an_embedded_database_outage_is_the_db_unavailable_fault_on_both_services(run_platform: RunPlatform) -> None:
    with run_platform(workers=1, enable_faults=True) as platform:
        data_dir = str(platform.options.data_dir)
        stopped = stop_database(data_dir, ttl_seconds=30)
        assert stopped["database"] == "sqlite"
        assert active_faults(data_dir) == {"payments": ["db_unavailable"], "portfolio": ["db_unavailable"]}
        answer = write_during_outage(data_dir)
        assert answer["status"] == 503 and answer["retry_after"] and answer["code"] == "database_unavailable"
        assert readiness(data_dir) is False
        assert start_database(data_dir) == {"database": "sqlite", "cleared": ["payments", "portfolio"]}
        assert active_faults(data_dir) == {"payments": [], "portfolio": []}
        assert readiness(data_dir) is True
        assert write_during_outage(data_dir)["status"] == 201  # the probe's write goes through once it is back


def test_background_load_runs_and_is_judged(run_platform: RunPlatform) -> None:
    with run_platform(workers=1, enable_faults=True) as platform:
        data_dir = str(platform.options.data_dir)
        assert background_load_verdict(data_dir, "gate") is True  # nothing started: nothing to judge
        started = start_background_load(data_dir, shape="steady", peak_users=2, duration="3", mix="payments")
        with pytest.raises(LoadError, match="already running"):
            start_background_load(data_dir)
        assert background_load_verdict(data_dir, "audit", wait_seconds=45) is True
        results = load_results(started["out"])
        assert results["requests"] > 0 and 0.0 <= results["availability"] <= 1.0
        stopped = stop_background_load(data_dir)
        assert stopped["pid"] == started["pid"]
        assert background_load_verdict(data_dir, "gate") is True  # the rollback forgot the run


@pytest.mark.postgres
def test_postgresql_is_found_and_a_running_cluster_is_left_alone(
    run_platform: RunPlatform, postgres_database: str
) -> None:
    # Nothing here stops the shared cluster: start_postgresql on an online cluster is a no-op.
    with run_platform(workers=1, payments_db=postgres_database, enable_faults=True) as platform:
        data_dir = str(platform.options.data_dir)
        running = find_platform(data_dir)
        assert running.database_url("payments") == postgres_database
        assert running.database_url("portfolio") is None
        assert start_postgresql(data_dir)["already_running"] is True

"""Every experiment in chaos/experiments passes the real `chaos validate`, and keeps the suite's rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos.drill import experiment_cause
from chaos.gameday_plan import FULL_EXPERIMENTS, QUICK_EXPERIMENTS
from runbooks.causes import CAUSES
from tests.chaos.conftest import REPO, run_chaos

EXPERIMENTS = sorted((REPO / "chaos" / "experiments").glob("*.json"))
EXPECTED = {
    "worker-kill-under-load",
    "db-latency",
    "db-outage",
    "portfolio-payment-errors-5pct",
    "cpu-burn",
    "slow-dependency",
    "payments-error-burn",
    "payments-flaky-network",
    "database-link-down",
    "lock-contention-market-open",
    "connection-exhaustion",
    "worker-freeze",
}
# Experiments that drive the fault proxy through chaostoolkit-toxiproxy also name its API.
PROXY_CONFIGURATION = {"toxiproxy_url"}
CONFIGURATION = {
    "data_dir",
    "prometheus_url",
    "load_users",
    "load_rate",
    "load_shape",
    "load_seconds",
    "warmup_seconds",
    "fault_seconds",
    "recovery_seconds",
    "fault_ttl_seconds",
}


def test_every_experiment_of_the_game_day_is_there() -> None:
    assert {path.stem for path in EXPERIMENTS} == EXPECTED
    assert set(FULL_EXPERIMENTS) == EXPECTED
    assert set(QUICK_EXPERIMENTS) <= EXPECTED


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda path: path.stem)
def test_chaos_validate_accepts_it(path: Path, tmp_path: Path) -> None:
    done = run_chaos("validate", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "experiment syntax and semantic look valid" in done.stderr + done.stdout


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda path: path.stem)
def test_faults_have_a_ttl_and_rollbacks_clear_them(path: Path) -> None:
    experiment: dict[str, Any] = json.loads(path.read_text())
    providers = [activity["provider"] for activity in experiment["method"]]
    for provider in providers:
        assert provider["type"] == "python" and provider["module"].startswith(("chaos.", "chaostoxi."))
        if provider["func"] in ("inject_fault", "stop_database"):
            assert provider["arguments"]["ttl_seconds"] == "${fault_ttl_seconds}"
    rollbacks = {activity["provider"]["func"] for activity in experiment["rollbacks"]}
    assert "clear_all_faults" in rollbacks
    if any(provider["func"] == "stop_database" for provider in providers):
        assert "start_database" in rollbacks
    if any(provider["func"] == "start_background_load" for provider in providers):
        assert "stop_background_load" in rollbacks
    assert experiment["steady-state-hypothesis"]["probes"]
    uses_proxy = any(provider["module"].startswith("chaostoxi.") for provider in providers)
    assert set(experiment["configuration"]) == CONFIGURATION | (PROXY_CONFIGURATION if uses_proxy else set())
    if uses_proxy:
        assert "reset" in rollbacks  # every toxic removed and every proxy enabled, whatever the method reached
    ttl = experiment["configuration"]["fault_ttl_seconds"]
    assert ttl["env_var_type"] == "int" and 1 <= ttl["default"] <= 3600


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda path: path.stem)
def test_the_hypothesis_claims_no_acknowledged_payment_is_lost(path: Path) -> None:
    experiment: dict[str, Any] = json.loads(path.read_text())
    checks = [
        probe["provider"]["arguments"].get("check")
        for probe in experiment["steady-state-hypothesis"]["probes"]
        if probe["provider"]["func"] == "background_load_verdict"
    ]
    assert "audit" in checks


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda path: path.stem)
def test_it_declares_the_cause_it_injects_so_the_drill_can_grade_its_pages(path: Path) -> None:
    experiment: dict[str, Any] = json.loads(path.read_text())
    assert experiment_cause(experiment) in CAUSES


def test_chaos_validate_refuses_an_unknown_provider(tmp_path: Path) -> None:
    experiment = json.loads((REPO / "chaos" / "experiments" / "db-latency.json").read_text())
    experiment["method"][0]["provider"]["func"] = "no_such_action"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(experiment))
    done = run_chaos("validate", str(path), cwd=tmp_path)
    assert done.returncode != 0

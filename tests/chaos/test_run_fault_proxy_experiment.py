"""`payments-flaky-network` through the real `chaos run`: chaostoolkit-toxiproxy drives `nova serve --fault-proxy`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chaos.journal import experiment_outcome
from chaos.probes import ledger_verification
from nova.serve import Platform
from tests.chaos.conftest import REPO, run_chaos
from tests.nova.conftest import free_port, serving

SHORT = {
    "NOVA_PROMETHEUS_URL": "",
    "NOVA_CHAOS_LOAD_USERS": "5",
    "NOVA_CHAOS_LOAD_SECONDS": "16",
    "NOVA_CHAOS_WARMUP_SECONDS": "3",
    "NOVA_CHAOS_FAULT_SECONDS": "6",
    "NOVA_CHAOS_RECOVERY_SECONDS": "3",
}


@pytest.fixture
def proxied_platform(tmp_path: Path) -> Iterator[Platform]:
    with serving(tmp_path / "data", workers=1, enable_faults=True, fault_proxy_port=free_port()) as platform:
        yield platform


def test_flaky_network_experiment_runs_through_chaostoolkit_toxiproxy_and_leaves_no_toxic(
    proxied_platform: Platform, tmp_path: Path
) -> None:
    assert proxied_platform.fault_proxy is not None
    proxy_url = proxied_platform.fault_proxy.url
    journal_path = tmp_path / "journal.json"
    env = {**SHORT, "NOVA_DATA_DIR": str(proxied_platform.options.data_dir), "NOVA_FAULT_PROXY_URL": proxy_url}
    experiment = REPO / "chaos" / "experiments" / "payments-flaky-network.json"
    done = run_chaos("run", "--journal-path", str(journal_path), str(experiment), cwd=tmp_path, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    journal = json.loads(journal_path.read_text())
    outcome = experiment_outcome(journal)
    assert outcome.steady_state_before_met and outcome.rollbacks_failed == 0, outcome.reason
    toxics = {
        run["activity"]["name"]: run
        for run in journal["run"]
        if run["activity"]["provider"]["module"] == "chaostoxi.toxic.actions"
    }
    assert set(toxics) == {
        "add-payments-latency",
        "add-payments-slicer",
        "add-payments-reset-peer",
        "remove-payments-latency",
        "remove-payments-slicer",
        "remove-payments-reset-peer",
    }
    assert all(run["status"] == "succeeded" and run["output"] is True for run in toxics.values())
    proxy = httpx.get(f"{proxy_url}/proxies/payments", timeout=5.0).json()
    assert (proxy["enabled"], proxy["toxics"]) == (True, [])
    assert ledger_verification(str(proxied_platform.options.data_dir))["balanced"] is True

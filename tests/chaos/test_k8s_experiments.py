"""The Kubernetes experiments (chaos/experiments/k8s/) pass the real `chaos validate` offline, and do what they say."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.chaos.conftest import REPO, run_chaos

FOLDER = REPO / "chaos" / "experiments" / "k8s"
EXPERIMENTS = sorted(FOLDER.glob("*.json"))
SELECTORS = {
    "app.kubernetes.io/name=payments,app.kubernetes.io/part-of=nova",
    "app.kubernetes.io/name=portfolio,app.kubernetes.io/part-of=nova",
}


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FOLDER / f"{name}.json").read_text())
    return document


def activities(experiment: dict[str, Any]) -> list[dict[str, Any]]:
    return [*experiment["steady-state-hypothesis"]["probes"], *experiment["method"], *experiment["rollbacks"]]


def offline_env(tmp_path: Path) -> dict[str, str]:
    """No cluster: a KUBECONFIG that does not exist, a HOME without ~/.kube, `nova` on PATH (the load action)."""
    return {
        "KUBECONFIG": str(tmp_path / "no-such-kubeconfig"),
        "HOME": str(tmp_path),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


def test_the_three_kubernetes_experiments_are_there() -> None:
    assert [path.stem for path in EXPERIMENTS] == ["pod-kill-under-load", "scale-to-zero-and-back", "zone-outage"]


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda path: path.stem)
def test_chaos_validate_accepts_it_without_a_cluster(path: Path, tmp_path: Path) -> None:
    done = run_chaos("validate", str(path), cwd=tmp_path, env=offline_env(tmp_path))
    assert done.returncode == 0, done.stderr + done.stdout
    assert "experiment syntax and semantic look valid" in done.stderr + done.stdout


def test_chaos_validate_refuses_an_unknown_chaosk8s_action(tmp_path: Path) -> None:
    experiment = load("pod-kill-under-load")
    kill = next(a for a in experiment["method"] if a["provider"].get("func") == "terminate_pods")
    kill["provider"]["func"] = "no_such_action"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(experiment))
    assert run_chaos("validate", str(path), cwd=tmp_path, env=offline_env(tmp_path)).returncode != 0


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda path: path.stem)
def test_it_uses_the_suite_probes_and_the_deploy_labels(path: Path) -> None:
    experiment: dict[str, Any] = json.loads(path.read_text())
    hypothesis = experiment["steady-state-hypothesis"]["probes"]
    names = {probe["name"] for probe in hypothesis}
    assert {"payments-deployment-available", "portfolio-deployment-available", "ledger-balanced"} <= names
    suite = [a["provider"] for a in activities(experiment) if a["provider"].get("module") == "chaos.probes"]
    assert suite and all(p["arguments"]["prometheus_url"] == "${prometheus_url}" for p in suite)
    for activity in activities(experiment):
        arguments = activity["provider"].get("arguments", {})
        if (
            isinstance(arguments, dict)
            and "label_selector" in arguments
            and "node" not in activity["provider"]["module"]
        ):
            assert arguments["label_selector"] in SELECTORS
        if isinstance(arguments, dict) and "ns" in arguments:
            assert arguments["ns"] == "${namespace}"
    assert experiment["configuration"]["namespace"]["default"] == "nova"
    load_action, fault = experiment["method"][:2]
    assert load_action["name"] == "market-open-load" and load_action["provider"]["arguments"][0] == "load"
    # A background activity's pauses run in its own thread: the warm-up must delay the fault instead.
    assert load_action["background"] is True and "pauses" not in load_action
    assert fault["type"] == "action" and fault["pauses"]["before"] == "${warmup_seconds}"


def test_pod_kill_kills_without_grace_and_judges_the_slos() -> None:
    experiment = load("pod-kill-under-load")
    kills = [a["provider"]["arguments"] for a in experiment["method"] if a["provider"].get("func") == "terminate_pods"]
    assert {k["label_selector"] for k in kills} == SELECTORS
    assert all(k["grace_period"] == 0 and k["qty"] == 1 and k["rand"] is True for k in kills)
    tolerances = [p["tolerance"] for p in experiment["steady-state-hypothesis"]["probes"] if "range" in str(p)]
    assert {"type": "range", "range": [0.9999, 1.0], "target": "availability"} in tolerances
    assert {"type": "range", "range": [0, 200], "target": "p99_ms"} in tolerances


def test_scale_to_zero_rolls_back_by_scaling_back() -> None:
    experiment = load("scale-to-zero-and-back")
    scales = [
        a["provider"]["arguments"] for a in experiment["method"] if a["provider"].get("func") == "scale_deployment"
    ]
    assert [s["replicas"] for s in scales] == [0, "${payments_replicas}"]
    [rollback] = experiment["rollbacks"]
    assert rollback["provider"]["func"] == "scale_deployment"
    assert rollback["provider"]["arguments"] == {
        "name": "payments",
        "replicas": "${payments_replicas}",
        "ns": "${namespace}",
    }


def test_zone_outage_cordons_and_rolls_back_by_uncordoning() -> None:
    experiment = load("zone-outage")
    funcs = [a["provider"].get("func") for a in experiment["method"]]
    assert funcs.index("cordon_node") < next(
        i for i, a in enumerate(experiment["method"]) if a["name"].startswith("delete")
    )
    [rollback] = experiment["rollbacks"]
    assert rollback["provider"]["func"] == "uncordon_node"
    assert rollback["provider"]["arguments"] == {"label_selector": "${zone_label}=${zone}"}


class _Ledger(BaseHTTPRequestHandler):
    document: ClassVar[dict[str, Any]] = {}
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        body = json.dumps(self.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def ledger_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Ledger)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("document", "status"),
    [
        ({"balanced": True, "negative_accounts": 0, "sum_minor": {"USD": 0}}, 0),
        ({"balanced": False, "negative_accounts": 0, "sum_minor": {"USD": 5}}, 1),
        ({"balanced": True, "negative_accounts": 2, "sum_minor": {"USD": 0}}, 1),
    ],
)
def test_the_ledger_probe_exits_0_only_for_a_balanced_ledger(
    ledger_server: str, document: dict[str, Any], status: int
) -> None:
    _Ledger.document, _Ledger.seen = document, []
    provider = load("pod-kill-under-load")["steady-state-hypothesis"]["probes"][2]["provider"]
    assert provider["type"] == "process" and provider["arguments"][-1] == "${payments_url}"
    done = subprocess.run(
        [provider["path"], *provider["arguments"][:-1], ledger_server + "/"],
        env={**os.environ, "NOVA_ADMIN_TOKEN": "s3cret"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == status, done.stderr
    assert _Ledger.seen == [("/v1/ledger/verify", "Bearer s3cret")]  # the token from the environment, not argv


def test_the_zone_action_deletes_only_nova_pods_on_the_zone_nodes(tmp_path: Path) -> None:
    log = tmp_path / "kubectl.log"
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        'case "$*" in\n'
        '  "get nodes -l topology.kubernetes.io/zone=zone-b"*) echo "node-1 node-2" ;;\n'
        '  *"spec.nodeName=node-1"*) echo "pod/payments-a" ;;\n'
        '  *"spec.nodeName=node-2"*) echo "pod/portfolio-b" ;;\n'
        "esac\n"
    )
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IXUSR)
    [action] = [a for a in load("zone-outage")["method"] if a["name"] == "delete-nova-pods-in-the-zone"]
    script_args = action["provider"]["arguments"]
    done = subprocess.run(
        ["sh", *script_args[:3], "nova", "topology.kubernetes.io/zone", "zone-b"],
        env={**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    deletes = [call for call in calls if call.startswith("delete")]
    assert deletes == [
        "delete -n nova pod/payments-a --grace-period=0 --wait=false",
        "delete -n nova pod/portfolio-b --grace-period=0 --wait=false",
    ]
    assert all("app.kubernetes.io/part-of=nova" in call for call in calls if call.startswith("get pods"))
    empty = subprocess.run(
        ["sh", *script_args[:3], "nova", "topology.kubernetes.io/zone", "zone-x"],
        env={**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert empty.returncode == 1 and "no node carries" in empty.stderr

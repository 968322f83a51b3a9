"""The Kubernetes manifests (core_services/deploy, loadtests/deploy), checked offline.

Every object validates against the Kubernetes API of the version targeted (kubernetes-validate's
bundled schemas, strict: unknown fields are errors). Overlays are rendered here by a small
kustomize (resources + strategic-merge patches, the subset the overlays use); when a kubectl with
kustomize v4 or later is on PATH its rendering must be the same.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no stubs or py.typed
import pytest
import yaml

from loadtests.locust_process import LocustRun
from loadtests.results import RunParameters

REPO = Path(__file__).resolve().parents[2]
SERVICES_DEPLOY = REPO / "core_services" / "deploy"
LOAD_DEPLOY = REPO / "loadtests" / "deploy"
# The Kubernetes version the manifests target (apps/v1, policy/v1, autoscaling/v2, batch/v1).
K8S_VERSION = "1.30.0"
# superuser_reserved_connections (PostgreSQL's default 3) and 10 for operators, migrations and monitoring.
RESERVED_CONNECTIONS = 3 + 10
PLACEHOLDER = "REPLACE_ME"

Doc = dict[str, Any]

KUSTOMIZATIONS = sorted(
    path.parent for root in (SERVICES_DEPLOY, LOAD_DEPLOY) for path in root.rglob("kustomization.yaml")
)
SERVICE_SETUPS = {
    "base": SERVICES_DEPLOY / "base",
    "small": SERVICES_DEPLOY / "overlays" / "small",
    "peak-10x": SERVICES_DEPLOY / "overlays" / "peak-10x",
}
# Lists kustomize merges item by item (strategic merge), by this key; other lists are replaced.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}


def load_documents(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization(folder: Path) -> Doc:
    (doc,) = load_documents(folder / "kustomization.yaml")
    return doc


def patch_files() -> set[Path]:
    return {
        (folder / entry["path"]).resolve()
        for folder in KUSTOMIZATIONS
        for entry in kustomization(folder).get("patches", [])
    }


def object_files() -> list[Path]:
    """Every YAML file that holds whole Kubernetes objects (not a kustomization, not a patch)."""
    patches = patch_files()
    files = sorted(path for root in (SERVICES_DEPLOY, LOAD_DEPLOY) for path in root.rglob("*.yaml"))
    return [path for path in files if path.name != "kustomization.yaml" and path.resolve() not in patches]


def merge(base: Any, patch: Any, key: str | None = None) -> Any:
    """Kubernetes' strategic merge, for the fields the overlays patch."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            merged[name] = merge(base[name], value, name) if name in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        field = MERGE_KEYS[key]
        items = [copy.deepcopy(item) for item in base]
        for item in patch:
            index = next((i for i, old in enumerate(items) if old[field] == item[field]), None)
            if index is None:
                items.append(copy.deepcopy(item))
            else:
                items[index] = merge(items[index], item)
        return items
    return copy.deepcopy(patch)


def render(folder: Path) -> list[Doc]:
    """What `kubectl kustomize folder` gives, for resources and strategic-merge patches."""
    spec = kustomization(folder)
    unsupported = set(spec) - {"apiVersion", "kind", "resources", "patches"}
    assert not unsupported, f"{folder}: the test's kustomize does not know {sorted(unsupported)}"
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        target = folder / entry
        docs += render(target) if target.is_dir() else load_documents(target)
    for entry in spec.get("patches", []):
        (patch,) = load_documents(folder / entry["path"])
        matches = [i for i, doc in enumerate(docs) if identity(doc) == identity(patch)]
        assert len(matches) == 1, f"{folder / entry['path']} patches {identity(patch)}, found {len(matches)} times"
        docs[matches[0]] = merge(docs[matches[0]], patch)
    return docs


def identity(doc: Doc) -> tuple[str, str, str]:
    return doc["apiVersion"], doc["kind"], doc["metadata"]["name"]


def find(docs: list[Doc], kind: str, name: str | None = None) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind and (name is None or doc["metadata"]["name"] == name)]


def pod_spec(doc: Doc) -> Doc:
    spec: Doc = doc["spec"]["template"]["spec"]
    return spec


def containers(doc: Doc) -> Iterator[Doc]:
    spec = pod_spec(doc)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_value(container: Doc, name: str) -> str:
    (value,) = [item["value"] for item in container.get("env", []) if item["name"] == name]
    return str(value)


def matches(selector: Doc, labels: dict[str, str]) -> bool:
    assert set(selector) == {"matchLabels"}, "only matchLabels selectors are used"
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def workloads(docs: list[Doc]) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] in ("Deployment", "Job")]


def all_renderings() -> list[Doc]:
    return [doc for folder in KUSTOMIZATIONS for doc in render(folder)]


def kubectl_kustomize() -> str | None:
    """kubectl, if it is on PATH and its kustomize reads the overlays' syntax (v4 or later)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    version = subprocess.run([kubectl, "version", "--client"], capture_output=True, text=True, check=False).stdout
    found = re.search(r"Kustomize Version: v(\d+)", version)
    return kubectl if found and int(found.group(1)) >= 4 else None


# --- schema validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", object_files(), ids=lambda path: str(path.relative_to(REPO)))
def test_every_manifest_validates_against_the_targeted_kubernetes_api(path: Path) -> None:
    docs = load_documents(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_kustomization_lists_files_that_exist(folder: Path) -> None:
    spec = kustomization(folder)
    listed = [*spec.get("resources", []), *(entry["path"] for entry in spec.get("patches", []))]
    assert listed
    missing = [entry for entry in listed if not (folder / entry).exists()]
    assert missing == []


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: str(path.relative_to(REPO)))
def test_every_rendered_kustomization_validates(folder: Path) -> None:
    docs = render(folder)
    assert len({identity(doc) for doc in docs}) == len(docs)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda path: str(path.relative_to(REPO)))
def test_kubectl_kustomize_renders_what_the_test_renders(folder: Path) -> None:
    kubectl = kubectl_kustomize()
    if kubectl is None:
        pytest.skip("no kubectl with kustomize v4+ on PATH; the test's own rendering was validated")
    output = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=True).stdout
    theirs = sorted(yaml.safe_load_all(output), key=identity)
    assert theirs == sorted(render(folder), key=identity)


# --- the services --------------------------------------------------------------------------------


@pytest.mark.parametrize("setup", SERVICE_SETUPS)
def test_probes_ask_readyz_and_healthz_on_the_named_http_port(setup: str) -> None:
    deployments = find(render(SERVICE_SETUPS[setup]), "Deployment")
    assert {doc["metadata"]["name"] for doc in deployments} == {"payments", "portfolio"}
    for doc in deployments:
        (container,) = pod_spec(doc)["containers"]
        assert [port["name"] for port in container["ports"]] == ["http"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


def test_every_container_has_cpu_and_memory_requests_and_limits() -> None:
    for doc in workloads(all_renderings()):
        for container in containers(doc):
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) == {"cpu", "memory"}, (doc["metadata"]["name"], bound)


def test_every_pod_runs_as_non_root() -> None:
    for doc in workloads(all_renderings()):
        assert pod_spec(doc)["securityContext"]["runAsNonRoot"] is True
        for container in containers(doc):
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("setup", SERVICE_SETUPS)
def test_every_kubelet_expansion_names_a_variable_the_container_has(setup: str) -> None:
    for doc in workloads(render(SERVICE_SETUPS[setup])) + workloads(render(LOAD_DEPLOY)):
        for container in containers(doc):
            defined = {item["name"] for item in container.get("env", [])}
            if container.get("envFrom"):
                (config_map,) = find(render(LOAD_DEPLOY), "ConfigMap", container["envFrom"][0]["configMapRef"]["name"])
                defined |= set(config_map["data"])
            words = [*container.get("command", []), *container.get("args", [])]
            used = {name for word in words for name in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", word)}
            assert used <= defined, (doc["metadata"]["name"], used - defined)


@pytest.mark.parametrize("setup", SERVICE_SETUPS)
def test_services_run_the_server_with_explicit_workers_and_pool(setup: str) -> None:
    for doc in find(render(SERVICE_SETUPS[setup]), "Deployment"):
        (container,) = pod_spec(doc)["containers"]
        name = doc["metadata"]["name"]
        command = container["command"]
        assert command[:4] == ["python", "-m", "core_services.server", name]
        assert command[command.index("--workers") + 1] == "$(NOVA_WORKERS)"
        assert int(env_value(container, "NOVA_WORKERS")) >= 1
        assert int(env_value(container, "NOVA_DB_POOL_SIZE")) >= 1
        assert command[command.index("--port") + 1] == str(container["ports"][0]["containerPort"])


@pytest.mark.parametrize("setup", SERVICE_SETUPS)
def test_service_ports_are_named_http_and_select_the_pods(setup: str) -> None:
    docs = render(SERVICE_SETUPS[setup])
    for service in find(docs, "Service"):
        assert service["metadata"]["labels"]["app.kubernetes.io/part-of"] == "nova"
        assert [port["name"] for port in service["spec"]["ports"]] == ["http"]
        (deployment,) = find(docs, "Deployment", service["metadata"]["name"])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert matches({"matchLabels": service["spec"]["selector"]}, labels)
        assert service["spec"]["ports"][0]["port"] == pod_spec(deployment)["containers"][0]["ports"][0]["containerPort"]


@pytest.mark.parametrize("setup", SERVICE_SETUPS)
def test_portfolio_reaches_payments_by_its_service_name(setup: str) -> None:
    docs = render(SERVICE_SETUPS[setup])
    (portfolio,) = find(docs, "Deployment", "portfolio")
    (payments,) = find(docs, "Service", "payments")
    url = env_value(pod_spec(portfolio)["containers"][0], "NOVA_PAYMENTS_URL")
    assert url == f"http://payments:{payments['spec']['ports'][0]['port']}"


@pytest.mark.parametrize("setup", SERVICE_SETUPS)
def test_pdb_selectors_match_the_deployments_pod_labels(setup: str) -> None:
    docs = render(SERVICE_SETUPS[setup])
    budgets = find(docs, "PodDisruptionBudget")
    assert len(budgets) == 2
    for budget in budgets:
        selected = [
            doc
            for doc in find(docs, "Deployment")
            if matches(budget["spec"]["selector"], doc["spec"]["template"]["metadata"]["labels"])
        ]
        assert [doc["metadata"]["name"] for doc in selected] == [budget["metadata"]["name"]]


@pytest.mark.parametrize("setup", SERVICE_SETUPS)
def test_pdb_leaves_a_node_drain_room_to_evict(setup: str) -> None:
    docs = render(SERVICE_SETUPS[setup])
    for budget in find(docs, "PodDisruptionBudget"):
        (hpa,) = find(docs, "HorizontalPodAutoscaler", budget["metadata"]["name"])
        assert 1 <= budget["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


@pytest.mark.parametrize("setup", SERVICE_SETUPS)
def test_hpa_targets_a_deployment_that_exists(setup: str) -> None:
    docs = render(SERVICE_SETUPS[setup])
    autoscalers = find(docs, "HorizontalPodAutoscaler")
    assert len(autoscalers) == 2
    for hpa in autoscalers:
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        (deployment,) = find(docs, "Deployment", target["name"])
        assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
        assert [metric["resource"]["name"] for metric in hpa["spec"]["metrics"]] == ["cpu"]


def test_the_10x_overlay_scales_further_than_the_small_one() -> None:
    small, peak = render(SERVICE_SETUPS["small"]), render(SERVICE_SETUPS["peak-10x"])
    for service in ("payments", "portfolio"):
        (small_hpa,), (peak_hpa,) = (
            find(small, "HorizontalPodAutoscaler", service),
            find(peak, "HorizontalPodAutoscaler", service),
        )
        assert peak_hpa["spec"]["maxReplicas"] > small_hpa["spec"]["maxReplicas"]
        assert peak_hpa["spec"]["minReplicas"] > small_hpa["spec"]["minReplicas"]


def database_connections(deployment: Doc, hpa: Doc) -> int:
    """The most connections one service can hold: at the HPA's maximum, during a rolling update.

    Each worker's pool holds NOVA_DB_POOL_SIZE connections plus half again as overflow
    (core_services/database.py); each pod's supervisor opens one more to migrate at start.
    """
    surge = deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert isinstance(surge, int), "maxSurge as a number of pods keeps the arithmetic exact"
    pods = int(hpa["spec"]["maxReplicas"]) + surge
    (container,) = pod_spec(deployment)["containers"]
    workers = int(env_value(container, "NOVA_WORKERS"))
    pool = int(env_value(container, "NOVA_DB_POOL_SIZE"))
    return pods * workers * (pool + pool // 2) + pods


@pytest.mark.parametrize("setup", SERVICE_SETUPS)
def test_connections_at_full_scale_stay_under_postgres_max_connections(setup: str) -> None:
    docs = render(SERVICE_SETUPS[setup])
    limits = {
        doc["metadata"]["annotations"]["nova.reliability/postgres-max-connections"] for doc in find(docs, "Deployment")
    }
    (limit,) = limits  # both services share one PostgreSQL server
    total = sum(
        database_connections(deployment, find(docs, "HorizontalPodAutoscaler", deployment["metadata"]["name"])[0])
        for deployment in find(docs, "Deployment")
    )
    assert total < int(limit) - RESERVED_CONNECTIONS


def test_no_kustomization_ships_a_secret() -> None:
    assert find(all_renderings(), "Secret") == []


def test_secrets_hold_only_placeholders() -> None:
    secrets = [doc for path in object_files() for doc in load_documents(path) if doc["kind"] == "Secret"]
    assert secrets
    for secret in secrets:
        assert "data" not in secret
        for key, value in secret["stringData"].items():
            assert PLACEHOLDER in value, key
            assert ".example.invalid" in value or value == PLACEHOLDER, key


def test_secret_template_has_every_key_the_workloads_read() -> None:
    (secret,) = [doc for path in object_files() for doc in load_documents(path) if doc["kind"] == "Secret"]
    read = {
        (item["valueFrom"]["secretKeyRef"]["name"], item["valueFrom"]["secretKeyRef"]["key"])
        for doc in workloads(all_renderings())
        for container in containers(doc)
        for item in container.get("env", [])
        if "secretKeyRef" in item.get("valueFrom", {})
    }
    assert read == {(secret["metadata"]["name"], key) for key in secret["stringData"]}


# --- Locust ------------------------------------------------------------------------------------


def locust() -> tuple[Doc, Doc, Doc, Doc]:
    docs = render(LOAD_DEPLOY)
    (master,) = find(docs, "Job", "locust-master")
    (workers,) = find(docs, "Job", "locust-worker")
    (service,) = find(docs, "Service", "locust-master")
    (run,) = find(docs, "ConfigMap", "locust-run")
    return master, workers, service, run


def test_locust_workers_point_at_the_master_service() -> None:
    master, workers, service, _ = locust()
    command = pod_spec(workers)["containers"][0]["command"]
    assert command[command.index("--master-host") + 1] == service["metadata"]["name"]
    port = int(command[command.index("--master-port") + 1])
    (master_port,) = [p for p in service["spec"]["ports"] if p["port"] == port]
    assert matches({"matchLabels": service["spec"]["selector"]}, master["spec"]["template"]["metadata"]["labels"])
    assert master_port["targetPort"] in [p["name"] for p in pod_spec(master)["containers"][0]["ports"]]
    assert f"--master-bind-port {port}" in pod_spec(master)["containers"][0]["command"][2]


def test_locust_worker_count_is_what_the_master_expects() -> None:
    _, workers, _, run = locust()
    assert workers["spec"]["parallelism"] == workers["spec"]["completions"] == int(run["data"]["LOCUST_WORKERS"])


def test_locust_master_and_workers_pass_every_option_nova_load_passes() -> None:
    master, workers, _, _ = locust()
    spec = LocustRun(RunParameters("steady", 10, 60, 1, "trading", 1, "http://p", "http://q"), Path("out"), "")
    options = {
        word for word in spec.command() if word.startswith("--") and word not in ("--headless", "--only-summary")
    }
    script = pod_spec(master)["containers"][0]["command"][2]
    assert options <= set(script.split()) | {"--headless", "--only-summary"}
    assert "--headless" in script
    assert options <= set(pod_spec(workers)["containers"][0]["command"])


def test_locust_targets_the_services_by_their_service_names() -> None:
    _, _, _, run = locust()
    base = render(SERVICE_SETUPS["base"])
    for variable, name in (("NOVA_PAYMENTS_URL", "payments"), ("NOVA_PORTFOLIO_URL", "portfolio")):
        (service,) = find(base, "Service", name)
        assert run["data"][variable] == f"http://{name}:{service['spec']['ports'][0]['port']}"


def test_locust_master_judges_the_run_with_the_gate_thresholds() -> None:
    master, _, _, run = locust()
    script = pod_spec(master)["containers"][0]["command"][2]
    assert "exec python -m loadtests.deploy.judge" in script
    assert '--p99-ms "$NOVA_GATE_P99_MS"' in script and '--availability "$NOVA_GATE_AVAILABILITY"' in script
    assert float(run["data"]["NOVA_GATE_P99_MS"]) == 200 and float(run["data"]["NOVA_GATE_AVAILABILITY"]) == 99.99


def test_locust_master_deadline_covers_the_whole_run() -> None:
    master, workers, _, run = locust()
    # shape + waiting for workers (--expect-workers-max-wait) + readiness wait + Locust's start and stop
    needed = float(run["data"]["NOVA_LOAD_DURATION"]) + 300 + 120 + 90
    assert master["spec"]["activeDeadlineSeconds"] > needed
    assert workers["spec"]["activeDeadlineSeconds"] >= master["spec"]["activeDeadlineSeconds"]
    assert master["spec"]["backoffLimit"] == 0

"""`nova runbooks run`: a runbook's diagnostics against a live `nova serve`, and a real Prometheus scraping it."""

from __future__ import annotations

import json
import math
import os
import signal
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from chaos.monitoring import MonitoringBinaries, MonitoringStack, find_binaries
from chaos.process_faults import freeze_worker, thaw_workers, workers_of
from loadtests.smoke import run_journey
from nova.serve import Platform, ServeOptions
from runbooks.catalog import suite_slos
from runbooks.document import SERVICES, parse_runbook
from runbooks.run import ATTENTION, OK, RunContext, run_steps
from slo.rules import render
from tests.conftest import ADMIN_TOKEN
from tests.nova.conftest import RunPlatform, admin_client, free_port
from tests.runbooks.conftest import runbooks, stderr_to, wait_for_line

WORKERS_RUNBOOK = '## Diagnosis\n\n```nova-check title="Workers" causes="worker_frozen worker_restarts"\nworkers\n```\n'


@pytest.fixture(autouse=True)
def _no_prometheus_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOVA_PROMETHEUS_URL", raising=False)


def _run_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = runbooks("run", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def _step(document: dict[str, Any], title: str) -> dict[str, Any]:
    matching: list[dict[str, Any]] = [step for step in document["steps"] if step["title"] == title]
    assert matching, f"no step {title!r} in {[s['title'] for s in document['steps']]}"
    return matching[0]


def test_run_against_a_live_platform_prints_real_values(run_platform: RunPlatform) -> None:
    with run_platform(workers=1, enable_faults=True) as platform:
        journey = run_journey(platform.options.url("payments"), platform.options.url("portfolio"), ADMIN_TOKEN)
        assert journey.ok
        code, document = _run_json("PaymentsAvailabilityBurn", "--data-dir", str(platform.options.data_dir))

    assert code == 0
    assert document["runbook"].endswith("payments-availability-page.md")
    ready = _step(document, "Readiness of payments (database reachable)")
    assert (ready["status"], ready["result"]) == ("ok", ['payments 200 {"status":"ready"}'])
    ledger = _step(document, "Ledger verification (every currency sums to zero, no negative customer account)")
    assert ledger["status"] == "ok"
    assert ledger["result"][0] == "balanced, negative customer accounts 0"
    assert ledger["result"][1].startswith("payments ") and ledger["result"][1].endswith("sums USD 0")
    faults = _step(document, "Active faults on both services")
    assert faults["result"] == ["payments: none", "portfolio: none"]
    ratio = _step(document, "Payments error ratio, last 5m (recorded SLI)")
    assert ratio["status"] == "ok" and ratio["source"].startswith("embedded scraper http://127.0.0.1:")
    assert ratio["values"] == [0.0]
    assert "customer requests" in ratio["result"][0]
    skipped = _step(document, "Payments 5xx per second by route and code, last 5m")
    assert skipped["status"] == "skipped" and "needs Prometheus" in skipped["result"][0]


def test_run_shows_an_injected_fault_and_the_errors_it_causes(run_platform: RunPlatform) -> None:
    with run_platform(workers=1, enable_faults=True) as platform:
        payments = platform.options.url("payments")
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=payments, headers=headers, timeout=10.0) as client:
            fault = {"rate": 1.0, "status": 500, "route": "/v1/payments/{payment_id}", "ttl_seconds": 60}
            assert client.put("/admin/faults/error_rate", json=fault).status_code == 200
            statuses = [client.get("/v1/payments/pay_missing").status_code for _ in range(4)]
            statuses.append(client.post("/v1/customers", json={"name": "ok"}).status_code)
        assert statuses == [500, 500, 500, 500, 201]
        code, document = _run_json("payments-availability-page.md", "--data-dir", str(platform.options.data_dir))

    assert code == 0  # every step ran; what they found is trouble
    faults = _step(document, "Active faults on both services")
    assert (faults["status"], faults["result"]) == ("attention", ["payments: error_rate", "portfolio: none"])
    ratio = _step(document, "Payments error ratio, last 5m (recorded SLI)")
    assert ratio["values"] == [pytest.approx(4 / 5)]
    ready = _step(document, "Readiness of payments (database reachable)")
    assert ready["status"] == "ok"  # a fault on one route leaves the database reachable
    assert faults["causes"] == ["error_rate"] and ready["causes"] == []
    assert "error_rate" in document["causes"] and "database_unavailable" not in document["causes"]
    assert document["started_at"] <= faults["finished_at"] <= document["finished_at"]


def test_run_with_prometheus_prints_a_real_number_for_a_promql_step(run_platform: RunPlatform, tmp_path: Path) -> None:
    binaries = find_binaries()
    if binaries.prometheus is None:
        if os.environ.get("CI") == "true":
            pytest.fail("prometheus must be installed in CI (Debian package prometheus)")
        pytest.skip("prometheus is not installed")
    rules = tmp_path / "rules.yml"
    rules.write_text(render(suite_slos()))
    with run_platform(workers=1) as platform:
        targets = {name: platform.options.url(name) for name in ("payments", "portfolio")}
        # A series' first sample is no increase to rate(): the journey's series must exist before the scrape.
        assert run_journey(targets["payments"], targets["portfolio"], ADMIN_TOKEN).ok
        stack = MonitoringStack(
            tmp_path / "monitoring", rules, targets, binaries=MonitoringBinaries(binaries.prometheus, None)
        )
        with stack:
            _wait_for(stack.prometheus_url, 'up{job="payments"} == 1')
            assert run_journey(targets["payments"], targets["portfolio"], ADMIN_TOKEN).ok
            _wait_for(stack.prometheus_url, 'slo:current_burn_rate:ratio{sloth_id="payments-availability"}')
            code, document = _run_json(
                "PaymentsAvailabilityBurn",
                "--prometheus",
                stack.prometheus_url,
                "--data-dir",
                str(platform.options.data_dir),
            )

    assert code == 0
    ratio = _step(document, "Payments error ratio, last 5m (recorded SLI)")
    assert ratio["source"] == f"prometheus {stack.prometheus_url}"
    assert ratio["values"] == [0.0]
    assert ratio["result"][0].startswith("slo:sli_error:ratio_rate5m{") and ratio["result"][0].endswith(" 0")
    pool = _step(document, "Database connections in use, share of the pool")
    assert len(pool["values"]) == 1 and 0.0 <= pool["values"][0] <= 1.0
    burn = _step(document, "Burn rate now (1.0 = spending the budget exactly on schedule; the page is 14.4)")
    assert (burn["status"], burn["values"]) == ("ok", [0.0])


def test_the_workers_check_names_a_stopped_worker_frozen_and_running_ones_nothing(run_platform: RunPlatform) -> None:
    runbook = parse_runbook(Path("frozen.md"), WORKERS_RUNBOOK)
    with run_platform(workers=2) as platform:
        context = RunContext(platform.options.data_dir)
        data_dir = str(platform.options.data_dir)
        (running,) = run_steps(runbook, context)
        frozen_pid = freeze_worker("payments", seconds=30, data_dir=data_dir)["pid"]
        try:
            (frozen,) = run_steps(runbook, context)
        finally:
            thaw_workers(data_dir)
        (thawed,) = run_steps(runbook, context)

    assert (running.status, running.causes) == (OK, ())
    assert [line.split(":")[0] for line in running.lines[:2]] == list(SERVICES)
    assert "T (stopped)" not in " ".join(running.lines) and "supervisor log not given" in running.lines[-1]
    assert (frozen.status, frozen.causes) == (ATTENTION, ("worker_frozen",))
    payments = next(line for line in frozen.lines if line.startswith("payments: "))
    assert f"{frozen_pid} T (stopped)" in payments and payments.count(", ") == 1  # the other worker still runs
    assert not any("T (stopped)" in line for line in frozen.lines if line.startswith("portfolio: "))
    assert (thawed.status, thawed.causes) == (OK, ())


def test_the_workers_check_tells_a_worker_killed_for_not_answering_from_one_that_died(
    run_platform: RunPlatform, tmp_path: Path
) -> None:
    runbook = parse_runbook(Path("workers.md"), WORKERS_RUNBOOK)
    log = tmp_path / "serve.log"
    with ExitStack() as stack:
        with stderr_to(log):
            platform = stack.enter_context(run_platform(workers=2))
        context = RunContext(platform.options.data_dir, serve_log=log)
        data_dir = str(platform.options.data_dir)
        (before,) = run_steps(runbook, context)
        frozen = freeze_worker("payments", seconds=60, data_dir=data_dir)["pid"]
        hung = wait_for_line(log, f"payments worker {frozen} did not answer its health check")
        thaw_workers(data_dir)  # nothing to thaw: the supervisor killed it
        (after_freeze,) = run_steps(runbook, context)
        died = workers_of("portfolio", data_dir)[0]
        os.kill(died, signal.SIGKILL)
        wait_for_line(log, f"portfolio worker {died} was killed by SIGKILL")
        (after_kill,) = run_steps(runbook, context)

    # (A loaded machine can make a busy worker miss a health check too: only these two workers are asserted.)
    assert not any(f"worker {frozen} " in line or f"worker {died} " in line for line in before.lines)
    assert after_freeze.status == ATTENTION and "worker_frozen" in after_freeze.causes
    assert hung.endswith("replaced") and any(
        line.startswith(f"payments worker {frozen} did not answer its health check; killed; replaced ")
        for line in after_freeze.lines
    )
    assert after_kill.causes == ("worker_frozen", "worker_restarts")  # in the step's declared order
    assert any(line.startswith(f"portfolio worker {died} was killed by SIGKILL") for line in after_kill.lines)


def test_the_service_down_runbook_names_a_fault_left_on_even_when_no_scrape_answers(run_platform: RunPlatform) -> None:
    with run_platform(workers=1, enable_faults=True) as platform:
        with admin_client(platform, "portfolio") as client:
            fault = {"ms": 250, "ttl_seconds": 60}
            assert client.put("/admin/faults/payments_latency", json=fault).status_code == 200
        code, document = _run_json("NovaServiceDown", "--data-dir", str(platform.options.data_dir))

    assert code == 0
    faults = document["steps"][0]  # on-call's first look: the admin API answers when the scrapes time out
    assert faults["title"] == "Active faults on both services"
    assert (faults["result"], faults["causes"]) == (
        ["payments: none", "portfolio: payments_latency"],
        ["dependency_latency"],
    )
    assert document["causes"][0] == "dependency_latency"


def test_the_faults_check_names_a_toxic_on_the_link_to_payments_as_the_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOVA_ADMIN_TOKEN", ADMIN_TOKEN)
    runbook = parse_runbook(
        Path("faults.md"),
        '## Diagnosis\n\n```nova-check title="Faults" causes="dependency_latency dependency_errors error_rate"\n'
        "faults\n```\n",
    )
    options = ServeOptions(
        data_dir=tmp_path / "data",
        payments_port=free_port(),
        portfolio_port=free_port(),
        workers=1,
        enable_faults=True,
        fault_proxy_port=free_port(),
    )
    platform = Platform(options)
    platform.start()
    try:
        context = RunContext(options.data_dir)
        (clean,) = run_steps(runbook, context)
        proxy = f"http://127.0.0.1:{options.fault_proxy_port}"
        toxic = {"name": "slow", "type": "latency", "attributes": {"latency": 100, "jitter": 50}}
        assert httpx.post(f"{proxy}/proxies/payments/toxics", json=toxic, timeout=10.0).status_code == 200
        (slowed,) = run_steps(runbook, context)
    finally:
        platform.stop()

    assert (clean.status, clean.causes) == (OK, ())
    assert clean.lines == ("payments: none", "portfolio: none", "fault proxy: no toxic on any link")
    assert (slowed.status, slowed.causes) == (ATTENTION, ("dependency_latency",))
    assert slowed.lines[-1] == "fault proxy: payments latency"


def test_run_an_unknown_alert_exits_2_naming_close_matches() -> None:
    result = runbooks("run", "PaymentsAvailabilityBrun")
    assert result.exit_code == 2
    assert "no runbook for alert 'PaymentsAvailabilityBrun'" in result.stderr
    assert "close matches: PaymentsAvailabilityBurn" in result.stderr


def test_run_without_a_platform_says_which_steps_could_not_run(tmp_path: Path) -> None:
    code, document = _run_json("NovaServiceDown", "--data-dir", str(tmp_path))
    assert code == 1
    ready = _step(document, "Readiness of both services")
    assert ready["status"] == "error" and "serve.json: no such file" in ready["result"][0]
    up = _step(document, "Scrape status per service (1 up, 0 down)")
    assert up["status"] == "error"


def _wait_for(prometheus_url: str, promql: str, timeout_seconds: float = 30.0) -> None:
    """Until Prometheus has a number (not NaN) for `promql`: the rules ran over the traffic."""
    deadline = time.monotonic() + timeout_seconds
    values: list[float] = []
    while time.monotonic() < deadline:
        body = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=5.0).json()
        values = [float(sample["value"][1]) for sample in body["data"]["result"]]
        if values and not any(math.isnan(v) for v in values):
            return
        time.sleep(0.5)
    raise AssertionError(f"Prometheus had no value for {promql} within {timeout_seconds} s (last: {values})")

"""From journals, load runs and scraped rows to a game day's findings: windows, alerts, checks, scenario."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chaos.gameday import game_day_scenario
from chaos.gameday_evidence import CHECKS, Evidence, embedded_alerts, phase_results
from chaos.gameday_model import BASELINE, Check, PhaseResult, SeriesPoint, Window
from chaos.gameday_plan import CHECK_KINDS
from loadtests.audit import PaymentAudit
from loadtests.gate import evaluate_gate
from loadtests.ledger_verification import LedgerVerification
from loadtests.results import RunParameters, RunSummary, write_summary
from loadtests.samples import RequestSample, write_samples
from slo.scraper import Row
from slo.timeline import AlertInterval

T0 = 1_800_000_000.0
PAGE_CHECK = "the payments availability page fired during the fault"


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def run(func: str, start: float, end: float, output: Any = None, kind: str = "action") -> dict[str, Any]:
    activity = {"type": kind, "name": func.replace("_", "-"), "provider": {"type": "python", "func": func}}
    return {"activity": activity, "start": iso(start), "end": iso(end), "status": "succeeded", "output": output}


def journal(runs: list[dict[str, Any]], before: bool = True, after: bool = True) -> dict[str, Any]:
    def state(met: bool) -> dict[str, Any]:
        probe = {"activity": {"name": "ledger-balanced"}, "tolerance_met": met, "output": met}
        return {"steady_state_met": met, "probes": [probe]}

    return {
        "status": "completed",
        "deviated": not after,
        "experiment": {"title": "An experiment"},
        "steady_states": {"before": state(before), "after": state(after) if before else None},
        "run": runs,
        "rollbacks": [],
    }


def load_run(folder: Path, samples: list[RequestSample], confirmed: int = 10, looked_up: int = 10) -> Path:
    """A load run's folder as `nova load` leaves it: samples.csv and summary.json (through its typed home)."""
    folder.mkdir(parents=True, exist_ok=True)
    write_samples(folder / "samples.csv", samples)
    audit = {
        "passed": confirmed == looked_up,
        "payments_acknowledged": 10,
        "payments_looked_up": looked_up,
        "payments_confirmed": confirmed,
        "lost": [],
    }
    parameters = RunParameters("steady", 10, 60.0, 1.0, "trading", 1, "http://p", "http://q")
    run_summary = RunSummary(evaluate_gate(samples), parameters, PaymentAudit.from_json(audit))
    write_summary(folder / "summary.json", run_summary)
    return folder


def evidence(tmp_path: Path, **changes: Any) -> Evidence:
    base: dict[str, Any] = {
        "out": tmp_path,
        "windows": {BASELINE: Window(T0, T0 + 20)},
        "journals": {},
        "loads": {BASELINE: load_run(tmp_path / "load" / BASELINE, [ok(T0 + 1)])},
        "ledgers": {BASELINE: LedgerVerification(True, sum_minor={"USD": 0})},
        "series": {},
        "step_seconds": 5.0,
        "alerts": [],
    }
    base.update(changes)
    return Evidence(**base)


def check_of(phase: PhaseResult, name: str) -> Check:
    return next(check for check in phase.checks if check.name == name)


def ok(at: float) -> RequestSample:
    return RequestSample(at, "POST /v1/payments", 201, 10.0, 1)


def failed(at: float, millis: float = 10.0) -> RequestSample:
    return RequestSample(at, "POST /v1/payments", 503, millis, 1)


def experiment_evidence(tmp_path: Path, name: str, runs: list[dict[str, Any]], **changes: Any) -> Evidence:
    path = tmp_path / "journals" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(journal(runs)))
    windows = {BASELINE: Window(T0, T0 + 20), name: Window(T0 + 20, T0 + 80)}
    ledgers = {key: LedgerVerification(True) for key in windows}
    return evidence(tmp_path, windows=windows, journals={name: path}, ledgers=ledgers, **changes)


def test_the_fault_window_runs_from_the_first_fault_action_to_the_action_that_ends_it(tmp_path: Path) -> None:
    load = load_run(tmp_path / "load" / "x", [ok(T0 + 25)])
    runs = [
        run("start_background_load", T0 + 21, T0 + 22, {"out": str(load)}),
        run("inject_fault", T0 + 30, T0 + 30.5),
        run("availability_and_p99", T0 + 45, T0 + 46, kind="probe"),
        run("clear_fault", T0 + 46, T0 + 46.2),
    ]
    phase = phase_results(experiment_evidence(tmp_path, "db-latency", runs), [BASELINE, "db-latency"])[1]
    assert phase.fault == Window(T0 + 30, T0 + 46.2)
    assert phase.load is not None and phase.load.results_dir == "load/x"


def test_worker_kills_end_with_the_last_kill(tmp_path: Path) -> None:
    runs = [run("kill_worker", T0 + 30, T0 + 30.1), run("kill_worker", T0 + 35, T0 + 35.1)]
    phase = phase_results(experiment_evidence(tmp_path, "worker-kill-under-load", runs), ["worker-kill-under-load"])[0]
    assert phase.fault == Window(T0 + 30, T0 + 35.1)


def test_recovery_is_measured_to_the_last_failed_request_after_the_database_returned(tmp_path: Path) -> None:
    samples = [ok(T0 + 25), failed(T0 + 35), failed(T0 + 44.5, millis=1500.0), ok(T0 + 47)]
    load = load_run(tmp_path / "load" / "outage", samples)
    runs = [
        run("start_background_load", T0 + 21, T0 + 22, {"out": str(load)}),
        run("stop_database", T0 + 30, T0 + 31),
        run("write_during_outage", T0 + 32, T0 + 32.1, {"status": 503, "retry_after": "1"}, kind="probe"),
        run("start_database", T0 + 42, T0 + 44),
    ]
    phase = phase_results(experiment_evidence(tmp_path, "db-outage", runs), ["db-outage"])[0]
    assert phase.recovery_seconds == pytest.approx(2.0)  # 44.5 + 1.5 s response, against 44
    assert check_of(phase, "served again within 5 s of the database returning").passed
    assert check_of(phase, "writes during the outage got 503 with Retry-After").passed


def test_a_503_without_retry_after_fails_the_outage_check(tmp_path: Path) -> None:
    runs = [
        run("stop_database", T0 + 30, T0 + 31),
        run("write_during_outage", T0 + 32, T0 + 32.1, {"status": 503, "retry_after": None}, kind="probe"),
        run("start_database", T0 + 42, T0 + 44),
    ]
    phase = phase_results(experiment_evidence(tmp_path, "db-outage", runs), ["db-outage"])[0]
    assert not check_of(phase, "writes during the outage got 503 with Retry-After").passed


def test_an_audit_that_found_fewer_payments_than_were_acknowledged_fails(tmp_path: Path) -> None:
    load = load_run(tmp_path / "load" / "x", [ok(T0 + 25)], confirmed=9)
    runs = [run("start_background_load", T0 + 21, T0 + 22, {"out": str(load)}), run("kill_worker", T0 + 30, T0 + 31)]
    phase = phase_results(experiment_evidence(tmp_path, "worker-kill-under-load", runs), ["worker-kill-under-load"])[0]
    audit = check_of(phase, "no acknowledged payment lost or duplicated")
    assert not audit.passed and "9 of 10" in audit.detail


def test_an_audit_of_a_sample_of_the_payments_passes_when_every_one_looked_up_was_found(tmp_path: Path) -> None:
    load = load_run(tmp_path / "load" / "x", [ok(T0 + 25)], confirmed=3, looked_up=3)
    runs = [run("start_background_load", T0 + 21, T0 + 22, {"out": str(load)}), run("kill_worker", T0 + 30, T0 + 31)]
    phase = phase_results(experiment_evidence(tmp_path, "worker-kill-under-load", runs), ["worker-kill-under-load"])[0]
    audit = check_of(phase, "no acknowledged payment lost or duplicated")
    assert audit.passed and "3 of 3 payments looked up (a sample of 10 acknowledged)" in audit.detail


def test_the_error_burn_check_needs_a_payments_availability_page_that_began_with_the_fault(tmp_path: Path) -> None:
    runs = [run("inject_fault", T0 + 30, T0 + 31), run("clear_fault", T0 + 46, T0 + 47)]
    page = AlertInterval("PaymentsAvailabilityBurn", "page", T0 + 40, None)
    ticket = AlertInterval("PaymentsAvailabilityBurn", "ticket", T0 + 40, None)
    fired = experiment_evidence(tmp_path, "payments-error-burn", runs, alerts=[(page, "payments-availability")])
    phase = phase_results(fired, ["payments-error-burn"])[0]
    assert check_of(phase, PAGE_CHECK).passed and phase.alerts[0].delay_seconds == pytest.approx(10.0)
    only_ticket = experiment_evidence(tmp_path, "payments-error-burn", runs, alerts=[(ticket, "payments-availability")])
    assert not check_of(phase_results(only_ticket, ["payments-error-burn"])[0], PAGE_CHECK).passed


def test_an_alert_still_firing_from_an_earlier_phase_is_not_credited_to_this_one(tmp_path: Path) -> None:
    runs = [run("inject_fault", T0 + 30, T0 + 31), run("clear_fault", T0 + 46, T0 + 47)]
    earlier = AlertInterval("PaymentsAvailabilityBurn", "page", T0 + 10, None)
    phase = phase_results(
        experiment_evidence(tmp_path, "payments-error-burn", runs, alerts=[(earlier, "payments-availability")]),
        [BASELINE, "payments-error-burn"],
    )
    assert phase[1].alerts == [] and phase[1].already_firing == ["PaymentsAvailabilityBurn (page)"]
    baseline_page = check_of(phase[0], "no burn-rate page during the baseline")
    assert not baseline_page.passed


def test_a_hypothesis_that_failed_before_the_method_is_not_a_pass(tmp_path: Path) -> None:
    path = tmp_path / "journals" / "cpu-burn.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(journal([], before=False)))
    found = evidence(
        tmp_path,
        windows={"cpu-burn": Window(T0, T0 + 10)},
        journals={"cpu-burn": path},
        ledgers={"cpu-burn": None},
    )
    phase = phase_results(found, ["cpu-burn"])[0]
    assert phase.status == "deviated" and not phase.passed
    assert not check_of(phase, "ledger balanced").passed


def declared_experiment_evidence(tmp_path: Path, name: str, checks: list[Any] | None, **changes: Any) -> Evidence:
    """Evidence of an experiment that is not in chaos/experiments: its journal carries all it declares."""
    load = load_run(tmp_path / "load" / name, [ok(T0 + 25), failed(T0 + 40), ok(T0 + 50)])
    runs = [
        run("start_background_load", T0 + 21, T0 + 22, {"out": str(load)}),
        run("inject_fault", T0 + 30, T0 + 31),
        run("clear_fault", T0 + 38, T0 + 39),
    ]
    document = journal(runs)
    if checks is not None:
        document["experiment"]["extensions"] = [{"name": "nova-gameday", "checks": checks}]
    path = tmp_path / "journals" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    windows = {name: Window(T0 + 20, T0 + 80)}
    return evidence(
        tmp_path, windows=windows, journals={name: path}, ledgers={name: LedgerVerification(True)}, **changes
    )


def test_a_new_experiment_gets_its_checks_from_what_it_declares_alone(tmp_path: Path) -> None:
    declared = [
        {"check": "availability"},
        {"check": "page", "slo": "portfolio-availability"},
        {"check": "recovery", "within_seconds": 3},
    ]
    page = AlertInterval("PortfolioAvailabilityBurn", "page", T0 + 35, None)
    found = declared_experiment_evidence(
        tmp_path, "orders-brownout", declared, alerts=[(page, "portfolio-availability")]
    )
    phase = phase_results(found, ["orders-brownout"])[0]
    assert [check.name for check in phase.checks] == [
        "ledger balanced",
        "steady-state hypothesis held",
        "no acknowledged payment lost or duplicated",
        "customers saw >= 99.99% after retries",
        "the portfolio availability page fired during the fault",
        "served again within 3 s of the database returning",
    ]
    assert check_of(phase, "the portfolio availability page fired during the fault").passed
    recovered = check_of(phase, "served again within 3 s of the database returning")
    assert recovered.passed and "1.0 s after it returned" in recovered.detail  # 40 + 10 ms, against 39


def test_an_experiment_that_declares_no_checks_is_judged_by_the_common_ones_only(tmp_path: Path) -> None:
    phase = phase_results(declared_experiment_evidence(tmp_path, "quiet-fault", None), ["quiet-fault"])[0]
    assert [check.name for check in phase.checks] == [
        "ledger balanced",
        "steady-state hypothesis held",
        "no acknowledged payment lost or duplicated",
    ]


def test_every_kind_of_check_a_phase_may_declare_has_a_judge() -> None:
    assert set(CHECKS) == set(CHECK_KINDS)


def points(errors: list[int], requests: int = 100) -> list[SeriesPoint]:
    return [SeriesPoint(T0 + 5 * (i + 1), requests, e, 0, 20.0, 0.2, 0.1) for i, e in enumerate(errors)]


def test_the_embedded_evaluator_pages_on_a_sustained_burn_within_minutes_of_history() -> None:
    series = {"payments": points([0] * 12 + [5] * 4 + [0] * 4)}
    alerts = embedded_alerts(series, 5.0)
    pages = [(a, sloth_id) for a, sloth_id in alerts if a.severity == "page"]
    assert pages and pages[0][1] == "payments-availability"
    assert T0 + 5 * 13 <= pages[0][0].start <= T0 + 5 * 16


def test_the_embedded_evaluator_stays_quiet_on_clean_traffic_and_below_the_traffic_guard() -> None:
    assert embedded_alerts({"payments": points([0] * 40)}, 5.0) == []
    single = embedded_alerts({"payments": points([0] * 10 + [4] + [0] * 10)}, 5.0)  # 4 < 5 bad events
    assert not [a for a, _ in single if a.severity == "page"]


def test_the_scenario_merges_5_s_steps_into_15_s_rows_and_labels_each_fault(tmp_path: Path) -> None:
    start = 1_800_000_010.0  # a multiple of 5, inside the slot ending at ...015
    rows = [Row(start + 5 * i, 10, i % 2, 1, 50.0, 0.1 * (i % 3), 0.2) for i in range(9)]
    runs = [run("inject_fault", start + 10, start + 11), run("clear_fault", start + 30, start + 31)]
    phases = phase_results(experiment_evidence(tmp_path, "db-latency", runs), ["db-latency"])
    scenario = game_day_scenario(rows, phases)
    assert (scenario.timestamps % 15 == 0).all() and list(scenario.requests) == [20, 30, 30, 10]
    assert int(scenario.errors.sum()) == sum(i % 2 for i in range(9))
    assert [(i.kind, i.start, i.breach) for i in scenario.incidents] == [("db-latency", round(start + 10), None)]

"""From what a game day recorded to what it found: per phase figures, alerts and checks.

The evidence is files and rows, nothing the game day remembers in its head: each experiment's
Chaos Toolkit journal (when the fault began and ended, what the hypothesis said), each load
run's folder (`summary.json`, `samples.csv`, `audit.json`), the embedded scraper's rows, and
the alerts Prometheus evaluated (or the SLO evaluator over the same rows, without Prometheus).

Checks, the claims a game day makes (`Check.detail` says what each was judged from), are data:
each phase's rules come from `chaos.gameday_plan` (the load phases' rows; the checks every
experiment gets) and from the experiment itself (its `nova-gameday` extension), and `CHECKS`
judges each kind, so a new experiment gets its checks without a line of code here. Today:

* every phase: the ledger balances after it;
* the baseline: no burn-rate page fired during it; customers saw the objective after retries;
* every experiment: its steady-state hypothesis held before and after; no acknowledged payment
  was lost or duplicated (the load run's audit);
* worker kill: customers saw the availability objective after retries;
* database outage: writes got 503 with Retry-After; the platform served again within the
  declared seconds of the database returning (the last failed request after it);
* sustained errors (`payments-error-burn`): the payments availability page fired during the fault.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from chaos.gameday_model import (
    BASELINE,
    AlertFiring,
    Check,
    LoadFigures,
    PhaseResult,
    ProbeResult,
    SeriesPoint,
    SLIFigures,
    Window,
)
from chaos.gameday_plan import (
    DEFAULT_RECOVERY_SECONDS,
    SPIKE,
    CheckRule,
    experiment_checks,
    load_phase_checks,
)
from chaos.journal import experiment_outcome
from loadtests.ledger_verification import LedgerVerification
from loadtests.results import ResultsError, read_summary
from loadtests.samples import CONNECTION_FAILED, RequestSample, read_samples
from slo.confidence import availability_bound
from slo.evaluator import SLOModel, evaluate_counts
from slo.spec import SLO, SUITE_SPECS, LatencySLI, load_specs
from slo.targets import suite_targets
from slo.timeline import AlertInterval

FAULT_STARTS = (
    *("inject_fault", "kill_worker", "stop_database", "stop_postgresql"),
    *("create_toxic", "disable_proxy", "freeze_worker"),  # the fault proxy (chaostoolkit-toxiproxy), a SIGSTOP
    *("hold_account_lock", "terminate_backends", "exhaust_connections", "tighten_statement_timeout"),  # PostgreSQL
)
FAULT_ENDS = (
    *("clear_fault", "clear_all_faults", "start_database", "start_postgresql"),
    *("delete_toxic", "enable_proxy", "reset", "thaw_workers", "release_database_faults"),
)
AVAILABILITY_OBJECTIVE = float(suite_targets().availability)  # slo/specs: 99.99%
LATENCY_THRESHOLD_MS = suite_targets().latency_threshold_ms  # slo/specs: 200 ms
PAGE_GRACE_SECONDS = 60.0  # a page that fires this soon after the fault ended still belongs to it
LOAD_PHASE_TITLES = {
    BASELINE: "Baseline: the game day's load, no fault",
    SPIKE: "Spike: a burst to ten times the rate (or to the measured capacity), no fault",
}


@dataclass(frozen=True)
class Evidence:
    out: Path
    windows: Mapping[str, Window]
    journals: Mapping[str, Path]
    loads: Mapping[str, Path]  # the baseline's load folder (experiments' come from their journals)
    ledgers: Mapping[str, LedgerVerification | None]
    series: Mapping[str, list[SeriesPoint]]
    step_seconds: float
    alerts: Sequence[tuple[AlertInterval, str]]  # (interval, sloth_id)
    notifications: Sequence[Any] = ()  # chaos.monitoring.Notification
    ended: float = 0.0
    aborted: Mapping[str, tuple[float, str]] = field(
        default_factory=dict
    )  # phase -> (when, why) the guardrail stopped it


def phase_results(evidence: Evidence, names: Sequence[str]) -> list[PhaseResult]:
    return [_phase(evidence, name) for name in names if name in evidence.windows]


def embedded_alerts(series: Mapping[str, list[SeriesPoint]], step_seconds: float) -> list[tuple[AlertInterval, str]]:
    """The suite's SLO alerts, evaluated over the scraped rows the way Prometheus would over a young series.

    Windows are judged on the history they have (Prometheus's `rate()` does the same), so a
    game day minutes long can page; the traffic guard still applies.
    """
    found: list[tuple[AlertInterval, str]] = []
    for service, points in series.items():
        slos = [slo for slo in _suite_slos() if slo.service == service]
        if not points or not slos:
            continue
        models = [SLOModel.from_spec(slo) for slo in slos]
        times = np.array([p.timestamp for p in points], dtype=np.float64)
        requests = np.array([p.requests for p in points], dtype=np.int64)
        bad = np.stack([np.array([p.slow if m.latency_threshold_ms else p.errors for p in points]) for m in models])
        total = np.stack([requests for _ in models])
        step = max(round(step_seconds), 1)
        for timeline in evaluate_counts(models, times, bad, total, step=step, full_windows_only=False):
            found += [(alert, timeline.sloth_id) for alert in timeline.alerts]
    return found


# -- one phase -------------------------------------------------------------------------------------


def _phase(evidence: Evidence, name: str) -> PhaseResult:
    window = evidence.windows[name]
    journal = _read_json(evidence.journals[name]) if name in evidence.journals else None
    if name not in evidence.journals:  # a phase of load alone: the baseline, the full game day's spike
        title, status, reason, fault, hypothesis, load_dir = (
            LOAD_PHASE_TITLES.get(name, name),
            "passed",
            "",
            None,
            [],
            evidence.loads.get(name),
        )
    else:
        title = str(journal.get("experiment", {}).get("title", name)) if journal else name
        status, reason = _status(journal)
        fault = _fault_window(journal)
        hypothesis = _hypothesis(journal)
        load_dir = _load_dir(journal)
    aborted = evidence.aborted.get(name)
    if aborted is not None:
        # Stopped by the guardrail: the fault ended when it was cleared, unless the method had cleared it.
        status, reason = "aborted", aborted[1]
        if fault is not None and not _fault_cleared(journal):
            fault = Window(fault.start, max(fault.start, aborted[0]))
    load = _load_figures(evidence.out, load_dir)
    alerts, already = _alerts(evidence, window, fault)
    phase = PhaseResult(
        name=name,
        title=title,
        window=window,
        fault=fault,
        status=status,
        reason=reason,
        hypothesis=hypothesis,
        load=load,
        slis=_slis(evidence, window),
        alerts=alerts,
        already_firing=already,
        recovery_seconds=_recovery(load_dir, fault) if fault else None,
        recovery=time_to_recover(_samples(load_dir), fault, LATENCY_THRESHOLD_MS) if fault and load_dir else None,
        detection=_detection(alerts),
        aborted=aborted[1] if aborted else None,
        ledger=evidence.ledgers.get(name),
        journal=str(evidence.journals[name].relative_to(evidence.out)) if name in evidence.journals else None,
    )
    phase.checks = _checks(phase, journal)
    return phase


def _status(journal: dict[str, Any] | None) -> tuple[str, str]:
    """(passed | deviated | failed | aborted, why), read the way chaostoolkit 1.19 needs."""
    if journal is None:
        return "aborted", "chaos run left no journal"
    outcome = experiment_outcome(journal)
    if outcome.passed:
        return "passed", ""
    if journal.get("deviated") or any(
        (journal.get("steady_states") or {}).get(when, {})
        and not journal["steady_states"][when].get("steady_state_met")
        for when in ("before", "after")
    ):
        return "deviated", outcome.reason
    return ("aborted" if journal.get("status") in ("aborted", "interrupted") else "failed"), outcome.reason


def _hypothesis(journal: dict[str, Any] | None) -> list[ProbeResult]:
    results = []
    for when in ("before", "after"):
        state = ((journal or {}).get("steady_states") or {}).get(when) or {}
        for probe in state.get("probes") or []:
            results.append(
                ProbeResult(when, str(probe["activity"]["name"]), bool(probe.get("tolerance_met")), probe.get("output"))
            )
    return results


def _runs(journal: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((journal or {}).get("run") or [])


def _func(run: dict[str, Any]) -> str:
    return str(run.get("activity", {}).get("provider", {}).get("func", ""))


def _when(text: str) -> float:
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _fault_window(journal: dict[str, Any] | None) -> Window | None:
    """From the first fault-starting action to the last action that ends it (or the last kill)."""
    runs = [run for run in _runs(journal) if run.get("start") and run.get("end")]
    starts = [run for run in runs if _func(run) in FAULT_STARTS]
    if not starts:
        return None
    ends = [run for run in runs if _func(run) in FAULT_ENDS and _when(run["start"]) >= _when(starts[0]["start"])]
    last = ends[-1] if ends else starts[-1]
    return Window(_when(starts[0]["start"]), _when(last["end"]))


def _fault_cleared(journal: dict[str, Any] | None) -> bool:
    return any(_func(run) in FAULT_ENDS for run in _runs(journal))


def _load_dir(journal: dict[str, Any] | None) -> Path | None:
    for run in _runs(journal):
        if _func(run) == "start_background_load" and isinstance(run.get("output"), dict):
            return Path(run["output"]["out"])
    return None


def _probe_output(journal: dict[str, Any] | None, func: str) -> Any:
    for run in _runs(journal):
        if _func(run) == func:
            return run.get("output")
    return None


def _load_figures(out: Path, folder: Path | None) -> LoadFigures | None:
    if folder is None:
        return None
    try:
        summary = read_summary(folder)
    except ResultsError:
        return None
    overall = summary.gate.overall
    statuses = Counter(
        "no answer" if sample.status == CONNECTION_FAILED else str(sample.status) for sample in _samples(folder)
    )
    return LoadFigures(
        requests=overall.requests,
        failures=overall.failures,
        availability=overall.availability,
        availability_after_retries=overall.availability_after_retries,
        p99_ms=overall.p99_ms,
        gate_passed=summary.passed,
        statuses=dict(sorted(statuses.items())),
        audit=summary.audit,
        results_dir=str(folder.resolve().relative_to(out.resolve()))
        if folder.resolve().is_relative_to(out.resolve())
        else str(folder),
        rate=summary.run.rate,
        offered_rps=summary.offered_rps,
        achieved_rps=summary.achieved_rps,
        late_sends=summary.open_load.late_sends if summary.open_load else 0,
        p99_corrected_ms=overall.p99_corrected_ms,
    )


@lru_cache(maxsize=4)
def _samples(folder: Path) -> list[RequestSample]:
    """A load run's samples, read once for every figure taken from them."""
    path = folder / "samples.csv"
    return list(read_samples(path)) if path.exists() else []


def _recovery(folder: Path | None, fault: Window) -> float | None:
    """Seconds from the fault's end to the end of the last failed request after it (0: none failed)."""
    if folder is None or not (folder / "samples.csv").exists():
        return None
    last = fault.end
    for sample in _samples(folder):
        finished = sample.timestamp + sample.millis / 1000.0
        if sample.failed and finished > last:
            last = finished
    return last - fault.end


def time_to_recover(samples: Sequence[RequestSample], fault: Window, threshold_ms: float) -> float | None:
    """Seconds from the fault's end until the SLIs are back within objective for good; None if never.

    The load's requests after the fault, by the second they were answered in: a second is within
    objective when none failed and its p99 is under the latency threshold. Recovery is the end of
    the last second that was not, counted from the fault's end (0 when none was); None when the
    load's last second still was not (the platform had not recovered when the phase ended).
    """
    after = [s for s in samples if s.timestamp + s.millis / 1000.0 > fault.end]
    if not after:
        return None
    seconds: dict[int, list[RequestSample]] = {}
    for sample in after:
        seconds.setdefault(int(sample.timestamp + sample.millis / 1000.0 - fault.end), []).append(sample)
    bad = [
        second
        for second, group in seconds.items()
        if any(s.failed for s in group)
        or float(np.percentile([s.millis for s in group], 99, method="higher")) >= threshold_ms
    ]
    if not bad:
        return 0.0
    if max(bad) == max(seconds):
        return None
    return float(max(bad) + 1)


def _detection(alerts: Sequence[AlertFiring]) -> dict[str, float]:
    """Time to detect per alert: the first firing of each after the fault began."""
    found: dict[str, float] = {}
    for alert in alerts:
        if alert.delay_seconds is not None and alert.delay_seconds >= 0:
            found.setdefault(f"{alert.alert}/{alert.severity}", alert.delay_seconds)
    return found


def _slis(evidence: Evidence, window: Window) -> list[SLIFigures]:
    figures = []
    for slo in _suite_slos():
        points = [p for p in evidence.series.get(slo.service, []) if window.start < p.timestamp <= window.end]
        events = sum(p.requests for p in points)
        bad = sum(p.slow if isinstance(slo.sli, LatencySLI) else p.errors for p in points)
        objective = float(slo.objective_ratio)
        budget = 1.0 - objective
        ratio = bad / events if events else None
        burn = ratio / budget if ratio is not None else None
        period = float(slo.period or 30 * 86400)
        figures.append(
            SLIFigures(
                sloth_id=slo.sloth_id,
                objective=objective,
                events=events,
                bad_events=bad,
                sli=1.0 - ratio if ratio is not None else None,
                burn_rate=burn,
                budget_burned=burn * window.seconds / period if burn is not None else None,
            )
        )
    return figures


def _alerts(evidence: Evidence, window: Window, fault: Window | None) -> tuple[list[AlertFiring], list[str]]:
    started, already = [], []
    for interval, sloth_id in evidence.alerts:
        if window.start <= interval.start <= window.end:
            started.append(
                AlertFiring(
                    alert=interval.alert,
                    severity=interval.severity,
                    sloth_id=sloth_id,
                    start=interval.start,
                    end=interval.end,
                    delay_seconds=interval.start - fault.start if fault else None,
                    notified_at=_notified(evidence.notifications, interval, sloth_id),
                )
            )
        elif interval.start < window.start and (interval.end is None or interval.end > window.start):
            already.append(f"{interval.alert} ({interval.severity})")
    return sorted(started, key=lambda a: a.start), sorted(set(already))


def _notified(notifications: Sequence[Any], interval: AlertInterval, sloth_id: str) -> float | None:
    for note in notifications:
        if (
            note.status == "firing"
            and note.alertname == interval.alert
            and note.severity == interval.severity
            and note.sloth_id == sloth_id
            and note.received_at >= interval.start - 30.0
        ):
            return float(note.received_at)
    return None


# -- checks ------------------------------------------------------------------------------------


def _checks(phase: PhaseResult, journal: dict[str, Any] | None) -> list[Check]:
    """The phase's checks, as its row of data declares them (`chaos.gameday_plan`), judged by kind."""
    if phase.journal is None:  # a phase of load alone: the baseline, the full game day's spike
        rules = load_phase_checks(phase.name)
    else:
        experiment = (journal or {}).get("experiment")
        rules = experiment_checks(phase.name, experiment if isinstance(experiment, dict) else None)
    found = (CHECKS[rule.check](phase, journal, rule) for rule in rules)
    return [check for check in found if check is not None]


def _no_page_check(phase: PhaseResult, _journal: dict[str, Any] | None, _rule: CheckRule) -> Check:
    pages = [a for a in phase.alerts if a.severity == "page"]
    return Check(
        f"no burn-rate page during the {phase.name}",
        not pages,
        ", ".join(f"{a.alert} fired" for a in pages) or "no page alert began firing",
    )


def _guardrail_check(phase: PhaseResult, _journal: dict[str, Any] | None, _rule: CheckRule) -> Check | None:
    if phase.aborted is None:
        return None  # the guardrail did not stop it: nothing to say
    return Check("within the error-budget guardrail", False, phase.aborted)


def _hypothesis_check(phase: PhaseResult, _journal: dict[str, Any] | None, _rule: CheckRule) -> Check:
    return Check("steady-state hypothesis held", phase.status == "passed", phase.reason or "before and after: met")


def _ledger_check(phase: PhaseResult, _journal: dict[str, Any] | None, _rule: CheckRule) -> Check:
    ledger = phase.ledger
    if ledger is None:
        return Check("ledger balanced", False, "the ledger could not be verified after this phase")
    detail = f"sums {ledger.sum_minor}, {ledger.negative_accounts} negative accounts, {ledger.payments} payments"
    return Check("ledger balanced", ledger.holds, detail)


def _availability_check(phase: PhaseResult, _journal: dict[str, Any] | None, _rule: CheckRule) -> Check:
    load = phase.load
    name = f"customers saw >= {AVAILABILITY_OBJECTIVE:.2%} after retries"
    if load is None:
        return Check(name, False, "no load-run summary")
    ok = load.availability_after_retries >= AVAILABILITY_OBJECTIVE
    bound = availability_bound(load.requests, load.failures, AVAILABILITY_OBJECTIVE)
    detail = (
        f"{load.availability_after_retries:.4%} of operations succeeded after retries "
        f"({load.availability:.4%} of {load.requests} attempts); attempts: {bound.statement()}"
    )
    return Check(name, ok, detail)


def _audit_check(phase: PhaseResult, _journal: dict[str, Any] | None, _rule: CheckRule) -> Check:
    name = "no acknowledged payment lost or duplicated"
    audit = phase.load.audit if phase.load else None
    if audit is None:
        return Check(name, False, "the load run has no payment audit")
    acknowledged = audit.payments_acknowledged
    # Every payment is looked up up to a sample's size (every payer's balance covers the rest).
    looked_up = audit.payments_looked_up
    confirmed = audit.payments_confirmed
    mismatches = len(audit.balance_mismatches)
    ok = audit.passed and acknowledged > 0 and confirmed == looked_up
    sample = f" (a sample of {acknowledged} acknowledged)" if looked_up < acknowledged else " acknowledged"
    detail = (
        f"{confirmed} of {looked_up} payments looked up{sample} found, {len(audit.lost)} lost; "
        f"{audit.accounts_checked} balances checked, {mismatches} wrong; "
        f"{audit.payments_reconciled} unknown outcomes reconciled by replaying their key, "
        f"{audit.payments_unknown} still unknown"
    )
    return Check(name, ok, detail)


def _outage_answer_check(phase: PhaseResult, journal: dict[str, Any] | None, rule: CheckRule) -> Check:
    name = "writes during the outage got 503 with Retry-After"
    answer, load = _probe_output(journal, rule.probe or ""), phase.load
    if not isinstance(answer, dict):
        return Check(name, False, "the outage probe did not run")
    ok = answer.get("status") == 503 and bool(answer.get("retry_after"))
    seen = load.statuses.get("503", 0) if load else 0
    detail = (
        f"probe write: {answer.get('status')} Retry-After {answer.get('retry_after')!r} ({answer.get('code')}); "
        f"load saw {seen} x 503"
    )
    return Check(name, ok, detail)


def _recovery_check(phase: PhaseResult, _journal: dict[str, Any] | None, rule: CheckRule) -> Check:
    limit = rule.within_seconds if rule.within_seconds is not None else DEFAULT_RECOVERY_SECONDS
    name = f"served again within {limit:.0f} s of the database returning"
    seconds = phase.recovery_seconds
    if seconds is None:
        return Check(name, False, "no load samples to measure recovery from")
    return Check(name, seconds <= limit, f"last failed request ended {seconds:.1f} s after it returned")


def _page_check(phase: PhaseResult, _journal: dict[str, Any] | None, rule: CheckRule) -> Check:
    slo = rule.slo or ""
    spoken = slo.replace("-", " ")
    name = f"the {spoken} page fired during the fault"
    fault = phase.fault
    if fault is None:
        return Check(name, False, "no fault window in the journal")
    pages = [
        a
        for a in phase.alerts
        if a.severity == "page" and a.sloth_id == slo and a.start <= fault.end + PAGE_GRACE_SECONDS
    ]
    if not pages:
        return Check(name, False, f"no {spoken} page began firing in this phase")
    return Check(name, True, f"{pages[0].alert} paged {pages[0].delay_seconds:.0f} s after the fault began")


CheckJudge = Callable[[PhaseResult, dict[str, Any] | None, CheckRule], Check | None]
# Each kind of check a phase may declare, and what judges it (None: it does not apply to this phase).
CHECKS: dict[str, CheckJudge] = {
    "ledger": _ledger_check,
    "no-page": _no_page_check,
    "availability": _availability_check,
    "audit": _audit_check,
    "guardrail": _guardrail_check,
    "hypothesis": _hypothesis_check,
    "outage-answer": _outage_answer_check,
    "recovery": _recovery_check,
    "page": _page_check,
}


def _suite_slos() -> list[SLO]:
    return load_specs(SUITE_SPECS)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return document

"""Chaos Toolkit probes: readiness, the ledger, SLIs and burn rates from Prometheus, load-run results.

Every function is a plain provider for `{"type": "python", "module": "chaos.probes", "func": ...}` and
returns a JSON-able value (a bool, a number, or a flat dict of numbers) so tolerances can judge it:
`true` for a bool, `{"type": "range", "range": [0.9999, 1.0], "target": "availability"}` for a dict.

SLIs come from the SLO recording rules `nova slo rules` generates (`slo:sli_error:ratio_rate<window>`,
`slo:objective:ratio`), as Prometheus evaluates them, and p99 from the request-duration histogram.
With `prometheus_url` empty they come from the embedded scraper's rows (`chaos.live_metrics`)
that `nova gameday` records when no Prometheus is installed.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import httpx

from chaos.actions import LOAD_PID_FILE, is_background_load
from chaos.errors import ProbeError
from chaos.live_metrics import WindowTotals, metrics_file, window_totals
from chaos.platform import HTTP_TIMEOUT, find_platform
from loadtests.ledger_verification import LEDGER_VERIFY_PATH, LedgerVerification
from loadtests.results import ResultsError, read_summary
from slo.durations import parse_duration
from slo.errors import SourceError
from slo.prometheus_api import PrometheusAPI
from slo.rules import ratio_expr
from slo.spec import SLO, SUITE_SPECS, load_specs
from slo.targets import suite_targets

# The windows the generated rules record (`slo:sli_error:ratio_rate<window>`); others are computed.
RECORDED_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d")
# Not customer traffic: left out of every SLI, as in slo/specs/*.yaml.
NOT_TRAFFIC = 'route!~"/metrics|/healthz|/readyz|/admin/.*"'


def readiness(data_dir: str = ".nova") -> bool:
    """Whether every service of the platform answers 200 on `/readyz` (database reachable)."""
    platform = find_platform(data_dir)
    for service in platform.services.values():
        try:
            response = httpx.get(f"{service.url}/readyz", timeout=HTTP_TIMEOUT)
        except httpx.HTTPError:
            return False
        if response.status_code != 200:
            return False
    return True


def verify_ledger(data_dir: str = ".nova") -> LedgerVerification:
    """The payments ledger check (`GET /v1/ledger/verify`, admin), read through its typed home."""
    platform = find_platform(data_dir)
    try:
        with platform.admin_client("payments") as client:
            response = client.get(LEDGER_VERIFY_PATH)
    except httpx.HTTPError as exc:
        raise ProbeError(f"cannot verify the ledger: {exc!r}") from None
    if response.status_code != 200:
        raise ProbeError(f"cannot verify the ledger: {response.status_code} {response.text.strip()[:300]}")
    try:
        return LedgerVerification.from_json(response.json())
    except ValueError as exc:
        raise ProbeError(f"cannot verify the ledger: {exc}") from None


def ledger_verification(data_dir: str = ".nova") -> dict[str, Any]:
    """The probe: `verify_ledger`'s answer as JSON, for the journal (`{"balanced", "sum_minor", ...}`)."""
    return verify_ledger(data_dir).to_json()


def ledger_balanced(data_dir: str = ".nova") -> bool:
    """Whether the ledger verifies: every currency sums to zero and no customer account is negative."""
    return verify_ledger(data_dir).holds


def sli(
    prometheus_url: str = "",
    window: str = "5m",
    service: str = "payments",
    slo: str = "availability",
    data_dir: str = ".nova",
) -> float:
    """The SLI (share of good events, 0..1) of `<service>-<slo>` over `window`.

    From Prometheus's recorded error ratio when `prometheus_url` is set, else from the embedded
    scraper's rows in `<data-dir>/embedded-metrics/` (what a game day without Prometheus records).
    """
    return 1.0 - _error_ratio(prometheus_url, window, service, slo, data_dir)


def burn_rate(
    prometheus_url: str = "",
    window: str = "5m",
    service: str = "payments",
    slo: str = "availability",
    data_dir: str = ".nova",
) -> float:
    """How fast `<service>-<slo>` spends its error budget over `window` (1.0: exactly as fast as allowed)."""
    ratio = _error_ratio(prometheus_url, window, service, slo, data_dir)
    if prometheus_url:
        objective = _instant(prometheus_url, f'slo:objective:ratio{{sloth_service="{service}",sloth_slo="{slo}"}}')
    else:
        objective = _suite_objective(service, slo)
    if objective >= 1.0:
        raise ProbeError(f"{service}-{slo}: objective {objective} leaves no error budget")
    return ratio / (1.0 - objective)


def p99_ms(prometheus_url: str = "", window: str = "5m", service: str = "payments", data_dir: str = ".nova") -> float:
    """The p99 of the service's customer requests over `window`, in ms.

    Prometheus computes it from the duration histogram; the embedded rows keep one p99 per step,
    so without Prometheus this is the slowest step's p99, an upper bound on the window's.
    """
    _check_window(window)
    if not prometheus_url:
        return _embedded(data_dir, service, window).max_p99_ms
    histogram = f'http_server_request_duration_seconds_bucket{{service="{service}",{NOT_TRAFFIC}}}'
    buckets = f"sum by (le) (rate({histogram}[{window}]))"
    return _instant(prometheus_url, f"histogram_quantile(0.99, {buckets}) * 1000")


def availability_and_p99(
    prometheus_url: str = "", window: str = "5m", service: str = "payments", data_dir: str = ".nova"
) -> dict[str, float]:
    """`{"availability": 0..1, "p99_ms": ms}` for the service over `window`; judge with range tolerances' `target`."""
    return {
        "availability": sli(prometheus_url, window, service, "availability", data_dir),
        "p99_ms": p99_ms(prometheus_url, window, service, data_dir),
    }


def write_during_outage(data_dir: str = ".nova") -> dict[str, Any]:
    """What a write gets while the database is away: `{"status", "retry_after", "code"}`.

    Creates a customer (an admin write that must reach the database); during an outage the
    answer must be 503 with `Retry-After`, and nothing is written.
    """
    platform = find_platform(data_dir)
    try:
        with platform.admin_client("payments") as client:
            response = client.post("/v1/customers", json={"name": "chaos outage probe"})
    except httpx.HTTPError as exc:
        return {"status": 0, "retry_after": None, "code": None, "error": type(exc).__name__}
    code = response.json().get("code") if response.headers.get("content-type", "").endswith("json") else None
    return {"status": response.status_code, "retry_after": response.headers.get("Retry-After"), "code": code}


def load_results(path: str) -> dict[str, Any]:
    """A finished `nova load` run (its folder or `summary.json`): overall availability (0..1) over every
    attempt and after retries, p99, the gate's verdict and the payment audit's."""
    try:
        summary = read_summary(Path(path))
    except ResultsError as exc:
        if "no such file" in str(exc):
            raise ProbeError(f"{exc}; has the load run finished?") from None
        raise ProbeError(str(exc)) from None
    overall = summary.gate.overall
    return {
        "passed": summary.passed,
        "availability": overall.availability,
        "availability_after_retries": overall.availability_after_retries,
        "p99_ms": overall.p99_ms,
        "requests": overall.requests,
        "failures": overall.failures,
        "breaches": summary.breaches,
        "audit_passed": summary.audit is not None and summary.audit.passed,
        "offered_rps": summary.offered_rps,
        "achieved_rps": summary.achieved_rps,
    }


LOAD_CHECKS = ("gate", "availability_after_retries", "p99", "audit")


def background_load_verdict(
    data_dir: str = ".nova",
    check: str = "gate",
    wait_seconds: float = 120.0,
    availability: float | None = None,
    p99_ms: float | None = None,
) -> bool:
    """Whether the load `actions.start_background_load` ran last holds `check`:

    * `gate`: its SLO gate (p99 and availability over every attempt);
    * `availability_after_retries`: at least `availability` of operations succeeded after the
      client's retries (what a customer sees);
    * `p99`: the p99 over every attempt stayed strictly below `p99_ms`;
      (`availability` and `p99_ms` default to the suite's targets in slo/specs: 99.99%, 200 ms)
    * `audit`: every acknowledged payment exists and every audited balance adds up (none lost,
      none duplicated).

    True when no load is recorded in this data dir (none started, or the rollback
    `stop_background_load` already stopped it): the probe can sit in a steady-state hypothesis,
    which runs before the load starts and again after the method, before the rollbacks. Otherwise
    waits up to `wait_seconds` for the run to finish and judges its `summary.json`.
    """
    if check not in LOAD_CHECKS:
        raise ProbeError(f"check must be one of {', '.join(LOAD_CHECKS)}, not {check!r}")
    state_file = Path(data_dir) / LOAD_PID_FILE
    if not state_file.exists():
        return True
    state = json.loads(state_file.read_text())
    summary = Path(state["out"]) / "summary.json"
    deadline = time.monotonic() + wait_seconds
    # Until the run has ended: `nova load` writes summary.json, then adds the payment audit to it.
    # A run that ended without one (it could not start, say) has nothing more to write: no waiting.
    while is_background_load(int(state["pid"])) and time.monotonic() < deadline:
        time.sleep(0.5)
    results = load_results(str(summary))
    if check == "gate":
        return bool(results["passed"])
    if check == "audit":
        return bool(results["audit_passed"])
    targets = suite_targets()
    if check == "p99":
        return float(results["p99_ms"]) < (targets.latency_threshold_ms if p99_ms is None else p99_ms)
    objective = float(targets.availability) if availability is None else availability
    return float(results["availability_after_retries"]) >= objective


def _embedded(data_dir: str, service: str, window: str) -> WindowTotals:
    try:
        return window_totals(data_dir, service, parse_duration(window))
    except FileNotFoundError:
        raise ProbeError(
            f"no Prometheus URL given and nothing scrapes {service} into {metrics_file(data_dir, service)}: "
            "set prometheus_url, or run under `nova gameday`"
        ) from None


def _suite_objective(service: str, slo: str) -> float:
    return float(_suite_slo(service, slo).objective_ratio)


def _suite_slo(service: str, slo: str) -> SLO:
    for spec in load_specs(SUITE_SPECS):
        if spec.service == service and spec.name == slo:
            return spec
    raise ProbeError(f"the suite has no SLO {service}-{slo} (slo/specs/)")


def _error_ratio(prometheus_url: str, window: str, service: str, slo: str, data_dir: str) -> float:
    _check_window(window)
    if not prometheus_url:
        if slo not in ("availability", "latency"):
            raise ProbeError(f"the embedded scraper counts the availability and latency SLOs, not {slo!r}")
        totals = _embedded(data_dir, service, window)
        if totals.requests == 0:
            raise ProbeError(f"{service} answered no requests in the last {window} (embedded scraper)")
        return (totals.errors if slo == "availability" else totals.slow) / totals.requests
    if window in RECORDED_WINDOWS:
        return _instant(
            prometheus_url, f'slo:sli_error:ratio_rate{window}{{sloth_service="{service}",sloth_slo="{slo}"}}'
        )
    # A window the rules do not record: the spec's own SLI query over it, as the rules would write it.
    return _instant(prometheus_url, ratio_expr(_suite_slo(service, slo), parse_duration(window)))


def _check_window(window: str) -> None:
    try:
        seconds = parse_duration(window)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ProbeError(f"window must be a duration such as 1m or 5m, not {window!r}")


def _instant(prometheus_url: str, promql: str) -> float:
    """The query's value now (several series summed); ProbeError when Prometheus has none or refuses."""
    api = PrometheusAPI(prometheus_url, timeout=10.0)
    now = time.time()
    try:
        series = api.query_range(promql, now, now, 1)
    except SourceError as exc:
        raise ProbeError(str(exc)) from None
    finally:
        api.close()
    values = [float(points[-1][1]) for _, points in series if points]
    if not values:
        raise ProbeError(f"Prometheus at {prometheus_url} has no value for {promql!r} (are the SLO rules loaded?)")
    total = sum(values)
    if math.isnan(total):
        raise ProbeError(f"Prometheus at {prometheus_url} answered NaN for {promql!r} (no traffic in the window?)")
    return total

"""Chaos Toolkit probes: readiness, the ledger, SLIs and burn rates from Prometheus, load-run results.

Every function is a plain provider for `{"type": "python", "module": "chaos.probes", "func": ...}` and
returns a JSON-able value (a bool, a number, or a flat dict of numbers) so tolerances can judge it:
`true` for a bool, `{"type": "range", "range": [0.9999, 1.0], "target": "availability"}` for a dict.

SLIs come from the SLO recording rules `nova slo rules` generates (`slo:sli_error:ratio_rate<window>`,
`slo:objective:ratio`), as Prometheus evaluates them, and p99 from the request-duration histogram.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import httpx

from chaos.actions import LOAD_PID_FILE
from chaos.errors import ProbeError
from chaos.platform import HTTP_TIMEOUT, find_platform
from slo.errors import SourceError
from slo.prometheus import PrometheusAPI

# The windows the generated rules record (`slo:sli_error:ratio_rate<window>`).
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


def ledger_verification(data_dir: str = ".nova") -> dict[str, Any]:
    """The payments ledger check (`GET /v1/ledger/verify`, admin): `{"balanced", "sum_minor", ...}`."""
    platform = find_platform(data_dir)
    try:
        with platform.admin_client("payments") as client:
            response = client.get("/v1/ledger/verify")
    except httpx.HTTPError as exc:
        raise ProbeError(f"cannot verify the ledger: {exc!r}") from None
    if response.status_code != 200:
        raise ProbeError(f"cannot verify the ledger: {response.status_code} {response.text.strip()[:300]}")
    document: dict[str, Any] = response.json()
    return document


def ledger_balanced(data_dir: str = ".nova") -> bool:
    """Whether the ledger verifies: every currency sums to zero and no customer account is negative."""
    document = ledger_verification(data_dir)
    return bool(document.get("balanced")) and int(document.get("negative_accounts", 0)) == 0


def sli_from_prometheus(
    prometheus_url: str, window: str = "5m", service: str = "payments", slo: str = "availability"
) -> float:
    """The SLI (share of good events, 0..1) of `<service>-<slo>` over `window`, from the recorded error ratio."""
    return 1.0 - _error_ratio(prometheus_url, window, service, slo)


def burn_rate(prometheus_url: str, window: str = "5m", service: str = "payments", slo: str = "availability") -> float:
    """How fast `<service>-<slo>` spends its error budget over `window` (1.0: exactly as fast as allowed)."""
    ratio = _error_ratio(prometheus_url, window, service, slo)
    objective = _instant(prometheus_url, f'slo:objective:ratio{{sloth_service="{service}",sloth_slo="{slo}"}}')
    if objective >= 1.0:
        raise ProbeError(f"{service}-{slo}: objective {objective} leaves no error budget")
    return ratio / (1.0 - objective)


def p99_ms_from_prometheus(prometheus_url: str, window: str = "5m", service: str = "payments") -> float:
    """The p99 of the service's customer requests over `window`, in ms, from the duration histogram."""
    _check_window(window)
    histogram = f'http_server_request_duration_seconds_bucket{{service="{service}",{NOT_TRAFFIC}}}'
    buckets = f"sum by (le) (rate({histogram}[{window}]))"
    return _instant(prometheus_url, f"histogram_quantile(0.99, {buckets}) * 1000")


def availability_and_p99_from_prometheus(
    prometheus_url: str, window: str = "5m", service: str = "payments"
) -> dict[str, float]:
    """`{"availability": 0..1, "p99_ms": ms}` for the service over `window`; judge with range tolerances' `target`."""
    return {
        "availability": sli_from_prometheus(prometheus_url, window, service, "availability"),
        "p99_ms": p99_ms_from_prometheus(prometheus_url, window, service),
    }


def load_results(path: str) -> dict[str, Any]:
    """A finished `nova load` run (its folder or `summary.json`): overall availability (0..1), p99, verdict."""
    summary = Path(path)
    if summary.is_dir():
        summary = summary / "summary.json"
    try:
        document = json.loads(summary.read_text())
        overall = document["overall"]
        return {
            "passed": bool(document["passed"]),
            "availability": float(overall["availability"]),
            "p99_ms": float(overall["p99_ms"]),
            "requests": int(overall["requests"]),
            "failures": int(overall["failures"]),
            "breaches": list(document.get("breaches", [])),
        }
    except FileNotFoundError:
        raise ProbeError(f"{summary}: no such file; has the load run finished?") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ProbeError(f"{summary}: not a load-run summary ({exc!r})") from None


def background_load_gate(data_dir: str = ".nova", wait_seconds: float = 120.0) -> bool:
    """Whether the load `actions.start_background_load` ran last passed its SLO gate.

    True when no load is recorded in this data dir (none started, or the rollback
    `stop_background_load` already stopped it): the probe can sit in a steady-state hypothesis,
    which runs before the load starts and again after the method, before the rollbacks. Otherwise waits up to
    `wait_seconds` for the run to finish and judges its `summary.json`.
    """
    state_file = Path(data_dir) / LOAD_PID_FILE
    if not state_file.exists():
        return True
    state = json.loads(state_file.read_text())
    summary = Path(state["out"]) / "summary.json"
    deadline = time.monotonic() + wait_seconds
    while not summary.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    return bool(load_results(str(summary))["passed"])


def _error_ratio(prometheus_url: str, window: str, service: str, slo: str) -> float:
    _check_window(window)
    return _instant(prometheus_url, f'slo:sli_error:ratio_rate{window}{{sloth_service="{service}",sloth_slo="{slo}"}}')


def _check_window(window: str) -> None:
    if window not in RECORDED_WINDOWS:
        raise ProbeError(f"window must be one the rules record ({', '.join(RECORDED_WINDOWS)}), not {window!r}")


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

"""`nova runbooks run ALERT`: the runbook's diagnostic steps, run in order against the live platform.

- `promql` steps are instant queries against Prometheus (`--prometheus`, `NOVA_PROMETHEUS_URL`).
  Without Prometheus a step that declares `embedded="<measure> <service>"` is answered by the
  embedded scraper from one read of the service's `/metrics` (counters since its processes
  started, so a ratio is over the service's life, not the query's window); any other PromQL step
  is reported as needing Prometheus.
- `nova-check` steps ask the platform found through `<data-dir>/serve.json`, as an operator would:
  `readyz` (each service's `/readyz`), `ledger` (`GET /v1/ledger/verify`), `faults` (the admin
  fault API's active faults), `workers` (each worker's process state under its supervisor, from
  /proc, as `ps` shows it, and the workers the supervisors replaced in the last 15 minutes and why,
  from `nova serve`'s log when `--serve-log`/`NOVA_SERVE_LOG` gives it).

A result is `ok`, `attention` (it ran and shows trouble: not ready, unbalanced, a fault on, a
service down, a PromQL answer past the step's `attention` threshold), `skipped` (needs Prometheus)
or `error` (the step could not run). A step in `attention` names the causes it declares
(`runbooks.causes`); the `faults` check names only those of the faults it found on, `readyz` only
on a 503, `workers` only what it found (a stopped or unanswering worker, a worker that died).
"""

from __future__ import annotations

import difflib
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from chaos.actions import active_faults
from chaos.errors import ChaosError
from chaos.platform import HTTP_TIMEOUT, RunningPlatform, find_platform
from chaos.probes import verify_ledger
from chaos.process_faults import stopped, worker_states
from runbooks.causes import FAULT_CAUSES, toxic_cause
from runbooks.check import runbook_files
from runbooks.document import NOVA_CHECK, Runbook, Step, read_runbook
from runbooks.errors import UnknownAlertError
from slo.errors import SourceError
from slo.prometheus_api import PrometheusAPI
from slo.scraper import QUANTILE, Totals, histogram_quantile, parse_totals, pool_share

OK, ATTENTION, SKIPPED, ERROR = "ok", "attention", "skipped", "error"
MAX_SERIES_SHOWN = 12
SEVERITY_ORDER = ("page", "ticket")
FROZEN, RESTARTED = "worker_frozen", "worker_restarts"
# How a supervisor says a worker ended, by the cause it points to (any other ending: a restart).
# uvicorn's supervisor pings each worker and kills one that has not answered within 5 s: a frozen or hung worker.
REPLACEMENT_CAUSES = (("did not answer its health check", FROZEN),)
REPLACEMENT_WINDOW_SECONDS = 900.0  # as the runbooks' "in the last 15m" fault queries
LOG_TAIL_BYTES = 4 << 20
_REPLACED = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ nova\.supervisor WARNING "
    r"(?P<service>\S+) worker (?P<pid>\d+) (?P<how>.+); replaced$"
)
# /proc/<pid>/stat's states as `ps` explains them (man 5 proc).
_STATE_NAMES = {
    "R": "R (running)",
    "S": "S (sleeping)",
    "D": "D (disk sleep)",
    "T": "T (stopped)",
    "t": "t (tracing stop)",
    "Z": "Z (zombie)",
}


@dataclass(frozen=True)
class StepResult:
    step: Step
    status: str
    source: str  # where the answer came from: Prometheus's URL, the embedded scraper, an HTTP call
    lines: tuple[str, ...]  # the answer, one line per series or fact
    values: tuple[float, ...] = ()  # the numbers a PromQL step answered, for machine readers
    causes: tuple[str, ...] = ()  # the causes this result points to (a finding of a step that declares them)
    finished_at: float = 0.0  # unix seconds

    def document(self) -> dict[str, Any]:
        return {
            "title": self.step.title,
            "kind": self.step.kind,
            "section": self.step.section,
            "query": self.step.body,
            "status": self.status,
            "source": self.source,
            "result": list(self.lines),
            "values": [v if math.isfinite(v) else format_value(v) for v in self.values],
            "causes": list(self.causes),
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class RunContext:
    data_dir: Path
    prometheus_url: str = ""
    serve_log: Path | None = None  # what `nova serve` logged (its supervisors' lines), for the `workers` check


def find_runbook(name: str, folder: Path, severity: str | None = None) -> Runbook:
    """The runbook for alert `name` (at `severity`, else the most urgent), or named `name` (with or without .md)."""
    runbooks = [read_runbook(path) for path in runbook_files(folder)]
    stem = Path(name).name.removesuffix(".md")
    for runbook in runbooks:
        if runbook.name == stem:
            return runbook
    matching = [r for r in runbooks if name in r.alerts and (severity is None or r.severity == severity)]
    if matching:
        rank = {level: i for i, level in enumerate(SEVERITY_ORDER)}
        return min(matching, key=lambda r: (rank.get(r.severity, len(rank)), r.name))
    known = sorted({alert for r in runbooks for alert in r.alerts} | {r.name for r in runbooks})
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
    at = f" at severity {severity}" if severity else ""
    hint = f"; close matches: {', '.join(close)}" if close else f"; known alerts: {', '.join(known[:8])}, ..."
    raise UnknownAlertError(f"no runbook for alert {name!r}{at} in {folder}{hint}")


def run_steps(
    runbook: Runbook, context: RunContext, on_step: Callable[[int, Step], None] | None = None
) -> list[StepResult]:
    """Every step of the runbook in file order; a step that fails to run is an `error` result, never a raise."""
    results = []
    for number, step in enumerate(runbook.steps, 1):
        if on_step is not None:
            on_step(number, step)
        try:
            result = _check(step, context) if step.kind == NOVA_CHECK else _promql(step, context)
        except (ChaosError, SourceError, httpx.HTTPError, ValueError, OSError) as exc:
            result = StepResult(step, ERROR, _source_of(step, context), (_one_line(exc),))
        results.append(replace(result, causes=_named(result), finished_at=time.time()))
    return results


def causes_found(results: Sequence[StepResult]) -> list[str]:
    """Every cause the results named, in the order the steps first named them."""
    return list(dict.fromkeys(cause for result in results for cause in result.causes))


def _named(result: StepResult) -> tuple[str, ...]:
    if result.status != ATTENTION:
        return ()
    if result.step.kind == NOVA_CHECK and result.step.body.split()[0] in ("faults", "readyz", "workers"):
        return result.causes  # what the check itself found: the faults on, a service answering 503
    return result.step.causes


def _finding(step: Step, status: str, values: Sequence[float]) -> str:
    """ATTENTION when the step says when its answer is a finding and the answer is one."""
    attention = step.attention
    return ATTENTION if status == OK and attention is not None and attention.holds(values) else status


# -- PromQL ------------------------------------------------------------------------------------


def _promql(step: Step, context: RunContext) -> StepResult:
    if context.prometheus_url:
        return _prometheus(step, context.prometheus_url)
    if step.embedded:
        return _embedded(step, context)
    return StepResult(step, SKIPPED, "-", ("needs Prometheus: pass --prometheus URL or set NOVA_PROMETHEUS_URL",))


def _prometheus(step: Step, url: str) -> StepResult:
    api = PrometheusAPI(url, timeout=10.0)
    now = time.time()
    try:
        series = api.query_range(step.body, now, now, 1)
    finally:
        api.close()
    lines: list[str] = []
    values: list[float] = []
    for labels, points in series:
        value = float(points[-1][1]) if points else math.nan
        values.append(value)
        if len(lines) < MAX_SERIES_SHOWN:
            lines.append(f"{_labels(labels)} {format_value(value)}".strip())
    if len(series) > MAX_SERIES_SHOWN:
        lines.append(f"... {len(series) - MAX_SERIES_SHOWN} more series")
    status = _finding(step, OK, values)
    return StepResult(step, status, f"prometheus {url}", tuple(lines) or ("no data (empty result)",), tuple(values))


def _embedded(step: Step, context: RunContext) -> StepResult:
    measure, service = step.embedded.split()
    platform = find_platform(context.data_dir)
    url = platform.service(service).url.rstrip("/") + "/metrics"
    source = f"embedded scraper {url}"
    try:
        response = httpx.get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        if measure == "up":
            return StepResult(step, ATTENTION, source, (f"{service} 0 ({_one_line(exc)})",), (0.0,))
        raise
    totals = parse_totals(response.text, service)
    if measure == "up":
        return StepResult(step, OK, source, (f"{service} 1",), (1.0,))
    if measure == "pool_share":
        share = pool_share(totals)
        in_use = f"{totals.pool_in_use:g} of {totals.pool_max:g} connections in use"
        return StepResult(
            step, _finding(step, OK, [share]), source, (f"{service} {format_value(share)} ({in_use})",), (share,)
        )
    if measure == "requests":
        line = f"{service} {totals.requests:g} customer requests since it started"
        return StepResult(step, _finding(step, OK, [totals.requests]), source, (line,), (totals.requests,))
    if totals.requests == 0:
        return StepResult(step, OK, source, (f"{service}: no customer requests since it started",))
    value = _embedded_measure(measure, totals)
    life = f"since {service} started ({totals.requests:g} customer requests)"
    return StepResult(step, _finding(step, OK, [value]), source, (f"{service} {format_value(value)} {life}",), (value,))


def _embedded_measure(measure: str, totals: Totals) -> float:
    if measure == "error_ratio":
        return totals.errors / totals.requests
    if measure == "slow_ratio":
        return totals.slow / totals.requests
    return histogram_quantile(QUANTILE, totals.buckets) * 1000.0  # p99_ms


# -- platform checks ---------------------------------------------------------------------------


def _check(step: Step, context: RunContext) -> StepResult:
    check, *rest = step.body.split()
    platform = find_platform(context.data_dir)
    services = [rest[0]] if rest else sorted(platform.services)
    if check == "readyz":
        return _readyz(step, platform, services)
    if check == "ledger":
        return _ledger(step, context)
    if check == "workers":
        return _workers(step, context, services)
    return _faults(step, platform, context, services)


def _readyz(step: Step, platform: RunningPlatform, services: Iterable[str]) -> StepResult:
    """Each service's /readyz; only a 503 (the service runs, its database does not answer) names causes:
    a service that does not answer at all is down or starved, not waiting on its database."""
    lines, status, unready = [], OK, False
    for name in services:
        url = platform.service(name).url.rstrip("/") + "/readyz"
        try:
            response = httpx.get(url, timeout=HTTP_TIMEOUT)
        except httpx.HTTPError as exc:
            lines.append(f"{name} {url}: no answer ({_one_line(exc)})")
            status = ATTENTION
            continue
        detail = response.text.strip().replace("\n", " ")[:160]
        lines.append(f"{name} {response.status_code} {detail}")
        if response.status_code != 200:
            status = ATTENTION
            unready = unready or response.status_code == 503
    return StepResult(step, status, "GET /readyz", tuple(lines), causes=step.causes if unready else ())


def _workers(step: Step, context: RunContext, services: Sequence[str]) -> StepResult:
    """Each service's workers and their process state now, and the workers its supervisor replaced in
    the last 15 minutes and why (its log, when given). A stopped worker (`T`) or one killed for not
    answering its health check points to `worker_frozen`; one that died otherwise to `worker_restarts`.
    The step names those of its declared causes it found."""
    lines, found = [], set()
    for name in services:
        states = worker_states(name, str(context.data_dir))
        shown = ", ".join(f"{pid} {_STATE_NAMES.get(state, state or 'gone')}" for pid, state in states.items())
        lines.append(f"{name}: {shown or 'no workers'}")
        if any(stopped(state) for state in states.values()):
            found.add(FROZEN)
    source = "/proc (the supervisors' workers)"
    if context.serve_log is None:
        lines.append("supervisor log not given (--serve-log, NOVA_SERVE_LOG): the workers' states now only")
    else:
        source += f", {context.serve_log}"
        now = time.time()
        try:
            replaced = supervisor_replacements(context.serve_log, services, now - REPLACEMENT_WINDOW_SECONDS)
        except OSError as exc:
            replaced = []
            lines.append(f"supervisor log {context.serve_log}: cannot read ({_one_line(exc)})")
        else:
            if not replaced:
                lines.append("no worker replaced in the last 15m")
        for moment, service, pid, how in replaced[-MAX_SERIES_SHOWN:]:
            lines.append(f"{service} worker {pid} {how}; replaced {now - moment:.0f} s ago")
        found.update(_replacement_cause(how) for _, _, _, how in replaced)
    causes = tuple(cause for cause in step.causes if cause in found)
    return StepResult(step, ATTENTION if found else OK, source, tuple(lines), causes=causes)


def supervisor_replacements(path: Path, services: Iterable[str], since: float) -> list[tuple[float, str, int, str]]:
    """(when, service, pid, how it ended) for each worker a supervisor replaced since `since`, oldest first,
    from the lines `core_services.server.Supervisor` logs (its asctime is local time)."""
    wanted = set(services)
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        text = file.read().decode("utf-8", "replace")
    found = []
    for line in text.splitlines():
        match = _REPLACED.match(line)
        if match is None or match["service"] not in wanted:
            continue
        moment = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S").timestamp()
        if moment >= since:
            found.append((moment, match["service"], int(match["pid"]), match["how"]))
    return found


def _replacement_cause(how: str) -> str:
    return next((cause for phrase, cause in REPLACEMENT_CAUSES if phrase in how), RESTARTED)


def _ledger(step: Step, context: RunContext) -> StepResult:
    ledger = verify_ledger(str(context.data_dir))
    sums = ", ".join(f"{currency} {total}" for currency, total in sorted(ledger.sum_minor.items()))
    lines = (
        f"{'balanced' if ledger.balanced else 'NOT BALANCED'}, negative customer accounts {ledger.negative_accounts}",
        f"payments {ledger.payments}, entries {ledger.entries}, sums {sums or 'none'}",
    )
    status = OK if ledger.holds else ATTENTION
    return StepResult(step, status, "GET /v1/ledger/verify", lines)


def _faults(step: Step, platform: RunningPlatform, context: RunContext, services: Sequence[str]) -> StepResult:
    if not platform.faults_enabled and platform.fault_proxy_url is None:
        return StepResult(
            step, OK, "serve.json", ("fault API off (served without --enable-faults): no fault can be on",)
        )
    lines: list[str] = []
    on: set[str] = set()
    sources, trouble = [], False
    if platform.faults_enabled:
        faults = active_faults(str(context.data_dir))
        lines += [f"{name}: {', '.join(faults.get(name, [])) or 'none'}" for name in services]
        on |= {FAULT_CAUSES.get(fault, "") for name in services for fault in faults.get(name, [])}
        trouble = any(faults.get(name) for name in services)
        sources.append("GET /admin/faults")
    if platform.fault_proxy_url is not None:
        sources.append(f"GET {platform.fault_proxy_url}/proxies")
        try:
            toxics = _proxy_toxics(platform.fault_proxy_url)
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            lines.append(f"fault proxy: cannot ask it ({_one_line(exc)})")
        else:
            shown = [f"{proxy} {', '.join(kinds)}" for proxy, kinds in toxics.items() if kinds]
            lines.append(f"fault proxy: {'; '.join(shown) or 'no toxic on any link'}")
            on |= {toxic_cause(proxy, kind) or "" for proxy, kinds in toxics.items() for kind in kinds}
            trouble = trouble or bool(shown)
    causes = tuple(cause for cause in step.causes if cause in on)
    return StepResult(step, ATTENTION if trouble else OK, ", ".join(sources), tuple(lines), causes=causes)


def _proxy_toxics(url: str) -> dict[str, list[str]]:
    """Each proxy of the fault proxy (Toxiproxy API) and its toxics' types; `disabled` for a link switched off."""
    answer = httpx.get(f"{url.rstrip('/')}/proxies", timeout=HTTP_TIMEOUT)
    answer.raise_for_status()
    found = {}
    for name, proxy in dict(answer.json()).items():
        kinds = [str(toxic.get("type", "")) for toxic in proxy.get("toxics") or []]
        if proxy.get("enabled") is False:
            kinds.append("disabled")
        found[str(name)] = kinds
    return found


# -- formatting --------------------------------------------------------------------------------


def format_value(value: float) -> str:
    """A number as people read it: exact small ratios (0.0001), no float noise, NaN and infinities by name."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.6g}"


def _labels(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in sorted(labels.items()) if k != "__name__"}
    name = labels.get("__name__", "")
    if not shown:
        return name
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in shown.items()) + "}"


def _source_of(step: Step, context: RunContext) -> str:
    if step.kind == NOVA_CHECK:
        return f"platform in {context.data_dir}"
    return f"prometheus {context.prometheus_url}" if context.prometheus_url else "embedded scraper"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]

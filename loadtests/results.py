"""The files a load run leaves for people and tools: summary.json, endpoints.csv, scenario/.

* `summary.json`: the verdict, the breaches, the thresholds, how the run was made, when it
  started and ended, every figure of the gate (overall and per endpoint), and the payment
  audit (`audit.json`'s document, loadtests/audit.py) under `audit` when the run has one: a
  failed audit fails the run and is named among the breaches. `read_summary` gives it back as
  the same objects, so a CI step or a later report reads what the gate saw.
* `endpoints.csv`: one row per endpoint and a last `overall` row, for spreadsheets
  (`availability_after_retries`, added later, is the last column).
* `scenario/`: the run as a metric scenario (DESIGN.md), so `nova slo report --scenario` and
  the predictive-alerting models read a load test like a game day: 15 s rows of requests,
  errors (failed requests), slow (over the latency threshold) and p99 from the exact samples,
  cpu and db_pool from what the services reported (`services.csv`), and `incidents.json` with
  the run's SLO and no incidents (a load test injects no faults; its breaches are the gate's).

Rows follow the convention of Prometheus counters: a request is counted when its response
arrives (`timestamp + millis`), and a row's timestamp is the end of its 15 s interval,
aligned to multiples of 15 s on the unix clock, the interval being (end - 15, end].
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from loadtests import audit as payment_audit
from loadtests.gate import OVERALL, EndpointFigures, GateResult, Thresholds, exact_percentile
from loadtests.open_model import OpenLoad, Timetable
from loadtests.samples import RequestSample, ServiceSample
from slo.scenario import STEP_SECONDS, Scenario, ScenarioSLO, write_scenario

SUMMARY_FILE = "summary.json"
ENDPOINTS_FILE = "endpoints.csv"
SCENARIO_DIR = "scenario"
SUMMARY_FORMAT = "nova-load-summary/v1"
ENDPOINT_COLUMNS = (
    "endpoint",
    "requests",
    "first_attempts",
    "retries",
    "failures",
    "availability",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "requests_per_second",
    "availability_rule",
    "availability_ok",
    "latency_ok",
    "verdict",
    "availability_after_retries",
)


class ResultsError(ValueError):
    """A results file is missing or is not what this module writes."""


@dataclass(frozen=True)
class RunParameters:
    """How the run was made: enough to repeat it."""

    shape: str
    peak_users: int
    duration_seconds: float
    user_rate: float
    mix: str
    processes: int
    payments_url: str
    portfolio_url: str
    rate: float = 0.0  # open model: requests/s at the shape's peak (0: the closed model of peak_users)

    @property
    def timetable(self) -> Timetable | None:
        """The open model's timetable of the run, None for a closed-model run."""
        if self.rate <= 0:
            return None
        return Timetable(self.rate, self.shape, self.duration_seconds, self.processes)


@dataclass(frozen=True)
class RunSummary:
    """summary.json: its one typed home (`to_json`/`from_json`, `read_summary`/`write_summary`)."""

    gate: GateResult
    run: RunParameters
    audit: payment_audit.PaymentAudit | None = None  # audit.json, if the run was audited
    open_load: OpenLoad | None = None  # the open model's offered and achieved rates (--rate runs)

    @property
    def passed(self) -> bool:
        """The gate passed, the generators kept up, and the payment audit (if any) found nothing lost or duplicated."""
        kept_up = self.open_load is None or self.open_load.kept_up
        return self.gate.passed and kept_up and (self.audit is None or self.audit.passed)

    @property
    def breaches(self) -> list[str]:
        """The gate's breaches, then the generator's and the audit's; empty iff the run passed."""
        found = [payment_audit.breach(self.audit), self.open_load.breach() if self.open_load else None]
        return [*self.gate.breaches, *[text for text in found if text]]

    @property
    def offered_rps(self) -> float:
        """Requests/s offered: the timetable's (open model), else what was sent (closed model)."""
        return self.open_load.offered_rps if self.open_load else self.gate.overall.requests_per_second

    @property
    def achieved_rps(self) -> float:
        return self.open_load.achieved_rps if self.open_load else self.gate.overall.requests_per_second

    def to_json(self) -> dict[str, Any]:
        return summary_document(self)

    @classmethod
    def from_json(cls, document: Any, source: str = "summary.json") -> RunSummary:
        return summary_from_document(document, source)


@dataclass(frozen=True)
class ResultFiles:
    summary: Path
    endpoints: Path
    scenario: Path


def write_results(
    folder: Path,
    summary: RunSummary,
    samples: Sequence[RequestSample],
    services: Sequence[ServiceSample] = (),
) -> ResultFiles:
    """Write summary.json, endpoints.csv and scenario/ into `folder` (beside samples.csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = ResultFiles(folder / SUMMARY_FILE, folder / ENDPOINTS_FILE, folder / SCENARIO_DIR)
    write_summary(files.summary, summary)
    write_endpoints(files.endpoints, summary.gate)
    write_scenario(files.scenario, scenario_from_samples(samples, services, summary.gate.thresholds))
    return files


def write_summary(path: Path, summary: RunSummary) -> None:
    path.write_text(json.dumps(summary_document(summary), indent=2, allow_nan=False) + "\n")


def summary_document(summary: RunSummary) -> dict[str, Any]:
    gate = summary.gate
    return {
        "format": SUMMARY_FORMAT,
        "verdict": "pass" if summary.passed else "fail",
        "passed": summary.passed,
        "breaches": summary.breaches,
        "thresholds": {**asdict(gate.thresholds), "min_requests_to_judge": gate.thresholds.min_requests_to_judge},
        "run": asdict(summary.run),
        "started": gate.started,
        "ended": gate.ended,
        "overall": _figures_document(gate.overall),
        "endpoints": [_figures_document(row) for row in gate.endpoints],
        "audit": summary.audit.to_json() if summary.audit is not None else None,
        "offered_rps": summary.offered_rps,
        "achieved_rps": summary.achieved_rps,
        "late_sends": summary.open_load.late_sends if summary.open_load else 0,
        "open_load": summary.open_load.to_json() if summary.open_load else None,
    }


def _figures_document(row: EndpointFigures) -> dict[str, Any]:
    return {**asdict(row), "passed": row.passed}


def read_summary(folder: Path) -> RunSummary:
    """summary.json back as the objects it was written from; ResultsError if it is not one."""
    path = folder / SUMMARY_FILE if folder.is_dir() else folder
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not JSON ({exc})") from None
    return summary_from_document(document, str(path))


def summary_from_document(document: Any, path: str) -> RunSummary:
    """A summary.json document as the objects it was written from; ResultsError naming `path` if it is not one."""
    if not isinstance(document, dict) or document.get("format") != SUMMARY_FORMAT:
        raise ResultsError(f"{path}: not a load-run summary (format {SUMMARY_FORMAT})")
    try:
        thresholds = document["thresholds"]
        gate = GateResult(
            Thresholds(float(thresholds["p99_ms"]), float(thresholds["availability"])),
            _figures(document["overall"]),
            tuple(_figures(row) for row in document["endpoints"]),
            float(document["started"]),
            float(document["ended"]),
        )
        audit = document.get("audit")
        open_load = document.get("open_load")
        return RunSummary(
            gate,
            RunParameters(**document["run"]),
            payment_audit.PaymentAudit.from_json(audit) if audit is not None else None,
            OpenLoad.from_json(open_load) if isinstance(open_load, dict) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ResultsError(f"{path}: incomplete summary ({exc!r})") from None


def _figures(document: dict[str, Any]) -> EndpointFigures:
    names = {f.name for f in fields(EndpointFigures)}
    return EndpointFigures(**{name: value for name, value in document.items() if name in names})


def write_endpoints(path: Path, gate: GateResult) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ENDPOINT_COLUMNS)
        for row in gate.rows:
            writer.writerow(
                [
                    row.endpoint,
                    row.requests,
                    row.first_attempts,
                    row.retries,
                    row.failures,
                    repr(row.availability),
                    repr(row.p50_ms),
                    repr(row.p95_ms),
                    repr(row.p99_ms),
                    repr(row.max_ms),
                    repr(row.requests_per_second),
                    row.availability_rule,
                    "true" if row.availability_ok else "false",
                    "true" if row.latency_ok else "false",
                    "pass" if row.passed else "fail",
                    repr(row.availability_after_retries),
                ]
            )


def read_endpoints(path: Path) -> list[dict[str, str]]:
    """endpoints.csv as rows of text, `overall` last; ResultsError if the header is not ours."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != ENDPOINT_COLUMNS:
            raise ResultsError(f"{path}: header must be {','.join(ENDPOINT_COLUMNS)}")
        rows = list(reader)
    if not rows or rows[-1]["endpoint"] != OVERALL:
        raise ResultsError(f"{path}: the last row must be {OVERALL}")
    return rows


def scenario_from_samples(
    samples: Sequence[RequestSample], services: Sequence[ServiceSample], thresholds: Thresholds
) -> Scenario:
    """The run as 15 s rows (see the module docstring); at least two rows, as scenario readers require.

    A run inside one interval gets an empty row before it: no requests were made then, which
    is true, and it keeps the folder readable by `slo.scenario.read_scenario`.
    """
    if not samples:
        raise ResultsError("no samples: a scenario needs at least one request")
    done = np.fromiter((s.timestamp + s.millis / 1000 for s in samples), dtype=np.float64, count=len(samples))
    millis = np.fromiter((s.millis for s in samples), dtype=np.float64, count=len(samples))
    failed = np.fromiter((s.failed for s in samples), dtype=np.bool_, count=len(samples))
    ends = row_ends(done)
    first, last = int(ends.min()), int(ends.max())
    first = min(first, last - STEP_SECONDS)
    timestamps = np.arange(first, last + 1, STEP_SECONDS, dtype=np.int64)
    index = (ends - first) // STEP_SECONDS
    rows = timestamps.shape[0]
    requests = np.bincount(index, minlength=rows).astype(np.int64)
    errors = np.bincount(index, weights=failed, minlength=rows).astype(np.int64)
    slow = np.bincount(index, weights=millis > thresholds.p99_ms, minlength=rows).astype(np.int64)
    p99 = np.zeros(rows, dtype=np.float64)
    order = np.argsort(index, kind="stable")
    groups = np.split(millis[order], np.cumsum(requests)[:-1])
    for row, group in enumerate(groups):
        if group.size:
            p99[row] = exact_percentile(group, 99)
    cpu, db_pool = _service_rows(services, timestamps)
    slo = ScenarioSLO(availability=thresholds.availability, latency_threshold_ms=thresholds.p99_ms)
    return Scenario(timestamps, requests, errors, slow, p99, cpu, db_pool, slo, [], "load")


def row_ends(times: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The end of the 15 s row each time falls in: (end - 15, end], on multiples of 15 s."""
    return (np.ceil(times / STEP_SECONDS) * STEP_SECONDS).astype(np.int64)


def _service_rows(
    services: Sequence[ServiceSample], timestamps: np.ndarray[Any, np.dtype[np.int64]]
) -> tuple[np.ndarray[Any, np.dtype[np.float64]], np.ndarray[Any, np.dtype[np.float64]]]:
    """cpu: per row, each service's mean CPU share over its scrapes, then the busiest service's.
    db_pool: per row, the most connections in use any scrape saw. 0 for rows without scrapes.

    A scrape's CPU is a share since the previous scrape, so the mean over a row is that
    service's share for the row; the pool is a level, and its peak is what exhausts it.
    """
    rows = timestamps.shape[0]
    cpu, db_pool = np.zeros(rows, dtype=np.float64), np.zeros(rows, dtype=np.float64)
    if not services:
        return cpu, db_pool
    ends = row_ends(np.fromiter((s.timestamp for s in services), dtype=np.float64, count=len(services)))
    cpu_by_row: dict[tuple[int, str], list[float]] = defaultdict(list)
    for sample, end in zip(services, ends, strict=True):
        row = (int(end) - int(timestamps[0])) // STEP_SECONDS
        if not 0 <= row < rows:
            continue  # a scrape before the first request or after the last response
        cpu_by_row[(row, sample.service)].append(sample.cpu)
        if math.isfinite(sample.db_pool):
            db_pool[row] = max(db_pool[row], sample.db_pool)
    for (row, _service), shares in cpu_by_row.items():
        finite = [share for share in shares if math.isfinite(share)]
        if finite:
            cpu[row] = max(cpu[row], sum(finite) / len(finite))
    return cpu, db_pool

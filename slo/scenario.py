"""Metric scenario folders (DESIGN.md): game-day output, predictive-alerting input, report source.

A folder holds `metrics.csv` (one row per 15 s step) and `incidents.json` (the SLO and the
labelled incidents). Here they are read and written, and judged by the evaluator's exact
trailing windows: the availability SLO counts `errors` as bad, the latency SLO counts `slow`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from slo.durations import format_duration
from slo.errors import SourceError
from slo.evaluator import SLOModel, evaluate_counts, page_condition
from slo.rules import RuleOptions
from slo.targets import suite_targets
from slo.timeline import SLOTimeline
from slo.windows import exact_float, workbook_windows

STEP_SECONDS = 15
COUNT_COLUMNS = ("requests", "errors", "slow")
GAUGE_COLUMNS = ("p99_ms", "cpu", "db_pool")
COLUMNS = ("timestamp", *COUNT_COLUMNS, *GAUGE_COLUMNS)
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def _availability() -> float:
    return float(suite_targets().availability)


def _latency_threshold_ms() -> float:
    threshold = suite_targets().latency_threshold_ms
    return int(threshold) if threshold.is_integer() else threshold  # 200, as incidents.json has always said


def _latency_objective() -> float:
    return float(suite_targets().latency_objective)


@dataclass(frozen=True)
class ScenarioSLO:
    """The SLO a scenario is judged by; by default the suite's targets in slo/specs (99.99%, 200 ms, 99%)."""

    availability: float = field(default_factory=_availability)
    latency_threshold_ms: float = field(default_factory=_latency_threshold_ms)
    latency_objective: float = field(default_factory=_latency_objective)
    period_days: float = 30


@dataclass(frozen=True)
class Incident:
    kind: str
    start: float
    breach: float | None
    end: float


@dataclass
class Scenario:
    timestamps: Ints  # end of each 15 s step, unix seconds
    requests: Ints
    errors: Ints
    slow: Ints
    p99_ms: Floats
    cpu: Floats
    db_pool: Floats
    slo: ScenarioSLO = field(default_factory=ScenarioSLO)
    incidents: list[Incident] = field(default_factory=list)
    name: str = "scenario"

    @classmethod
    def from_columns(
        cls,
        timestamps: Any,
        columns: Mapping[str, Any],
        slo: ScenarioSLO | None = None,
        incidents: Sequence[Incident] = (),
        name: str = "scenario",
    ) -> Scenario:
        """A scenario from DESIGN.md's columns by name (`requests`, ..., `db_pool`), typed as the file is."""

        def count(key: str) -> Ints:
            return np.asarray(columns[key], dtype=np.int64)

        def gauge(key: str) -> Floats:
            return np.asarray(columns[key], dtype=np.float64)

        return cls(
            np.asarray(timestamps, dtype=np.int64),
            count("requests"),
            count("errors"),
            count("slow"),
            gauge("p99_ms"),
            gauge("cpu"),
            gauge("db_pool"),
            slo or ScenarioSLO(),
            list(incidents),
            name,
        )


def read_scenario(folder: Path) -> Scenario:
    """Load a scenario folder; any problem is one `SourceError` naming the file and row."""
    metrics, incidents_file = folder / "metrics.csv", folder / "incidents.json"
    if not metrics.is_file():
        raise SourceError(f"{metrics}: no such file (a scenario folder holds metrics.csv and incidents.json)")
    columns: dict[str, list[float]] = {name: [] for name in COLUMNS}
    with metrics.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header) != COLUMNS:
            raise SourceError(f"{metrics}:1: header must be {','.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            if len(row) != len(COLUMNS):
                raise SourceError(f"{metrics}:{line}: expected {len(COLUMNS)} values, got {len(row)}")
            try:
                values = [float(v) for v in row]
            except ValueError:
                raise SourceError(f"{metrics}:{line}: every value must be a number") from None
            if any(math.isnan(v) for v in values) or min(values[1:4]) < 0:
                raise SourceError(f"{metrics}:{line}: counts must be numbers >= 0")
            for name, value in zip(COLUMNS, values, strict=True):
                columns[name].append(value)
    if len(columns["timestamp"]) < 2:
        raise SourceError(f"{metrics}: needs at least two rows")
    timestamps = np.asarray(columns["timestamp"], dtype=np.int64)
    if np.any(np.diff(timestamps) != STEP_SECONDS):
        bad = int(np.flatnonzero(np.diff(timestamps) != STEP_SECONDS)[0]) + 3
        raise SourceError(f"{metrics}:{bad}: rows must be {STEP_SECONDS} s apart")
    slo, incidents = _read_incidents(incidents_file) if incidents_file.exists() else (ScenarioSLO(), [])
    return Scenario.from_columns(timestamps, columns, slo, incidents, folder.name)


def _read_incidents(path: Path) -> tuple[ScenarioSLO, list[Incident]]:
    try:
        document = json.loads(path.read_text())
        slo = ScenarioSLO(**document.get("slo", {}))
        incidents = [Incident(**item) for item in document.get("incidents", [])]
    except (json.JSONDecodeError, TypeError, AttributeError) as exc:
        raise SourceError(f"{path}: not a valid incidents file ({exc})") from None
    return slo, incidents


def write_scenario(folder: Path, scenario: Scenario) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "metrics.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for i in range(scenario.timestamps.shape[0]):
            writer.writerow(
                [
                    int(scenario.timestamps[i]),
                    int(scenario.requests[i]),
                    int(scenario.errors[i]),
                    int(scenario.slow[i]),
                    _number(scenario.p99_ms[i]),
                    _number(scenario.cpu[i]),
                    _number(scenario.db_pool[i]),
                ]
            )
    document: dict[str, Any] = {"slo": asdict(scenario.slo), "incidents": [asdict(i) for i in scenario.incidents]}
    (folder / "incidents.json").write_text(json.dumps(document, indent=2) + "\n")


def _number(value: float) -> str:
    return f"{value:.6g}" if not math.isnan(value) else "0"


def scenario_models(
    scenario: Scenario, service: str = "payments", options: RuleOptions | None = None
) -> list[SLOModel]:
    """The scenario's availability and latency SLOs, with the suite's alert names for `service`."""
    options = options or RuleOptions()
    windows = workbook_windows(round(scenario.slo.period_days * 86400))
    prefix = service.replace("-", " ").replace("_", " ").title().replace(" ", "")

    def model(name: str, objective: float, latency_ms: float | None) -> SLOModel:
        exact = Decimal(repr(objective))
        return SLOModel(
            f"{service}-{name}",
            service,
            name,
            f"{prefix}{name.title()}Burn",
            exact_float(exact),
            exact_float(1 - exact),
            windows,
            options.min_bad_events,
            options.exhaustion_horizon,
            latency_threshold_ms=latency_ms,
        )

    return [
        model("availability", scenario.slo.availability, None),
        model("latency", scenario.slo.latency_objective, scenario.slo.latency_threshold_ms),
    ]


def scenario_timelines(
    scenario: Scenario, service: str = "payments", options: RuleOptions | None = None
) -> list[SLOTimeline]:
    models = scenario_models(scenario, service, options)
    bad = np.stack([scenario.errors, scenario.slow])
    total = np.stack([scenario.requests, scenario.requests])
    return evaluate_counts(
        models, scenario.timestamps.astype(np.float64), bad, total, step=STEP_SECONDS, latency_p99_ms=scenario.p99_ms
    )


def breach_condition(scenario: Scenario) -> Bools:
    """DESIGN.md's page condition at each row: either SLO burning 14.4x over 1h and 5m, or 6x
    over 6h and 30m, judged on full windows only and without the traffic guard."""
    models = scenario_models(scenario, options=RuleOptions(min_bad_events=0))
    holds = np.zeros(scenario.timestamps.shape[0], dtype=bool)
    for model, bad in zip(models, (scenario.errors, scenario.slow), strict=True):
        timeline = evaluate_counts(
            [model], scenario.timestamps.astype(np.float64), bad[None, :], scenario.requests[None, :], step=STEP_SECONDS
        )[0]
        rows = {int(w): _full_rows(scenario, int(w)) for w in model.windows.windows}
        ratio = {w: timeline.error_ratio[format_duration(w)] for w in model.windows.windows}
        holds |= page_condition(model, ratio, rows)
    return holds


def first_breach(scenario: Scenario, start: float, end: float | None = None) -> float | None:
    """When the page condition first holds at or after `start` (and before `end`), or None."""
    holds = breach_condition(scenario)
    times = scenario.timestamps
    mask = holds & (times >= start) & (times <= (end if end is not None else times[-1]))
    return float(times[np.flatnonzero(mask)[0]]) if mask.any() else None


def _full_rows(scenario: Scenario, window: int) -> Bools:
    return np.arange(scenario.timestamps.shape[0]) >= window // STEP_SECONDS - 1

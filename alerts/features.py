"""Rolling-window features of a metric scenario, for predicting the fast-burn page before it fires.

This module owns what the predictive model sees at each 15 s row, computed two ways that give
the same numbers bit for bit:

* `FeatureExtractor.transform` over a whole scenario (training, evaluation), vectorised numpy;
* `OnlineFeatures.push` one row at a time for many streams at once (`nova alerts watch`, the
  benchmark), from ring buffers of cumulative sums.

Every feature is causal: row i reads rows <= i only. Both paths reduce the data to trailing
window sums (a window of `rows` rows ending `lag` rows before the current one), taken as
differences of cumulative sums of integers (floats are kept in fixed point: p99 in µs, cpu and
db_pool in millionths), so the sums are exact whatever the order of additions; the features are
then the same element-wise arithmetic on those sums (`_formulas`), whichever path called it.

Features, for the availability SLI (`err`: 5xx over requests) and the latency SLI (`slow`:
requests over 200 ms), as burn rates (error ratio over the SLO's budget): burn over 1m, 5m,
15m, 30m, 1h and 6h, its change over 5m, 15m and 30m, and where the 1h and 6h burn would be in
30 minutes if the last 5 minutes went on, and the minutes until each page pair is crossed.

Everything else is a physical quantity with the same meaning on any service, so that a model
fitted on one system's shapes has less of that system to learn by heart: p99 against the SLO's
latency threshold, its trend, and the minutes until it reaches the threshold at its compound
pace; cpu and db_pool utilisation (1.0 = saturated), their trends, and saturation forecasts:
the minutes until each reaches 1.0 at the pace of the last 5, 15 and 30 minutes, the latest of
the three (a forecast every time scale agrees on, which one noisy window cannot make) and at the
compound pace; the gauge per request against half an hour before (a leak, slower queries or a
costlier request move it, more traffic alone does not, by Little's law); traffic against its
last hour and its previous 15 minutes, and the headroom the busier gauge leaves for traffic.
No clock time and no "same time yesterday": calendars differ between systems (a market open at
13:30 or at 08:00, weekends), and a surge is judged by the capacity it leaves, not by the hour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slo.scenario import STEP_SECONDS, Scenario, ScenarioSLO

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Matrix32 = npt.NDArray[np.float32]

# Column order of a raw row, as `metrics.csv` without its timestamp.
RAW_COLUMNS = ("requests", "errors", "slow", "p99_ms", "cpu", "db_pool")
_FIXED_POINT = np.array([1, 1, 1, 1_000, 1_000_000, 1_000_000], dtype=np.float64)
REQ, ERR, SLOW, P99, CPU, POOL = range(6)

MINUTE = 60 // STEP_SECONDS  # rows per minute
HOUR = 60 * MINUTE
DAY = 24 * HOUR
ETA_CAP_MINUTES = 240.0


@dataclass(frozen=True, order=True)
class Window:
    """`rows` rows ending `lag` rows before the current one (lag 0 includes the current row)."""

    column: int
    rows: int
    lag: int = 0

    @property
    def reach(self) -> int:
        """How many rows back the window reaches, the current one included."""
        return self.rows + self.lag


Sums = Callable[[Window], tuple[Floats, Floats]]  # window -> (sum in natural units, rows present)

_BURN_WINDOWS = {"1m": MINUTE, "5m": 5 * MINUTE, "15m": 15 * MINUTE, "30m": 30 * MINUTE, "1h": HOUR, "6h": 6 * HOUR}
_TRENDS = {"5m": 5 * MINUTE, "15m": 15 * MINUTE, "30m": 30 * MINUTE}


def _names() -> tuple[str, ...]:
    names: list[str] = []
    for sli in ("err", "slow"):
        names += [f"{sli}_burn_{w}" for w in _BURN_WINDOWS]
        names += [f"{sli}_burn_trend_{w}" for w in _TRENDS]
        names += [f"{sli}_burn_1h_in_30m", f"{sli}_burn_6h_in_30m", f"{sli}_eta_1h_pair", f"{sli}_eta_6h_pair"]
        names += [f"{sli}_eta_1h_pair_15m", f"{sli}_eta_6h_pair_1h"]
    names += ["p99_vs_threshold_5m", "p99_vs_threshold_30m", "p99_trend_15m", "p99_vs_6h", "p99_eta_threshold"]
    for gauge in ("cpu", "db_pool"):
        names += [f"{gauge}_5m", f"{gauge}_trend_5m", f"{gauge}_trend_15m", f"{gauge}_trend_30m", f"{gauge}_eta_full"]
        names += [f"{gauge}_eta_full_5m", f"{gauge}_eta_full_30m", f"{gauge}_eta_full_sure", f"{gauge}_eta_full_exp"]
        names += [f"{gauge}_per_request_drift"]
    names += ["traffic_vs_1h", "traffic_trend_15m", "traffic_headroom", "history_hours"]
    return tuple(names)


FEATURE_NAMES = _names()

# The physical projections a predictive page can rest on: (feature, what reaches its limit), each
# feature the minutes until it does at the recent pace (`ETA_CAP_MINUTES` when it never does).
PROJECTIONS: tuple[tuple[str, str], ...] = (
    ("err_eta_1h_pair", "5xx burn reaches 14.4x over 1h"),
    ("err_eta_6h_pair", "5xx burn reaches 6x over 6h"),
    ("slow_eta_1h_pair", "slow burn reaches 14.4x over 1h"),
    ("slow_eta_6h_pair", "slow burn reaches 6x over 6h"),
    ("db_pool_eta_full", "db_pool full"),
    ("cpu_eta_full", "cpu saturated"),
    ("p99_eta_threshold", "p99 reaches the latency threshold"),
)
SUPPORT_MINUTES = 60.0
_PROJECTION_COLUMNS = [FEATURE_NAMES.index(name) for name, _ in PROJECTIONS]


def physical_support(features: npt.NDArray[np.float32]) -> npt.NDArray[np.bool_]:
    """Per row: does some projection reach its limit within `SUPPORT_MINUTES`? A predictive page
    needs one, so that it can always say what will break and when (`alerts.watch.top_signal`)."""
    return np.asarray((np.atleast_2d(features)[:, _PROJECTION_COLUMNS] < SUPPORT_MINUTES).any(axis=1))


def _budgets(slos: Sequence[ScenarioSLO]) -> tuple[Floats, Floats, Floats]:
    """Per stream: the availability and latency error budgets, and the latency threshold (ms)."""
    availability = np.array([1.0 - s.availability for s in slos])
    latency = np.array([1.0 - s.latency_objective for s in slos])
    return availability, latency, np.array([float(s.latency_threshold_ms) for s in slos])


def _formulas(sums: Sums, budgets: tuple[Floats, Floats, Floats], seen: Floats) -> list[Floats]:
    """The features from window sums: element-wise arithmetic only, so both paths agree exactly."""
    memo: dict[Window, tuple[Floats, Floats]] = {}

    def window_sums(window: Window) -> tuple[Floats, Floats]:
        if window not in memo:
            memo[window] = sums(window)
        return memo[window]

    def mean(window: Window) -> Floats:
        total, present = window_sums(window)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(present > 0, total / present, np.nan)

    def burn(bad_column: int, rows: int, lag: int = 0) -> Floats:
        bad, _ = window_sums(Window(bad_column, rows, lag))
        requests, _ = window_sums(Window(REQ, rows, lag))
        budget = budgets[0] if bad_column == ERR else budgets[1]
        return bad / np.maximum(requests, 1.0) / budget

    out: list[Floats] = []
    for column in (ERR, SLOW):
        burns = {label: burn(column, rows) for label, rows in _BURN_WINDOWS.items()}
        out += list(burns.values())
        out += [burns[label] - burn(column, rows, rows) for label, rows in _TRENDS.items()]
        # If the last 5 minutes went on for 30 more, where would the page's long windows be?
        out.append(0.5 * burns["30m"] + 0.5 * burns["5m"])
        out.append((5.5 * burns["6h"] + 0.5 * burns["5m"]) / 6.0)
        out.append(_eta(burns["1h"], burns["5m"], 14.4, 60.0))
        out.append(_eta(burns["6h"], burns["30m"], 6.0, 360.0))
        out.append(_eta(burns["1h"], burns["15m"], 14.4, 60.0))  # steadier paces, later warnings
        out.append(_eta(burns["6h"], burns["1h"], 6.0, 360.0))
    p99_5m, p99_30m, p99_6h = mean(Window(P99, 5 * MINUTE)), mean(Window(P99, 30 * MINUTE)), mean(Window(P99, 6 * HOUR))
    p99_15m = mean(Window(P99, 15 * MINUTE))
    threshold = budgets[2]
    p99_change = p99_15m - mean(Window(P99, 15 * MINUTE, 15 * MINUTE))
    out += [p99_5m / threshold, p99_30m / threshold, p99_change / threshold]
    out.append(p99_5m / np.maximum(p99_6h, 1.0))
    # minutes until p99 reaches the latency threshold at the exponential pace of the last 15 minutes
    out.append(_eta_exponential(p99_5m / threshold, mean(Window(P99, 5 * MINUTE, 15 * MINUTE)) / threshold, 15.0))
    traffic_5m, traffic_15m = mean(Window(REQ, 5 * MINUTE)), mean(Window(REQ, 15 * MINUTE))
    traffic_15m_before = mean(Window(REQ, 15 * MINUTE, 30 * MINUTE))
    for gauge in (CPU, POOL):
        now_5m, now_15m, now_30m = (mean(Window(gauge, rows * MINUTE)) for rows in (5, 15, 30))
        trend_5m = now_5m - mean(Window(gauge, 5 * MINUTE, 5 * MINUTE))
        trend_15m = now_15m - mean(Window(gauge, 15 * MINUTE, 15 * MINUTE))
        trend_30m = now_30m - mean(Window(gauge, 30 * MINUTE, 30 * MINUTE))
        out += [now_5m, trend_5m, trend_15m, trend_30m]
        # minutes until the gauge reaches 1 at the pace of the last 5, 15 and 30 minutes (means that
        # many minutes apart); "sure" when all three paces agree it will (the latest of the three), a
        # projection that one noisy window cannot make; "exp" at the compound pace of the last 15 min
        paces = ((trend_15m, 15.0), (trend_5m, 5.0), (trend_30m, 30.0))
        etas = [_eta_linear(now_5m, trend, minutes) for trend, minutes in paces]
        out += [*etas, np.maximum(np.maximum(etas[0], etas[1]), etas[2])]
        out.append(_eta_exponential(now_5m, mean(Window(gauge, 5 * MINUTE, 15 * MINUTE)), 15.0))
        # the gauge per request against half an hour before: a leak, slower queries or a costlier
        # request move it; more traffic alone does not (Little's law)
        with np.errstate(divide="ignore", invalid="ignore"):
            per_request = now_15m / np.maximum(traffic_15m, 1.0)
            before = mean(Window(gauge, 15 * MINUTE, 30 * MINUTE)) / np.maximum(traffic_15m_before, 1.0)
            out.append(np.where(before > 0, np.clip(per_request / before, 0.0, 10.0), 1.0))
    out.append(traffic_5m / np.maximum(mean(Window(REQ, HOUR)), 1.0))
    out.append(traffic_15m / np.maximum(mean(Window(REQ, 15 * MINUTE, 15 * MINUTE)), 1.0))
    # traffic headroom: how many times today's traffic the busier of CPU and pool could carry, if
    # they scale with it (1 = saturated): capacity, not the calendar, says whether a surge is routine
    busiest = np.maximum(mean(Window(CPU, 5 * MINUTE)), mean(Window(POOL, 5 * MINUTE)))
    out.append(np.clip(1.0 / np.maximum(busiest, 0.01), 1.0, 100.0))
    out.append(np.minimum(seen, 6 * HOUR) / HOUR)
    return out


def _eta_linear(level: Floats, change: Floats, minutes: float) -> Floats:
    """Minutes until `level` reaches 1 if it goes on changing by `change` every `minutes`; capped."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pace = change / minutes
        return np.where(pace > 0, np.clip((1.0 - level) / pace, 0.0, ETA_CAP_MINUTES), ETA_CAP_MINUTES)


def _eta_exponential(level: Floats, before: Floats, minutes: float) -> Floats:
    """Minutes until `level` reaches 1 if it keeps growing by the factor level/before every `minutes`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        growth = np.log(np.maximum(level, 1e-6) / np.maximum(before, 1e-6)) / minutes
        eta = np.log(1.0 / np.maximum(level, 1e-6)) / growth
    eta = np.where(growth > 0, np.clip(eta, 0.0, ETA_CAP_MINUTES), ETA_CAP_MINUTES)
    return np.where(level >= 1.0, 0.0, eta)


def _eta(long: Floats, short: Floats, factor: float, span_minutes: float) -> Floats:
    """Minutes until the long window's burn passes `factor` if the short window's burn goes on
    (the long window moves towards it by 1/span of the gap a minute); capped when it never does."""
    with np.errstate(divide="ignore", invalid="ignore"):
        minutes = span_minutes * (factor - long) / (short - long)
    crossing = np.where(short > np.maximum(long, factor), np.clip(minutes, 0.0, ETA_CAP_MINUTES), ETA_CAP_MINUTES)
    return np.where(long > factor, 0.0, crossing)


def _windows_read() -> list[Window]:
    """Every window `_formulas` asks for (found by running it once on a recording stub)."""
    seen: set[Window] = set()

    def record(window: Window) -> tuple[Floats, Floats]:
        seen.add(window)
        return np.ones(1), np.ones(1)

    _formulas(record, (np.ones(1), np.ones(1), np.ones(1)), np.ones(1))
    return sorted(seen)


WINDOWS = tuple(_windows_read())
# Rows of cumulative sums each column must keep: the farthest any window reaches, plus the base.
REACH = {column: max([w.reach for w in WINDOWS if w.column == column], default=1) + 1 for column in range(6)}


def fixed_point(raw: Floats) -> Ints:
    """Raw rows (n, 6) in `RAW_COLUMNS` order as exact integers (so window sums are exact)."""
    return np.rint(np.asarray(raw, dtype=np.float64) * _FIXED_POINT).astype(np.int64)


def raw_rows(scenario: Scenario) -> Floats:
    return np.column_stack(
        [scenario.requests, scenario.errors, scenario.slow, scenario.p99_ms, scenario.cpu, scenario.db_pool]
    ).astype(np.float64)


class FeatureExtractor:
    """Batch features: row i of `transform` is what a watcher would have computed at row i."""

    names: tuple[str, ...] = FEATURE_NAMES

    def transform(self, scenario: Scenario) -> Matrix32:
        return self.transform_rows(raw_rows(scenario), scenario.timestamps.astype(np.float64), scenario.slo)

    def transform_rows(self, raw: Floats, timestamps: Floats, slo: ScenarioSLO) -> Matrix32:
        """(n_rows, n_features) float32 from raw rows (n, 6) in `RAW_COLUMNS` order ending at `timestamps`."""
        fixed = fixed_point(raw)
        n = fixed.shape[0]
        cum = np.vstack([np.zeros((1, 6), np.int64), np.cumsum(fixed, axis=0)])
        index = np.arange(n)

        def sums(window: Window) -> tuple[Floats, Floats]:
            end = np.maximum(index + 1 - window.lag, 0)
            start = np.maximum(end - window.rows, 0)
            total = (cum[end, window.column] - cum[start, window.column]) / _FIXED_POINT[window.column]
            return total, (end - start).astype(np.float64)

        columns = _formulas(sums, _budgets([slo]), (index + 1).astype(np.float64))
        return np.column_stack(columns).astype(np.float32)


class OnlineFeatures:
    """Incremental features for `streams` independent series (one per SLO or service).

    `push(rows, at)` takes one raw row per stream, (streams, 6) in `RAW_COLUMNS` order, and returns
    that step's features (streams, n_features), equal to the last row `FeatureExtractor`
    would give over everything pushed so far. Memory: a ring of cumulative sums per column,
    as long as the farthest window reaches (6 hours).
    """

    names: tuple[str, ...] = FEATURE_NAMES

    def __init__(self, slos: ScenarioSLO | Sequence[ScenarioSLO], streams: int = 1) -> None:
        slo_list = [slos] * streams if isinstance(slos, ScenarioSLO) else list(slos)
        if len(slo_list) != streams:
            raise ValueError(f"{len(slo_list)} SLOs for {streams} streams")
        self.streams = streams
        self._budgets = _budgets(slo_list)
        self._rings = {column: np.zeros((REACH[column], streams), np.int64) for column in range(6)}
        self._total = np.zeros((6, streams), np.int64)
        self.seen = 0  # rows pushed

    def push(self, rows: Floats, at: float) -> Matrix32:
        """The features of the step ending at `at` (unix seconds), one row per stream."""
        fixed = fixed_point(np.asarray(rows, dtype=np.float64).reshape(self.streams, 6))
        self._total += fixed.T
        self.seen += 1
        for column, ring in self._rings.items():
            ring[self.seen % ring.shape[0]] = self._total[column]
        n = self.seen

        def cum_at(column: int, position: int) -> Ints:
            if position <= 0:
                return np.zeros(self.streams, np.int64)
            ring: Ints = self._rings[column]
            latest: Ints = ring[position % ring.shape[0]]
            return latest

        def sums(window: Window) -> tuple[Floats, Floats]:
            end = max(n - window.lag, 0)
            start = max(end - window.rows, 0)
            total = (cum_at(window.column, end) - cum_at(window.column, start)) / _FIXED_POINT[window.column]
            return total, np.full(self.streams, float(end - start))

        columns = _formulas(sums, self._budgets, np.full(self.streams, float(n)))
        return np.column_stack(columns).astype(np.float32)

"""The embedded SLO evaluator: the generated rules' arithmetic in numpy, for when no Prometheus runs.

Two ways in, one way out (`SLOTimeline`):

- `evaluate_counters` takes raw counter samples (as Prometheus would scrape them) and reproduces
  what Prometheus computes from the generated rules, step by step: `rate()` with Prometheus's
  extrapolation and counter-reset handling, the ratio rules, the period rule as the mean of the
  shortest window's recorded ratios, the traffic guard, both burn-rate alerts and the
  budget-exhaustion forecast, with the rule groups evaluated in file order at each instant
  (promtool's `group_eval_order`; a live Prometheus evaluates groups independently, so its alerts
  may lag their recordings by one evaluation). Tests hold it to `promtool test rules`. Range
  selectors are closed on the left, as in Prometheus 2.x (Debian ships 2.42); `left_open=True`
  gives Prometheus 3's `(t - range, t]`.
- `evaluate_counts` takes per-step event counts (a metrics scenario folder) and uses exact
  trailing windows over whole rows, as DESIGN.md defines them for incidents: a window of N rows
  includes the current row, and a window pair is judged only once its long window has full history.

Many SLOs sharing timestamps are evaluated together as 2-D arrays (SLO x time), which is what
keeps 100 SLOs over 30 days at one-minute steps well under a second.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slo.durations import format_duration
from slo.rules import RuleOptions
from slo.spec import SLO, LatencySLI
from slo.timeline import AlertInterval, SLOTimeline, Threshold
from slo.windows import AlertWindows, exact_float

_CHUNK = 2048
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class SLOModel:
    """What the evaluator needs of one SLO under one set of rule options."""

    sloth_id: str
    service: str
    slo: str
    alert_name: str
    objective: float
    budget: float  # the float Prometheus reads from `vector(0.0001)`
    windows: AlertWindows
    min_bad_events: int  # 0 = no traffic guard
    exhaustion_horizon: int
    page: bool = True
    ticket: bool = True
    latency_threshold_ms: float | None = None
    description: str = ""

    @classmethod
    def from_spec(cls, slo: SLO, options: RuleOptions | None = None) -> SLOModel:
        options = options or RuleOptions()
        latency = float(slo.sli.threshold_seconds) * 1000 if isinstance(slo.sli, LatencySLI) else None
        return cls(
            slo.sloth_id,
            slo.service,
            slo.name,
            slo.alerting.name,
            exact_float(slo.objective_ratio),
            exact_float(slo.error_budget),
            options.windows_for(slo),
            options.min_bad_events if options.guarded(slo) else 0,
            options.exhaustion_horizon,
            page=not slo.alerting.page.disable,
            ticket=not slo.alerting.ticket.disable,
            latency_threshold_ms=latency,
            description=slo.description,
        )

    def timeline(
        self,
        times: Floats,
        error_ratio: dict[str, Floats],
        budget_remaining: Floats,
        alerts: list[AlertInterval],
        bad_events: dict[str, Floats],
    ) -> SLOTimeline:
        """A timeline of this SLO: the series given, and what the SLO itself says (ids, budget, thresholds)."""
        return SLOTimeline(
            sloth_id=self.sloth_id,
            service=self.service,
            slo=self.slo,
            objective=self.objective,
            error_budget=self.budget,
            period_days=self.windows.period / 86400,
            timestamps=times,
            error_ratio=error_ratio,
            thresholds=[
                Threshold(sev.severity, format_duration(p.short), format_duration(p.long), exact_float(p.factor))
                for sev in self.windows.severities
                for p in sev.pairs
            ],
            budget_remaining=budget_remaining,
            bad_events=bad_events,
            alerts=sorted(alerts, key=lambda a: (a.start, a.alert, a.severity)),
            latency_threshold_ms=self.latency_threshold_ms,
            description=self.description,
        )


@dataclass(frozen=True)
class CounterSamples:
    """Counters scraped together: `values[s, i]` is series `s` at `timestamps_ms[i]`."""

    timestamps_ms: Ints
    values: Floats

    def __post_init__(self) -> None:
        if self.values.ndim != 2 or self.values.shape[1] != self.timestamps_ms.shape[0]:
            raise ValueError("values must be (series, samples) with one timestamp per sample")
        if np.any(np.diff(self.timestamps_ms) <= 0):
            raise ValueError("timestamps must increase")

    @functools.cached_property
    def resets(self) -> Floats | None:
        """Running sum of the values lost at each counter reset (None when nothing reset)."""
        previous = self.values[:, :-1]
        lost = np.where(self.values[:, 1:] < previous, previous, 0.0)
        if not lost.any():
            return None
        return np.concatenate([np.zeros((self.values.shape[0], 1)), np.cumsum(lost, axis=1)], axis=1)


def extrapolated_rate(samples: CounterSamples, eval_ms: Ints, window: int, *, left_open: bool = False) -> Floats:
    """Prometheus's `rate(counter[window])` at each evaluation time; NaN where it has no result.

    Same steps as Prometheus's `extrapolatedRate`: last minus first plus the value before every
    reset, extrapolated towards the range edges (to half a sample interval at most, and never
    below a zero counter), divided by the range in seconds.
    """
    return _increase(samples, eval_ms, window, left_open=left_open).rate(window)


@dataclass(frozen=True)
class _Increase:
    """`rate()` split in two: each series' raw increase, and the extrapolation factor.

    The factor depends only on when samples were taken, which all series share, except in the
    few cells where a counter's extrapolated zero point cuts the start short; those are kept
    apart. So the ratio of two counters is the ratio of their increases, without any per-cell
    factor: the step that makes evaluating many SLOs cheap.
    """

    result: Floats  # (series, evaluations); NaN where the range holds fewer than two samples
    factor: Floats  # (evaluations,): extrapolated interval / sampled interval
    clamped: tuple[Ints, Ints]  # cells whose own factor differs
    clamped_factor: Floats

    def rate(self, window: int) -> Floats:
        rate = self.result * self.factor / float(window)
        rate[self.clamped] = self.result[self.clamped] * self.clamped_factor / float(window)
        return rate

    def increase(self) -> Floats:
        """What the traffic guard counts: rate x window, without dividing and multiplying back."""
        extrapolated = self.result * self.factor
        extrapolated[self.clamped] = self.result[self.clamped] * self.clamped_factor
        return extrapolated


def _columns(values: Floats, index: Ints) -> Floats:
    """`values[:, index]`, as a view when the index is a run of consecutive columns (the usual case)."""
    if index.shape[0] and index[-1] - index[0] == index.shape[0] - 1 and np.all(np.diff(index) == 1):
        return values[:, index[0] : index[-1] + 1]
    return values[:, index]


def _ratio(error: _Increase, total: _Increase, window: int) -> Floats:
    """`error_rate / (total_rate > 0)`: the shared extrapolation factor cancels except in clamped cells."""
    ratio = np.full(total.result.shape, np.nan)
    with np.errstate(invalid="ignore"):
        np.divide(error.result, total.result, out=ratio, where=total.result > 0)
    if error.clamped[0].size or total.clamped[0].size:
        error_rate, total_rate = error.rate(window), total.rate(window)
        for cells in (error.clamped, total.clamped):
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio[cells] = np.where(total_rate[cells] > 0, error_rate[cells] / total_rate[cells], np.nan)
    return ratio


def _increase(samples: CounterSamples, eval_ms: Ints, window: int, *, left_open: bool) -> _Increase:
    ts, values = samples.timestamps_ms, samples.values
    window_ms = window * 1000
    lo = np.searchsorted(ts, eval_ms - window_ms, side="right" if left_open else "left")
    hi = np.searchsorted(ts, eval_ms, side="right") - 1
    present = (hi - lo) >= 1
    lo, hi = np.where(present, lo, 0), np.where(present, hi, 0)

    first = _columns(values, lo)
    result = _columns(values, hi) - first
    if samples.resets is not None:
        result += samples.resets[:, hi] - samples.resets[:, lo]
    to_start = (ts[lo] - (eval_ms - window_ms)) / 1000
    to_end = (eval_ms - ts[hi]) / 1000
    sampled = (ts[hi] - ts[lo]) / 1000
    with np.errstate(divide="ignore", invalid="ignore"):
        average = sampled / np.maximum(hi - lo, 1)
        threshold = average * 1.1
        end_part = np.where(to_end < threshold, to_end, average / 2)
        factor = (sampled + np.where(to_start < threshold, to_start, average / 2) + end_part) / sampled
        # A counter extrapolated back to zero later than the range start starts there instead.
        near_zero = first < result * (to_start / sampled * (1 + 1e-9))
    rows, cols = np.nonzero(near_zero) if near_zero.any() else (np.empty(0, np.int64), np.empty(0, np.int64))
    keep = present[cols] & (result[rows, cols] > 0) & (first[rows, cols] >= 0)
    rows, cols = rows[keep], cols[keep]
    to_zero = sampled[cols] * (first[rows, cols] / result[rows, cols])
    start = np.minimum(to_zero, to_start[cols])
    start = np.where(start < threshold[cols], start, average[cols] / 2)
    clamped_factor = (sampled[cols] + start + end_part[cols]) / sampled[cols]
    if not present.all():
        result[:, ~present] = np.nan
    return _Increase(result, factor, (rows, cols), clamped_factor)


@dataclass(frozen=True)
class _Windowed:
    """Per window: the error ratio and the bad events the traffic guard counts (SLO x time)."""

    ratio: dict[int, Floats]
    bad_events: dict[int, Floats]
    period_ratio: Floats


def evaluate_counters(
    models: Sequence[SLOModel],
    errors: CounterSamples,
    totals: CounterSamples,
    eval_ms: Ints,
    *,
    left_open: bool = False,
) -> list[SLOTimeline]:
    """Replay the generated rules at `eval_ms` over raw counters (row s of each belongs to models[s])."""
    _check_rows(models, errors.values.shape[0], totals.values.shape[0])
    ratio, bad = {}, {}
    shape = (len(models), eval_ms.shape[0])
    long_windows = {w for model in models for w in model.windows.long_windows}
    for window in _union_windows(models):
        ratio[window] = np.empty(shape)
        if window in long_windows:  # only long windows feed the traffic guard
            bad[window] = np.empty(shape)
        for start in range(0, shape[1], _CHUNK):  # chunks small enough to stay in the CPU cache
            cols = slice(start, start + _CHUNK)
            error = _increase(errors, eval_ms[cols], window, left_open=left_open)
            total = _increase(totals, eval_ms[cols], window, left_open=left_open)
            ratio[window][:, cols] = _ratio(error, total, window)
            if window in long_windows:
                bad[window][:, cols] = error.increase()
    period = np.full((len(models), eval_ms.shape[0]), np.nan)
    for s, model in enumerate(models):
        shortest = ratio[model.windows.windows[0]][s]
        period[s] = _mean_over(shortest, eval_ms, model.windows.period * 1000, left_open=left_open)
    return _timelines(models, eval_ms / 1000, _Windowed(ratio, bad, period), None)


def evaluate_counts(
    models: Sequence[SLOModel],
    timestamps: Floats,
    bad: Ints,
    total: Ints,
    *,
    step: int,
    latency_p99_ms: Floats | None = None,
    full_windows_only: bool = True,
) -> list[SLOTimeline]:
    """Exact trailing windows over per-step counts (`bad[s, i]`, `total[s, i]` events in step i).

    The period window uses whatever history exists, up to the SLO period: a recording shorter
    than the period is judged on what it holds. Alerts fire only once their long window is full
    of history (DESIGN.md's breach rule), unless `full_windows_only` is False: then, as Prometheus
    does with `rate()` over a young series, a window is judged on the history it has, which is
    what a game day minutes long needs to see its pages.
    """
    _check_rows(models, bad.shape[0], total.shape[0])
    cum_bad = np.concatenate([np.zeros((bad.shape[0], 1), np.int64), np.cumsum(bad, axis=1)], axis=1)
    cum_total = np.concatenate([np.zeros((total.shape[0], 1), np.int64), np.cumsum(total, axis=1)], axis=1)
    steps = timestamps.shape[0]
    index = np.arange(steps)

    def trailing(cum: Ints, rows: int) -> Ints:
        start = np.maximum(index + 1 - rows, 0)
        return cum[:, index + 1] - cum[:, start]

    ratio, bad_events, full = {}, {}, {}
    for window in _union_windows(models):
        rows = max(window // step, 1)
        bad_w, total_w = trailing(cum_bad, rows), trailing(cum_total, rows)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio[window] = np.where(total_w > 0, bad_w / total_w, np.nan)
        bad_events[window] = bad_w.astype(np.float64)
        full[window] = index >= rows - 1
    period = np.full(bad.shape, np.nan)
    for s, model in enumerate(models):
        rows = max(model.windows.period // step, 1)
        bad_p, total_p = trailing(cum_bad[s : s + 1], rows)[0], trailing(cum_total[s : s + 1], rows)[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            period[s] = np.where(total_p > 0, bad_p / total_p, np.nan)
    windowed = _Windowed(ratio, bad_events, period)
    timelines = _timelines(models, timestamps.astype(np.float64), windowed, full if full_windows_only else None)
    if latency_p99_ms is not None:
        for s, timeline in enumerate(timelines):
            if models[s].latency_threshold_ms is not None:
                timeline.latency_p99_ms = latency_p99_ms
    return timelines


def page_condition(model: SLOModel, windowed_ratio: dict[int, Floats], full: dict[int, Bools] | None = None) -> Bools:
    """Where the page's window pairs hold (no traffic guard): DESIGN.md's breach condition for one SLO."""
    return _severity_condition(model, "page", windowed_ratio, {}, full)


def _severity_condition(
    model: SLOModel,
    severity: str,
    ratio: dict[int, Floats],
    bad_events: dict[int, Floats],
    full: dict[int, Bools] | None,
) -> Bools:
    windows = model.windows.page if severity == "page" else model.windows.ticket
    holds: Bools | None = None
    for pair in windows.pairs:
        threshold = exact_float(pair.factor) * model.budget
        pair_holds = (ratio[pair.short] > threshold) & (ratio[pair.long] > threshold)
        if model.min_bad_events and bad_events:
            pair_holds &= bad_events[pair.long] >= model.min_bad_events
        if full is not None:
            pair_holds &= full[pair.long]
        holds = pair_holds if holds is None else holds | pair_holds
    assert holds is not None
    return holds


def _timelines(
    models: Sequence[SLOModel], times: Floats, windowed: _Windowed, full: dict[int, Bools] | None
) -> list[SLOTimeline]:
    timelines = []
    for s, model in enumerate(models):
        ratio = {w: windowed.ratio[w][s] for w in model.windows.windows}
        bad = {w: windowed.bad_events[w][s] for w in model.windows.long_windows}
        period_ratio = windowed.period_ratio[s]
        remaining = 1 - (period_ratio / model.budget)
        alerts: list[AlertInterval] = []
        for severity, enabled in (("page", model.page), ("ticket", model.ticket)):
            if enabled:
                fires = _severity_condition(model, severity, ratio, bad, full)
                alerts += firing_intervals(fires, times, model.alert_name, severity)
        if model.ticket and model.exhaustion_horizon > 0:
            burn = ratio[model.windows.page.slow.long] / model.budget
            with np.errstate(divide="ignore", invalid="ignore"):
                to_exhaustion = np.where(burn > 0, remaining * model.windows.period / burn, np.nan)
            alerts += firing_intervals(
                to_exhaustion < model.exhaustion_horizon, times, f"{model.alert_name}BudgetExhaustion", "ticket"
            )
        labels = {format_duration(w): r for w, r in ratio.items()}
        labels[format_duration(model.windows.period)] = period_ratio
        timelines.append(
            model.timeline(
                times, labels, remaining, alerts, {format_duration(w): bad[w] for w in model.windows.long_windows}
            )
        )
    return timelines


def firing_intervals(fires: Bools, times: Floats, alert: str, severity: str) -> list[AlertInterval]:
    """Each run of True in `fires` as an alert interval; one still running at the end has no end."""
    edges = np.diff(np.concatenate([[0], fires.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [
        AlertInterval(alert, severity, float(times[a]), float(times[b]) if b < times.shape[0] else None)
        for a, b in zip(starts, ends, strict=True)
    ]


def _mean_over(values: Floats, eval_ms: Ints, span_ms: int, *, left_open: bool) -> Floats:
    """`sum_over_time(x[span]) / count_over_time(x[span])` over the recorded samples (NaN = none)."""
    present = ~np.isnan(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(present, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(present)])
    lo = np.searchsorted(eval_ms, eval_ms - span_ms, side="right" if left_open else "left")
    hi = np.arange(eval_ms.shape[0]) + 1
    n = counts[hi] - counts[lo]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n > 0, (sums[hi] - sums[lo]) / n, np.nan)


def _union_windows(models: Sequence[SLOModel]) -> list[int]:
    return sorted({w for model in models for w in model.windows.windows})


def _check_rows(models: Sequence[SLOModel], *rows: int) -> None:
    if any(r != len(models) for r in rows):
        raise ValueError(f"expected one series per SLO ({len(models)}), got {rows}")

"""SLO timelines read back from a running Prometheus that evaluates the generated rules.

Only the HTTP API (`/api/v1/query_range`) is used, so any Prometheus-compatible store that
runs the rules (Thanos, Mimir, VictoriaMetrics) works the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from slo.durations import format_duration
from slo.evaluator import SLOModel, firing_intervals
from slo.prometheus_api import PrometheusAPI, grid_index
from slo.rules import RuleOptions, selector
from slo.spec import SLO, LatencySLI
from slo.timeline import AlertInterval, Series, SLOTimeline


def prometheus_timelines(
    api: PrometheusAPI, slos: Sequence[SLO], options: RuleOptions, *, start: float, end: float, step: int
) -> list[SLOTimeline]:
    """Each SLO's recorded series over `[start, end]`, as the generated rules named them."""
    grid = np.arange(start, end + step / 2, step, dtype=np.float64)
    timelines = []
    for slo in slos:
        model = SLOModel.from_spec(slo, options)
        sel = selector(slo)
        labels = [format_duration(w) for w in model.windows.windows] + [format_duration(model.windows.period)]
        ratios = {w: api.on_grid(f"slo:sli_error:ratio_rate{w}{sel}", grid, step) for w in labels}
        bad = {
            format_duration(w): api.on_grid(f"slo:sli_bad_events:increase{format_duration(w)}{sel}", grid, step)
            for w in model.windows.long_windows
        }
        remaining = api.on_grid(f"slo:period_error_budget_remaining:ratio{sel}", grid, step)
        timeline = model.timeline(grid, ratios, remaining, _alerts(api, slo, grid, step), bad)
        if isinstance(slo.sli, LatencySLI):
            buckets = f"sum by (le) (rate({slo.sli.histogram}_bucket{{{slo.sli.selector}}}[5m]))"
            timeline.latency_p50_ms = api.on_grid(f"histogram_quantile(0.5, {buckets}) * 1000", grid, step)
            timeline.latency_p99_ms = api.on_grid(f"histogram_quantile(0.99, {buckets}) * 1000", grid, step)
        timelines.append(timeline)
    return timelines


def _alerts(api: PrometheusAPI, slo: SLO, grid: Series, step: int) -> list[AlertInterval]:
    intervals: list[AlertInterval] = []
    query = f'ALERTS{{sloth_id="{slo.sloth_id}", alertstate="firing"}}'
    for labels, points in api.query_range(query, float(grid[0]), float(grid[-1]), step):
        present = np.zeros(grid.shape[0], dtype=bool)
        for t, _ in points:
            i = grid_index(t, grid, step)
            if 0 <= i < grid.shape[0]:
                present[i] = True
        intervals += firing_intervals(present, grid, labels["alertname"], labels.get("sloth_severity", ""))
    return sorted(intervals, key=lambda a: (a.start, a.alert, a.severity))

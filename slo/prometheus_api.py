"""A small client for Prometheus's HTTP API (`/api/v1/query_range`).

Only the HTTP API is used, so any Prometheus-compatible store (Thanos, Mimir, VictoriaMetrics)
works the same. Kept apart from `slo.prometheus` (timelines) so that tools needing only a query,
such as the pager and the chaos probes, do not load the SLO engine.
"""

from __future__ import annotations

import httpx
import numpy as np

from slo.errors import SourceError
from slo.timeline import Series


class PrometheusAPI:
    def __init__(self, url: str, timeout: float = 15.0) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def query_range(
        self, promql: str, start: float, end: float, step: int
    ) -> list[tuple[dict[str, str], list[list[float | str]]]]:
        """`(labels, [[t, "value"], ...])` per series; a refusal or an unreachable server is one SourceError."""
        try:
            response = self._client.get(
                "/api/v1/query_range", params={"query": promql, "start": start, "end": end, "step": step}
            )
            body = response.json()
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot query Prometheus at {self.url}: {exc}") from None
        except ValueError:
            raise SourceError(f"Prometheus at {self.url} answered {response.status_code} without JSON") from None
        if body.get("status") != "success":
            raise SourceError(f"Prometheus refused {promql!r}: {body.get('error', response.status_code)}")
        return [(series["metric"], series["values"]) for series in body["data"]["result"]]

    def on_grid(self, promql: str, grid: Series, step: int) -> Series:
        """The query's single series on `grid` (NaN where absent); several series are summed."""
        values = np.full(grid.shape[0], np.nan)
        for _, points in self.query_range(promql, float(grid[0]), float(grid[-1]), step):
            for t, v in points:
                i = grid_index(t, grid, step)
                if 0 <= i < grid.shape[0]:
                    values[i] = float(v) if np.isnan(values[i]) else values[i] + float(v)
        return values


def grid_index(t: float | str, grid: Series, step: int) -> int:
    return round((float(t) - float(grid[0])) / step)

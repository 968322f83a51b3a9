"""The slowest requests Prometheus kept exemplars for: trace ids straight from the latency histogram.

The services attach a `trace_id` exemplar to each bucket of
`http_server_request_duration_seconds` (OpenMetrics); a Prometheus started with
`--enable-feature=exemplar-storage` keeps them and answers `/api/v1/query_exemplars`.
Without that feature the answer is empty, and the page says nothing about exemplars.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from slo.errors import SourceError

HISTOGRAM = "http_server_request_duration_seconds_bucket"


@dataclass(frozen=True)
class ExemplarRequest:
    route: str
    method: str
    seconds: float
    trace_id: str
    at: float  # unix seconds


def slowest_exemplars(
    prometheus_url: str, service: str, start: float, end: float, top: int = 3, timeout: float = 5.0
) -> list[ExemplarRequest]:
    """The `top` slowest exemplars of `service` in `[start, end]`, one per trace; SourceError if Prometheus fails."""
    query = f'{HISTOGRAM}{{service="{service.replace(chr(34), "")}"}}'
    url = prometheus_url.rstrip("/")
    try:
        response = httpx.get(
            f"{url}/api/v1/query_exemplars", params={"query": query, "start": start, "end": end}, timeout=timeout
        )
        body = response.json()
    except httpx.HTTPError as exc:
        raise SourceError(f"cannot query exemplars at {url}: {exc}") from None
    except ValueError:
        raise SourceError(f"Prometheus at {url} answered {response.status_code} without JSON") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error", response.status_code) if isinstance(body, dict) else response.status_code
        raise SourceError(f"Prometheus refused the exemplar query: {error}")
    data = body.get("data") or []
    if not isinstance(data, list):
        raise SourceError(f"Prometheus at {url} answered the exemplar query with something else than a list")
    found: dict[str, ExemplarRequest] = {}
    for series in data:
        labels = series.get("seriesLabels") or {}
        for exemplar in series.get("exemplars") or ():
            try:
                trace_id = str(exemplar["labels"].get("trace_id", ""))
                seconds, at = float(exemplar["value"]), float(exemplar["timestamp"])
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            if not trace_id or (trace_id in found and found[trace_id].seconds >= seconds):
                continue
            found[trace_id] = ExemplarRequest(labels.get("route", ""), labels.get("method", ""), seconds, trace_id, at)
    return sorted(found.values(), key=lambda e: (-e.seconds, e.trace_id))[:top]

"""The spans on-call opens first: a service's failed and slowest spans just before an alert.

Reads the embedded trace sink (`<traces>/<service>.jsonl`, one OTLP-JSON
`ExportTraceServiceRequest` per line, see `instrumentation/file_exporter.py`) from its
end backwards, so a game day's file of gigabytes costs only the last minutes read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SERVER = 2  # opentelemetry.proto.trace.v1.Span.SpanKind: SPAN_KIND_SERVER (numbers, as OTLP/JSON writes them)
_ERROR = 2  # Status.StatusCode: STATUS_CODE_ERROR
_BLOCK = 1 << 20
# Workers append their batches independently, so a line may be a little older than the next one.
_OUT_OF_ORDER_LINES = 16
DEFAULT_MAX_BYTES = 256 << 20


@dataclass(frozen=True)
class SpanSummary:
    name: str
    trace_id: str
    span_id: str
    duration_ms: float
    end_unix: float
    http_status: int | None
    error: bool


@dataclass(frozen=True)
class FailedSpans:
    """Failed spans of one operation: how many, and the most recent one's trace."""

    name: str
    http_status: int | None
    count: int
    latest: SpanSummary


@dataclass(frozen=True)
class SpanReport:
    source: Path
    window: tuple[float, float]  # unix seconds
    spans_read: int
    failed: tuple[FailedSpans, ...]
    slowest: tuple[SpanSummary, ...]


def span_report(
    traces_dir: Path, service: str, start: float, end: float, top: int = 3, max_bytes: int = DEFAULT_MAX_BYTES
) -> SpanReport | None:
    """The `top` most frequent failures and slowest server spans of `service` in `[start, end]`; None without a file."""
    path = traces_dir / f"{service}.jsonl"
    if not service or "/" in service or not path.is_file():
        return None
    failed: dict[tuple[str, int | None], list[SpanSummary]] = {}
    server: list[SpanSummary] = []
    read = 0
    for span in _spans_in_window(path, start, end, max_bytes):
        read += 1
        if span.error:
            failed.setdefault((span.name, span.http_status), []).append(span.summary)
        if span.kind == _SERVER:
            server.append(span.summary)
    ranked = sorted(failed.items(), key=lambda item: (-len(item[1]), item[0][0]))
    return SpanReport(
        source=path,
        window=(start, end),
        spans_read=read,
        failed=tuple(
            FailedSpans(name, status, len(spans), max(spans, key=lambda s: s.end_unix))
            for (name, status), spans in ranked[:top]
        ),
        slowest=tuple(sorted(server, key=lambda s: (-s.duration_ms, s.trace_id))[:top]),
    )


@dataclass(frozen=True)
class _Span:
    kind: int
    summary: SpanSummary

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def http_status(self) -> int | None:
        return self.summary.http_status

    @property
    def error(self) -> bool:
        return self.summary.error


def _spans_in_window(path: Path, start: float, end: float, max_bytes: int) -> Iterator[_Span]:
    older_lines = 0
    for line in _lines_backwards(path, max_bytes):
        try:
            batch = json.loads(line)
        except ValueError:
            continue  # a batch being appended right now, or a torn line
        newest = 0.0
        for span in _spans_of(batch):
            newest = max(newest, span.summary.end_unix)
            if start <= span.summary.end_unix <= end:
                yield span
        if newest and newest < start:
            older_lines += 1
            if older_lines >= _OUT_OF_ORDER_LINES:
                return
        else:
            older_lines = 0


def _spans_of(batch: Any) -> Iterator[_Span]:
    if not isinstance(batch, dict):
        return
    for resource_spans in batch.get("resourceSpans") or ():
        for scope_spans in resource_spans.get("scopeSpans") or ():
            for raw in scope_spans.get("spans") or ():
                span = _span(raw)
                if span is not None:
                    yield span


def _span(raw: Any) -> _Span | None:
    try:
        start_ns = int(raw["startTimeUnixNano"])
        end_ns = int(raw["endTimeUnixNano"])
        trace_id = str(raw["traceId"])
        span_id = str(raw.get("spanId", ""))
    except (KeyError, TypeError, ValueError):
        return None
    http_status = _http_status(raw.get("attributes") or ())
    status = raw.get("status") or {}
    code = status.get("code") if isinstance(status, dict) else None
    error = code in (_ERROR, "STATUS_CODE_ERROR") or (http_status is not None and http_status >= 500)
    kind = raw.get("kind")
    return _Span(
        kind=_SERVER if kind in (_SERVER, "SPAN_KIND_SERVER") else -1,
        summary=SpanSummary(
            name=str(raw.get("name", "")),
            trace_id=trace_id,
            span_id=span_id,
            duration_ms=max(0, end_ns - start_ns) / 1e6,
            end_unix=end_ns / 1e9,
            http_status=http_status,
            error=error,
        ),
    )


def _http_status(attributes: Any) -> int | None:
    for attribute in attributes:
        if isinstance(attribute, dict) and attribute.get("key") in ("http.response.status_code", "http.status_code"):
            value = attribute.get("value") or {}
            raw = value.get("intValue", value.get("stringValue")) if isinstance(value, dict) else None
            try:
                return int(raw) if isinstance(raw, (int, str)) else None
            except ValueError:
                return None
    return None


def _lines_backwards(path: Path, max_bytes: int) -> Iterator[bytes]:
    """Complete lines from the end of the file, newest first, reading at most `max_bytes`."""
    with path.open("rb") as file:
        position = file.seek(0, os.SEEK_END)
        floor = max(0, position - max_bytes)
        tail = b""
        while position > floor:
            size = min(_BLOCK, position - floor)
            position -= size
            file.seek(position)
            chunk = file.read(size) + tail
            lines = chunk.split(b"\n")
            tail = lines[0]  # may continue in the previous block
            for line in reversed(lines[1:]):
                if line.strip():
                    yield line
        if floor == 0 and tail.strip():
            yield tail

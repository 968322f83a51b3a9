"""The embedded trace sink: OTLP-JSON lines appended to `<data_dir>/traces/<service>.jsonl`.

Each line is one export batch as an `ExportTraceServiceRequest` in the JSON mapping
that OTLP/HTTP uses (ids as hex, 64-bit integers as strings, enums as numbers), so
the OpenTelemetry Collector's `otlpjsonfile` receiver, or any OTLP/JSON reader, can
ship a game day's traces to Jaeger or Tempo afterwards.

Several worker processes append to one file: each batch is a single `write` on a
descriptor opened with O_APPEND, which POSIX keeps whole for regular files. A file
past `max_bytes` is rotated to `<service>.jsonl.1` (replacing the previous one), so
the traces of one service never take more than twice that on disk. The
JSON is written straight from the SDK's `ReadableSpan`s, no protobuf on the way, and
the JSON of repeated parts (attribute sets, names) is made once: exporting runs in
the serving process, so what it costs, the service pays.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util import types

from instrumentation.spans import UNSET, SpanWithChildren

log = logging.getLogger(__name__)

# opentelemetry.proto.trace.v1.SpanFlags: "whether the parent is remote is known", and "it is".
_FLAGS_LOCAL = 0x100
_FLAGS_REMOTE = 0x100 | 0x200
_MAX_CACHED = 4096
# Attribute sets whose JSON is longer are encoded each time: a client-chosen value must not be kept.
_MAX_CACHED_JSON = 2048
MAX_FILE_BYTES = 256 * 1024 * 1024
_dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_string = json.encoder.encode_basestring_ascii


class FileSpanExporter(SpanExporter):
    """Appends each batch of spans to `path` as one OTLP-JSON line."""

    def __init__(self, path: Path, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._stopped = False
        # Resource and scope JSON by object; the objects are kept, so their ids stay theirs.
        self._resources: dict[int, tuple[Resource, str]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope | None, str]] = {}
        # Most spans repeat a few attribute sets (one per SQL statement, a few per route).
        self._attributes: dict[tuple[tuple[str, Any], ...], str] = {}
        self._bodies: dict[int, tuple[object, str, SpanKind, str]] = {}
        self._names: dict[str, str] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._stopped:
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            self._append(self.encode(spans).encode("ascii"))
        except OSError as exc:
            log.warning("cannot write traces to %s: %s", self.path, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def encode(self, spans: Sequence[ReadableSpan]) -> str:
        """One `ExportTraceServiceRequest` line: spans grouped by resource, then by instrumentation scope.

        Built as one list of fragments (separators included) and joined once: a batch
        is megabytes, and every intermediate string would be a copy of it.
        """
        groups: dict[tuple[int, int], list[str]] = {}
        current: tuple[int, int] | None = None
        fragments: list[str] = []
        for span in spans:
            resource = span.resource
            scope = span.instrumentation_scope
            key = (id(resource), id(scope))
            if key != current:
                current = key
                found = groups.get(key)
                if found is None:
                    found = groups[key] = []
                    if key[0] not in self._resources:
                        self._resources[key[0]] = (resource, _resource_json(resource))
                    if key[1] not in self._scopes:
                        self._scopes[key[1]] = (scope, _scope_json(scope))
                fragments = found
            if fragments:
                fragments.append(",")
            fragments.append(self._span_json(span))
            if type(span) is SpanWithChildren:
                self._children_json(span, fragments)
        scopes_of: dict[int, list[int]] = {}
        for resource_id, scope_id in groups:
            scopes_of.setdefault(resource_id, []).append(scope_id)
        line = ['{"resourceSpans":[']
        for resource_index, (resource_id, scope_ids) in enumerate(scopes_of.items()):
            line.append(f'{"," if resource_index else ""}{{{self._resources[resource_id][1]},"scopeSpans":[')
            for scope_index, scope_id in enumerate(scope_ids):
                line.append(f'{"," if scope_index else ""}{{{self._scopes[scope_id][1]},"spans":[')
                line.extend(groups[resource_id, scope_id])
                line.append("]}")
            line.append("]}")
        line.append("]}\n")
        return "".join(line)

    def shutdown(self) -> None:
        self._stopped = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def _span_json(self, span: ReadableSpan) -> str:
        context: SpanContext = span.context
        parent = span.parent
        if parent is None:
            head = (
                f'{{"traceId":"{context.trace_id:032x}","spanId":"{context.span_id:016x}","flags":{_FLAGS_LOCAL},'
                f'"startTimeUnixNano":"{span.start_time}","endTimeUnixNano":"{span.end_time}"'
            )
        else:
            head = (
                f'{{"traceId":"{context.trace_id:032x}","spanId":"{context.span_id:016x}",'
                f'"parentSpanId":"{parent.span_id:016x}","flags":{_FLAGS_REMOTE if parent.is_remote else _FLAGS_LOCAL},'
                f'"startTimeUnixNano":"{span.start_time}","endTimeUnixNano":"{span.end_time}"'
            )
        if context.trace_state:
            head += f',"traceState":{_string(context.trace_state.to_header())}'
        extra = []
        if span.dropped_attributes:
            extra.append(f',"droppedAttributesCount":{span.dropped_attributes}')
        if span.events:
            events = [
                _with_attributes({"timeUnixNano": str(event.timestamp), "name": event.name}, event.attributes)
                for event in span.events
            ]
            extra.append(f',"events":{_dumps(events)}')
        if span.links:
            links = [
                _with_attributes(
                    {"traceId": f"{link.context.trace_id:032x}", "spanId": f"{link.context.span_id:016x}"},
                    link.attributes,
                )
                for link in span.links
            ]
            extra.append(f',"links":{_dumps(links)}')
        body = self._body_json(span.name, span.kind, span.attributes, span.status)
        return f"{head},{body}{''.join(extra)}}}"

    def _children_json(self, span: SpanWithChildren, fragments: list[str]) -> None:
        """The spans a request's span kept: the same trace, parent and flags; mostly a statement's kept body."""
        context = span.context
        prefix = f',{{"traceId":"{context.trace_id:032x}","spanId":"'
        middle = f'","parentSpanId":"{context.span_id:016x}","flags":{_FLAGS_LOCAL},"startTimeUnixNano":"'
        state = f',"traceState":{_string(context.trace_state.to_header())}' if context.trace_state else ""
        bodies = self._bodies
        for span_id, name, kind, attributes, start_time, end_time, status in span.children:
            kept = bodies.get(id(attributes)) if status is UNSET else None
            if kept is not None and kept[0] is attributes and kept[1] == name and kept[2] is kind:
                body = kept[3]
            else:
                body = self._body_json(name, kind, attributes, status, shared=True)
            fragments.append(
                f'{prefix}{span_id:016x}{middle}{start_time}","endTimeUnixNano":"{end_time}"{state},{body}}}'
            )

    def _body_json(
        self, name: str, kind: SpanKind, attributes: types.Attributes, status: Status, shared: bool = False
    ) -> str:
        """Name, kind, attributes and status: what the spans of one statement all share.

        `shared`: `attributes` is a read-only mapping its owner keeps (one per statement)
        and hands to every span of it; the body is kept with it.
        """
        if shared and status.status_code is StatusCode.UNSET:
            kept = self._bodies.get(id(attributes))
            if kept is not None and kept[0] is attributes and kept[1] == name and kept[2] is kind:
                return kept[3]
        body = f'"name":{self._name_json(name)},"kind":{kind.value + 1}'
        if attributes:
            body += f',"attributes":{self._attributes_json(attributes)}'
        if status.status_code is not StatusCode.UNSET:
            encoded_status: dict[str, Any] = {"code": status.status_code.value}
            if status.description:
                encoded_status["message"] = status.description
            body += f',"status":{_dumps(encoded_status)}'
        elif shared:
            # The mapping is held with its body, so that its id stays its own.
            if len(self._bodies) >= _MAX_CACHED:
                self._bodies.clear()
            self._bodies[id(attributes)] = (attributes, name, kind, body)
        return body

    def _name_json(self, name: str) -> str:
        encoded = self._names.get(name)
        if encoded is None:
            encoded = _string(name)
            if len(self._names) >= _MAX_CACHED:
                self._names.clear()
            self._names[name] = encoded
        return encoded

    def _attributes_json(self, attributes: Mapping[str, Any]) -> str:
        key = tuple(attributes.items())
        try:
            encoded = self._attributes.get(key)
        except TypeError:  # an unhashable value: encoded every time
            return _dumps(encode_attributes(attributes))
        if encoded is None:
            encoded = _dumps(encode_attributes(attributes))
            if len(encoded) > _MAX_CACHED_JSON:
                return encoded
            if len(self._attributes) >= _MAX_CACHED:
                self._attributes.clear()
            self._attributes[key] = encoded
        return encoded

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Opened per batch: a batch comes every few seconds at most, and a file moved
        # away by log rotation is recreated rather than written to after it is gone.
        fd = self._open()
        if os.fstat(fd).st_size + len(data) > self.max_bytes:
            self._rotate(fd)
            os.close(fd)
            fd = self._open()
        try:
            written = os.write(fd, data)
            # Regular files take the whole buffer (short writes mean a full disk); keep
            # what is left rather than lose it.
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)

    def _rotate(self, fd: int) -> None:
        """Move the full file aside, once whatever the number of workers that find it full.

        The worker holding the file's lock renames it only if the path still names
        that file; a worker that waited finds it already moved. Both then write to the
        new file.
        """
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        except FileNotFoundError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def encode_attributes(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """OTLP `KeyValue`s, as JSON-ready dicts."""
    return [{"key": key, "value": encode_value(value)} for key, value in attributes.items()]


def encode_value(value: Any) -> dict[str, Any]:
    """An OTLP `AnyValue`; bool before int, since bool is an int in Python."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value if math.isfinite(value) else str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": encode_attributes(value)}}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [encode_value(item) for item in value]}}
    return {"stringValue": str(value)}


def _resource_json(resource: Resource) -> str:
    """The `resource` (and `schemaUrl`) members of a ResourceSpans object."""
    schema = f',"schemaUrl":{_string(resource.schema_url)}' if resource.schema_url else ""
    return f'"resource":{{"attributes":{_dumps(encode_attributes(resource.attributes))}}}{schema}'


def _scope_json(scope: InstrumentationScope | None) -> str:
    """The `scope` (and `schemaUrl`) members of a ScopeSpans object."""
    encoded: dict[str, Any] = {}
    schema = ""
    if scope is not None:
        encoded["name"] = scope.name
        if scope.version:
            encoded["version"] = scope.version
        if scope.schema_url:
            schema = f',"schemaUrl":{_string(scope.schema_url)}'
    return f'"scope":{_dumps(encoded)}{schema}'


def _with_attributes(encoded: dict[str, Any], attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    if attributes:
        encoded["attributes"] = encode_attributes(attributes)
    return encoded

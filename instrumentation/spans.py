"""Spans made cheaply enough to trace every request, fed to the OpenTelemetry SDK's processors.

The SDK's own `Span` costs 12-20 us to start and end (locks, bounded containers,
validation of every attribute), and each finished span is a separate item for the
batch processor and the exporter. The payment path makes seven spans per request
(the server span and one per SQL statement): that way they cost a third of the
request's CPU. Here they cost a fraction of it:

- `SpanRecorder` asks the provider's sampler about every span that starts a
  process's part of a trace, and lets children share the decision of their
  recording parent (which every sampler the environment can choose would repeat).
- `RecordingSpan` is a full `opentelemetry.trace.Span` (log formatters, metrics
  exemplars and propagators use it as usual) that keeps attributes in a plain dict.
- Spans timed by their caller (SQL statements) are kept by the request's span as
  tuples, and travel with it to the span processor as one `SpanWithChildren`.
  The file exporter writes them from there; any other exporter gets them as
  ordinary `ReadableSpan`s through `SpanFlattener`, so backends see exactly what
  the SDK would have produced.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Mapping, Sequence
from random import getrandbits
from types import MappingProxyType
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON, Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.util import types

from instrumentation.redaction import redact

log = logging.getLogger(__name__)

UNSET = Status(StatusCode.UNSET)
# The SDK's default span limits: a misbehaving caller cannot grow a span without bound.
MAX_ATTRIBUTES = 128
MAX_EVENTS = 128
MAX_CHILDREN = 1000
MAX_VALUE_LENGTH = 4096
_SCALARS = (str, bool, int, float)
# W3C trace flags by (sampled, trace id random), as the SDK's tracer sets them.
_FLAGS = {
    (sampled, random): TraceFlags(TraceFlags.SAMPLED * sampled | TraceFlags.RANDOM_TRACE_ID * random)
    for sampled in (False, True)
    for random in (False, True)
}
_time_ns = time.time_ns

# A finished child: span id, name, kind, attributes (shared, read-only), start, end, status.
Child = tuple[int, str, SpanKind, "MappingProxyType[str, types.AttributeValue]", int, int, Status]


class SpanRecorder:
    """Starts and finishes the spans of one service with its provider's sampler, ids, resource and processor."""

    __slots__ = (
        "_ids",
        "_parent_or_always_on",
        "_processor",
        "_random_ids",
        "_sampler",
        "max_value_length",
        "resource",
        "scope",
    )

    def __init__(
        self,
        sampler: Sampler,
        id_generator: IdGenerator,
        resource: Resource,
        processor: SpanProcessor,
        scope: InstrumentationScope,
        max_value_length: int = MAX_VALUE_LENGTH,
    ) -> None:
        """`max_value_length`: string attribute values are cut to it (the SDK's `max_span_attribute_length`)."""
        self._sampler = sampler
        self.max_value_length = max_value_length
        self._parent_or_always_on = sampler is DEFAULT_ON or sampler is ALWAYS_ON
        self._ids = id_generator
        # The SDK's default ids, drawn here without its two calls per id.
        self._random_ids = type(id_generator) is RandomIdGenerator
        self._processor = processor
        self.resource = resource
        self.scope = scope

    def start(
        self, name: str, kind: SpanKind, parent: Context | None, attributes: dict[str, types.AttributeValue]
    ) -> trace.Span:
        """A span under whatever `parent` holds (a remote span; None: nothing), as the sampler decides.

        `attributes` becomes the span's own dict: the caller hands it over.
        """
        remote: SpanContext | None = None
        if parent is not None:
            remote = trace.get_current_span(parent).get_span_context()
        if remote is not None and remote.is_valid:
            trace_id = remote.trace_id
            random_trace_id = remote.trace_flags.random_trace_id
        else:
            remote = None
            trace_id = (getrandbits(128) or 1) if self._random_ids else self._ids.generate_trace_id()
            random_trace_id = self._random_ids or self._ids.is_trace_id_random()
        if self._parent_or_always_on:
            # parentbased_always_on (the default) and always_on decide without looking at
            # the span, and add nothing to it: their answer, without the call.
            sampled = remote is None or remote.trace_flags.sampled or self._sampler is ALWAYS_ON
            trace_state = remote.trace_state if remote is not None else None
            span_id = (getrandbits(64) or 1) if self._random_ids else self._ids.generate_span_id()
            span_context = SpanContext(trace_id, span_id, False, _FLAGS[sampled, random_trace_id], trace_state)
            if not sampled:
                return trace.NonRecordingSpan(span_context)
            return RecordingSpan(self, name, kind, span_context, remote, attributes)
        if parent is None:
            parent = Context()
        decision = self._sampler.should_sample(parent, trace_id, name, kind, attributes)
        flags = _FLAGS[decision.decision is Decision.RECORD_AND_SAMPLE, random_trace_id]
        span_context = SpanContext(trace_id, self._ids.generate_span_id(), False, flags, decision.trace_state)
        if decision.decision is Decision.DROP:
            return trace.NonRecordingSpan(span_context)
        if decision.attributes:
            attributes.update(decision.attributes)
        return RecordingSpan(self, name, kind, span_context, remote, attributes)

    def start_child(
        self, parent: RecordingSpan, name: str, kind: SpanKind, attributes: dict[str, types.AttributeValue]
    ) -> RecordingSpan:
        """A child of a recording span of this process, sharing its sampling decision."""
        parent_context = parent.get_span_context()
        span_context = SpanContext(
            parent_context.trace_id,
            self._ids.generate_span_id(),
            False,
            parent_context.trace_flags,
            parent_context.trace_state,
        )
        return RecordingSpan(self, name, kind, span_context, parent_context, attributes)

    def new_span_id(self) -> int:
        return (getrandbits(64) or 1) if self._random_ids else self._ids.generate_span_id()

    def finish(self, span: ReadableSpan) -> None:
        self._processor.on_end(span)


class RecordingSpan(trace.Span):
    """A recording span of a `SpanRecorder`: plain fields until `end`, then one `ReadableSpan`."""

    __slots__ = (
        "_attributes",
        "_children",
        "_context",
        "_end_time",
        "_events",
        "_kind",
        "_name",
        "_parent",
        "_recorder",
        "_start_time",
        "_status",
    )

    def __init__(
        self,
        recorder: SpanRecorder,
        name: str,
        kind: SpanKind,
        span_context: SpanContext,
        parent: SpanContext | None,
        attributes: dict[str, types.AttributeValue],
    ) -> None:
        self._recorder = recorder
        self._name = name
        self._kind = kind
        self._context = span_context
        self._parent = parent
        self._attributes = attributes
        self._events: list[Event] | None = None
        self._children: (
            list[tuple[str, SpanKind, MappingProxyType[str, types.AttributeValue], int, int, Status]] | None
        ) = None
        self._status = UNSET
        self._start_time = _time_ns()
        self._end_time: int | None = None

    # -- what other code reads -----------------------------------------------------------------------

    def get_span_context(self) -> SpanContext:
        return self._context

    @property
    def parent(self) -> SpanContext | None:
        """The parent's context, as on the SDK's spans (the Jaeger propagator reads it)."""
        return self._parent

    @property
    def resource(self) -> Resource:
        return self._recorder.resource

    @property
    def recorder(self) -> SpanRecorder:
        return self._recorder

    @property
    def name(self) -> str:
        return self._name

    @property
    def attributes(self) -> Mapping[str, types.AttributeValue]:
        return MappingProxyType(self._attributes)

    def is_recording(self) -> bool:
        return self._end_time is None

    # -- what instrumentation writes ----------------------------------------------------------------

    def set_attribute(self, key: str, value: types.AttributeValue) -> None:
        if self._end_time is not None:
            return
        if len(self._attributes) >= MAX_ATTRIBUTES and key not in self._attributes:
            return
        cleaned = _clean(value, self._recorder.max_value_length)
        if cleaned is not None:
            self._attributes[key] = cleaned

    def set_attributes(self, attributes: Mapping[str, types.AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self._end_time is not None:
            return
        if self._events is None:
            self._events = []
        if len(self._events) < MAX_EVENTS:
            limit = self._recorder.max_value_length
            cleaned = {key: v for key, value in (attributes or {}).items() if (v := _clean(value, limit)) is not None}
            self._events.append(Event(name, cleaned, timestamp))

    def add_finished_child(
        self,
        name: str,
        kind: SpanKind,
        attributes: MappingProxyType[str, types.AttributeValue],
        start_time: int,
        end_time: int,
        status: Status = UNSET,
    ) -> None:
        """A child span timed by its caller (a SQL statement), exported together with this span.

        While the request runs a child costs a tuple; `attributes` is kept as given
        (it is usually shared by every span of one statement).
        """
        if self._end_time is not None:
            child = (self._recorder.new_span_id(), name, kind, attributes, start_time, end_time, status)
            self._recorder.finish(finished_child(self._context, self._recorder, child))
        elif self._children is None:
            self._children = [(name, kind, attributes, start_time, end_time, status)]
        elif len(self._children) < MAX_CHILDREN:
            self._children.append((name, kind, attributes, start_time, end_time, status))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        # The SDK's tracer takes links at start; nothing in this suite adds them later.
        log.debug("links are not recorded on %s", self._name)

    def update_name(self, name: str) -> None:
        if self._end_time is None:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._end_time is not None or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        event: dict[str, types.AttributeValue] = {
            "exception.type": qualified_name(type(exception)),
            "exception.message": redact(str(exception)),
            "exception.stacktrace": redact("".join(traceback.format_exception(exception))),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end_with(self, name: str | None, attributes: Mapping[str, types.AttributeValue], status: Status) -> None:
        """Rename, add attributes the caller vouches for (valid values, within limits), set status, end: one call."""
        if self._end_time is not None:
            return
        if name is not None:
            self._name = name
        self._attributes.update(attributes)
        if status.status_code is not StatusCode.UNSET and self._status.status_code is not StatusCode.OK:
            self._status = status
        self.end()

    def end(self, end_time: int | None = None) -> None:
        if self._end_time is not None:
            return
        self._end_time = end_time if end_time is not None else _time_ns()
        recorder = self._recorder
        arguments = (
            self._name,
            self._context,
            self._parent,
            recorder.resource,
            self._attributes,
            self._events or (),
            (),
            self._kind,
            None,
            self._status,
            self._start_time,
            self._end_time,
            recorder.scope,
        )
        if self._children:
            new_span_id = recorder.new_span_id
            children = tuple([(new_span_id(), *child) for child in self._children])
            self._children = None
            recorder.finish(SpanWithChildren(children, *arguments))
        else:
            recorder.finish(ReadableSpan(*arguments))

    def __repr__(self) -> str:
        return f"RecordingSpan(name={self._name!r}, context={self._context})"


class SpanWithChildren(ReadableSpan):
    """A finished span and the finished children it kept: one item for the span processors."""

    def __init__(self, children: tuple[Child, ...], *arguments: Any) -> None:
        super().__init__(*arguments)
        self.children = children

    def flattened(self) -> list[ReadableSpan]:
        """This span and its children, each its own `ReadableSpan`."""
        spans: list[ReadableSpan] = [self]
        resource, scope = self.resource, self.instrumentation_scope
        parent = self.context
        for child in self.children:
            spans.append(_finished_child(parent, resource, scope, child))
        return spans


class SpanFlattener(SpanExporter):
    """Hands an exporter every span as its own `ReadableSpan`, children kept by their parent included."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export(flatten(spans))

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def flatten(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    flat: list[ReadableSpan] = []
    for span in spans:
        if isinstance(span, SpanWithChildren):
            flat.extend(span.flattened())
        else:
            flat.append(span)
    return flat


def finished_child(parent: SpanContext, recorder: SpanRecorder, child: Child) -> ReadableSpan:
    return _finished_child(parent, recorder.resource, recorder.scope, child)


def _finished_child(
    parent: SpanContext, resource: Resource, scope: InstrumentationScope | None, child: Child
) -> ReadableSpan:
    span_id, name, kind, attributes, start_time, end_time, status = child
    span_context = SpanContext(parent.trace_id, span_id, False, parent.trace_flags, parent.trace_state)
    return ReadableSpan(
        name, span_context, parent, resource, attributes, (), (), kind, None, status, start_time, end_time, scope
    )


def qualified_name(kind: type[BaseException]) -> str:
    """An exception class as `error.type` and `exception.type` name it: `module.Class`, builtins bare."""
    module = kind.__module__
    return kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"


def _clean(value: Any, max_length: int) -> types.AttributeValue | None:
    """The value if OpenTelemetry can carry it (sequences as tuples), else None; strings cut to `max_length`."""
    if isinstance(value, str):
        return value[:max_length]
    if isinstance(value, _SCALARS):
        return value
    if (
        isinstance(value, Sequence)
        and not isinstance(value, (bytes, bytearray))
        and all(isinstance(item, _SCALARS) for item in value)
    ):
        return tuple(item[:max_length] if isinstance(item, str) else item for item in value)
    return None


def recording_parent() -> RecordingSpan | None:
    """The current span if it is a `RecordingSpan` still recording: what children made now attach to.

    Children are only made under a recording span of a traced request: outside one
    (start-up, background work) or in a sampled-out trace there is nothing to attach
    them to.
    """
    span = trace.get_current_span()
    if type(span) is RecordingSpan and span._end_time is None:
        return span
    return None

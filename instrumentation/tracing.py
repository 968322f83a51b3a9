"""The tracing of one service process, configured from the standard OTEL_* environment.

    app.state.tracing = configure_tracing("payments", settings.data_dir)

Understood variables (the OpenTelemetry SDK's own names and meanings):

- `OTEL_SDK_DISABLED=true`: no tracing at all; the middleware passes requests through.
- `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`: the resource (the service name
  defaults to the one the service gives).
- `OTEL_TRACES_SAMPLER` (always_on, always_off, traceidratio, parentbased_always_on,
  parentbased_always_off, parentbased_traceidratio; default parentbased_always_on)
  and `OTEL_TRACES_SAMPLER_ARG` (the ratio, default 1.0).
- `OTEL_TRACES_EXPORTER`: a comma-separated list of `otlp`, `console`, `file` (this
  suite's OTLP-JSON lines under `<data_dir>/traces/`), `none`. Unset: `file`, the
  embedded default. `none` alone turns tracing off like `OTEL_SDK_DISABLED`.
- `OTEL_EXPORTER_OTLP_PROTOCOL` / `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`:
  `http/protobuf` (default) or `grpc`. The OTLP exporters read their endpoint,
  headers, certificates, compression and timeout from the environment themselves.
- `OTEL_BSP_*`: the batch span processor's queue and schedule, read by the SDK.
- `OTEL_PROPAGATORS`: see `instrumentation.propagation`.
- `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`, else `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`:
  longer string values are cut to this many characters, as the SDK's `SpanLimits` do.
  Unlike the SDK (unlimited unless set), the default is `DEFAULT_ATTRIBUTE_VALUE_LENGTH`:
  a client chooses its User-Agent, and a span must not cost what the client likes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    DEFAULT_OFF,
    DEFAULT_ON,
    ParentBasedTraceIdRatio,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from instrumentation.file_exporter import FileSpanExporter
from instrumentation.logs import configure_logging
from instrumentation.propagation import install_propagator
from instrumentation.spans import SpanFlattener, SpanRecorder

log = logging.getLogger(__name__)

SCOPE = InstrumentationScope("nova.instrumentation", "1.0.0")
EXPORTERS = ("otlp", "console", "file", "none")
DEFAULT_ATTRIBUTE_VALUE_LENGTH = 4096
_FIXED_SAMPLERS: dict[str, Sampler] = {
    "always_on": ALWAYS_ON,
    "always_off": ALWAYS_OFF,
    "parentbased_always_on": DEFAULT_ON,
    "parentbased_always_off": DEFAULT_OFF,
}
_RATIO_SAMPLERS = {"traceidratio": TraceIdRatioBased, "parentbased_traceidratio": ParentBasedTraceIdRatio}


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """What the OTEL_* environment asks of a process's tracing."""

    disabled: bool
    exporters: tuple[str, ...]
    otlp_protocol: str
    sampler: Sampler
    resource_attributes: dict[str, str]
    attribute_value_length: int = DEFAULT_ATTRIBUTE_VALUE_LENGTH

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TracingSettings:
        exporters = tuple(
            name.strip().lower() for name in env.get("OTEL_TRACES_EXPORTER", "file").split(",") if name.strip()
        )
        for name in exporters:
            if name not in EXPORTERS:
                log.warning("OTEL_TRACES_EXPORTER: unknown exporter %r ignored (known: %s)", name, ", ".join(EXPORTERS))
        known = tuple(name for name in exporters if name in EXPORTERS and name != "none")
        protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
        return cls(
            disabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true",
            exporters=known if known or exporters else ("file",),
            otlp_protocol=protocol.strip().lower() or "http/protobuf",
            sampler=sampler_from_env(env),
            resource_attributes=_resource_attributes(env),
            attribute_value_length=_attribute_value_length(env),
        )

    @property
    def enabled(self) -> bool:
        return not self.disabled and bool(self.exporters)


class TracingSetup:
    """A process's tracing for one service: the SDK provider and the recorder the hot path uses.

    When tracing is off there is no provider, `recorder` is None, and `tracer` is the
    API's no-op tracer.
    """

    def __init__(
        self,
        service_name: str,
        provider: TracerProvider | None = None,
        recorder: SpanRecorder | None = None,
        exporters: tuple[SpanExporter, ...] = (),
    ) -> None:
        self.service_name = service_name
        self.provider = provider
        self.recorder = recorder
        self.exporters = exporters

    @property
    def enabled(self) -> bool:
        return self.recorder is not None

    @property
    def tracer(self) -> trace.Tracer:
        """A tracer for ad-hoc spans, exported with the rest (the SDK's, so it costs more per span)."""
        if self.provider is None:
            return trace.NoOpTracer()
        return self.provider.get_tracer(SCOPE.name, SCOPE.version)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.provider.force_flush(timeout_millis) if self.provider is not None else True

    def shutdown(self) -> None:
        if self.provider is not None:
            self.provider.shutdown()

    def __repr__(self) -> str:
        return f"TracingSetup(service={self.service_name!r}, enabled={self.enabled})"


_configured: dict[tuple[object, ...], TracingSetup] = {}
_lock = threading.Lock()


def configure_tracing(
    service_name: str,
    data_dir: Path,
    env: Mapping[str, str] | None = None,
    *,
    exporter: SpanExporter | None = None,
) -> TracingSetup:
    """The tracing (and JSON logging) of this process for `service_name`.

    Called once per worker process by the service's app factory. Calling it again
    with the same service, data dir and environment returns the same setup, so
    building several apps in one process (tests do) makes one pipeline per
    configuration. `exporter` replaces what the environment chooses (tests pass an
    in-memory one); such a setup is the caller's own and is not shared.
    """
    env = os.environ if env is None else env
    settings = TracingSettings.from_env(env)
    install_propagator(env)
    configure_logging(service_name)
    if exporter is not None:
        return _build(service_name, data_dir, settings, exporter)
    otel_env = tuple(sorted(item for item in env.items() if item[0].startswith("OTEL_")))
    key = (service_name, str(Path(data_dir).absolute()), otel_env)
    with _lock:
        setup = _configured.get(key)
        if setup is None:
            setup = _configured[key] = _build(service_name, data_dir, settings, None)
        return setup


def sampler_from_env(env: Mapping[str, str]) -> Sampler:
    """The sampler `OTEL_TRACES_SAMPLER`/`_ARG` name, as the SDK reads them (unknown: parentbased_always_on)."""
    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if name in _FIXED_SAMPLERS:
        return _FIXED_SAMPLERS[name]
    if name in _RATIO_SAMPLERS:
        raw = env.get("OTEL_TRACES_SAMPLER_ARG", "").strip()
        try:
            ratio = float(raw) if raw else 1.0
            return _RATIO_SAMPLERS[name](ratio)
        except ValueError:
            log.warning("OTEL_TRACES_SAMPLER_ARG must be a ratio in [0, 1], got %r; using 1.0", raw)
            return _RATIO_SAMPLERS[name](1.0)
    log.warning("OTEL_TRACES_SAMPLER: unknown sampler %r; using parentbased_always_on", name)
    return DEFAULT_ON


def _build(service_name: str, data_dir: Path, settings: TracingSettings, exporter: SpanExporter | None) -> TracingSetup:
    if settings.disabled or (exporter is None and not settings.exporters):
        return TracingSetup(service_name)
    resource = Resource.create({SERVICE_NAME: service_name, **settings.resource_attributes})
    exporters = [exporter] if exporter is not None else _exporters(settings, data_dir, service_name)
    # The file exporter writes the statement spans a request's span carries itself;
    # any other exporter gets every span as the SDK would have made it.
    processors: list[SpanProcessor] = [
        BatchSpanProcessor(chosen if isinstance(chosen, FileSpanExporter) else SpanFlattener(chosen))
        for chosen in exporters
    ]
    limits = SpanLimits(max_span_attribute_length=settings.attribute_value_length)
    provider = TracerProvider(sampler=settings.sampler, resource=resource, span_limits=limits)
    for processor in processors:
        provider.add_span_processor(processor)
    # The recorder feeds these processors (the one, without a fan-out, in the usual case).
    fan_out = processors[0] if len(processors) == 1 else _FanOut(processors)
    recorder = SpanRecorder(
        settings.sampler, provider.id_generator, resource, fan_out, SCOPE, settings.attribute_value_length
    )
    return TracingSetup(str(resource.attributes[SERVICE_NAME]), provider, recorder, tuple(exporters))


class _FanOut(SpanProcessor):
    """Several processors as one, for finished spans (which is all the recorder hands over)."""

    def __init__(self, processors: list[SpanProcessor]) -> None:
        self._processors = tuple(processors)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._processors:
            processor.on_end(span)


def _exporters(settings: TracingSettings, data_dir: Path, service_name: str) -> list[SpanExporter]:
    exporters: list[SpanExporter] = []
    for name in settings.exporters:
        if name == "file":
            exporters.append(FileSpanExporter(Path(data_dir) / "traces" / f"{service_name}.jsonl"))
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "otlp":
            exporters.append(_otlp_exporter(settings.otlp_protocol))
    return exporters


def _otlp_exporter(protocol: str) -> SpanExporter:
    # Imported on demand: gRPC's import alone costs a worker a noticeable part of its start.
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol != "http/protobuf":
        log.warning("OTLP protocol %r is not available here; using http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    return HttpExporter()


def _attribute_value_length(env: Mapping[str, str]) -> int:
    """The SDK's attribute value length limit variables; a bad or missing value keeps the default."""
    for name in ("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"):
        raw = env.get(name, "").strip()
        if raw:
            if raw.isdigit() and int(raw) > 0:
                return int(raw)
            log.warning("%s must be a positive integer, got %r; using %d", name, raw, DEFAULT_ATTRIBUTE_VALUE_LENGTH)
    return DEFAULT_ATTRIBUTE_VALUE_LENGTH


def _resource_attributes(env: Mapping[str, str]) -> dict[str, str]:
    """`OTEL_RESOURCE_ATTRIBUTES` (key=value, comma-separated, percent-encoded), then `OTEL_SERVICE_NAME`."""
    attributes: dict[str, str] = {}
    for item in env.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attributes[key.strip()] = unquote(value.strip())
        elif item.strip():
            log.warning("OTEL_RESOURCE_ATTRIBUTES: %r is not key=value; ignored", item)
    if env.get("OTEL_SERVICE_NAME", "").strip():
        attributes[SERVICE_NAME] = env["OTEL_SERVICE_NAME"].strip()
    return attributes

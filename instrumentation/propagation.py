"""Which trace headers a service reads and writes: W3C Trace Context and Baggage, and Jaeger's.

Jaeger's `uber-trace-id` (and `uberctx-*` baggage) is what services still on the
retired jaeger-client send and expect; honouring it lets them share traces with
this suite. Outbound calls carry both formats. When an inbound request carries
both, the W3C header wins (its extractor runs last).

`OTEL_PROPAGATORS`, when set, chooses the list instead (names: tracecontext,
baggage, jaeger, none), as in every OpenTelemetry SDK.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, MutableMapping

from opentelemetry import propagate
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.jaeger import JaegerPropagator
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

# Extraction order: a later propagator overrides an earlier one, so W3C comes after Jaeger.
DEFAULT_PROPAGATORS = ("jaeger", "tracecontext", "baggage")
_KNOWN: dict[str, Callable[[], TextMapPropagator]] = {
    "tracecontext": TraceContextTextMapPropagator,
    "baggage": W3CBaggagePropagator,
    "jaeger": JaegerPropagator,
}


def trace_propagator(names: tuple[str, ...] = DEFAULT_PROPAGATORS) -> CompositePropagator:
    """The composite of the named propagators; unknown names are logged and skipped."""
    chosen: list[TextMapPropagator] = []
    for name in names:
        if name == "none":
            continue
        make = _KNOWN.get(name)
        if make is None:
            log.warning("OTEL_PROPAGATORS: unknown propagator %r ignored (known: %s)", name, ", ".join(_KNOWN))
            continue
        chosen.append(make())
    return CompositePropagator(chosen)


def propagator_from_env(env: Mapping[str, str]) -> CompositePropagator:
    raw = env.get("OTEL_PROPAGATORS", "").strip()
    if not raw:
        return trace_propagator()
    return trace_propagator(tuple(name.strip().lower() for name in raw.split(",") if name.strip()))


def install_propagator(env: Mapping[str, str]) -> CompositePropagator:
    """Make the environment's propagator the process's global one (what `opentelemetry.propagate` uses)."""
    propagator = propagator_from_env(env)
    propagate.set_global_textmap(propagator)
    return propagator


def inject_headers(headers: MutableMapping[str, str], context: Context | None = None) -> None:
    """Add the trace headers of `context` (the current one if None) to outbound `headers`."""
    propagate.get_global_textmap().inject(headers, context)

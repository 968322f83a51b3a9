"""Business telemetry: what happened to payments and orders, as counters and span attributes.

Outcome labels are the answer's problem `code` (a fixed set) or `settled`/`filled`, so the
series stay few. Injected faults are telemetry too: `nova_fault_active{service,fault}` says
which are on, and `nova.fault` on a request's span which ones touched it, so a game day's
graphs and traces tell injected trouble from real trouble. So does `nova_problems_total{code}`:
every problem answered, by code, so a 503 `database_unavailable` is told from an injected 503;
and `nova_database_lock_timeouts_total` which of those 503s waited on a row lock someone held
(contention: the database is up, only slow for these rows).
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace

from instrumentation.metrics import counter, gauge

PAYMENTS = counter("nova_payments", "Payment and deposit requests answered, by kind and outcome", ("kind", "outcome"))
ORDERS = counter("nova_orders", "Order requests answered, by side and outcome", ("side", "outcome"))
IDEMPOTENT_REPLAYS = counter(
    "nova_idempotent_replays", "Requests answered with the stored first response of their key", ("service",)
)
PROBLEMS = counter(
    "nova_problems",
    "Requests answered with a problem, by its stable code: tells a database outage's 503 from an injected one",
    ("code",),
)
LOCK_TIMEOUTS = counter(
    "nova_database_lock_timeouts",
    "Statements that gave up waiting for a row lock (lock_timeout): a session holding rows, not an outage",
)
FAULTS_ACTIVE = gauge(
    "nova_fault_active",
    "1 while the fault is injected into the service (admin fault API), else 0",
    ("service", "fault"),
)


def record_payment(kind: str, status: int, body: dict[str, Any], replayed: bool) -> None:
    outcome = "settled" if status < 300 else str(body.get("code", "error"))
    PAYMENTS.labels(kind, outcome).inc()
    _record("payments", outcome, replayed, {"nova.payment.id": body.get("id")})


def record_order(side: str, status: int, body: dict[str, Any], replayed: bool) -> None:
    outcome = str(body.get("status", "filled")) if status < 300 else str(body.get("code", "error"))
    ORDERS.labels(side, outcome).inc()
    _record(
        "portfolio", outcome, replayed, {"nova.order.id": body.get("id"), "nova.payment.id": body.get("payment_id")}
    )


def _record(service: str, outcome: str, replayed: bool, ids: dict[str, Any]) -> None:
    if replayed:
        IDEMPOTENT_REPLAYS.labels(service).inc()
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes({"nova.outcome": outcome, "nova.idempotent_replay": replayed})
        span.set_attributes({name: value for name, value in ids.items() if isinstance(value, str)})


def record_problem(code: str) -> None:
    PROBLEMS.labels(code).inc()


def record_lock_timeout() -> None:
    LOCK_TIMEOUTS.inc()


def record_fault(name: str) -> None:
    """Add `name` to the `nova.fault` attribute of the current span (comma-separated when several touched it)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    known = getattr(span, "attributes", None) or {}
    touched = known.get("nova.fault")
    if isinstance(touched, str) and touched:
        if name in touched.split(","):
            return
        name = f"{touched},{name}"
    span.set_attribute("nova.fault", name)

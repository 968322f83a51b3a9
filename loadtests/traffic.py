"""What load-test traffic looks like: the user mix, and every request as it goes on the wire.

* Endpoints are named `METHOD /route/template` (`GET /v1/accounts/{id}`, the templates of
  DESIGN.md): the name in Locust's statistics and in `samples.csv`. A write sent again is
  reported to Locust as `<endpoint> [retry]`, so first attempts and retries are counted apart.
* Every request carries a W3C `traceparent` and `baggage: synthetic_request=true`, so the
  services' traces and metrics can tell load-test traffic from customers'.
* Writes carry an `Idempotency-Key` and are sent again, with the same key and body, when the
  answer is a 5xx or no answer at all: the payments API replays the first outcome, so a retry
  never pays twice. Other answers (a 422 `insufficient_funds`, a 429) are outcomes, not
  failures; reads are never retried.

No Locust import here (it patches the process with gevent), so these rules are tested as
plain functions; `users.py` applies them.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NamedTuple
from urllib.parse import quote

from loadtests.samples import CONNECTION_FAILED

ADMIN_TOKEN_VARIABLE = "NOVA_ADMIN_TOKEN"
RETRY_SUFFIX = " [retry]"
SYNTHETIC_BAGGAGE = "synthetic_request=true"

# How many of each user class a mix starts, by class name (Locust's `weight`).
MIXES: dict[str, dict[str, int]] = {
    "trading": {"PayingCustomer": 3, "Trader": 2, "PortfolioViewer": 5},
    "payments": {"PayingCustomer": 1},
    "read_heavy": {"PortfolioViewer": 8, "Trader": 1, "PayingCustomer": 1},
}


class Endpoint(NamedTuple):
    """One call of the APIs: which service answers it, its method and its route template."""

    service: str  # "payments" or "portfolio"
    method: str
    route: str  # "/v1/accounts/{id}"

    @property
    def name(self) -> str:
        """`POST /v1/payments`: how Locust's statistics and the samples name it."""
        return f"{self.method} {self.route}"

    @property
    def is_write(self) -> bool:
        return self.method not in ("GET", "HEAD")

    def path(self, **params: str) -> str:
        """The route with its parameters filled in (each one percent-encoded as one path segment)."""
        return self.route.format(**{key: quote(value, safe="") for key, value in params.items()})


CREATE_CUSTOMER = Endpoint("payments", "POST", "/v1/customers")
OPEN_ACCOUNT = Endpoint("payments", "POST", "/v1/accounts")
DEPOSIT = Endpoint("payments", "POST", "/v1/deposits")
PAY = Endpoint("payments", "POST", "/v1/payments")
PAYMENT = Endpoint("payments", "GET", "/v1/payments/{id}")
ACCOUNT = Endpoint("payments", "GET", "/v1/accounts/{id}")
ENTRIES = Endpoint("payments", "GET", "/v1/accounts/{id}/entries")
QUOTE = Endpoint("portfolio", "GET", "/v1/quotes/{symbol}")
PLACE_ORDER = Endpoint("portfolio", "POST", "/v1/orders")
PORTFOLIO = Endpoint("portfolio", "GET", "/v1/portfolios/{account_id}")


def request_name(endpoint: str, attempt: int) -> str:
    """The name Locust reports an attempt under: the endpoint, or `<endpoint> [retry]` from the second on."""
    if attempt < 1:
        raise ValueError(f"attempts count from 1, got {attempt}")
    return endpoint if attempt == 1 else endpoint + RETRY_SUFFIX


def endpoint_of(name: str) -> str:
    """The endpoint a Locust request name stands for (`request_name` undone)."""
    return name.removesuffix(RETRY_SUFFIX)


def new_trace_id(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """32 lowercase hex digits, never all zeros (W3C Trace Context calls that invalid)."""
    while True:
        trace_id = random_bytes(16).hex()
        if int(trace_id, 16):
            return trace_id


def new_traceparent(trace_id: str | None = None, random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """`00-<trace id>-<parent id>-01`: version 00, a fresh 8-byte parent id, sampled.

    Attempts of one write share `trace_id`, so a retried payment is one trace with a span per
    attempt; every other request starts its own trace.
    """
    while True:
        span_id = random_bytes(8).hex()
        if int(span_id, 16):
            return f"00-{trace_id or new_trace_id(random_bytes)}-{span_id}-01"


def trace_headers(trace_id: str | None = None) -> dict[str, str]:
    """The headers that make a request traceable and marked as synthetic."""
    return {"traceparent": new_traceparent(trace_id), "baggage": SYNTHETIC_BAGGAGE}


def should_retry(status: int) -> bool:
    """A write is sent again after a 5xx or no answer (`CONNECTION_FAILED`); anything else is its outcome."""
    return status == CONNECTION_FAILED or status >= 500


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A `Retry-After` header in seconds (delta-seconds or an HTTP date); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `retries` more attempts after the first, with short exponential backoff.

    The pause before retry n is `first_backoff * 2**(n-1)`, scaled by a jitter factor in
    [0.5, 1.0] so that users failed by the same blip do not come back in step; a
    `Retry-After` from the service lengthens it, up to `max_retry_after` (a load generator
    that waited longer would stop offering the load it was asked for).
    """

    retries: int = 3
    first_backoff: float = 0.1
    max_retry_after: float = 2.0

    def attempts(self) -> range:
        return range(1, self.retries + 2)

    def pause(self, retry: int, retry_after: str | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number `retry` (1 for the second attempt)."""
        if not 1 <= retry <= self.retries:
            raise ValueError(f"retry {retry} is outside 1..{self.retries}")
        jitter = 0.5 + 0.5 * (rng.random() if rng is not None else random.random())
        backoff = self.first_backoff * 2.0 ** (retry - 1) * jitter
        asked = retry_after_seconds(retry_after)
        return backoff if asked is None else max(backoff, min(asked, self.max_retry_after))


def admin_token(environ: Mapping[str, str]) -> str:
    """The operator's token, from the environment only (a command-line argument would show in `ps`)."""
    token = environ.get(ADMIN_TOKEN_VARIABLE, "").strip()
    if not token:
        raise ValueError(f"{ADMIN_TOKEN_VARIABLE} is not set: the load test signs its customers up as the admin")
    return token


def mix_weights(mix: str) -> dict[str, int]:
    """The user classes of a named mix and their weights."""
    try:
        return dict(MIXES[mix])
    except KeyError:
        raise ValueError(f"unknown mix {mix!r}: choose one of {', '.join(MIXES)}") from None

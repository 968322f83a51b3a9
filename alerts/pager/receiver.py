"""The pager as a service: Alertmanager's webhook in, pages out.

`Pager.receive` is the use case (parse, decide what is news, build the page, deliver,
record); `PagerServer` is the thin HTTP entry point Alertmanager's `webhook_configs`
points at: POST /alerts, GET /healthz, GET /pages. Errors are RFC 9457 problem+json.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alerts.pager.dedup import PageLedger
from alerts.pager.delivery import Destination
from alerts.pager.errors import DeliveryError, PayloadError
from alerts.pager.page import PageSources, build_page, page_json
from alerts.pager.webhook import parse_notification

log = logging.getLogger("nova.pager")

MAX_BODY_BYTES = 4 << 20
RECENT_PAGES = 50


@dataclass(frozen=True)
class Outcome:
    event: str  # "trigger", "resolve", or "" when nothing was new
    reason: str
    dedup_key: str = ""
    delivered: tuple[str, ...] = ()
    failed: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "event": self.event or None,
            "reason": self.reason,
            "dedup_key": self.dedup_key or None,
            "delivered": list(self.delivered),
            "failed": self.failed,
        }


class Pager:
    def __init__(
        self,
        sources: PageSources,
        destinations: Sequence[Destination],
        ledger: PageLedger,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sources = sources
        self.destinations = tuple(destinations)
        self.ledger = ledger
        self.clock = clock
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_PAGES)
        # One notification at a time: two copies of one arriving together must not both page,
        # and pages of one group must leave in the order they were decided.
        self._lock = threading.Lock()

    def receive(self, body: bytes) -> Outcome:
        """Handle one webhook body; PayloadError when it is not an Alertmanager v4 notification."""
        notification = parse_notification(body)
        names = tuple(destination.name for destination in self.destinations)
        with self._lock:
            decision = self.ledger.decide(notification, names)
            if not decision.event:
                log.info("%s %s: %s, not paging", notification.status, notification.name, decision.reason)
                return Outcome("", decision.reason)
            page = build_page(notification, self.sources, self.clock())
            delivered, failed = [], {}
            for destination in self.destinations:
                if destination.name not in decision.destinations:
                    continue
                try:
                    destination.deliver(page)
                    delivered.append(destination.name)
                except DeliveryError as exc:
                    failed[destination.name] = str(exc)
                    log.warning("delivery failed: %s", exc)
            self.ledger.delivered(notification, decision, set(failed))
            self.recent.append(page_json(page))
        log.info(
            "%s %s (%s, group %s) -> %s",
            page.event,
            notification.name,
            decision.reason,
            page.dedup_key[:12],
            ", ".join(delivered) or "nowhere",
        )
        return Outcome(page.event, decision.reason, page.dedup_key, tuple(delivered), failed)

    def recent_pages(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.recent)


class PagerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], pager: Pager) -> None:
        self.pager = pager
        super().__init__(address, _Handler)

    def serve_until_signalled(self) -> None:
        """Serve until SIGTERM (or Ctrl-C, which raises KeyboardInterrupt to the caller)."""

        def stop(_signum: int, _frame: object) -> None:
            # shutdown() waits for serve_forever, which runs on this very thread: ask from another.
            threading.Thread(target=self.shutdown, daemon=True).start()

        previous = signal.signal(signal.SIGTERM, stop)
        try:
            self.serve_forever(poll_interval=0.2)
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: PagerServer
    server_version = "nova-pager"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._json(HTTPStatus.OK, {"status": "ok"})
        elif path == "/pages":
            self._json(HTTPStatus.OK, {"pages": self.server.pager.recent_pages()})
        elif path == "/alerts":
            self._problem(HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed", "POST Alertmanager notifications here")
        else:
            self._problem(
                HTTPStatus.NOT_FOUND, "not_found", f"no such path {path!r}: POST /alerts, GET /healthz, /pages"
            )

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != "/alerts":
            self._drain()
            self._problem(HTTPStatus.NOT_FOUND, "not_found", f"no such path {path!r}: POST /alerts")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._problem(HTTPStatus.LENGTH_REQUIRED, "length_required", "send a Content-Length", close=True)
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self._problem(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body_too_large", f"at most {MAX_BODY_BYTES} bytes", close=True
            )
            return
        body = self.rfile.read(length)
        try:
            outcome = self.server.pager.receive(body)
        except PayloadError as exc:
            self._problem(HTTPStatus.BAD_REQUEST, exc.code, str(exc))
            return
        except Exception as exc:  # the receiver stays up for the next notification, and says why
            log.exception("cannot handle a notification")
            self._problem(HTTPStatus.INTERNAL_SERVER_ERROR, "internal_error", type(exc).__name__)
            return
        if outcome.failed:
            # Alertmanager retries a 5xx; the retry goes only to the destinations still owing the page.
            self._problem(
                HTTPStatus.SERVICE_UNAVAILABLE,
                "delivery_failed",
                "; ".join(outcome.failed.values()),
                extra=outcome.as_json(),
            )
            return
        self._json(HTTPStatus.OK, outcome.as_json())

    def log_message(self, format: str, *args: Any) -> None:
        # The request line only: headers (Authorization) are never logged.
        log.debug("%s %s", self.address_string(), format % args)

    def _drain(self) -> None:
        try:
            length = min(int(self.headers.get("Content-Length", "0")), MAX_BODY_BYTES)
        except ValueError:
            return
        self.rfile.read(max(length, 0))

    def _json(self, status: HTTPStatus, body: dict[str, Any], content_type: str = "application/json") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _problem(
        self, status: HTTPStatus, code: str, detail: str, close: bool = False, extra: dict[str, Any] | None = None
    ) -> None:
        if close:
            self.close_connection = True
        body = {
            "type": f"https://nova.dev/problems/{code.replace('_', '-')}",
            "title": status.phrase,
            "status": int(status),
            "detail": detail,
            "code": code,
            **(extra or {}),
        }
        self._json(status, body, "application/problem+json")

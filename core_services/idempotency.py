"""Bounded waiting for an in-flight request with the same idempotency key.

A duplicate that arrives while the first request is still running waits briefly for
it, then gets the first response replayed; if the first is still running after the
wait, the duplicate gets 409 `request_in_progress` instead of queueing behind it.
This registry covers one process; across processes the database's own locks do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from core_services.database import WouldBlock, must_not_block
from core_services.problems import Problem

IN_FLIGHT_WAIT_SECONDS = 2.0


class InFlightKeys:
    def __init__(self, wait_seconds: float = IN_FLIGHT_WAIT_SECONDS) -> None:
        self._wait_seconds = wait_seconds
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], threading.Event] = {}

    @contextmanager
    def claim(self, scope: str, key: str) -> Iterator[None]:
        ident = (scope, key)
        while True:
            with self._lock:
                running = self._running.get(ident)
                if running is None:
                    done = self._running[ident] = threading.Event()
                    break
            if must_not_block():
                raise WouldBlock()  # waited for off the event loop
            if not running.wait(self._wait_seconds):
                raise Problem("request_in_progress", headers={"Retry-After": "1"})
        try:
            yield
        finally:
            with self._lock:
                del self._running[ident]
            done.set()


def check_idempotency_key(key: str | None) -> str:
    if key is None:
        raise Problem("idempotency_key_missing")
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise Problem("validation_error", "Idempotency-Key must be 1 to 255 printable ASCII characters")
    return key

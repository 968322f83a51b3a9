"""A deadline on each PostgreSQL transaction's socket, so a black-holed database link is a 503, not a hang.

libpq bounds connecting (`connect_timeout`) and the server bounds lock waits (`lock_timeout`),
but nothing bounds a query on an open connection whose packets vanish (a half-open link, a
stalled network path): psycopg waits for an answer for ever, and so does the worker thread.
Here one thread per process watches the transactions that are open; one that outlives its
deadline has its socket shut down, so psycopg fails at once with "server closed the
connection", SQLAlchemy invalidates that connection, and the caller answers 503
`database_unavailable`. The transaction never committed, so nothing is half-written.
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Longer than any healthy write (lock waits end at 2 s), short enough that a client is answered.
TRANSACTION_DEADLINE_SECONDS = 5.0
# Reads may scan (the ledger's verification); their bound only keeps a worker's threads from hanging for ever.
READ_DEADLINE_SECONDS = 30.0
_TICK_SECONDS = 0.25


class SocketDeadlines:
    """Shuts down the socket of any guarded block that runs past its deadline."""

    def __init__(self, seconds: float = TRANSACTION_DEADLINE_SECONDS) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._open: dict[int, tuple[float, int]] = {}  # token -> (deadline, socket fd)
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def guard(self, fd: int | None, seconds: float | None = None) -> Iterator[None]:
        """Bound the block to `seconds` (default: this watcher's; no bound when there is no socket to watch)."""
        if fd is None or fd < 0:
            yield
            return
        token = next(self._tokens)
        with self._lock:
            self._open[token] = (time.monotonic() + (self.seconds if seconds is None else seconds), fd)
            if self._thread is None:  # started lazily: in the worker process, not the one that imported this
                self._thread = threading.Thread(target=self._watch, name="db-deadlines", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._open.pop(token, None)

    def _watch(self) -> None:
        while True:
            time.sleep(_TICK_SECONDS)
            now = time.monotonic()
            with self._lock:  # held while shutting down, so a block that has ended is never touched
                for token, (deadline, fd) in list(self._open.items()):
                    if deadline <= now:
                        del self._open[token]
                        _shut_down(fd)


def _shut_down(fd: int) -> None:
    """Shut the socket down under its owner (the owner still closes the descriptor)."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=fd)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.detach()

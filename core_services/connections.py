"""What a client may cost a worker before it is served: the HTTP connection's limits.

uvicorn's httptools protocol, with three bounds it lacks (DESIGN.md, "Hardening"):

- A request head (request line and headers) over `MAX_HEAD_BYTES` is answered 431 and
  the connection closed. The parser grows a header value by copying it for every
  chunk, on the event loop, so an endless header trickled in 1 MiB chunks would stall
  every request of the worker; it is cut off before the parser sees byte 16,385.
- A request must arrive whole within `READ_TIMEOUT_SECONDS` of its first byte (or of
  the connection opening): a client trickling a request, or connecting and saying
  nothing, is closed. Idle keep-alive connections close after the same time (uvicorn's
  `timeout_keep_alive`).
- A worker holds at most `max_connections`: at the cap, a new connection closes the
  one that has waited longest without a request in progress, so probes and paying
  customers get through while idle or trickling sockets pile up.

    python -m core_services.server payments --port 8001   # serves with `GuardedConfig`
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
from asyncio import TimerHandle
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from core_services.problems import PROBLEM_MEDIA_TYPE, Problem

MAX_HEAD_BYTES = 16 * 1024
READ_TIMEOUT_SECONDS = 10.0
# The cap leaves half of the descriptors a worker may open for its database, files and calls out.
MAX_CONNECTIONS_CEILING = 4096


def default_max_connections() -> int:
    """Half the worker's descriptor limit, at most `MAX_CONNECTIONS_CEILING`."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS_CEILING
    return max(16, min(MAX_CONNECTIONS_CEILING, soft // 2))


class GuardedConfig(uvicorn.Config):
    """uvicorn's configuration, serving with `GuardedHttpProtocol` and carrying its connection cap."""

    def __init__(
        self, app: Any, *, max_connections: int, read_timeout_seconds: float = READ_TIMEOUT_SECONDS, **kwargs: Any
    ) -> None:
        super().__init__(app, http=GuardedHttpProtocol, timeout_keep_alive=math.ceil(read_timeout_seconds), **kwargs)
        self.max_connections = max_connections
        self.read_timeout_seconds = read_timeout_seconds


def _head_too_large_response() -> bytes:
    body = json.dumps(
        Problem("request_header_too_large", f"request line and headers are limited to {MAX_HEAD_BYTES} bytes").body()
    ).encode()
    head = (f"content-type: {PROBLEM_MEDIA_TYPE}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
    return STATUS_LINE[431] + head + body


class GuardedHttpProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection with a bounded head, a read deadline, and a place under the worker's cap."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_connections: int = getattr(config, "max_connections", None) or default_max_connections()
        self.read_timeout_seconds: float = getattr(config, "read_timeout_seconds", READ_TIMEOUT_SECONDS)
        self._head_pending = True
        self._head_bytes = 0
        self._read_deadline: TimerHandle | None = None
        self._idle_since = self.loop.time()

    # -- asyncio.Protocol ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()
        if len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, never more than the head's allowance while a head is being read."""
        while data:
            if self._head_pending:
                room = MAX_HEAD_BYTES - self._head_bytes
                piece, data = data[:room], data[room:]
                self._head_bytes += len(piece)
            else:
                piece, data = data, b""
            super().data_received(piece)
            if self.transport.is_closing():
                return
            if self._head_pending and self._head_bytes >= MAX_HEAD_BYTES:
                self.transport.write(_HEAD_TOO_LARGE)
                self.transport.close()
                return

    # -- parser callbacks ---------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._read_deadline is None:
            self._arm_read_deadline()

    def on_headers_complete(self) -> None:
        self._head_pending = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_pending = True
        self._head_bytes = 0
        self._disarm_read_deadline()

    def on_response_complete(self) -> None:
        self._idle_since = self.loop.time()
        super().on_response_complete()

    # -- limits -------------------------------------------------------------------------------------

    @property
    def is_idle(self) -> bool:
        """Waiting for a request (or for the rest of its head), with nothing of it being served."""
        return self._head_pending and (self.cycle is None or self.cycle.response_complete) and not self.pipeline

    def _arm_read_deadline(self) -> None:
        self._read_deadline = self.loop.call_later(self.read_timeout_seconds, self._read_timed_out)

    def _disarm_read_deadline(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def _make_room(self) -> None:
        """Close the connection that has waited longest with no request in progress; this one if none has."""
        waiting = [
            other
            for other in self.connections
            if other is not self and isinstance(other, GuardedHttpProtocol) and other.is_idle
        ]
        victim = min(waiting, key=lambda other: other._idle_since) if waiting else self
        victim.transport.close()


_HEAD_TOO_LARGE = _head_too_large_response()

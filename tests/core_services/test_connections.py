"""The HTTP connection's limits, against a real uvicorn server on a loopback port (no app logic involved)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from core_services.connections import MAX_HEAD_BYTES, GuardedConfig

READ_TIMEOUT = 0.5


async def hello(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"hello"})


@contextmanager
def serving(max_connections: int = 64) -> Iterator[tuple[str, uvicorn.Server]]:
    config = GuardedConfig(
        hello, host="127.0.0.1", port=0, max_connections=max_connections, read_timeout_seconds=READ_TIMEOUT
    )
    config.log_level = "warning"
    server = uvicorn.Server(config)
    sock = config.bind_socket()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}", server
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def server() -> Iterator[tuple[str, uvicorn.Server]]:
    with serving() as running:
        yield running


def connect(address: str) -> socket.socket:
    host, port = address.split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def read_until_closed(conn: socket.socket, timeout: float = 5) -> bytes:
    conn.settimeout(timeout)
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received


def head_with(agent_bytes: int) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: " + b"a" * agent_bytes + b"\r\n\r\n"


def test_a_head_over_16_kib_is_431_problem_json_and_the_connection_closed(server: tuple[str, uvicorn.Server]) -> None:
    with closing(connect(server[0])) as conn:
        conn.sendall(head_with(MAX_HEAD_BYTES))
        answer = read_until_closed(conn)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"content-type: application/problem+json" in answer
    assert b'"code": "request_header_too_large"' in answer


def test_a_head_just_under_16_kib_is_served(server: tuple[str, uvicorn.Server]) -> None:
    request = head_with(MAX_HEAD_BYTES - 100)
    assert len(request) < MAX_HEAD_BYTES
    with closing(connect(server[0])) as conn:
        conn.sendall(request)
        assert conn.recv(65536).startswith(b"HTTP/1.1 200 ")


def test_a_header_trickled_without_end_is_cut_at_16_kib_not_read_on(server: tuple[str, uvicorn.Server]) -> None:
    with closing(connect(server[0])) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nX-Endless: ")
        sent = 0
        with pytest.raises(OSError):  # the server answered and closed: the next sends are refused
            while sent < 1 << 20:
                conn.sendall(b"b" * 4096)
                sent += 4096
                time.sleep(0.001)
        assert sent < 1 << 20


def test_a_request_trickled_past_the_read_timeout_is_closed(server: tuple[str, uvicorn.Server]) -> None:
    with closing(connect(server[0])) as conn:
        started = time.monotonic()
        conn.sendall(b"GET / HTTP/1.1\r\n")
        with pytest.raises(OSError):
            for _ in range(100):  # one header byte every 50 ms: never idle, never done
                conn.sendall(b"X")
                time.sleep(0.05)
        assert READ_TIMEOUT <= time.monotonic() - started < READ_TIMEOUT + 2


@pytest.mark.parametrize("before", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], ids=["silent", "kept-alive"])
def test_a_connection_that_says_nothing_is_closed_after_the_timeout(
    server: tuple[str, uvicorn.Server], before: bytes
) -> None:
    with closing(connect(server[0])) as conn:
        conn.sendall(before)
        started = time.monotonic()
        read_until_closed(conn)
        assert time.monotonic() - started < READ_TIMEOUT + 1.5


def test_at_the_connection_cap_idle_sockets_make_room_and_a_new_client_is_served() -> None:
    with serving(max_connections=8) as (address, server):
        idle = [connect(address) for _ in range(30)]
        try:
            response = httpx.get(f"http://{address}/healthz", timeout=2)
            assert response.status_code == 200
            assert len(server.server_state.connections) <= 8
        finally:
            for conn in idle:
                conn.close()


def test_at_the_cap_the_connection_waiting_longest_is_closed_first() -> None:
    with serving(max_connections=2) as (address, _server):
        oldest, newer = connect(address), connect(address)
        time.sleep(0.05)
        third = connect(address)
        with closing(oldest), closing(newer), closing(third):
            assert read_until_closed(oldest, timeout=2) == b""
            third.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert third.recv(65536).startswith(b"HTTP/1.1 200 ")

"""SocketDeadlines: a guarded block that overruns loses its socket; one that ends in time keeps it."""

from __future__ import annotations

import socket
import time

from core_services.db_deadline import SocketDeadlines


def test_a_block_past_its_deadline_has_its_socket_shut_down() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        began = time.monotonic()
        with SocketDeadlines(seconds=0.3).guard(ours.fileno()):
            assert ours.recv(10) == b""  # the peer never answers; the shutdown ends the wait
        assert 0.25 <= time.monotonic() - began < 2.0


def test_a_block_that_ends_in_time_keeps_its_socket() -> None:
    ours, theirs = socket.socketpair()
    deadlines = SocketDeadlines(seconds=0.3)
    with ours, theirs:
        with deadlines.guard(ours.fileno()):
            theirs.sendall(b"ok")
            assert ours.recv(10) == b"ok"
        time.sleep(0.6)
        theirs.sendall(b"still")
        assert ours.recv(10) == b"still"


def test_a_block_may_carry_its_own_longer_deadline() -> None:
    ours, theirs = socket.socketpair()
    deadlines = SocketDeadlines(seconds=0.2)
    with ours, theirs:
        began = time.monotonic()
        with deadlines.guard(ours.fileno(), seconds=0.8):
            assert ours.recv(10) == b""
        assert time.monotonic() - began >= 0.75

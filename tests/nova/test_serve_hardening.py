"""`nova serve` under the outside attacks of issue 15: real processes, real sockets, no login."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from nova.serve import Platform
from tests.nova.conftest import RunPlatform, admin_client, worker_pids
from tests.nova.test_serve import open_funded_accounts

ONE_MIB = 1 << 20


def trickle_endless_headers(address: tuple[str, int], stop: threading.Event) -> None:
    """One attacker socket: an endless header in 1 MiB chunks, reconnecting whenever the server hangs up."""
    chunk = b"a" * ONE_MIB
    while not stop.is_set():
        try:
            with socket.create_connection(address, timeout=5) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Endless: ")
                while not stop.is_set():
                    conn.sendall(chunk)
        except OSError:
            stop.wait(0.01)


def test_four_sockets_trickling_headers_do_not_stall_payments(run_platform: RunPlatform) -> None:
    with run_platform(workers=1) as platform:
        (token, source), (_, target) = open_funded_accounts(platform, 2)
        stop = threading.Event()
        address = ("127.0.0.1", platform.options.payments_port)
        attackers = [threading.Thread(target=trickle_endless_headers, args=(address, stop)) for _ in range(4)]
        for attacker in attackers:
            attacker.start()
        try:
            time.sleep(0.5)  # the attack is under way before the first payment
            latencies = []
            with httpx.Client(base_url=platform.options.url("payments"), timeout=10) as http:
                for _ in range(30):
                    started = time.perf_counter()
                    response = http.post(
                        "/v1/payments",
                        json={"from_account": source, "to_account": target, "amount_minor": 100, "currency": "USD"},
                        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
                    )
                    latencies.append(time.perf_counter() - started)
                    assert response.status_code == 201, response.text
                    assert response.json()["status"] == "settled"
        finally:
            stop.set()
            for attacker in attackers:
                attacker.join(10)
        assert statistics.median(latencies) < 0.2, latencies


def service_rss_bytes(platform: Platform, service: str) -> int:
    """Resident memory of a service: its supervisor and every worker."""
    supervisor = platform.processes[service].pid
    pids = {supervisor, *worker_pids(supervisor)}
    return sum(_rss(pid) for pid in pids)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def trace_bytes(platform: Platform) -> int:
    traces = platform.options.data_dir / "traces"
    return sum(path.stat().st_size for path in traces.glob("*.jsonl*")) if traces.exists() else 0


def test_a_hundred_one_mib_user_agents_grow_neither_traces_nor_memory(
    run_platform: RunPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # spans reach the file within a moment
    with run_platform(workers=1) as platform:
        url = platform.options.url("payments") + "/healthz"
        with httpx.Client(timeout=10) as http:
            for _ in range(20):  # warm both workers' tracing before measuring
                http.get(url)
        time.sleep(0.5)  # the warm-up's spans are on disk
        traces_before, memory_before = trace_bytes(platform), service_rss_bytes(platform, "payments")
        statuses = []
        for _ in range(100):
            with httpx.Client(timeout=10) as http:
                try:
                    statuses.append(http.get(url, headers={"User-Agent": "u" * ONE_MIB}).status_code)
                except httpx.TransportError:  # the server may hang up while the rest is still being sent
                    statuses.append(0)
        time.sleep(0.5)
        grown_traces = trace_bytes(platform) - traces_before
        grown_memory = service_rss_bytes(platform, "payments") - memory_before
        assert set(statuses) <= {431, 0} and statuses.count(431) >= 50, statuses
        assert grown_traces <= 5 * ONE_MIB, grown_traces
        assert grown_memory <= 150 * ONE_MIB, grown_memory
        assert httpx.get(url, timeout=5).status_code == 200


def pay_continuously(
    url: str, token: str, source: str, target: str, stop: threading.Event, answers: list[tuple[float, int]]
) -> None:
    """One payer on a kept-alive connection: a fresh payment as soon as the last is answered."""
    with httpx.Client(base_url=url, timeout=10) as http:
        while not stop.is_set():
            try:
                response = http.post(
                    "/v1/payments",
                    json={"from_account": source, "to_account": target, "amount_minor": 1, "currency": "USD"},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())},
                )
            except httpx.TransportError:
                continue
            answers.append((time.monotonic(), response.status_code))


def writer_slot_holder(lock_file: Path) -> int | None:
    """The PID holding SQLite's writer slot (the flock on `<db>.writer-lock`), from /proc/locks."""
    inode = lock_file.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "FLOCK" and fields[3] == "WRITE" and fields[5].rsplit(":", 1)[-1] == str(inode):
            return int(fields[4])
    return None


def freeze_a_writer(workers: set[int], lock_file: Path) -> int:
    """SIGSTOP a worker while it holds the writer slot: the worst moment to freeze (what the issue saw)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        holder = writer_slot_holder(lock_file)
        if holder in workers:
            os.kill(holder, signal.SIGSTOP)
            if writer_slot_holder(lock_file) == holder:
                return holder
            os.kill(holder, signal.SIGCONT)  # it let go just before: try again
    raise AssertionError("no worker took the writer slot within 10 s")


def test_a_sqlite_worker_frozen_holding_the_writer_slot_stalls_neither_readiness_nor_payments(
    run_platform: RunPlatform,
) -> None:
    with run_platform(workers=2) as platform:
        accounts = open_funded_accounts(platform, 6)
        url = platform.options.url("payments")
        workers = worker_pids(platform.processes["payments"].pid)
        lock_file = platform.options.data_dir / "payments.db.writer-lock"
        stop = threading.Event()
        answers: list[tuple[float, int]] = []
        payers = [
            threading.Thread(target=pay_continuously, args=(url, token, source, accounts[i - 1][1], stop, answers))
            for i, (token, source) in enumerate(accounts)
        ]
        for payer in payers:
            payer.start()
        windows = []
        probe = httpx.Client(base_url=url, timeout=5)
        frozen = 0
        try:
            for _ in range(4):
                time.sleep(0.5)
                frozen = freeze_a_writer(workers, lock_file)
                start = time.monotonic()
                time.sleep(0.5)
                asked = time.monotonic()
                ready = probe.get("/readyz", headers={"Connection": "close"})  # a new connection each time
                ready_seconds = time.monotonic() - asked
                time.sleep(max(0.0, start + 2.5 - time.monotonic()))
                os.kill(frozen, signal.SIGCONT)
                windows.append((start, time.monotonic(), ready.status_code, ready_seconds))
        finally:
            if frozen:
                os.kill(frozen, signal.SIGCONT)
            probe.close()
            stop.set()
            for payer in payers:
                payer.join(15)
        for start, end, ready_status, ready_seconds in windows:
            assert (ready_status, ready_seconds < 1) == (200, True), windows
            assert any(start < at < end for at, _status in answers), (start, end)
        assert {status for _at, status in answers} <= {201, 503}
        with admin_client(platform) as admin:
            assert admin.get("/v1/ledger/verify").json()["balanced"] is True

"""`nova serve` under the outside attacks of issue 15: real processes, real sockets, no login."""

from __future__ import annotations

import socket
import statistics
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from nova.serve import Platform
from tests.nova.conftest import RunPlatform, worker_pids
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

"""`nova serve` as operators meet it: real processes, real signals, real databases."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from nova.serve import Platform
from tests.conftest import ADMIN_TOKEN
from tests.nova.conftest import RunPlatform, admin_client, free_port, worker_pids

PAYERS = 8
THREADS = 12
PAYMENTS_PER_THREAD = 60


def open_funded_accounts(platform: Platform, count: int) -> list[tuple[str, str]]:
    """(token, account id) pairs, each account holding 1,000,000.00."""
    accounts = []
    with admin_client(platform) as admin:
        for i in range(count):
            customer = admin.post("/v1/customers", json={"name": f"payer {i}"}).json()
            token = customer["token"]
            account = admin.post(
                "/v1/accounts", json={"currency": "USD"}, headers={"Authorization": f"Bearer {token}"}
            ).json()
            admin.post(
                "/v1/deposits",
                json={"account_id": account["id"], "amount_minor": 100_000_000},
                headers={"Idempotency-Key": f"fund-{account['id']}"},
            ).raise_for_status()
            accounts.append((token, account["id"]))
    return accounts


def pay_until_acknowledged(http: httpx.Client, token: str, body: dict[str, object]) -> str:
    """What a well-behaved client does: retry with the same key until the server answers."""
    key = str(uuid.uuid4())
    for _ in range(200):  # a generous budget: a loaded CI machine restarts workers slowly
        try:
            response = http.post(
                "/v1/payments", json=body, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key}
            )
        except httpx.TransportError:
            time.sleep(0.05)
            continue
        if response.status_code == 201:
            return str(response.json()["id"])
        if response.status_code not in (409, 429, 503):
            raise AssertionError(f"unexpected {response.status_code}: {response.text}")
        time.sleep(0.05)
    raise AssertionError("payment never acknowledged")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sigkilled_payments_worker_loses_no_acknowledged_payment(
    backend: str, run_platform: RunPlatform, request: pytest.FixtureRequest
) -> None:
    payments_db = request.getfixturevalue("postgres_database") if backend == "postgresql" else None
    with run_platform(workers=2, payments_db=payments_db) as platform:
        accounts = open_funded_accounts(platform, PAYERS)
        supervisor = platform.processes["payments"].pid
        workers_before = worker_pids(supervisor)
        acknowledged: list[str] = []
        lock = threading.Lock()

        def customer(index: int) -> None:
            token, source = accounts[index % PAYERS]
            target = accounts[(index + 1) % PAYERS][1]
            body = {"from_account": source, "to_account": target, "amount_minor": 100, "currency": "USD"}
            with httpx.Client(base_url=platform.options.url("payments"), timeout=10.0) as http:
                for _ in range(PAYMENTS_PER_THREAD):
                    payment_id = pay_until_acknowledged(http, token, body)
                    with lock:
                        acknowledged.append(payment_id)

        threads = [threading.Thread(target=customer, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        while len(acknowledged) < THREADS * PAYMENTS_PER_THREAD // 4:
            time.sleep(0.01)
        victim = sorted(workers_before)[0]
        os.kill(victim, signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=120)

        with admin_client(platform) as admin:
            verification = admin.get("/v1/ledger/verify").json()
            missing = [pid for pid in acknowledged if admin.get(f"/v1/payments/{pid}").status_code != 200]
        assert len(acknowledged) == THREADS * PAYMENTS_PER_THREAD
        assert missing == []
        assert verification["balanced"] is True
        # exactly once: every deposit and acknowledged payment, and not one retry more
        assert verification["payments"] == PAYERS + len(set(acknowledged))
        replaced = workers_once_replaced(supervisor, 2)
        assert victim not in replaced
        assert len(replaced) == 2


def test_killed_worker_is_replaced_while_the_other_keeps_serving(run_platform: RunPlatform) -> None:
    with run_platform(workers=2) as platform:
        supervisor = platform.processes["payments"].pid
        victim, survivor = sorted(worker_pids(supervisor))
        os.kill(victim, signal.SIGKILL)
        with httpx.Client(base_url=platform.options.url("payments"), timeout=2.0) as http:
            answers = [http.get("/healthz").status_code for _ in range(20)]
        replaced = workers_once_replaced(supervisor, 2)
        assert answers == [200] * 20
        assert survivor in replaced
        assert len(replaced - {survivor}) == 1


def workers_once_replaced(supervisor: int, count: int, grace_seconds: float = 20) -> set[int]:
    """The supervisor's workers once it has `count` again (it checks on them twice a second)."""
    deadline = time.monotonic() + grace_seconds
    while len(workers := worker_pids(supervisor)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return workers


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found.add(child)
            pending.append(child)
    return found


def still_running(pids: set[int], grace_seconds: float) -> list[int]:
    """Those of `pids` alive after a grace period (multiprocessing's resource trackers
    leave a moment after their supervisor)."""
    deadline = time.monotonic() + grace_seconds
    while (alive := [pid for pid in pids if Path(f"/proc/{pid}").exists()]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def start_nova_serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], str]:
    payments_port = free_port()
    command = [
        sys.executable,
        "-m",
        "nova",
        "serve",
        "--data-dir",
        str(tmp_path / "data"),
        "--payments-port",
        str(payments_port),
        "--portfolio-port",
        str(free_port()),
        *args,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "NOVA_ADMIN_TOKEN": ADMIN_TOKEN}
    )
    return process, f"http://127.0.0.1:{payments_port}"


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_every_process_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    process, url = start_nova_serve(tmp_path, "--workers", "2")
    try:
        deadline = time.monotonic() + 60
        state_file = tmp_path / "data" / "serve.json"
        while not state_file.exists() and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            time.sleep(0.1)
        assert httpx.get(f"{url}/readyz").status_code == 200
        started = descendants(process.pid)
        process.send_signal(stop_signal)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert len(started) >= 6  # two supervisors, two workers each
    assert still_running(started, grace_seconds=10) == []
    assert not state_file.exists()


def test_a_stop_signal_while_starting_still_ends_every_process(tmp_path: Path) -> None:
    process, _ = start_nova_serve(tmp_path, "--workers", "2")
    deadline = time.monotonic() + 30
    while len(descendants(process.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    started = descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert started
    assert still_running(started, grace_seconds=10) == []


def test_serve_refuses_a_database_url_it_cannot_use_in_one_line(tmp_path: Path) -> None:
    process, _ = start_nova_serve(tmp_path, "--payments-db", "mysql://db/ledger")
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    assert stderr.decode().strip().count("\n") == 0
    assert "postgresql://" in stderr.decode()


def test_serve_says_which_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen()
        port = other_program.getsockname()[1]
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "nova",
                "serve",
                "--data-dir",
                str(tmp_path),
                "--payments-port",
                str(port),
                "--portfolio-port",
                str(free_port()),
            ],
            capture_output=True,
            timeout=60,
            env={**os.environ, "NOVA_ADMIN_TOKEN": ADMIN_TOKEN},
        )
    assert process.returncode == 1
    assert f"{port}" in process.stderr.decode()
    assert "in use" in process.stderr.decode()


def test_demo_walks_the_whole_customer_journey(tmp_path: Path) -> None:
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "nova",
            "demo",
            "--data-dir",
            str(tmp_path),
            "--payments-port",
            str(free_port()),
            "--portfolio-port",
            str(free_port()),
        ],
        capture_output=True,
        timeout=120,
        text=True,
    )
    assert process.returncode == 0, process.stdout + process.stderr
    assert "all steps passed" in process.stdout
    assert "alice buys 10 NOVA" in process.stdout

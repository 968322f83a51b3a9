"""PostgreSQL's own faults against the real platform: a held row lock, backends killed, a tight
statement_timeout, and connection exhaustion (on a throwaway cluster, never the shared server)."""

from __future__ import annotations

import glob
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from chaos.database_faults import (
    exhaust_connections,
    hold_account_lock,
    release_database_faults,
    terminate_backends,
    tighten_statement_timeout,
)
from chaos.errors import DatabaseControlError
from nova.serve import Platform
from tests.conftest import ADMIN_TOKEN, new_postgres_database
from tests.nova.conftest import RunPlatform, free_port, serving

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
pytestmark = pytest.mark.postgres


def funded_account(platform: Platform) -> str:
    with httpx.Client(base_url=platform.options.url("payments"), timeout=10.0) as http:
        customer = http.post("/v1/customers", json={"name": "C"}, headers=ADMIN).json()
        account = http.post(
            "/v1/accounts", json={"currency": "USD"}, headers={"Authorization": f"Bearer {customer['token']}"}
        ).json()
    assert deposit(platform, account["id"])[0].status_code == 201
    return str(account["id"])


def deposit(platform: Platform, account_id: str, key: str | None = None) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    answer = httpx.post(
        f"{platform.options.url('payments')}/v1/deposits",
        json={"account_id": account_id, "amount_minor": 100},
        headers={**ADMIN, "Idempotency-Key": key or str(uuid.uuid4())},
        timeout=30.0,
    )
    return answer, time.monotonic() - began


def eventually_201(platform: Platform, account_id: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    key = str(uuid.uuid4())
    while (answer := deposit(platform, account_id, key)[0]).status_code != 201 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert answer.status_code == 201, answer.text


def ledger_balanced(platform: Platform) -> bool:
    answer = httpx.get(f"{platform.options.url('payments')}/v1/ledger/verify", headers=ADMIN, timeout=30)
    return bool(answer.json()["balanced"])


@pytest.fixture(scope="module")
def on_postgresql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform whose payments run on a database of their own, shared by the faults that release cleanly."""
    data_dir = tmp_path_factory.mktemp("db-faults") / "data"
    with new_postgres_database() as url, serving(data_dir, workers=1, payments_db=url) as platform:
        yield platform


def test_a_held_lock_on_the_funding_account_stalls_deposits_until_released(on_postgresql: Platform) -> None:
    platform = on_postgresql
    data_dir = str(platform.options.data_dir)
    account = funded_account(platform)
    held = hold_account_lock("funding", seconds=30, data_dir=data_dir)
    assert held["account"] == "acc_fundingusd"
    try:
        answer, elapsed = deposit(platform, account)
        # Waits for the lock until lock_timeout (2 s), then answers 503 to retry.
        assert (answer.status_code, answer.json()["code"]) == (503, "database_unavailable"), answer.text
        assert elapsed >= 1.8
    finally:
        released = release_database_faults(data_dir)
    assert released["closed"] == 1
    answer, elapsed = deposit(platform, account)
    assert answer.status_code == 201 and elapsed < 1.5  # no longer waits for the lock (>= 1.8 s above)
    assert ledger_balanced(platform)


def test_terminated_backends_are_replaced_and_nothing_is_lost(on_postgresql: Platform) -> None:
    platform = on_postgresql
    data_dir = str(platform.options.data_dir)
    account = funded_account(platform)
    assert terminate_backends("payments", data_dir)["terminated"] >= 1
    eventually_201(platform, account)
    assert ledger_balanced(platform)


def test_a_tight_statement_timeout_turns_writes_into_503_until_restored(on_postgresql: Platform) -> None:
    platform = on_postgresql
    data_dir = str(platform.options.data_dir)
    account = funded_account(platform)
    try:
        tighten_statement_timeout(1, "payments", data_dir)
        statuses = {deposit(platform, account)[0].status_code for _ in range(5)}
        assert 503 in statuses and not statuses - {201, 503}
    finally:
        release_database_faults(data_dir)
    terminate_backends("payments", data_dir)  # sessions opened under the tight timeout keep it
    eventually_201(platform, account)
    assert ledger_balanced(platform)


def test_database_faults_refuse_the_embedded_sqlite(run_platform: RunPlatform) -> None:
    with run_platform(workers=1) as platform, pytest.raises(DatabaseControlError, match="SQLite"):
        hold_account_lock("funding", seconds=1, data_dir=str(platform.options.data_dir))


@pytest.fixture
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster of our own (max_connections 20) on a free port, so exhausting it harms no one."""
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries or shutil.which("runuser") is None:
        pytest.fail("PostgreSQL server binaries (initdb) and runuser are needed")
    bin_dir = Path(binaries[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="nova-throwaway-pg-"))  # not under pytest's 0700 tree: postgres owns it
    shutil.chown(folder, "postgres")
    port = free_port()

    def as_postgres(*argv: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, capture_output=True, timeout=60)

    as_postgres(str(bin_dir / "initdb"), "-D", str(folder / "data"), "-A", "trust", "-U", "postgres")
    options = (
        f"-p {port} -c max_connections=20 -c superuser_reserved_connections=0 -k {folder} -c listen_addresses=127.0.0.1"
    )
    as_postgres(
        str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-o", options, "-w", "-l", str(folder / "log"), "start"
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_connection_exhaustion_takes_every_free_slot_and_the_rollback_gives_them_back(
    run_platform: RunPlatform, throwaway_postgres: str
) -> None:
    with run_platform(workers=1, payments_db=throwaway_postgres) as platform:
        data_dir = str(platform.options.data_dir)
        account = funded_account(platform)
        # Its pooled connections gone, the service must open new ones while the server has none left.
        assert terminate_backends("payments", data_dir)["terminated"] >= 1
        taken = exhaust_connections(seconds=30, reserve=0, data_dir=data_dir)
        try:
            assert taken["max_connections"] == 20 and taken["taken"] >= 15
            with pytest.raises(psycopg.OperationalError, match=r"too many clients|reserved"):
                psycopg.connect(throwaway_postgres, connect_timeout=3).close()
            answer, elapsed = deposit(platform, account)
            assert (answer.status_code, answer.json()["code"]) == (503, "database_unavailable"), answer.text
            assert elapsed < 5
        finally:
            assert release_database_faults(data_dir)["closed"] == taken["taken"]
        eventually_201(platform, account)
        assert ledger_balanced(platform)

"""SQLite's writer slot held by another worker: work queues, then runs in order on the loop, in its own context."""

from __future__ import annotations

import asyncio
import contextvars
import fcntl
import os
from pathlib import Path

import pytest
from sqlalchemy import text

from core_services.database import Database
from core_services.problems import Problem

REQUEST = contextvars.ContextVar("request", default="none")


def held_by_another_worker(database: Path) -> int:
    """Take the writer slot as a second worker process would: flock on an open file of our own."""
    fd = os.open(f"{database}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@pytest.fixture
def database(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'slot.db'}", pool_size=2)
    with database.write() as conn:
        conn.execute(text("CREATE TABLE rows (n INTEGER)"))
    return database


def insert(database: Database, n: int) -> tuple[int, str]:
    with database.write() as conn:
        conn.execute(text("INSERT INTO rows VALUES (:n)"), {"n": n})
    return n, REQUEST.get()


def test_work_queued_behind_another_workers_lock_runs_in_order_once_it_is_let_go_each_in_its_own_context(
    database: Database, tmp_path: Path
) -> None:
    async def one(n: int) -> tuple[int, str]:
        REQUEST.set(f"request-{n}")  # what a request's span would be: it must still be current in its work
        return await database.offload(insert, database, n)

    async def main() -> list[tuple[int, str]]:
        fd = held_by_another_worker(tmp_path / "slot.db")
        waiting = [asyncio.create_task(one(n)) for n in range(12)]
        await asyncio.sleep(0.2)
        assert not any(task.done() for task in waiting)  # nothing ran while the other worker held the slot
        os.close(fd)
        return await asyncio.gather(*waiting)

    assert asyncio.run(main()) == [(n, f"request-{n}") for n in range(12)]
    with database.read() as conn:
        assert [row.n for row in conn.execute(text("SELECT n FROM rows ORDER BY rowid"))] == list(range(12))


def test_queued_work_still_waiting_at_the_bound_is_503_and_writes_nothing(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("core_services.database.WRITE_LOCK_WAIT_SECONDS", 0.3)

    async def main() -> None:
        fd = held_by_another_worker(tmp_path / "slot.db")
        try:
            with pytest.raises(Problem) as refused:
                await database.offload(insert, database, 1)
            assert refused.value.code == "database_unavailable"
        finally:
            os.close(fd)
        assert await database.offload(insert, database, 2) == (2, "none")  # served as before once it is free

    asyncio.run(main())
    with database.read() as conn:
        assert [row.n for row in conn.execute(text("SELECT n FROM rows"))] == [2]

"""Engines and transactions for SQLite (embedded default) and PostgreSQL.

Writes are short transactions. On PostgreSQL row locks order them; on SQLite the
whole database has one writer, so writers queue on a file lock (plus a thread lock
inside the process) instead of SQLite's busy handler, which sleeps in steps of
milliseconds and would wreck tail latency when several worker processes contend.
SQLite work runs on the event loop while the lock is free at once; when another
worker holds it, the work queues, a keeper thread waits for the lock, and the loop
then runs the queued work back to back (`_WriterQueue.run_when_free`). The wait is
bounded (`WRITE_LOCK_WAIT_SECONDS`, then 503 `database_unavailable`) and never
blocks the loop: a writer frozen while holding the lock (SIGSTOP, a debugger) costs
its peers 503s, not their whole event loop and `/readyz`.

With fault injection on, each transaction first consults the service's fault board:
`db_unavailable` raises exactly what an unreachable database raises (503
`database_unavailable` with Retry-After, before anything is written) and makes `ping`
fail; `db_latency` waits before the transaction starts.
"""

from __future__ import annotations

import asyncio
import contextvars
import fcntl
import functools
import os
import queue
import re
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import anyio.to_thread
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Table,
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core_services.db_deadline import READ_DEADLINE_SECONDS, SocketDeadlines
from core_services.faults import FaultBoard
from core_services.problems import Problem
from core_services.telemetry import record_fault, record_lock_timeout
from instrumentation.db import start_statement, trace_engine

Migration = Callable[[Connection], None]
T = TypeVar("T")

LOCK_NOT_AVAILABLE = "55P03"
# Lock and statement timeouts, deadlocks, serialisation failures: retrying is the cure.
_TRANSIENT_SQLSTATES = {LOCK_NOT_AVAILABLE, "57014", "40P01", "40001"}
# Every lock wait on PostgreSQL is bounded, so one stuck transaction cannot stall a worker's pool.
LOCK_TIMEOUT_MS = 2000
# And so is the wait for SQLite's writer slot.
WRITE_LOCK_WAIT_SECONDS = LOCK_TIMEOUT_MS / 1000
# Start-up migrations of several processes queue for longer: nothing is waiting for them.
MIGRATION_LOCK_WAIT_SECONDS = 60.0
_POLL_FIRST_SECONDS, _POLL_MAX_SECONDS = 0.0005, 0.001
# How much queued work one worker runs per turn with the slot before the other workers get theirs.
_BATCH = 8


class WouldBlock(Exception):
    """Work running on the event loop met a wait: nothing was written, run it again once the wait is over."""


_on_loop = threading.local()


def must_not_block() -> bool:
    """True while the current thread runs database work inline on the event loop (`Database.offload`)."""
    return bool(getattr(_on_loop, "active", False)) and not getattr(_on_loop, "wrote", False)


def _inline(work: Callable[..., T], args: tuple[Any, ...], *, holding_slot: bool = False) -> T:
    """Run `work` on the event loop's thread; WouldBlock if it meets the writer slot taken before writing."""
    _on_loop.active, _on_loop.wrote, _on_loop.holding_slot = True, False, holding_slot
    try:
        return work(*args)
    finally:
        _on_loop.active = _on_loop.holding_slot = False


def _inline_holding_slot(work: Callable[..., T], args: tuple[Any, ...]) -> T:
    return _inline(work, args, holding_slot=True)


class Database:
    """One service's database: an engine plus the way writes are serialised."""

    def __init__(self, url: str, *, pool_size: int = 10, faults: FaultBoard | None = None) -> None:
        self.url = url
        self.faults = faults
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, pool_size)
            self._write_lock: _WriterQueue | None = _WriterQueue(Path(self.engine.url.database or "nova.db"))
        else:
            self.engine = create_engine(
                url.replace("postgresql://", "postgresql+psycopg://", 1),
                pool_size=pool_size,
                max_overflow=pool_size // 2,
                pool_timeout=5,
                connect_args={"connect_timeout": 3, "options": f"-c lock_timeout={LOCK_TIMEOUT_MS}"},
                hide_parameters=True,
            )
            self._write_lock = None
        self._deadlines = None if self.is_sqlite else SocketDeadlines()
        trace_engine(self.engine)

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A read-write transaction, committed when the block ends without an exception."""
        self._inject_faults()
        with self._serialised(), self._translate_errors(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn = conn.execution_options(sqlite_begin="BEGIN IMMEDIATE")
            with self._deadline(conn), conn.begin():
                yield conn
        if getattr(_on_loop, "active", False):
            _on_loop.wrote = True  # from now on this work cannot be run again: it waits where it is

    @contextmanager
    def read(self, *, snapshot: bool = False) -> Iterator[Connection]:
        """A read-only transaction that never blocks writers.

        `snapshot` makes every statement see the same state on PostgreSQL too (SQLite
        in WAL mode always reads one snapshot per transaction).
        """
        self._inject_faults()
        with self._translate_errors(), self.engine.connect() as conn:
            if snapshot and not self.is_sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with self._deadline(conn, READ_DEADLINE_SECONDS), conn.begin():
                yield conn

    async def offload(self, work: Callable[..., T], *args: Any) -> T:
        """Run blocking database work from async code.

        SQLite work is sub-millisecond and single-writer anyway, so it runs on the
        event loop and skips two thread hand-offs; PostgreSQL work waits on the
        network, so it runs in a worker thread while the loop serves others. So does
        SQLite work while a `db_latency` fault makes it wait.
        """
        if self.is_sqlite and (self.faults is None or self.faults.current().db_latency is None):
            try:
                return _inline(work, args)
            except WouldBlock:
                pass
            if self._write_lock is not None:
                # The writer slot is taken (by another worker, mostly): wait for it without
                # blocking the loop, then run the work again on the loop, holding the slot.
                return await self._write_lock.run_when_free(work, args, WRITE_LOCK_WAIT_SECONDS)
        return await anyio.to_thread.run_sync(functools.partial(work, *args))

    def ping(self) -> bool:
        try:
            self._inject_faults()
            with self.engine.connect() as conn, self._deadline(conn):
                conn.execute(text("SELECT 1"))
            return True
        except (DBAPIError, PoolTimeout):
            return False
        except Problem:  # an injected outage
            return False

    def migrate(self, metadata: MetaData, migrations: list[Migration]) -> None:
        """Create the schema, then apply the migrations this database has not seen yet.

        Safe to call from several processes at once: PostgreSQL takes an advisory
        lock, SQLite the writer lock.
        """
        with self._serialised(MIGRATION_LOCK_WAIT_SECONDS), self.engine.connect() as conn, conn.begin():
            if not self.is_sqlite:
                conn.execute(text("SELECT pg_advisory_xact_lock(7357)"))
            SCHEMA_VERSION.metadata.create_all(conn)
            metadata.create_all(conn)
            version = conn.execute(select(SCHEMA_VERSION.c.version)).scalar()
            if version is None:
                conn.execute(insert(SCHEMA_VERSION).values(version=len(migrations)))
                return
            for migration in migrations[version:]:
                migration(conn)
            conn.execute(SCHEMA_VERSION.update().values(version=len(migrations)))

    def dispose(self) -> None:
        self.engine.dispose()

    def _inject_faults(self) -> None:
        """Act out the database faults that are on, before a transaction starts (so none is half done)."""
        if self.faults is None:
            return
        faults = self.faults.current()
        if not faults:
            return
        if faults.db_unavailable:
            record_fault("db_unavailable")
            raise Problem("database_unavailable", headers={"Retry-After": "1"})
        latency = faults.db_latency
        if latency is not None:
            record_fault("db_latency")
            time.sleep(latency.delay_seconds(self.faults.random))

    @contextmanager
    def _deadline(self, conn: Connection, seconds: float | None = None) -> Iterator[None]:
        """On PostgreSQL, a transaction that outlives its deadline loses its socket (see db_deadline)."""
        if self._deadlines is None:
            yield
            return
        dbapi = conn.connection.dbapi_connection
        with self._deadlines.guard(dbapi.fileno() if dbapi is not None else None, seconds):
            yield

    @contextmanager
    def _serialised(self, wait_seconds: float = WRITE_LOCK_WAIT_SECONDS) -> Iterator[None]:
        if self._write_lock is None or getattr(_on_loop, "holding_slot", False):
            yield
        else:
            self._write_lock.acquire(wait_seconds)
            with self._write_lock.held():
                yield

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        try:
            yield
        except PoolTimeout:
            raise Problem("database_unavailable", "no database connection free", headers={"Retry-After": "1"}) from None
        except DBAPIError as exc:
            if _sqlstate(exc) == LOCK_NOT_AVAILABLE:
                record_lock_timeout()
            if exc.connection_invalidated or _is_unavailable(exc) or _sqlstate(exc) in _TRANSIENT_SQLSTATES:
                raise Problem("database_unavailable", headers={"Retry-After": "1"}) from None
            raise


SCHEMA_VERSION = Table("nova_schema", MetaData(), Column("version", Integer, nullable=False))


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def _is_unavailable(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return any(
        marker in message
        for marker in (
            "connection",
            "server closed",
            "terminating",
            "database is locked",
            "could not connect",
            "shutting down",
            "starting up",
            "recovery",
        )
    )


def _sqlite_engine(url: str, pool_size: int) -> Engine:
    database = url.split("///", 1)[1] if "///" in url else ""
    if database and database != ":memory:":
        _private_file(Path(database))
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size // 2, pool_timeout=5, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # The driver must not open transactions on its own: we issue BEGIN below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL + synchronous=NORMAL: a committed transaction survives any process crash
        # (SIGKILL included); only an OS crash can lose the last commits.
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=5000", "foreign_keys=ON"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Straight to the driver: SQLAlchemy's statement machinery cost more than the BEGIN itself.
        statement = conn.get_execution_options().get("sqlite_begin", "BEGIN")
        try:
            conn.connection.dbapi_connection.execute(statement)  # type: ignore[union-attr]
        except sqlite3.Error as exc:
            raise DBAPIError.instance(
                statement, None, exc, sqlite3.Error, hide_parameters=True, dialect=conn.dialect
            ) from exc

    return engine


def _private_file(path: Path) -> None:
    """The database file, made before SQLite opens it and readable by its owner only.

    SQLite gives its -wal and -shm files the database file's mode, so they follow.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    os.chmod(path, 0o600)  # a file made by an older version (0644) is narrowed too


class _LoopWaiters:
    """One event loop's database work waiting for the writer slot, in arrival order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)  # weakly: the loop is their key in a WeakKeyDictionary
        self.queue: deque[tuple[asyncio.Future[Any], Callable[[], Any]]] = deque()
        self.asked = False  # the keeper thread is taking the slot for them

    def pending(self) -> bool:
        """Whether any work still waits (the expired and the cancelled leave the head of the queue)."""
        while self.queue and self.queue[0][0].done():
            self.queue.popleft()
        return bool(self.queue)


class _WriterQueue:
    """SQLite's single-writer slot, shared by threads and by processes on one file; waits are bounded."""

    def __init__(self, database: Path) -> None:
        self._path = Path(f"{database}.writer-lock")
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._loops: WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWaiters] = WeakKeyDictionary()
        self._waiting = 0  # coroutines waiting, on every loop: new work queues behind them
        self._keeper_requests: queue.SimpleQueue[_LoopWaiters] = queue.SimpleQueue()
        self._keeper_pid = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        """Give the slot back when the block ends; `acquire` took it."""
        try:
            yield
        finally:
            self.release()

    def release(self) -> None:
        try:
            fcntl.flock(self._file(), fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def acquire(self, wait_seconds: float) -> None:
        """Take the slot; `WouldBlock` on the event loop if it is taken, 503 after `wait_seconds` elsewhere."""
        inline = must_not_block()
        if inline and self._waiting:
            raise WouldBlock()  # behind the requests of this loop already waiting, not ahead of them
        deadline = time.monotonic() + wait_seconds
        taken = self._thread_lock.acquire(blocking=False) or (
            not inline and self._thread_lock.acquire(timeout=wait_seconds)
        )
        if not taken:
            raise WouldBlock() if inline else _writer_busy()
        try:
            self._lock_file(inline, deadline)
        except BaseException:
            self._thread_lock.release()
            raise

    async def run_when_free(self, work: Callable[..., T], args: tuple[Any, ...], wait_seconds: float) -> T:
        """Run `work` on the event loop once the slot is ours, never blocking the loop to wait for it.

        503 after `wait_seconds`.

        Work queues in order. A keeper thread waits for the slot on its behalf (a
        blocking flock, so it is woken the moment another worker lets go, and costs
        nothing meanwhile); then the loop runs the queued work back to back, a few at
        a time, and lets go: the slot is held for the work alone, never while the
        loop serves something else. A frozen holder stalls only the keeper: the
        waiting requests time out and the loop goes on serving.
        """
        loop = asyncio.get_running_loop()
        waiters = self._loops.get(loop)
        if waiters is None:
            waiters = self._loops[loop] = _LoopWaiters(loop)
        turn: asyncio.Future[T] = loop.create_future()
        # In the request's own context, so that its spans and logs stay in its trace.
        waiters.queue.append(
            (turn, functools.partial(contextvars.copy_context().run, _inline_holding_slot, work, args))
        )
        self._waiting += 1
        expiry = loop.call_later(wait_seconds, _expire, turn)
        if not waiters.asked:
            self._ask_keeper(waiters)
        try:
            return await turn
        finally:
            expiry.cancel()
            self._waiting -= 1

    def _ask_keeper(self, waiters: _LoopWaiters) -> None:
        if self._keeper_pid != os.getpid():  # a forked worker starts its own keeper
            self._keeper_requests = queue.SimpleQueue()
            self._keeper_pid = os.getpid()
            threading.Thread(target=self._keep, args=(self._keeper_requests,), name="writer-slot", daemon=True).start()
        waiters.asked = True
        self._keeper_requests.put(waiters)

    def _keep(self, requests: queue.SimpleQueue[_LoopWaiters]) -> None:
        """The keeper thread: take the slot (waiting as long as it takes) for each loop that asks."""
        while True:
            waiters = requests.get()
            self._thread_lock.acquire()
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
            loop = waiters.loop()
            try:
                if loop is None:
                    raise RuntimeError("the loop is gone")
                loop.call_soon_threadsafe(self._granted, waiters)
            except RuntimeError:  # that loop is closed or gone: nobody there waits any more
                self.release()

    def _granted(self, waiters: _LoopWaiters) -> None:
        """On the loop: the keeper has taken the slot; run what waits, a batch at most, then let go."""
        waiters.asked = False
        try:
            for _ in range(_BATCH):
                if not waiters.pending():
                    break
                turn, run = waiters.queue.popleft()
                try:
                    turn.set_result(run())
                except Exception as exc:  # the work's own error is its request's answer
                    turn.set_exception(exc)
        finally:
            self.release()
        if waiters.pending():
            self._ask_keeper(waiters)  # the other workers get their turn first, if they want one

    def _lock_file(self, inline: bool, deadline: float) -> None:
        """Poll the file lock (a blocking flock cannot be bounded) with a short, growing pause."""
        pause = _POLL_FIRST_SECONDS
        while True:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if inline:
                    raise WouldBlock() from None
            if time.monotonic() >= deadline:
                raise _writer_busy()
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_SECONDS)

    def _file(self) -> int:
        # A forked worker must open its own descriptor: a shared one would share the lock.
        if self._fd is None or self._pid != os.getpid():
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd


def _expire(turn: asyncio.Future[Any]) -> None:
    if not turn.done():
        turn.set_exception(_writer_busy())


def _writer_busy() -> Problem:
    return Problem(
        "database_unavailable", "another writer has held the database too long", headers={"Retry-After": "1"}
    )


class Sql:
    """A hot-path statement, written once with `:name` parameters, passed to the driver as is.

    Building and compiling SQLAlchemy expressions per request cost more than the
    database work on the payment path; the drivers differ only in how a parameter
    is written.
    """

    def __init__(self, statement: str) -> None:
        self.by_dialect = {"sqlite": statement, "postgresql": re.sub(r"(?<![:\w]):(\w+)", r"%(\1)s", statement)}

    def run(self, conn: Connection, params: dict[str, Any]) -> Any:
        """Execute on the driver's cursor inside `conn`'s transaction; returns the cursor.

        Driver errors are raised as SQLAlchemy's, and a lost connection is invalidated,
        exactly as if SQLAlchemy had run the statement.
        """
        statement = self.by_dialect[conn.dialect.name]
        cursor = conn.connection.cursor()
        driver = conn.dialect.loaded_dbapi
        span = start_statement(conn, statement)
        try:
            cursor.execute(statement, params)
        except driver.Error as exc:
            span.end(exc)
            lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor)
            if lost:
                # As SQLAlchemy does on a disconnect: the pool's other connections date from
                # the same server generation, so each is replaced at its next checkout rather
                # than failing one more request each.
                conn.engine.pool._invalidate(conn.connection, exc)
            raise DBAPIError.instance(
                statement,
                params,
                exc,
                driver.Error,
                hide_parameters=True,
                connection_invalidated=lost,
                dialect=conn.dialect,
            ) from exc
        span.end()
        return cursor


def insert_if_absent(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True if this call inserted the row.

    Plain SQL (`Sql`), written once per table and column set: SQLAlchemy has no cache key
    for the dialects' own INSERT ... ON CONFLICT constructs, so it compiled the statement
    anew on every call (0.3-0.4 ms of CPU each; every order makes two).
    """
    return bool(_insert_if_absent(table.name, tuple(values)).run(conn, values).rowcount == 1)


@functools.cache
def _insert_if_absent(table: str, columns: tuple[str, ...]) -> Sql:
    names = ", ".join(f'"{column}"' for column in columns)
    placeholders = ", ".join(f":{column}" for column in columns)
    return Sql(f'INSERT INTO "{table}" ({names}) VALUES ({placeholders}) ON CONFLICT DO NOTHING')

"""Faults PostgreSQL itself produces, as Chaos Toolkit actions with their rollback.

Nothing here asks the services to misbehave: each fault is a session of the database's own
(a row lock held, connections taken, backends terminated, a tighter `statement_timeout`), made
through the server's URL directly, never through the fault proxy. Every session is named
`nova-chaos-*` (`application_name`), held by this process for a bounded time, and released by
`release_database_faults`, which every experiment runs as its rollback; the server drops them
anyway if `chaos run` dies.

All of them refuse (DatabaseControlError) on the embedded SQLite: it has no server to contend.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psycopg

from chaos.errors import DatabaseControlError
from chaos.platform import find_platform

APPLICATION_PREFIX = "nova-chaos-"
CONNECT_TIMEOUT_SECONDS = 3
MAX_HOLD_SECONDS = 600
# Left free by `exhaust_connections`, besides the superuser slots, so operators (and the rollback) get in.
DEFAULT_RESERVE = 5
FUNDING_PREFIX = "acc_funding"  # the payments service's funding account per currency


@dataclass
class _Held:
    """Sessions this process holds open for a fault, closed when their time is up or on release."""

    connections: list[psycopg.Connection[Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, connection: psycopg.Connection[Any]) -> None:
        with self.lock:
            self.connections.append(connection)

    def close(self, connections: list[psycopg.Connection[Any]] | None = None) -> int:
        with self.lock:
            chosen = list(self.connections) if connections is None else connections
            self.connections = [c for c in self.connections if c not in chosen]
        for connection in chosen:
            connection.close()
        return len(chosen)


_HELD = _Held()


def direct_url(service: str, data_dir: str) -> str:
    """The service's PostgreSQL URL, past the fault proxy; DatabaseControlError on SQLite."""
    url = find_platform(data_dir).direct_database_url(service)
    if url is None:
        raise DatabaseControlError(
            f"{service} runs on the embedded SQLite: database faults need PostgreSQL (nova serve --payments-db ...)"
        )
    return url


def _connect(url: str, purpose: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://", 1),
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=f"{APPLICATION_PREFIX}{purpose}",
            # Our own sessions must work while `tighten_statement_timeout` is on (it is how it is undone).
            options="-c statement_timeout=0",
        )
    except psycopg.Error as exc:
        raise DatabaseControlError(f"cannot connect to PostgreSQL for {purpose}: {str(exc).strip()[:200]}") from None


def _bounded(seconds: float) -> float:
    if not 0 < seconds <= MAX_HOLD_SECONDS:
        raise DatabaseControlError(f"seconds must be in (0, {MAX_HOLD_SECONDS}], not {seconds}")
    return float(seconds)


def _release_after(connections: list[psycopg.Connection[Any]], seconds: float) -> None:
    timer = threading.Timer(seconds, _HELD.close, args=(connections,))
    timer.daemon = True
    timer.start()


def hold_account_lock(
    account: str = "funding", seconds: float = 10, currency: str = "USD", data_dir: str = ".nova"
) -> dict[str, Any]:
    """Hold `SELECT ... FOR UPDATE` on a hot payments account for `seconds`: every transfer that touches it waits.

    `account` is `funding` (the account every deposit comes from), `house` (portfolio's account every
    order pays or is paid by; needs portfolio on PostgreSQL to look it up) or an account id. The lock is
    released after `seconds` or by `release_database_faults`, whichever is first.
    """
    seconds = _bounded(seconds)
    account_id = _account_id(account, currency, data_dir)
    connection = _connect(direct_url("payments", data_dir), "lock")
    try:
        row = connection.execute("SELECT id FROM accounts WHERE id = %s FOR UPDATE", (account_id,)).fetchone()
    except psycopg.Error as exc:
        connection.close()
        raise DatabaseControlError(f"cannot lock account {account_id}: {str(exc).strip()[:200]}") from None
    if row is None:
        connection.close()
        raise DatabaseControlError(f"no account {account_id} in the payments database")
    _HELD.add(connection)
    _release_after([connection], seconds)
    return {
        "fault": "lock_contention",
        "account": account_id,
        "seconds": seconds,
        "backend_pid": connection.info.backend_pid,
    }


def _account_id(account: str, currency: str, data_dir: str) -> str:
    if account == "funding":
        return f"{FUNDING_PREFIX}{currency.lower()}"
    if account != "house":
        return account
    with _connect(direct_url("portfolio", data_dir), "lookup") as connection:
        row = connection.execute("SELECT value FROM portfolio_meta WHERE key = 'house_account'").fetchone()
    if row is None:
        raise DatabaseControlError("portfolio has not opened its house account yet")
    return str(json.loads(row[0])["account_id"])


def exhaust_connections(
    seconds: float = 15, reserve: int = DEFAULT_RESERVE, service: str = "payments", data_dir: str = ".nova"
) -> dict[str, Any]:
    """Take every connection the server has left, up to `max_connections` minus its superuser slots and
    `reserve`, for `seconds`: a service that needs a new connection meets "too many clients".

    Returns how many were taken and the server's limit. Released after `seconds` or by `release_database_faults`.
    """
    seconds = _bounded(seconds)
    url = direct_url(service, data_dir)
    with _connect(url, "probe") as probe:
        limit = int(_scalar(probe, "SHOW max_connections"))
        superuser = int(_scalar(probe, "SHOW superuser_reserved_connections"))
        in_use = int(_scalar(probe, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'"))
    # The probe's own slot is free again once it closes; `reserve` keeps room for everyone else.
    wanted = max(0, limit - superuser - reserve - in_use + 1)
    taken: list[psycopg.Connection[Any]] = []
    try:
        for _ in range(wanted):
            taken.append(_connect(url, "exhaust"))
    except DatabaseControlError:
        pass  # someone else took the last slots first: what we hold is the fault
    for connection in taken:
        _HELD.add(connection)
    _release_after(taken, seconds)
    return {"fault": "connection_exhaustion", "taken": len(taken), "max_connections": limit, "seconds": seconds}


def terminate_backends(service: str = "payments", data_dir: str = ".nova") -> dict[str, Any]:
    """`pg_terminate_backend` every session of the service's database (not ours): its pools must reconnect."""
    url = direct_url(service, data_dir)
    database = urlsplit(url).path.lstrip("/")
    with _connect(url, "terminate") as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend' AND application_name NOT LIKE %s",
            (database, f"{APPLICATION_PREFIX}%"),
        ).fetchall()
    return {"fault": "backend_kill", "database": database, "terminated": sum(1 for (done,) in rows if done)}


def tighten_statement_timeout(
    milliseconds: int = 50, service: str = "payments", data_dir: str = ".nova"
) -> dict[str, Any]:
    """`ALTER DATABASE ... SET statement_timeout` and end the service's sessions so its new ones carry it.

    Statements slower than `milliseconds` fail with 57014, which the services answer as a 503 to retry.
    `restore_statement_timeout` (part of `release_database_faults`) takes it back.
    """
    if not 1 <= milliseconds <= 60_000:
        raise DatabaseControlError(f"milliseconds must be 1..60000, not {milliseconds}")
    url = direct_url(service, data_dir)
    database = urlsplit(url).path.lstrip("/")
    with _connect(url, "timeout") as connection:
        connection.autocommit = True
        connection.execute(f'ALTER DATABASE "{_identifier(database)}" SET statement_timeout = {int(milliseconds)}')
    terminated = terminate_backends(service, data_dir)["terminated"]
    return {"fault": "statement_timeout", "database": database, "milliseconds": milliseconds, "ended": terminated}


def restore_statement_timeout(service: str = "payments", data_dir: str = ".nova") -> dict[str, Any]:
    """Undo `tighten_statement_timeout`; sessions opened from now on have the server's default again."""
    url = direct_url(service, data_dir)
    database = urlsplit(url).path.lstrip("/")
    with _connect(url, "timeout") as connection:
        connection.autocommit = True
        connection.execute(f'ALTER DATABASE "{_identifier(database)}" RESET statement_timeout')
    return {"database": database, "statement_timeout": "default"}


def release_database_faults(data_dir: str = ".nova") -> dict[str, Any]:
    """The rollback: close every session this process holds, end any `nova-chaos-*` session left on the
    server, and give each of the platform's databases its default `statement_timeout` back.

    Safe to run when nothing is held, and on SQLite (nothing to release there).
    """
    closed = _HELD.close()
    platform = find_platform(data_dir)
    ended, restored = 0, []
    for service in sorted(platform.services):
        url = platform.direct_database_url(service)
        if url is None:
            continue
        with _connect(url, "release") as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name LIKE %s AND application_name <> %s AND pid <> pg_backend_pid()",
                (f"{APPLICATION_PREFIX}%", f"{APPLICATION_PREFIX}release"),
            ).fetchall()
        ended += sum(1 for (done,) in rows if done)
        restored.append(restore_statement_timeout(service, data_dir)["database"])
    return {"closed": closed, "terminated": ended, "statement_timeout_restored": restored}


def _scalar(connection: psycopg.Connection[Any], query: str) -> str:
    row = connection.execute(query).fetchone()
    if row is None:
        raise DatabaseControlError(f"no answer to {query!r}")
    return str(row[0])


def _identifier(name: str) -> str:
    if not name or '"' in name or "\0" in name:
        raise DatabaseControlError(f"unusable database name {name!r}")
    return name

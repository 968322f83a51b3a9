"""Scratch PostgreSQL databases: created for one measurement, dropped after it, whatever happens.

Each is named `nova_bench_<random>`, so the benchmark never writes to a database it
did not create and two runs on one server do not collide.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from loadtests.bench.errors import BenchError

SCRATCH_PREFIX = "nova_bench_"


@contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """Yield the URL of a new, empty database on the server of `server_url`; drop it on exit."""
    name = f"{SCRATCH_PREFIX}{secrets.token_hex(4)}"
    _administer(server_url, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(server_url, name)
    finally:
        # FORCE ends sessions a killed server may have left behind; only this database's.
        _administer(server_url, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def durability_settings(url: str) -> str:
    """`synchronous_commit=on fsync=on`: what a commit rate on this server means."""
    with _connect(url) as conn:
        return " ".join(f"{name}={_show(conn, name)}" for name in ("synchronous_commit", "fsync"))


def _show(conn: psycopg.Connection[tuple[object, ...]], name: str) -> str:
    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
    return str(row[0]) if row else "?"


def _administer(server_url: str, statement: sql.Composed) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    with _connect(server_url) as conn:
        conn.execute(statement)


def _connect(url: str) -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise BenchError(f"cannot reach PostgreSQL at {_without_password(url)}: {str(exc).strip()[:200]}") from None


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))

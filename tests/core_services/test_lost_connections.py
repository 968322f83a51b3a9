"""PostgreSQL connections the server dropped: one request finds out, the pool replaces the rest."""

from __future__ import annotations

from contextlib import ExitStack

import psycopg
import pytest

from core_services.database import Database, Sql
from core_services.problems import Problem

SELECT_ONE = Sql("SELECT 1")


def terminate_backends(url: str) -> None:
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as operator:
        operator.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


@pytest.mark.postgres
def test_after_the_server_drops_every_pooled_connection_only_the_first_statement_fails(
    postgres_database: str,
) -> None:
    database = Database(postgres_database, pool_size=4)
    with ExitStack() as pooled:  # four connections in the pool, all from before the drop
        for _ in range(4):
            SELECT_ONE.run(pooled.enter_context(database.read()), {})
    terminate_backends(postgres_database)
    outcomes = []
    for _ in range(4):
        try:
            with database.read() as conn:
                SELECT_ONE.run(conn, {})
            outcomes.append("ok")
        except Problem as problem:
            outcomes.append(problem.code)
    database.dispose()

    assert outcomes == ["database_unavailable", "ok", "ok", "ok"]

"""Fixtures shared by every ring: settings, real SQLite files, real PostgreSQL databases."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from core_services.settings import ServiceSettings

POSTGRES_URL = os.environ.get("NOVA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN_TOKEN = "test-admin-token-" + "x" * 16


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., ServiceSettings]:
    """Settings for an in-process service over SQLite files in a fresh folder, or the given URLs."""

    def make(**env: str) -> ServiceSettings:
        return ServiceSettings.from_env(
            {"NOVA_DATA_DIR": str(tmp_path / "data"), "NOVA_ADMIN_TOKEN": ADMIN_TOKEN, **env}
        )

    return make


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the local server, dropped afterwards.

    Skips only outside CI when no server answers; in CI a missing server fails the run.
    """
    with new_postgres_database() as url:
        yield url


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """`postgres_database` for fixtures of wider scope.

    Each statement gets its own connection: a game day restarts the server in between.
    """
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    name = f"nova_test_{secrets.token_hex(6)}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=10) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs twice: on a real SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("postgres_database"))

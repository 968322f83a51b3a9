"""Secrets and files a data dir keeps: the admin token, the market seed, the databases; owner-only."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import text

from core_services.database import Database
from core_services.settings import ServiceSettings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_each_data_dir_gets_its_own_secret_market_seed_kept_owner_only(tmp_path: Path) -> None:
    first = ServiceSettings.from_env({"NOVA_DATA_DIR": str(tmp_path / "a"), "NOVA_ADMIN_TOKEN": "t" * 20})
    again = ServiceSettings.from_env({"NOVA_DATA_DIR": str(tmp_path / "a"), "NOVA_ADMIN_TOKEN": "t" * 20})
    other = ServiceSettings.from_env({"NOVA_DATA_DIR": str(tmp_path / "b"), "NOVA_ADMIN_TOKEN": "t" * 20})
    assert first.market_seed == again.market_seed != other.market_seed
    assert first.market_seed not in (0, 42)
    assert mode(tmp_path / "a" / "market-seed") == 0o600


def test_nova_market_seed_fixes_the_seed_and_writes_no_file(tmp_path: Path) -> None:
    settings = ServiceSettings.from_env(
        {"NOVA_DATA_DIR": str(tmp_path), "NOVA_ADMIN_TOKEN": "t" * 20, "NOVA_MARKET_SEED": "7"}
    )
    assert settings.market_seed == 7
    assert not (tmp_path / "market-seed").exists()


def test_the_generated_admin_token_is_owner_only(tmp_path: Path) -> None:
    ServiceSettings.from_env({"NOVA_DATA_DIR": str(tmp_path), "NOVA_MARKET_SEED": "7"})
    assert mode(tmp_path / "admin-token") == 0o600


def test_sqlite_database_files_are_owner_only_even_when_made_before(tmp_path: Path) -> None:
    older = tmp_path / "older.db"
    older.touch(mode=0o644)
    for path in (tmp_path / "new.db", older):
        database = Database(f"sqlite:///{path}")
        with database.write() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        with database.read() as conn:  # WAL mode: the -wal and -shm files exist while a connection is open
            siblings = [p for p in tmp_path.iterdir() if p.name.startswith(path.name)]
            assert {mode(p) for p in siblings} == {0o600}, {p.name: oct(mode(p)) for p in siblings}
        database.dispose()

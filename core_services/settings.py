"""One typed settings object per service process, read from the environment.

`nova serve` turns its flags into these variables before it starts the workers, so a
worker started by any supervisor (uvicorn, Kubernetes) is configured the same way.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path(".nova")
DEFAULT_PAYMENTS_PORT = 8001
DEFAULT_PORTFOLIO_PORT = 8002


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    data_dir: Path
    admin_token: str
    payments_db: str
    portfolio_db: str
    payments_url: str
    market_seed: int
    db_pool_size: int
    max_body_bytes: int
    rate_limit_per_second: float
    rate_limit_burst: int
    # "suite" (the suite's instrumentation), "off", or "stock" (opentelemetry-instrumentation-fastapi,
    # a dev dependency): the last two exist so the overhead benchmark can compare.
    telemetry: str = "suite"
    # The admin fault API and the fault hooks exist only when this is on (`nova serve --enable-faults`).
    enable_faults: bool = False
    # Open connections per worker; 0: half the worker's descriptor limit (`core_services.connections`).
    max_connections: int = 0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> ServiceSettings:
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("NOVA_DATA_DIR", str(DEFAULT_DATA_DIR)))
        return cls(
            data_dir=data_dir,
            admin_token=env.get("NOVA_ADMIN_TOKEN") or read_or_create_admin_token(data_dir),
            payments_db=database_url(env.get("NOVA_PAYMENTS_DB"), data_dir / "payments.db"),
            portfolio_db=database_url(env.get("NOVA_PORTFOLIO_DB"), data_dir / "portfolio.db"),
            payments_url=env.get("NOVA_PAYMENTS_URL", f"http://127.0.0.1:{DEFAULT_PAYMENTS_PORT}"),
            market_seed=_int(env, "NOVA_MARKET_SEED", 0) or read_or_create_market_seed(data_dir),
            db_pool_size=_int(env, "NOVA_DB_POOL_SIZE", 10),
            max_body_bytes=_int(env, "NOVA_MAX_BODY_BYTES", 64 * 1024),
            rate_limit_per_second=float(_int(env, "NOVA_RATE_LIMIT", 5000)),
            rate_limit_burst=_int(env, "NOVA_RATE_BURST", 10000),
            telemetry=_choice(env, "NOVA_TELEMETRY", ("suite", "off", "stock")),
            enable_faults=_flag(env, "NOVA_ENABLE_FAULTS"),
            max_connections=_int(env, "NOVA_MAX_CONNECTIONS", 0),
        )


def database_url(given: str | None, sqlite_file: Path) -> str:
    """A `postgresql://` or `sqlite://` URL; anything else is refused before start."""
    if not given:
        return f"sqlite:///{sqlite_file}"
    if given.startswith(("postgresql://", "postgresql+psycopg://", "sqlite://")):
        return given
    raise SettingsError(f"database URL must start with postgresql:// or sqlite://, got {given.split(':')[0]}:")


def read_or_create_admin_token(data_dir: Path) -> str:
    """The admin token of this data dir, generated on first use and readable only by its owner."""
    return _read_or_create_secret(data_dir / "admin-token", lambda: secrets.token_urlsafe(32))


def read_or_create_market_seed(data_dir: Path) -> int:
    """The market simulator's seed for this data dir: random, and as secret as the admin token.

    With the public code and a known seed, a few quotes give away every future price
    (and a round trip empties the house account); `NOVA_MARKET_SEED` fixes one only
    when asked for (demos, tests).
    """
    return int(_read_or_create_secret(data_dir / "market-seed", lambda: str(secrets.randbits(63) or 1)))


def _read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The file's text, first written with `make()` (mode 0600) by whichever process gets there first."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and linked into place, so a concurrent reader never sees half a secret.
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(make() + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_text().strip()


def _choice(env: dict[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices`; the first when unset."""
    value = env.get(name) or choices[0]
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _flag(env: dict[str, str], name: str) -> bool:
    """On for 1/true/yes/on, off when unset or 0/false/no/off; anything else is refused rather than guessed."""
    raw = env.get(name, "").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("", "0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None

"""The funded customers the load pays between, and the wrk script that drives them.

Sixty-four payers in a ring (payer i pays account i+1) spread the row locks: with
every payment on one account, PostgreSQL would serialise them all on that row and
the figure would measure lock queueing, not the service.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from loadtests.bench.errors import BenchError

PAYERS = 64
# Enough that 1-unit payments never run an account dry, however long the run.
FUNDING_MINOR = 10**12
CURRENCY = "USD"
LUA_LOGIC = Path(__file__).with_name("payments.lua")
# Tokens and ids go into Lua string literals unescaped, so only these characters are accepted.
_LUA_SAFE = re.compile(r"[A-Za-z0-9_.~+/=-]+")


class Payer(NamedTuple):
    token: str
    from_account: str
    to_account: str


class Customer(NamedTuple):
    token: str
    account_id: str


def seed_payers(payments_url: str, admin_token: str, count: int = PAYERS) -> list[Payer]:
    """Create `count` customers with one funded USD account each, through the public API."""
    with httpx.Client(base_url=payments_url, timeout=10.0) as http:
        customers = [_open_customer(http, admin_token, index) for index in range(count)]
        for customer in customers:
            _deposit(http, admin_token, customer.account_id)
    return [
        Payer(customer.token, customer.account_id, customers[(index + 1) % count].account_id)
        for index, customer in enumerate(customers)
    ]


def _open_customer(http: httpx.Client, admin_token: str, index: int) -> Customer:
    customer = _created(http, "/v1/customers", admin_token, {"name": f"bench payer {index}"})
    account = _created(http, "/v1/accounts", customer["token"], {"currency": CURRENCY})
    return Customer(customer["token"], account["id"])


def _deposit(http: httpx.Client, admin_token: str, account_id: str) -> None:
    body = {"account_id": account_id, "amount_minor": FUNDING_MINOR}
    _created(http, "/v1/deposits", admin_token, body, {"Idempotency-Key": f"bench-fund-{account_id}"})


def _created(
    http: httpx.Client, path: str, token: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = http.post(path, json=body, headers={"Authorization": f"Bearer {token}", **(headers or {})})
    if response.status_code != 201:
        raise BenchError(f"setup POST {path} answered {response.status_code}: {response.text[:200]}")
    created: dict[str, Any] = response.json()
    return created


def write_wrk_script(payers: list[Payer], directory: Path, threads: int) -> Path:
    """A fresh script per wrk run: the payers, a new idempotency-key prefix, then payments.lua.

    Reusing a prefix would make the next run's keys replays of the last run's payments.
    """
    run_prefix = secrets.token_hex(6)
    rows = ",\n".join(
        f'  {{auth = "Bearer {_lua_safe(p.token)}", from = "{_lua_safe(p.from_account)}", '
        f'to = "{_lua_safe(p.to_account)}"}}'
        for p in payers
    )
    header = f'nova_payers = {{\n{rows}\n}}\nnova_run_prefix = "{run_prefix}"\nnova_threads = {threads}\n\n'
    script = directory / f"payments-{run_prefix}.lua"
    script.write_text(header + LUA_LOGIC.read_text())
    return script


def _lua_safe(value: str) -> str:
    if not _LUA_SAFE.fullmatch(value):
        raise BenchError(f"cannot put {value[:20]!r}... into the wrk script: unexpected characters")
    return value

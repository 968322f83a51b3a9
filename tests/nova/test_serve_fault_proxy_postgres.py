"""PostgreSQL behind proxy `payments-db`: a black-holed link makes writes a bounded 503; nothing is lost."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.nova.test_serve_fault_proxy import ADMIN, RunProxied, Trader, ledger_balanced, proxy_api, run_proxied

__all__ = ["run_proxied"]

# connect_timeout (3 s) or the write deadline (5 s), whichever the write meets, plus the worker's own overhead
WRITE_BOUND_SECONDS = 8.0


def deposit(trader: Trader, key: str, amount_minor: int = 1_000) -> tuple[httpx.Response, float]:
    body = {"account_id": trader.account_id, "amount_minor": amount_minor}
    began = time.monotonic()
    answer = httpx.post(
        f"{trader.platform.options.url('payments')}/v1/deposits",
        json=body,
        headers={**ADMIN, "Idempotency-Key": key},
        timeout=60.0,
    )
    return answer, time.monotonic() - began


@pytest.mark.postgres
def test_black_holed_database_link_makes_writes_a_bounded_503_and_nothing_half_written(
    run_proxied: RunProxied, postgres_database: str
) -> None:
    with run_proxied(payments_db=postgres_database) as platform, proxy_api(platform) as api:
        assert api.get("/proxies/payments-db").json()["upstream"].endswith(":5432")
        trader = Trader.open(platform)
        before = trader.balance()
        assert deposit(trader, str(uuid.uuid4()))[0].status_code == 201  # a pooled connection is now open
        before += 1_000
        black_hole = {"name": "black-hole", "type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}
        assert api.post("/proxies/payments-db/toxics", json=black_hole).status_code == 200
        keys = [str(uuid.uuid4()) for _ in range(3)]
        for key in keys:
            answer, elapsed = deposit(trader, key)
            assert (answer.status_code, answer.json()["code"]) == (503, "database_unavailable"), answer.text
            assert answer.headers["Retry-After"]
            assert elapsed < WRITE_BOUND_SECONDS
        assert api.delete("/proxies/payments-db/toxics/black-hole").status_code == 204
        assert trader.balance() == before  # the refused writes left nothing behind
        for key in keys:
            deadline = time.monotonic() + 20
            while (answer := deposit(trader, key)[0]).status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert answer.status_code == 201, answer.text
        assert trader.balance() == before + 1_000 * len(keys)
        assert ledger_balanced(platform)

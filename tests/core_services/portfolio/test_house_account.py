"""The house account: opened and funded once, however many workers start at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select

from core_services.database import Database
from core_services.portfolio import order_store as store
from core_services.portfolio.order_store import HouseAccount
from core_services.portfolio.payments_client import PaymentsClient
from core_services.portfolio.schema import service_facts
from core_services.portfolio.service import HOUSE_FLOAT_MINOR, ensure_house_account
from core_services.problems import Problem
from tests.conftest import ADMIN_TOKEN
from tests.core_services.portfolio.conftest import Market, payments_via


@pytest.fixture
def market(make_market: Callable[..., Market], database_url: str) -> Market:
    return make_market(NOVA_PORTFOLIO_DB=database_url)


def worker_database(market: Market) -> Database:
    """The portfolio database as another worker process opens it: its own engine and locks."""
    return Database(market.settings.portfolio_db, pool_size=2)


def test_two_workers_starting_at_once_share_one_funded_house_account(market: Market) -> None:
    payments = PaymentsClient(market.payments, ADMIN_TOKEN)
    databases = [market.service.db, worker_database(market)]
    opened: list[HouseAccount] = []
    workers = [
        threading.Thread(target=lambda db=db: opened.append(ensure_house_account(db, payments))) for db in databases
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    databases[1].dispose()
    assert len(opened) == 2 and opened[0] == opened[1]
    assert market.balance(opened[0].account_id) == HOUSE_FLOAT_MINOR
    assert len(market.entries(opened[0].account_id)) == 1


def test_opening_again_reuses_the_recorded_house_account(market: Market) -> None:
    payments = PaymentsClient(market.payments, ADMIN_TOKEN)
    first = ensure_house_account(market.service.db, payments)
    assert ensure_house_account(market.service.db, payments) == first
    assert market.balance(first.account_id) == HOUSE_FLOAT_MINOR


def test_a_claim_left_by_a_dead_worker_is_taken_over(market: Market) -> None:
    with market.service.db.write() as conn:
        assert store.claim_house_opening(conn, now_ms=0, until_ms=1)
    house = ensure_house_account(market.service.db, PaymentsClient(market.payments, ADMIN_TOKEN))
    assert market.balance(house.account_id) == HOUSE_FLOAT_MINOR


def test_a_live_claim_makes_others_wait_then_answer_503(market: Market) -> None:
    with market.service.db.write() as conn:
        assert store.claim_house_opening(conn, now_ms=0, until_ms=10**15)
    with pytest.raises(Problem) as waited:
        ensure_house_account(market.service.db, PaymentsClient(market.payments, ADMIN_TOKEN), wait_seconds=0.2)
    assert waited.value.code == "payments_unavailable"


def test_payments_down_fails_the_opening_and_frees_the_claim_at_once(market: Market) -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    down = PaymentsClient(payments_via(unreachable), ADMIN_TOKEN, sleep=lambda _seconds: None)
    with pytest.raises(Problem) as failed:
        ensure_house_account(market.service.db, down)
    assert failed.value.code == "payments_unavailable"
    house = ensure_house_account(market.service.db, PaymentsClient(market.payments, ADMIN_TOKEN), wait_seconds=0)
    assert market.balance(house.account_id) == HOUSE_FLOAT_MINOR


def test_the_house_token_is_never_stored(market: Market) -> None:
    ensure_house_account(market.service.db, PaymentsClient(market.payments, ADMIN_TOKEN))
    with market.service.db.read() as conn:
        facts = " ".join(conn.execute(select(service_facts.c.value)).scalars())
    assert "house_account" not in facts and "nvt_" not in facts

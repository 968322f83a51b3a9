"""Integration ring: the service on real SQLite files and real PostgreSQL databases, under real concurrency.

Every test runs twice (`database_url`). Like `nova serve`, several workers share one
database: each worker is its own app instance (its own pool, writer queue, token cache
and in-flight registry) on its own event loop, and 32 client threads spread the requests
over them, so transactions truly overlap in the database, on SQLite across workers as
they do across worker processes.
"""

from __future__ import annotations

import random
import sqlite3
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from functools import partial
from itertools import cycle
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import Connection, update

from core_services.payments import ledger_store as store
from core_services.payments.domain import Account
from core_services.payments.schema import accounts
from core_services.settings import ServiceSettings
from tests.core_services.payments.conftest import Customer, PaymentsApi, assert_problem, running_service
from tests.instrumentation.conftest import value

THREADS = 32
WORKERS = 4

Request = Callable[[], httpx.Response]


@pytest.fixture
def service_settings(make_settings: Callable[..., ServiceSettings], database_url: str) -> ServiceSettings:
    return make_settings(NOVA_PAYMENTS_DB=database_url)


@pytest.fixture
def workers(service_settings: ServiceSettings, admin_headers: dict[str, str]) -> Iterator[list[PaymentsApi]]:
    with ExitStack() as stack:
        yield [stack.enter_context(running_service(service_settings, admin_headers)) for _ in range(WORKERS)]


@pytest.fixture
def service(service_settings: ServiceSettings, admin_headers: dict[str, str]) -> Iterator[PaymentsApi]:
    with running_service(service_settings, admin_headers) as api:
        yield api


def all_at_once(requests: list[Request]) -> list[httpx.Response]:
    """Send the requests from `THREADS` threads, held back until all are queued so they truly overlap."""
    go = threading.Event()

    def send(request: Request) -> httpx.Response:
        go.wait()
        return request()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        pending = [pool.submit(send, request) for request in requests]
        go.set()
        return [future.result(timeout=60) for future in pending]


def spread(workers: list[PaymentsApi], count: int, request: Callable[[PaymentsApi], httpx.Response]) -> list[Request]:
    """`count` copies of one request, dealt round-robin over the workers."""
    return [partial(request, worker) for worker, _ in zip(cycle(workers), range(count), strict=False)]


def statuses(responses: list[httpx.Response]) -> Counter[tuple[int, str]]:
    return Counter((response.status_code, response.json().get("code", "")) for response in responses)


def assert_balanced(report: dict[str, Any]) -> None:
    assert report["balanced"] is True, report
    assert report["negative_accounts"] == 0, report
    assert all(total == 0 for total in report["sum_minor"].values()), report


def open_pair(service: PaymentsApi, funds_minor: int) -> tuple[Customer, str, Customer, str]:
    """Alice's account holding `funds_minor`, and Bob's empty one."""
    alice, bob = service.create_customer("Alice"), service.create_customer("Bob")
    payer, payee = service.open_account(alice), service.open_account(bob)
    service.fund(payer, funds_minor)
    return alice, payer, bob, payee


# -- concurrency ---------------------------------------------------------------------------------


def test_concurrent_payments_never_spend_more_than_the_balance(workers: list[PaymentsApi]) -> None:
    service = workers[0]
    alice, payer, _, payee = open_pair(service, 50_000)

    responses = all_at_once(spread(workers, 100, lambda worker: worker.pay(alice, payer, payee, 1_000)))

    assert statuses(responses) == {(201, ""): 50, (422, "insufficient_funds"): 50}
    assert (service.balance(payer), service.balance(payee)) == (0, 50_000)
    report = service.verify()
    assert_balanced(report)
    assert (report["payments"], report["entries"]) == (51, 102)


def test_concurrent_retries_of_one_payment_settle_it_exactly_once(workers: list[PaymentsApi]) -> None:
    service = workers[0]
    alice, payer, _, payee = open_pair(service, 10_000)

    responses = all_at_once(spread(workers, 5, lambda worker: worker.pay(alice, payer, payee, 2_500, key="rent")))

    succeeded = [response for response in responses if response.is_success]
    for response in responses:
        if not response.is_success:
            assert_problem(response, 409, "request_in_progress")
    assert succeeded, [response.text for response in responses]
    assert all(response.json() == succeeded[0].json() for response in succeeded)
    assert sum("Idempotent-Replayed" not in response.headers for response in succeeded) == 1
    assert (service.balance(payer), service.balance(payee)) == (7_500, 2_500)
    assert service.verify()["payments"] == 2


def test_opposite_payments_between_two_accounts_complete_without_deadlock(workers: list[PaymentsApi]) -> None:
    service = workers[0]
    alice, alices, bob, bobs = open_pair(service, 50_000)
    service.fund(bobs, 50_000)
    requests: list[Request] = []
    for worker, _ in zip(cycle(workers), range(50), strict=False):
        requests.append(partial(worker.pay, alice, alices, bobs, 700))
        requests.append(partial(worker.pay, bob, bobs, alices, 700))

    responses = all_at_once(requests)

    assert statuses(responses) == {(201, ""): 100}
    assert (service.balance(alices), service.balance(bobs)) == (50_000, 50_000)
    report = service.verify()
    assert_balanced(report)
    assert report["payments"] == 102


def test_a_payment_decided_on_a_balance_that_has_since_moved_is_decided_again_under_locks(
    service: PaymentsApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The unlocked read says Alice holds 10,000; by the write she holds 5,000 (as if a
    # concurrent payment had spent it): the write refuses, and the locked re-decision
    # answers what the ledger really allows.
    alice, payer, _, payee = open_pair(service, 5_000)
    before = service.stored_state()
    reads: list[bool] = []
    read_accounts = store.read_accounts

    def stale_when_unlocked(conn: Connection, account_ids: list[str], *, lock: bool) -> dict[str, Account]:
        reads.append(lock)
        found = read_accounts(conn, account_ids, lock=lock)
        return found if lock else {key: replace(account, balance_minor=10_000) for key, account in found.items()}

    monkeypatch.setattr(store, "read_accounts", stale_when_unlocked)
    response = service.pay(alice, payer, payee, 8_000)

    assert_problem(response, 422, "insufficient_funds")
    assert reads == [False, True]
    assert service.stored_state().balances == before.balances
    assert_balanced(service.verify())


def test_a_storm_of_payments_across_many_accounts_conserves_money_and_never_overdraws(
    workers: list[PaymentsApi],
) -> None:
    service = workers[0]
    customers = [service.create_customer(f"Customer {number}") for number in range(8)]
    accounts = [(customer, service.open_account(customer)) for customer in customers]
    for _, account_id in accounts:
        service.fund(account_id, 3_000)
    draw = random.Random(20240601)
    requests: list[Request] = []
    for worker, _ in zip(cycle(workers), range(160), strict=False):
        (payer, source), (_, target) = draw.sample(accounts, 2)
        requests.append(partial(worker.pay, payer, source, target, draw.randint(1, 1_500)))

    responses = all_at_once(requests)

    assert set(statuses(responses)) <= {(201, ""), (422, "insufficient_funds")}
    balances = [service.balance(account_id) for _, account_id in accounts]
    assert sum(balances) == 8 * 3_000
    assert min(balances) >= 0
    report = service.verify()
    assert_balanced(report)
    assert report["payments"] == 8 + sum(response.status_code == 201 for response in responses)


# -- restarts ------------------------------------------------------------------------------------


def test_every_acknowledged_payment_survives_a_restart(
    service_settings: ServiceSettings, admin_headers: dict[str, str]
) -> None:
    with ExitStack() as running:
        before = [running.enter_context(running_service(service_settings, admin_headers)) for _ in range(WORKERS)]
        alice, payer, _, payee = open_pair(before[0], 100_000)
        responses = all_at_once(spread(before, 40, lambda worker: worker.pay(alice, payer, payee, 1_000)))
        acknowledged = [response.json() for response in responses if response.status_code == 201]
        report_before = before[0].verify()

    with running_service(service_settings, admin_headers) as after:
        found = [after.client.get(f"/v1/payments/{payment['id']}", headers=alice.headers) for payment in acknowledged]
        balances = (after.balance(payer), after.balance(payee))
        report_after = after.verify()

    assert len(acknowledged) == 40
    assert [response.status_code for response in found] == [200] * 40
    assert [
        {key: response.json()[key] for key in payment} for response, payment in zip(found, acknowledged, strict=True)
    ] == acknowledged
    assert balances == (60_000, 40_000)
    assert report_after == report_before
    assert_balanced(report_after)


def test_a_customer_token_keeps_working_after_a_restart(
    service_settings: ServiceSettings, admin_headers: dict[str, str]
) -> None:
    with running_service(service_settings, admin_headers) as before:
        alice = before.create_customer("Alice")
        account_id = before.open_account(alice)

    with running_service(service_settings, admin_headers) as after:
        response = after.client.get(f"/v1/accounts/{account_id}", headers=alice.headers)

    assert response.status_code == 200


def test_a_retry_after_a_restart_answers_the_first_response(
    service_settings: ServiceSettings, admin_headers: dict[str, str]
) -> None:
    with running_service(service_settings, admin_headers) as before:
        alice, payer, _, payee = open_pair(before, 5_000)
        first = before.pay(alice, payer, payee, 5_000, key="once-only")

    with running_service(service_settings, admin_headers) as after:
        again = after.pay(alice, payer, payee, 5_000, key="once-only")
        balances = (after.balance(payer), after.balance(payee))

    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert balances == (0, 5_000)


# -- the database refusing work ------------------------------------------------------------------


@contextmanager
def locked_by_another_session(database_url: str, account_id: str) -> Iterator[None]:
    """Another database session holds what a payment from `account_id` needs, as a stuck transaction would."""
    if database_url.startswith("sqlite"):
        writer = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            writer.execute("ROLLBACK")
            writer.close()
    else:
        with psycopg.connect(database_url) as session:
            session.execute("SELECT 1 FROM accounts WHERE id = %s FOR UPDATE", (account_id,))
            yield
            session.rollback()


def test_a_payment_that_cannot_get_its_locks_in_time_is_503_with_retry_after_and_writes_nothing(
    service: PaymentsApi, database_url: str
) -> None:
    alice, payer, _, payee = open_pair(service, 5_000)
    before = service.stored_state()

    with locked_by_another_session(database_url, payer):
        response = service.pay(alice, payer, payee, 1_000)

    assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "1"
    assert service.stored_state() == before
    assert_balanced(service.verify())


@pytest.mark.postgres
def test_a_payment_that_gave_up_waiting_for_a_row_lock_is_counted_as_lock_contention(
    make_settings: Callable[..., ServiceSettings], admin_headers: dict[str, str], postgres_database: str
) -> None:
    """Its 503 reads `database_unavailable` like an outage's; the counter is how a runbook tells them apart."""
    with running_service(make_settings(NOVA_PAYMENTS_DB=postgres_database), admin_headers) as service:
        alice, payer, _, payee = open_pair(service, 5_000)
        before = value(service.client.get("/metrics").text, "nova_database_lock_timeouts_total")

        with locked_by_another_session(postgres_database, payer):
            response = service.pay(alice, payer, payee, 1_000)

        after = value(service.client.get("/metrics").text, "nova_database_lock_timeouts_total")

    assert_problem(response, 503, "database_unavailable")
    assert after - before == 1


@pytest.mark.postgres
def test_a_payment_on_a_connection_the_database_dropped_is_503_and_its_retry_settles(
    make_settings: Callable[..., ServiceSettings], admin_headers: dict[str, str], postgres_database: str
) -> None:
    with running_service(make_settings(NOVA_PAYMENTS_DB=postgres_database), admin_headers) as service:
        alice, payer, _, payee = open_pair(service, 5_000)
        database = postgres_database.rsplit("/", 1)[1]
        with psycopg.connect(postgres_database, autocommit=True) as operator:
            operator.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )

        dropped = service.pay(alice, payer, payee, 1_000, key="through-the-outage")
        retried = service.pay(alice, payer, payee, 1_000, key="through-the-outage")

        balances = (service.balance(payer), service.balance(payee))
        report = service.verify()

    assert_problem(dropped, 503, "database_unavailable")
    assert dropped.headers["Retry-After"] == "1"
    assert retried.status_code == 201, retried.text
    assert balances == (4_000, 1_000)
    assert_balanced(report)


# -- text the database must store or refuse cleanly ----------------------------------------------


def test_a_nul_character_in_a_customer_name_is_never_a_server_error(service: PaymentsApi) -> None:
    response = service.client.post("/v1/customers", json={"name": "Ada\x00Lovelace"}, headers=service.admin_headers)

    assert response.status_code < 500, response.text


def test_a_nul_character_in_a_payment_reference_is_never_a_server_error(service: PaymentsApi) -> None:
    alice, payer, _, payee = open_pair(service, 1_000)

    response = service.pay(alice, payer, payee, 100, reference="invoice\x0042")

    assert response.status_code < 500, response.text
    assert (service.balance(payer), service.balance(payee)) == ((900, 100) if response.is_success else (1_000, 0))


@pytest.mark.parametrize(
    "path",
    ["/v1/accounts/acc%00x", "/v1/accounts/acc%00x/entries", "/v1/payments/pay%00x"],
    ids=["account", "entries", "payment"],
)
def test_a_nul_character_in_a_resource_id_is_404_not_a_server_error(service: PaymentsApi, path: str) -> None:
    alice = service.create_customer("Alice")

    response = service.client.get(path, headers=alice.headers)

    assert response.status_code == 404, response.text


def _set_balance(service: PaymentsApi, account_id: str, balance_minor: int) -> None:
    """Put an account at the edge of the range by hand: reaching it by deposits takes about 9,219 of them."""
    with service.app.state.service.db.engine.begin() as conn:
        conn.execute(update(accounts).where(accounts.c.id == account_id).values(balance_minor=balance_minor))


def _money_state(service: PaymentsApi) -> tuple[dict[str, int], dict[str, int]]:
    """Ledger rows and balances; a refusal is still an answer, kept for its Idempotency-Key as any other."""
    state = service.stored_state()
    return {table: rows for table, rows in state.rows.items() if table != "idempotency_keys"}, state.balances


@pytest.mark.parametrize("side", ["receiver", "funding account"])
def test_a_deposit_past_the_64_bit_balance_range_is_422_and_writes_nothing(service: PaymentsApi, side: str) -> None:
    owner = service.create_customer()
    account = service.open_account(owner)
    service.fund(account, 100)
    edge = (account, 2**63 - 150) if side == "receiver" else ("acc_fundingusd", -(2**63) + 150)
    _set_balance(service, *edge)
    before = _money_state(service)

    assert_problem(service.deposit(account, 999), 422, "balance_limit_exceeded")
    assert _money_state(service) == before


def test_a_payment_past_the_64_bit_balance_range_is_422_and_writes_nothing(service: PaymentsApi) -> None:
    payer, payee = service.create_customer(), service.create_customer()
    source, target = service.open_account(payer), service.open_account(payee)
    service.fund(source, 1_000)
    _set_balance(service, target, 2**63 - 500)
    before = _money_state(service)

    assert_problem(service.pay(payer, source, target, 999), 422, "balance_limit_exceeded")
    assert _money_state(service) == before

"""SQLite's writer slot held by someone else (a frozen worker): bounded waits, and the event loop stays free."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from core_services.database import WRITE_LOCK_WAIT_SECONDS
from core_services.settings import ServiceSettings
from tests.core_services.payments.conftest import PaymentsApi, assert_problem


@contextmanager
def writer_slot_taken(settings: ServiceSettings, release_after: float) -> Iterator[None]:
    """Hold the slot as another worker process would (flock on our own open file), then let go."""
    lock_path = Path(settings.payments_db.removeprefix("sqlite:///") + ".writer-lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    releaser = threading.Timer(release_after, os.close, args=(fd,))  # closing the file releases the lock
    releaser.start()
    try:
        yield
    finally:
        releaser.join()


@contextmanager
def paying_from_threads(pay: Callable[[], httpx.Response], count: int) -> Iterator[list[httpx.Response]]:
    """`count` payments sent at once from threads; the answers are all in when the block ends."""
    answers: list[httpx.Response] = []
    payers = [threading.Thread(target=lambda: answers.append(pay())) for _ in range(count)]
    for thread in payers:
        thread.start()
    try:
        yield answers
    finally:
        for thread in payers:
            thread.join()


def test_a_payment_waiting_for_a_held_writer_slot_is_503_with_retry_after_and_writes_nothing(
    api: PaymentsApi, settings: ServiceSettings
) -> None:
    payer, payee = api.create_customer(), api.create_customer()
    source, target = api.open_account(payer), api.open_account(payee)
    api.fund(source, 1_000)
    before = api.stored_state()
    with writer_slot_taken(settings, release_after=WRITE_LOCK_WAIT_SECONDS + 2):
        started = time.monotonic()
        response = api.pay(payer, source, target, 100)
        waited = time.monotonic() - started
    assert_problem(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "1"
    assert WRITE_LOCK_WAIT_SECONDS <= waited < WRITE_LOCK_WAIT_SECONDS + 1.5
    assert api.stored_state() == before
    assert api.pay(payer, source, target, 100).status_code == 201  # the slot is free again: served as before


def test_readyz_answers_at_once_while_payments_wait_for_the_writer_slot(
    api: PaymentsApi, settings: ServiceSettings
) -> None:
    payer, payee = api.create_customer(), api.create_customer()
    source, target = api.open_account(payer), api.open_account(payee)
    api.fund(source, 1_000)
    with (
        writer_slot_taken(settings, release_after=WRITE_LOCK_WAIT_SECONDS + 1),
        paying_from_threads(lambda: api.pay(payer, source, target, 100), 3) as answers,
    ):
        time.sleep(0.3)  # the payments are waiting now
        started = time.monotonic()
        ready = api.client.get("/readyz")
        assert time.monotonic() - started < 0.5
        assert ready.status_code == 200
    assert sorted(response.status_code for response in answers) == [503, 503, 503]


def test_payments_waiting_for_the_writer_slot_all_settle_once_it_is_free_within_the_bound(
    api: PaymentsApi, settings: ServiceSettings
) -> None:
    # They wait on the event loop, one of them watching the slot, and all settle once the
    # other worker lets go.
    payer, payee = api.create_customer(), api.create_customer()
    source, target = api.open_account(payer), api.open_account(payee)
    api.fund(source, 1_000)
    with (
        writer_slot_taken(settings, release_after=0.5),
        paying_from_threads(lambda: api.pay(payer, source, target, 100), 4) as answers,
    ):
        pass
    assert [response.status_code for response in answers] == [201, 201, 201, 201]
    assert api.balance(source) == 600

"""The portfolio's copy of payments' revocation list: refreshed in the background, at most 0.75 s old, kept when
payments is away."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

import pytest

from core_services.auth import Principal
from core_services.portfolio.revocations import RevocationList
from core_services.problems import Problem

OLD_TOKEN = Principal("cus_a", issued_ms=1_000)
NEW_TOKEN = Principal("cus_a", issued_ms=3_000)


def test_a_token_issued_before_its_customers_revocation_is_refused_and_a_later_one_is_not() -> None:
    revocations = RevocationList(lambda: {"cus_a": 2_000})
    with pytest.raises(Problem) as refused:
        asyncio.run(revocations.check(OLD_TOKEN))
    assert refused.value.status == 401
    asyncio.run(revocations.check(NEW_TOKEN))
    asyncio.run(revocations.check(Principal(None)))  # the admin and services are not customers


def test_when_payments_does_not_answer_the_last_list_stands_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers: list[dict[str, int] | None] = [{"cus_a": 2_000}, None, None]

    def fetch() -> dict[str, int]:
        answer = answers.pop(0)
        if answer is None:
            raise ConnectionError("payments is down")
        return answer

    revocations = RevocationList(fetch, fresh_seconds=0, grace_seconds=0)  # every check asks and waits
    for _ in range(3):
        with pytest.raises(Problem):
            asyncio.run(revocations.check(OLD_TOKEN))
    assert answers == []
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "payments is down" in warnings[0].getMessage()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Payments:
    """A payments that answers only when told to: fetches block until `answer` is set."""

    def __init__(self, revoked: dict[str, int]) -> None:
        self.revoked = revoked
        self.answer = threading.Event()
        self.fetches = 0

    def fetch(self) -> dict[str, int]:
        self.fetches += 1
        self.answer.wait(5)
        return dict(self.revoked)


def fresh_list(payments: Payments, clock: Clock) -> RevocationList:
    revocations = RevocationList(payments.fetch, monotonic=clock)
    payments.answer.set()
    asyncio.run(revocations.check(NEW_TOKEN))  # the first check waits for the first list
    payments.answer.clear()
    return revocations


def test_within_the_grace_a_stale_list_is_refreshed_in_the_background_and_the_request_does_not_wait() -> None:
    payments, clock = Payments({}), Clock()
    revocations = fresh_list(payments, clock)
    clock.now += 0.6  # stale, within the grace

    asyncio.run(asyncio.wait_for(revocations.check(NEW_TOKEN), timeout=1))  # payments has not answered

    assert eventually(lambda: payments.fetches == 2)  # the refresh did start
    payments.answer.set()


def test_past_the_grace_the_request_waits_for_the_refreshed_list() -> None:
    payments, clock = Payments({}), Clock()
    revocations = fresh_list(payments, clock)
    payments.revoked = {"cus_a": 2_000}
    clock.now += 0.8  # stale past the grace
    payments.answer.set()

    with pytest.raises(Problem):
        asyncio.run(revocations.check(OLD_TOKEN))


def test_a_revocation_is_honoured_once_the_background_refresh_lands() -> None:
    payments, clock = Payments({}), Clock()
    revocations = fresh_list(payments, clock)
    payments.revoked = {"cus_a": 2_000}
    clock.now += 0.6
    asyncio.run(revocations.check(OLD_TOKEN))  # still the old list: the refresh runs behind it
    payments.answer.set()

    assert eventually(lambda: refused(revocations, OLD_TOKEN))
    assert payments.fetches == 2  # fresh again from the refresh's start: no more fetches


def eventually(condition: Callable[[], bool], seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def refused(revocations: RevocationList, principal: Principal) -> bool:
    try:
        asyncio.run(revocations.check(principal))
    except Problem:
        return True
    return False

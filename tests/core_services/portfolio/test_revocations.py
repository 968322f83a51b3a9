"""The portfolio's copy of payments' revocation list: fresh within half a second, kept when payments is away."""

from __future__ import annotations

import asyncio
import logging

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

    revocations = RevocationList(fetch, fresh_seconds=0)  # every check asks again
    for _ in range(3):
        with pytest.raises(Problem):
            asyncio.run(revocations.check(OLD_TOKEN))
    assert answers == []
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "payments is down" in warnings[0].getMessage()

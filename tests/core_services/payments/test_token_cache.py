"""Customer tokens checked without the database while the revocation list is fresh, and refreshed once when stale."""

from __future__ import annotations

import pytest

from core_services.payments.service import PaymentsService
from tests.core_services.payments.conftest import FakeClock, PaymentsApi


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _service(api: PaymentsApi, clock: FakeClock) -> PaymentsService:
    """The app's database and tokens, on the test's clock."""
    serving: PaymentsService = api.app.state.service
    return PaymentsService(serving.db, serving.tokens, monotonic=clock)


def test_a_stale_revocation_list_sends_one_caller_to_the_database_and_lets_the_others_through(
    api: PaymentsApi, clock: FakeClock
) -> None:
    service = _service(api, clock)
    token = api.create_customer().token
    service.authenticate(token)
    clock.now += 0.6  # the list is past its freshness

    first = service.known_caller(token)
    while_refreshing = [service.known_caller(token) for _ in range(3)]

    assert first is None
    assert all(principal is not None for principal in while_refreshing)


def test_the_caller_sent_to_refresh_does_refresh_and_everyone_is_known_again(
    api: PaymentsApi, clock: FakeClock
) -> None:
    service = _service(api, clock)
    token = api.create_customer().token
    service.authenticate(token)
    clock.now += 0.6
    assert service.known_caller(token) is None

    service.authenticate(token)
    clock.now += 0.3  # past the grace, within the refreshed list's freshness

    assert service.known_caller(token) is not None


def test_a_refresh_that_never_finishes_sends_another_caller_after_the_grace(api: PaymentsApi, clock: FakeClock) -> None:
    service = _service(api, clock)
    token = api.create_customer().token
    service.authenticate(token)
    clock.now += 0.6
    assert service.known_caller(token) is None  # this caller's refresh fails: it never calls authenticate

    clock.now += 0.3

    assert service.known_caller(token) is None

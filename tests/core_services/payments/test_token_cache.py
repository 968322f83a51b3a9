"""Customer tokens checked without the database while the revocation list is fresh, and refreshed once when stale."""

from __future__ import annotations

import pytest

from core_services.payments import ledger_store as store
from core_services.payments.service import PaymentsService
from tests.core_services.payments.conftest import FakeClock, PaymentsApi


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _service(api: PaymentsApi, clock: FakeClock) -> PaymentsService:
    """The app's database and tokens, on the test's clock."""
    serving: PaymentsService = api.app.state.service
    return PaymentsService(serving.db, serving.tokens, monotonic=clock)


def test_a_stale_revocation_list_is_refreshed_once_in_the_background_while_callers_go_on(
    api: PaymentsApi, clock: FakeClock
) -> None:
    service = _service(api, clock)
    token = api.create_customer().token
    service.authenticate(token)
    clock.now += 0.6  # the list is past its freshness, within the grace

    callers = [service.known_caller(token) for _ in range(3)]
    refreshes = [service.revocations_refresh_due() for _ in range(3)]

    assert all(principal is not None for principal in callers)
    assert refreshes == [True, False, False]


def test_a_fresh_revocation_list_needs_no_refresh(api: PaymentsApi, clock: FakeClock) -> None:
    service = _service(api, clock)
    service.authenticate(api.create_customer().token)
    clock.now += 0.4

    assert not service.revocations_refresh_due()


def test_after_the_background_refresh_callers_are_known_past_the_grace(api: PaymentsApi, clock: FakeClock) -> None:
    service = _service(api, clock)
    token = api.create_customer().token
    service.authenticate(token)
    clock.now += 0.6
    assert service.revocations_refresh_due()

    service.refresh_revocations()
    clock.now += 0.4  # past the old list's grace, within the refreshed list's freshness

    assert service.known_caller(token) is not None
    assert not service.revocations_refresh_due()


def test_a_refresh_that_never_finishes_sends_callers_to_the_database_after_the_grace(
    api: PaymentsApi, clock: FakeClock
) -> None:
    service = _service(api, clock)
    token = api.create_customer().token
    service.authenticate(token)
    clock.now += 0.6
    assert service.revocations_refresh_due()  # this refresh fails: refresh_revocations never runs

    clock.now += 0.3

    assert service.known_caller(token) is None
    assert service.revocations_refresh_due()


def test_a_revocation_stored_by_another_worker_is_honoured_after_the_refresh(
    api: PaymentsApi, clock: FakeClock
) -> None:
    service = _service(api, clock)
    customer = api.create_customer()
    service.authenticate(customer.token)
    api.client.delete(f"/v1/customers/{customer.id}/tokens", headers=api.admin_headers)  # the app: another worker
    clock.now += 0.6

    service.refresh_revocations()

    assert service.known_caller(customer.token) is None


def test_a_refresh_whose_read_missed_this_workers_revocation_does_not_undo_it(
    api: PaymentsApi, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(api, clock)
    customer = api.create_customer()
    service.authenticate(customer.token)
    admin = service.tokens.authenticate(api.admin_headers["Authorization"].removeprefix("Bearer "))[0]
    service.revoke_tokens(admin, customer.id)
    monkeypatch.setattr(store, "all_revocations", lambda conn: {})  # the read began before the revocation

    service.refresh_revocations()

    assert service.known_caller(customer.token) is None

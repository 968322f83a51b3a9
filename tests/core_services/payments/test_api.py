"""End-to-end ring in-process: the payments API over HTTP, on the embedded SQLite default."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from core_services.problems import PROBLEM_MEDIA_TYPE
from core_services.settings import ServiceSettings
from tests.core_services.payments.conftest import (
    PROBLEM_FIELDS,
    Customer,
    PaymentsApi,
    assert_problem,
    new_key,
    running_service,
)


def sqlite_file(settings: ServiceSettings) -> Path:
    return Path(settings.payments_db.removeprefix("sqlite:///"))


def funded_account(api: PaymentsApi, owner: Customer, amount_minor: int, currency: str = "USD") -> str:
    account_id = api.open_account(owner, currency)
    api.fund(account_id, amount_minor)
    return account_id


# -- customers -----------------------------------------------------------------------------------


def test_creating_a_customer_answers_its_id_and_a_token(api: PaymentsApi) -> None:
    response = api.client.post("/v1/customers", json={"name": "Ada"}, headers=api.admin_headers)

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("cus_")
    assert body["token"]


def test_a_customer_token_is_stored_only_as_its_sha256(api: PaymentsApi, settings: ServiceSettings) -> None:
    customer = api.create_customer()

    database = sqlite_file(settings)
    with sqlite3.connect(database) as conn:
        (stored,) = conn.execute("SELECT token_sha256 FROM customers WHERE id = ?", (customer.id,)).fetchone()
    on_disk = b"".join(path.read_bytes() for path in database.parent.glob(f"{database.name}*") if path.is_file())

    assert stored == hashlib.sha256(customer.token.encode()).hexdigest()
    assert customer.token.encode() not in on_disk


def test_a_customer_token_authenticates_that_customer(api: PaymentsApi) -> None:
    customer = api.create_customer()
    account_id = api.open_account(customer)

    response = api.client.get(f"/v1/accounts/{account_id}", headers=customer.headers)

    assert response.status_code == 200


def test_a_known_customer_token_costs_no_query_per_request(api: PaymentsApi) -> None:
    # The payment path's cost: a token's digest is looked up once, and the revocations are
    # read at most once per refresh interval (0.5 s), whatever the request rate.
    customer = api.create_customer()
    account_id = api.open_account(customer)  # the token is known from here on
    statements: list[str] = []
    engine = api.app.state.service.db.engine

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    started = time.monotonic()
    try:
        for _ in range(12):
            assert api.client.get(f"/v1/accounts/{account_id}", headers=customer.headers).status_code == 200
            time.sleep(0.1)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    refreshes_allowed = int((time.monotonic() - started) / 0.5) + 1

    assert not [s for s in statements if "customer_tokens" in s]
    assert len([s for s in statements if "token_revocations" in s]) <= refreshes_allowed


def test_only_the_admin_creates_customers(api: PaymentsApi) -> None:
    customer = api.create_customer()

    response = api.client.post("/v1/customers", json={"name": "Mallory"}, headers=customer.headers)

    assert_problem(response, 403, "forbidden")


# -- accounts ------------------------------------------------------------------------------------


def test_a_new_account_holds_zero_in_its_currency(api: PaymentsApi) -> None:
    customer = api.create_customer()

    response = api.client.post("/v1/accounts", json={"currency": "EUR"}, headers=customer.headers)

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("acc_")
    assert (body["currency"], body["balance_minor"]) == ("EUR", 0)


def test_an_owner_reads_its_account(api: PaymentsApi) -> None:
    customer = api.create_customer()
    account_id = funded_account(api, customer, 1_500)

    response = api.client.get(f"/v1/accounts/{account_id}", headers=customer.headers)

    assert response.json() == {"id": account_id, "currency": "USD", "balance_minor": 1_500}


def test_the_admin_cannot_open_an_account(api: PaymentsApi) -> None:
    response = api.client.post("/v1/accounts", json={"currency": "USD"}, headers=api.admin_headers)

    assert_problem(response, 403, "forbidden")


def test_an_unknown_account_is_404(api: PaymentsApi) -> None:
    customer = api.create_customer()

    response = api.client.get("/v1/accounts/acc_00000000000000000000", headers=customer.headers)

    assert_problem(response, 404, "account_not_found")


def test_the_funding_account_is_not_visible_through_the_api(api: PaymentsApi) -> None:
    customer = api.create_customer()
    funded_account(api, customer, 100)

    response = api.client.get("/v1/accounts/acc_fundingusd", headers=api.admin_headers)

    assert_problem(response, 404, "account_not_found")


# -- deposits ------------------------------------------------------------------------------------


def test_a_deposit_credits_the_account_from_the_funding_account(api: PaymentsApi) -> None:
    customer = api.create_customer()
    account_id = api.open_account(customer)

    response = api.deposit(account_id, 50_000)

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("pay_")
    assert (body["status"], body["account_id"], body["amount_minor"], body["currency"]) == (
        "settled",
        account_id,
        50_000,
        "USD",
    )
    assert api.balance(account_id) == 50_000


def test_only_the_admin_deposits(api: PaymentsApi) -> None:
    customer = api.create_customer()
    account_id = api.open_account(customer)

    response = api.client.post(
        "/v1/deposits",
        json={"account_id": account_id, "amount_minor": 100},
        headers={**customer.headers, "Idempotency-Key": new_key()},
    )

    assert_problem(response, 403, "forbidden")
    assert api.balance(account_id) == 0


def test_a_deposit_to_an_unknown_account_is_404(api: PaymentsApi) -> None:
    response = api.deposit("acc_00000000000000000000", 100)

    assert_problem(response, 404, "account_not_found")


# -- payments ------------------------------------------------------------------------------------


def test_a_payment_moves_money_and_answers_a_settled_payment(api: PaymentsApi) -> None:
    alice, bob = api.create_customer("Alice"), api.create_customer("Bob")
    payer, payee = funded_account(api, alice, 10_000), api.open_account(bob)

    response = api.pay(alice, payer, payee, 2_500, reference="rent")

    assert response.status_code == 201
    body = response.json()
    assert body["id"].startswith("pay_")
    assert (
        body["status"],
        body["from_account"],
        body["to_account"],
        body["amount_minor"],
        body["currency"],
        body["reference"],
    ) == ("settled", payer, payee, 2_500, "USD", "rent")
    assert (api.balance(payer), api.balance(payee)) == (7_500, 2_500)


@pytest.mark.parametrize("reader", ["payer", "payee"])
def test_a_payment_is_visible_to_the_owner_of_either_account(api: PaymentsApi, reader: str) -> None:
    alice, bob = api.create_customer("Alice"), api.create_customer("Bob")
    payer, payee = funded_account(api, alice, 10_000), api.open_account(bob)
    paid = api.pay(alice, payer, payee, 100).json()

    response = api.client.get(f"/v1/payments/{paid['id']}", headers={"payer": alice, "payee": bob}[reader].headers)

    assert response.status_code == 200
    assert {key: response.json()[key] for key in paid} == paid


def test_a_payment_is_404_for_a_customer_owning_neither_account(api: PaymentsApi) -> None:
    alice, bob, eve = api.create_customer("Alice"), api.create_customer("Bob"), api.create_customer("Eve")
    payer, payee = funded_account(api, alice, 10_000), api.open_account(bob)
    paid = api.pay(alice, payer, payee, 100).json()

    response = api.client.get(f"/v1/payments/{paid['id']}", headers=eve.headers)

    assert_problem(response, 404, "payment_not_found")


def test_an_unknown_payment_is_404(api: PaymentsApi) -> None:
    response = api.client.get("/v1/payments/pay_00000000000000000000", headers=api.admin_headers)

    assert_problem(response, 404, "payment_not_found")


def test_a_payment_beyond_the_balance_is_422_insufficient_funds_and_moves_nothing(api: PaymentsApi) -> None:
    alice = api.create_customer()
    payer, payee = funded_account(api, alice, 999), api.open_account(alice)
    before = api.verify()

    response = api.pay(alice, payer, payee, 1_000)

    assert_problem(response, 422, "insufficient_funds")
    assert (api.balance(payer), api.balance(payee)) == (999, 0)
    assert api.verify() == before


def test_a_payment_in_another_currency_than_its_accounts_is_422_currency_mismatch(api: PaymentsApi) -> None:
    alice = api.create_customer()
    payer, payee = funded_account(api, alice, 1_000), api.open_account(alice, "EUR")

    response = api.pay(alice, payer, payee, 100, currency="USD")

    assert_problem(response, 422, "currency_mismatch")
    assert (api.balance(payer), api.balance(payee)) == (1_000, 0)


def test_a_payment_from_an_account_to_itself_is_422_same_account(api: PaymentsApi) -> None:
    alice = api.create_customer()
    account_id = funded_account(api, alice, 1_000)

    response = api.pay(alice, account_id, account_id, 100)

    assert_problem(response, 422, "same_account")
    assert api.balance(account_id) == 1_000


def test_a_payment_to_an_unknown_account_is_404_and_moves_nothing(api: PaymentsApi) -> None:
    alice = api.create_customer()
    payer = funded_account(api, alice, 1_000)

    response = api.pay(alice, payer, "acc_00000000000000000000", 100)

    assert_problem(response, 404, "account_not_found")
    assert api.balance(payer) == 1_000


def test_a_payment_to_the_funding_account_is_404(api: PaymentsApi) -> None:
    alice = api.create_customer()
    payer = funded_account(api, alice, 1_000)

    response = api.pay(alice, payer, "acc_fundingusd", 100)

    assert_problem(response, 404, "account_not_found")
    assert api.balance(payer) == 1_000


def test_the_platform_token_pays_on_a_customers_behalf_within_the_balance(api: PaymentsApi) -> None:
    # The admin token is the platform's own credential: the portfolio service settles
    # orders with it (and must, to reconcile an order when the customer is gone). It is
    # held to the same ledger rules as the customer.
    alice, bob = api.create_customer("Alice"), api.create_customer("Bob")
    payer, payee = funded_account(api, alice, 1_000), api.open_account(bob)
    platform = Customer("admin", api.admin_headers["Authorization"].removeprefix("Bearer "))

    settled = api.pay(platform, payer, payee, 600)
    refused = api.pay(platform, payer, payee, 600)

    assert settled.status_code == 201
    assert_problem(refused, 422, "insufficient_funds")
    assert (api.balance(payer), api.balance(payee)) == (400, 600)


# -- one customer cannot reach another's money ---------------------------------------------------


@pytest.fixture
def alice_and_mallory(api: PaymentsApi) -> tuple[Customer, str, Customer, str]:
    alice, mallory = api.create_customer("Alice"), api.create_customer("Mallory")
    return alice, funded_account(api, alice, 5_000), mallory, funded_account(api, mallory, 10)


def test_a_customer_cannot_read_another_customers_account(
    api: PaymentsApi, alice_and_mallory: tuple[Customer, str, Customer, str]
) -> None:
    _, alices_account, mallory, _ = alice_and_mallory

    response = api.client.get(f"/v1/accounts/{alices_account}", headers=mallory.headers)

    assert_problem(response, 404, "account_not_found")


def test_a_customer_cannot_list_another_customers_entries(
    api: PaymentsApi, alice_and_mallory: tuple[Customer, str, Customer, str]
) -> None:
    _, alices_account, mallory, _ = alice_and_mallory

    response = api.client.get(f"/v1/accounts/{alices_account}/entries", headers=mallory.headers)

    assert_problem(response, 404, "account_not_found")


def test_a_customer_cannot_pay_from_another_customers_account(
    api: PaymentsApi, alice_and_mallory: tuple[Customer, str, Customer, str]
) -> None:
    _, alices_account, mallory, mallorys_account = alice_and_mallory

    response = api.pay(mallory, alices_account, mallorys_account, 5_000)

    assert_problem(response, 404, "account_not_found")
    assert (api.balance(alices_account), api.balance(mallorys_account)) == (5_000, 10)


def test_two_customers_may_use_the_same_idempotency_key_independently(
    api: PaymentsApi, alice_and_mallory: tuple[Customer, str, Customer, str]
) -> None:
    alice, alices_account, mallory, mallorys_account = alice_and_mallory

    first = api.pay(alice, alices_account, mallorys_account, 5, key="shared-key")
    second = api.pay(mallory, mallorys_account, alices_account, 5, key="shared-key")

    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert "Idempotent-Replayed" not in second.headers


# -- entries -------------------------------------------------------------------------------------


def entry_pages(api: PaymentsApi, owner: Customer, account_id: str, limit: int) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, str | int] = {"limit": limit}
    while True:
        response = api.client.get(f"/v1/accounts/{account_id}/entries", params=params, headers=owner.headers)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["data"])
        if page["next_cursor"] is None:
            return pages
        params = {"limit": limit, "cursor": page["next_cursor"]}


def test_entries_are_listed_newest_first(api: PaymentsApi) -> None:
    alice = api.create_customer()
    account_id = api.open_account(alice)
    for amount in (100, 200, 300):
        api.fund(account_id, amount)

    response = api.client.get(f"/v1/accounts/{account_id}/entries", headers=alice.headers)

    assert [entry["amount_minor"] for entry in response.json()["data"]] == [300, 200, 100]
    assert response.json()["next_cursor"] is None


def test_entries_are_paginated_with_a_cursor_across_pages(api: PaymentsApi) -> None:
    alice = api.create_customer()
    account_id = api.open_account(alice)
    for amount in range(1, 6):
        api.fund(account_id, amount)

    pages = entry_pages(api, alice, account_id, limit=2)

    assert [[entry["amount_minor"] for entry in page] for page in pages] == [[5, 4], [3, 2], [1]]
    ids = [entry["id"] for page in pages for entry in page]
    assert ids == sorted(ids, reverse=True)


def test_a_last_page_that_is_exactly_full_has_no_next_cursor(api: PaymentsApi) -> None:
    alice = api.create_customer()
    account_id = api.open_account(alice)
    for amount in range(1, 5):
        api.fund(account_id, amount)

    pages = entry_pages(api, alice, account_id, limit=2)

    assert [len(page) for page in pages] == [2, 2]


def test_a_payment_writes_a_debit_entry_for_the_payer_and_a_credit_entry_for_the_payee(api: PaymentsApi) -> None:
    alice, bob = api.create_customer("Alice"), api.create_customer("Bob")
    payer, payee = funded_account(api, alice, 1_000), api.open_account(bob)
    payment_id = api.pay(alice, payer, payee, 400).json()["id"]

    payer_entries = api.client.get(f"/v1/accounts/{payer}/entries", headers=alice.headers).json()["data"]
    payee_entries = api.client.get(f"/v1/accounts/{payee}/entries", headers=bob.headers).json()["data"]

    assert (payer_entries[0]["payment_id"], payer_entries[0]["amount_minor"]) == (payment_id, -400)
    assert (payee_entries[0]["payment_id"], payee_entries[0]["amount_minor"]) == (payment_id, 400)


# -- ledger verification -------------------------------------------------------------------------


def test_the_ledger_of_a_fresh_service_is_balanced_and_empty(api: PaymentsApi) -> None:
    report = api.verify()

    assert report["balanced"] is True
    assert (report["sum_minor"], report["payments"], report["entries"], report["negative_accounts"]) == ({}, 0, 0, 0)


def test_the_ledger_balances_per_currency_after_deposits_and_payments(api: PaymentsApi) -> None:
    alice, bob = api.create_customer("Alice"), api.create_customer("Bob")
    alice_usd, bob_usd = funded_account(api, alice, 1_000), api.open_account(bob)
    alice_eur, bob_eur = funded_account(api, alice, 2_000, "EUR"), api.open_account(bob, "EUR")
    assert api.pay(alice, alice_usd, bob_usd, 300).status_code == 201
    assert api.pay(alice, alice_eur, bob_eur, 700, currency="EUR").status_code == 201

    report = api.verify()

    assert report["balanced"] is True
    assert report["sum_minor"] == {"EUR": 0, "USD": 0}
    assert (report["payments"], report["entries"], report["negative_accounts"]) == (4, 8, 0)


def test_ledger_verification_is_for_the_admin_only(api: PaymentsApi) -> None:
    customer = api.create_customer()

    response = api.client.get("/v1/ledger/verify", headers=customer.headers)

    assert_problem(response, 403, "forbidden")


# -- idempotent retries --------------------------------------------------------------------------


@pytest.fixture
def alice_pays_bob(api: PaymentsApi) -> tuple[Customer, str, str]:
    alice, bob = api.create_customer("Alice"), api.create_customer("Bob")
    return alice, funded_account(api, alice, 10_000), api.open_account(bob)


def test_a_replay_answers_the_first_status_and_body_marked_replayed(
    api: PaymentsApi, alice_pays_bob: tuple[Customer, str, str]
) -> None:
    alice, payer, payee = alice_pays_bob
    first = api.pay(alice, payer, payee, 1_000, key="pay-rent-2024-06")

    again = api.pay(alice, payer, payee, 1_000, key="pay-rent-2024-06")

    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"


def test_a_first_response_is_not_marked_replayed(api: PaymentsApi, alice_pays_bob: tuple[Customer, str, str]) -> None:
    alice, payer, payee = alice_pays_bob

    response = api.pay(alice, payer, payee, 1_000)

    assert "Idempotent-Replayed" not in response.headers


def test_a_replay_moves_the_money_only_once(api: PaymentsApi, alice_pays_bob: tuple[Customer, str, str]) -> None:
    alice, payer, payee = alice_pays_bob

    for _ in range(3):
        api.pay(alice, payer, payee, 1_000, key="pay-once")

    assert (api.balance(payer), api.balance(payee)) == (9_000, 1_000)
    assert api.verify()["payments"] == 2


def test_a_replay_with_the_body_keys_in_another_order_is_the_same_request(
    api: PaymentsApi, alice_pays_bob: tuple[Customer, str, str]
) -> None:
    alice, payer, payee = alice_pays_bob
    first = api.pay(alice, payer, payee, 1_000, key="reordered")
    reordered = f'{{"currency":"USD","amount_minor":1000,"to_account":"{payee}","from_account":"{payer}"}}'

    again = api.client.post(
        "/v1/payments",
        content=reordered,
        headers={**alice.headers, "Idempotency-Key": "reordered", "Content-Type": "application/json"},
    )

    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"


def test_the_same_key_with_another_body_is_422_idempotency_key_reused(
    api: PaymentsApi, alice_pays_bob: tuple[Customer, str, str]
) -> None:
    alice, payer, payee = alice_pays_bob
    api.pay(alice, payer, payee, 1_000, key="one-key")

    response = api.pay(alice, payer, payee, 2_000, key="one-key")

    assert_problem(response, 422, "idempotency_key_reused")
    assert api.balance(payer) == 9_000


def test_a_replay_of_a_refused_payment_is_refused_again_even_after_funds_arrive(
    api: PaymentsApi, alice_pays_bob: tuple[Customer, str, str]
) -> None:
    alice, payer, payee = alice_pays_bob
    refused = api.pay(alice, payer, payee, 20_000, key="too-much")
    api.fund(payer, 20_000)

    again = api.pay(alice, payer, payee, 20_000, key="too-much")

    assert_problem(again, 422, "insufficient_funds")
    assert again.json() == refused.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.balance(payee) == 0


def test_a_deposit_replay_answers_the_first_deposit(api: PaymentsApi) -> None:
    alice = api.create_customer()
    account_id = api.open_account(alice)
    first = api.deposit(account_id, 500, key="fund-1")

    again = api.deposit(account_id, 500, key="fund-1")

    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotent-Replayed"] == "true"
    assert api.balance(account_id) == 500


# -- authentication ------------------------------------------------------------------------------

AUTHENTICATED_CALLS = [
    ("POST", "/v1/customers", {"name": "x"}),
    ("POST", "/v1/accounts", {"currency": "USD"}),
    ("GET", "/v1/accounts/acc_00000000000000000000", None),
    ("GET", "/v1/accounts/acc_00000000000000000000/entries", None),
    ("POST", "/v1/deposits", {"account_id": "acc_00000000000000000000", "amount_minor": 1}),
    ("POST", "/v1/payments", {"from_account": "a", "to_account": "b", "amount_minor": 1, "currency": "USD"}),
    ("GET", "/v1/payments/pay_00000000000000000000", None),
    ("GET", "/v1/ledger/verify", None),
]
CALL_IDS = [
    f"{method} {path.split('/')[2]}{'/…' if path.count('/') > 2 else ''}" for method, path, _ in AUTHENTICATED_CALLS
]


def call(
    api: PaymentsApi, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> httpx.Response:
    response: httpx.Response = api.client.request(
        method, path, json=body, headers={**headers, "Idempotency-Key": new_key()}
    )
    return response


@pytest.mark.parametrize(("method", "path", "body"), AUTHENTICATED_CALLS, ids=CALL_IDS)
def test_a_request_without_a_token_is_401(
    api: PaymentsApi, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = call(api, method, path, body, {})

    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(("method", "path", "body"), AUTHENTICATED_CALLS, ids=CALL_IDS)
def test_a_request_with_a_bad_token_is_401(
    api: PaymentsApi, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = call(api, method, path, body, {"Authorization": "Bearer not-a-token"})

    assert_problem(response, 401, "unauthorized")


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Basic YWRtaW46YWRtaW4="],
    ids=["missing", "bad-bearer-token", "another-scheme"],
)
def test_every_401_names_the_bearer_scheme_in_www_authenticate(api: PaymentsApi, authorization: str | None) -> None:
    # RFC 9110 section 15.5.2: a 401 response MUST carry WWW-Authenticate (RFC 6750 section 3 for Bearer).
    headers = {} if authorization is None else {"Authorization": authorization}

    response = api.client.get("/v1/ledger/verify", headers=headers)

    assert_problem(response, 401, "unauthorized")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


# -- health --------------------------------------------------------------------------------------


def test_healthz_answers_ok_without_a_token(api: PaymentsApi) -> None:
    response = api.client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_answers_ready_while_the_database_answers(api: PaymentsApi) -> None:
    response = api.client.get("/readyz")

    assert (response.status_code, response.json()) == (200, {"status": "ready"})


# -- rate limits ---------------------------------------------------------------------------------


def test_a_caller_past_its_burst_gets_429_with_retry_after(
    make_settings: Callable[..., ServiceSettings], admin_headers: dict[str, str]
) -> None:
    with running_service(make_settings(NOVA_RATE_LIMIT="1", NOVA_RATE_BURST="2"), admin_headers) as api:
        statuses = [api.client.get("/v1/ledger/verify", headers=admin_headers) for _ in range(3)]

    assert [response.status_code for response in statuses[:2]] == [200, 200]
    assert_problem(statuses[2], 429, "rate_limited")
    assert int(statuses[2].headers["Retry-After"]) >= 1


# -- error shapes --------------------------------------------------------------------------------

ERRORS = [
    ("GET", "/v1/ledger/verify", False, None, 401),
    ("GET", "/v1/accounts/acc_00000000000000000000", True, None, 404),
    ("GET", "/v1/no-such-route", True, None, 404),
    ("DELETE", "/v1/payments", True, None, 405),
    ("POST", "/v1/customers", True, b'{"name": ', 400),
    ("POST", "/v1/customers", True, b'{"name": 7}', 422),
    ("POST", "/v1/customers", True, b'{"name": "' + b"x" * 70_000 + b'"}', 413),
    ("POST", "/v1/accounts", True, b'{"currency": "USD"}', 403),
    ("POST", "/v1/deposits", True, b'{"account_id": "acc_1", "amount_minor": 1}', 400),
]


@pytest.mark.parametrize(
    ("method", "path", "as_admin", "content", "status"),
    ERRORS,
    ids=["401", "404-account", "404-route", "405", "400", "422", "413", "403", "400-no-key"],
)
def test_every_error_is_a_problem_document_with_type_title_status_and_code(
    api: PaymentsApi, method: str, path: str, as_admin: bool, content: bytes | None, status: int
) -> None:
    headers = {**(api.admin_headers if as_admin else {}), "Content-Type": "application/json"}

    response = api.client.request(method, path, content=content, headers=headers)

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["type"] == f"https://nova.dev/problems/{body['code'].replace('_', '-')}"
    assert body["instance"] == path


def test_an_undeclared_method_is_405_with_an_allow_header(api: PaymentsApi) -> None:
    # RFC 9110 section 15.5.6: a 405 response MUST carry Allow with the methods the resource supports.
    response = api.client.delete("/v1/payments", headers=api.admin_headers)

    assert_problem(response, 405, "method_not_allowed")
    assert response.headers.get("Allow") == "POST"


@pytest.mark.parametrize("path", ["/v1/payments", "/v1/deposits"])
def test_the_openapi_document_marks_the_idempotency_key_required(api: PaymentsApi, path: str) -> None:
    # DESIGN: "Idempotency-Key header (required)"; clients generated from the document must send it.
    operation = api.client.get("/openapi.json").json()["paths"][path]["post"]

    (header,) = [parameter for parameter in operation["parameters"] if parameter["name"] == "Idempotency-Key"]

    assert header["in"] == "header"
    assert header.get("required") is True

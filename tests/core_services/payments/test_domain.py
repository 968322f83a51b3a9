"""Unit ring: ledger and idempotency rules, token checks, in-flight keys and rate limits.

No web framework, no database: these are the rules the service is built on.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from core_services import ratelimit
from core_services.auth import ADMIN, TokenAuthority, token_digest
from core_services.fingerprint import request_fingerprint
from core_services.idempotency import InFlightKeys, check_idempotency_key
from core_services.payments.domain import (
    MAX_AMOUNT_MINOR,
    Account,
    LedgerRuleViolation,
    StoredResponse,
    plan_transfer,
    replay,
    verify_ledger,
)
from core_services.problems import TITLES, Problem
from core_services.ratelimit import RateLimiter
from tests.core_services.payments.conftest import FakeClock

ADMIN_TOKEN = "unit-admin-token-" + "k" * 16


def customer_account(account_id: str = "acc_alice", balance_minor: int = 10_000, currency: str = "USD") -> Account:
    return Account(account_id, "cus_alice", currency, balance_minor)


def funding_account(currency: str = "USD", balance_minor: int = 0) -> Account:
    return Account(f"acc_funding{currency.lower()}", None, currency, balance_minor)


def violation_code(excinfo: pytest.ExceptionInfo[LedgerRuleViolation]) -> str:
    return excinfo.value.code


# -- plan_transfer -------------------------------------------------------------------------------


def test_a_payment_between_two_accounts_in_its_currency_is_planned() -> None:
    payer, payee = customer_account("acc_a"), customer_account("acc_b", balance_minor=0)

    transfer = plan_transfer(payer, payee, 2_500, "USD")

    assert (transfer.from_account, transfer.to_account, transfer.amount_minor, transfer.currency) == (
        payer,
        payee,
        2_500,
        "USD",
    )


def test_paying_an_account_from_itself_is_refused_as_same_account() -> None:
    account = customer_account()

    with pytest.raises(LedgerRuleViolation) as excinfo:
        plan_transfer(account, account, 100, "USD")

    assert violation_code(excinfo) == "same_account"


@pytest.mark.parametrize(
    ("payer_currency", "payee_currency", "payment_currency"),
    [("USD", "EUR", "USD"), ("USD", "EUR", "EUR"), ("EUR", "EUR", "USD"), ("USD", "USD", "GBP")],
    ids=["payee-in-another-currency", "payer-in-another-currency", "both-in-another", "payment-in-a-third"],
)
def test_a_payment_whose_currency_differs_from_either_account_is_refused_as_currency_mismatch(
    payer_currency: str, payee_currency: str, payment_currency: str
) -> None:
    payer = customer_account("acc_a", currency=payer_currency)
    payee = customer_account("acc_b", currency=payee_currency)

    with pytest.raises(LedgerRuleViolation) as excinfo:
        plan_transfer(payer, payee, 100, payment_currency)

    assert violation_code(excinfo) == "currency_mismatch"


def test_a_customer_account_cannot_pay_more_than_its_balance() -> None:
    payer = customer_account("acc_a", balance_minor=999)

    with pytest.raises(LedgerRuleViolation) as excinfo:
        plan_transfer(payer, customer_account("acc_b"), 1_000, "USD")

    assert violation_code(excinfo) == "insufficient_funds"


def test_a_customer_account_may_pay_its_whole_balance() -> None:
    payer = customer_account("acc_a", balance_minor=1_000)

    transfer = plan_transfer(payer, customer_account("acc_b"), 1_000, "USD")

    assert transfer.amount_minor == 1_000


def test_the_funding_account_may_pay_beyond_zero() -> None:
    funding = funding_account(balance_minor=-5_000)

    transfer = plan_transfer(funding, customer_account(), 1_000_000, "USD")

    assert transfer.from_account.is_funding


@pytest.mark.parametrize("amount_minor", [0, -1, -(10**6), MAX_AMOUNT_MINOR, MAX_AMOUNT_MINOR + 1, 10**30])
def test_amounts_outside_one_to_below_ten_to_the_fifteen_are_refused(amount_minor: int) -> None:
    with pytest.raises(LedgerRuleViolation) as excinfo:
        plan_transfer(funding_account(), customer_account(), amount_minor, "USD")

    assert violation_code(excinfo) == "validation_error"


@pytest.mark.parametrize("amount_minor", [1, MAX_AMOUNT_MINOR - 1])
def test_amounts_at_the_inner_edges_of_the_bounds_are_accepted(amount_minor: int) -> None:
    transfer = plan_transfer(funding_account(), customer_account(), amount_minor, "USD")

    assert transfer.amount_minor == amount_minor


@pytest.mark.parametrize(
    "amount_minor",
    [True, False, 1.5, 100.0, "100", None, [100]],
    ids=["true", "false", "fraction", "whole-float", "string", "null", "list"],
)
def test_amounts_that_are_not_integers_are_refused_even_when_they_look_like_one(amount_minor: Any) -> None:
    with pytest.raises(LedgerRuleViolation) as excinfo:
        plan_transfer(funding_account(), customer_account(), amount_minor, "USD")

    assert violation_code(excinfo) == "validation_error"


@pytest.mark.parametrize("currency", ["XXX", "usd", "US", "USDD", ""])
def test_a_currency_that_is_not_an_iso_4217_code_is_refused(currency: str) -> None:
    payer, payee = customer_account("acc_a", currency=currency), customer_account("acc_b", currency=currency)

    with pytest.raises(LedgerRuleViolation) as excinfo:
        plan_transfer(payer, payee, 100, currency)

    assert violation_code(excinfo) == "validation_error"


def test_every_rule_violation_code_is_a_problem_the_api_can_answer() -> None:
    payer = customer_account("acc_a", balance_minor=0)
    attempts: list[Callable[[], object]] = [
        lambda: plan_transfer(payer, payer, 1, "USD"),
        lambda: plan_transfer(payer, customer_account("acc_b", currency="EUR"), 1, "USD"),
        lambda: plan_transfer(payer, customer_account("acc_b"), 1, "USD"),
        lambda: plan_transfer(payer, customer_account("acc_b"), 0, "USD"),
    ]
    codes = set()
    for attempt in attempts:
        with pytest.raises(LedgerRuleViolation) as excinfo:
            attempt()
        codes.add(excinfo.value.code)

    assert codes <= set(TITLES)
    assert all(TITLES[code][0] == 422 for code in codes)


# -- double entry --------------------------------------------------------------------------------


def test_a_transfer_posts_two_entries_that_sum_to_zero() -> None:
    transfer = plan_transfer(customer_account("acc_a"), customer_account("acc_b"), 1_234, "USD")

    entries = transfer.entries()

    assert len(entries) == 2
    assert sum(entry.amount_minor for entry in entries) == 0


def test_a_transfer_debits_the_payer_and_credits_the_payee_in_its_currency() -> None:
    transfer = plan_transfer(
        customer_account("acc_a", currency="EUR"), customer_account("acc_b", currency="EUR"), 700, "EUR"
    )

    debit, credit = transfer.entries()

    assert (debit.account_id, debit.amount_minor, debit.currency) == ("acc_a", -700, "EUR")
    assert (credit.account_id, credit.amount_minor, credit.currency) == ("acc_b", 700, "EUR")


# -- idempotency fingerprints and replays ---------------------------------------------------------

PAYMENT_BODY: dict[str, Any] = {
    "from_account": "acc_a",
    "to_account": "acc_b",
    "amount_minor": 100,
    "currency": "USD",
    "reference": None,
}


def test_a_fingerprint_does_not_depend_on_the_order_of_the_body_keys() -> None:
    reordered = dict(reversed(list(PAYMENT_BODY.items())))

    assert request_fingerprint("payment", reordered) == request_fingerprint("payment", PAYMENT_BODY)


def test_a_fingerprint_is_stable_across_calls() -> None:
    assert request_fingerprint("payment", dict(PAYMENT_BODY)) == request_fingerprint("payment", dict(PAYMENT_BODY))


@pytest.mark.parametrize(
    "change",
    [
        {"amount_minor": 101},
        {"to_account": "acc_c"},
        {"from_account": "acc_c"},
        {"currency": "EUR"},
        {"reference": "rent"},
        {"amount_minor": "100"},
    ],
    ids=["amount", "payee", "payer", "currency", "reference", "amount-as-string"],
)
def test_a_fingerprint_differs_for_another_body(change: dict[str, Any]) -> None:
    other = {**PAYMENT_BODY, **change}

    assert request_fingerprint("payment", other) != request_fingerprint("payment", PAYMENT_BODY)


def test_a_fingerprint_differs_for_another_operation_with_the_same_body() -> None:
    body = {"account_id": "acc_a", "amount_minor": 100}

    assert request_fingerprint("deposit", body) != request_fingerprint("payment", body)


def test_a_replay_of_the_same_request_returns_the_stored_response() -> None:
    fingerprint = request_fingerprint("payment", PAYMENT_BODY)
    stored = StoredResponse(fingerprint, 201, {"id": "pay_1", "status": "settled"})

    assert replay(stored, fingerprint) is stored


def test_a_replay_of_another_request_under_the_same_key_raises_idempotency_key_reused() -> None:
    stored = StoredResponse(request_fingerprint("payment", PAYMENT_BODY), 201, {"id": "pay_1"})
    other = request_fingerprint("payment", {**PAYMENT_BODY, "amount_minor": 1})

    with pytest.raises(LedgerRuleViolation) as excinfo:
        replay(stored, other)

    assert violation_code(excinfo) == "idempotency_key_reused"


# -- ledger verification -------------------------------------------------------------------------


def test_a_ledger_whose_currencies_sum_to_zero_with_two_entries_per_payment_is_balanced() -> None:
    verification = verify_ledger(
        {"USD": 0, "EUR": 0}, negative_customer_accounts=0, payments=3, entries=6, mismatched_balances=0
    )

    assert verification.balanced


def test_an_empty_ledger_is_balanced() -> None:
    assert verify_ledger({}, 0, 0, 0, 0).balanced


@pytest.mark.parametrize(
    ("sums", "negative", "payments", "entries", "mismatched"),
    [
        ({"USD": 0, "EUR": 1}, 0, 3, 6, 0),
        ({"USD": -1}, 0, 3, 6, 0),
        ({"USD": 0}, 0, 3, 5, 0),
        ({"USD": 0}, 0, 3, 7, 0),
        ({"USD": 0}, 1, 3, 6, 0),
        ({"USD": 0}, 0, 3, 6, 1),
    ],
    ids=[
        "a-currency-off-by-one",
        "money-vanished",
        "an-entry-missing",
        "an-entry-too-many",
        "a-customer-account-negative",
        "a-cached-balance-disagrees-with-its-entries",
    ],
)
def test_a_ledger_breaking_any_invariant_is_unbalanced(
    sums: dict[str, int], negative: int, payments: int, entries: int, mismatched: int
) -> None:
    assert not verify_ledger(sums, negative, payments, entries, mismatched).balanced


def test_a_verification_reports_the_contracted_fields_with_currencies_in_order() -> None:
    verification = verify_ledger({"USD": 0, "EUR": 0}, 0, 2, 4, 0)

    report = verification.as_json()

    assert {"balanced", "sum_minor", "negative_accounts", "payments", "entries"} <= set(report)
    assert list(report["sum_minor"]) == ["EUR", "USD"]
    assert (report["payments"], report["entries"], report["negative_accounts"]) == (2, 4, 0)


# -- tokens --------------------------------------------------------------------------------------


@pytest.fixture
def authority() -> TokenAuthority:
    return TokenAuthority(ADMIN_TOKEN)


def unauthorized(excinfo: pytest.ExceptionInfo[Problem]) -> bool:
    return excinfo.value.status == 401 and excinfo.value.code == "unauthorized"


def test_an_issued_token_authenticates_as_its_customer(authority: TokenAuthority) -> None:
    token = authority.issue("cus_0123456789abcdef0123")

    principal, digest = authority.authenticate(token)

    assert principal.customer_id == "cus_0123456789abcdef0123"
    assert not principal.is_admin
    assert digest == hashlib.sha256(token.encode()).hexdigest() == token_digest(token)


def test_the_admin_token_authenticates_as_the_admin(authority: TokenAuthority) -> None:
    principal, _ = authority.authenticate(ADMIN_TOKEN)

    assert principal == ADMIN
    assert principal.is_admin


def test_two_tokens_issued_to_one_customer_differ(authority: TokenAuthority) -> None:
    assert authority.issue("cus_0123456789abcdef0123") != authority.issue("cus_0123456789abcdef0123")


def test_a_token_with_a_tampered_mac_is_unauthorized(authority: TokenAuthority) -> None:
    token = authority.issue("cus_0123456789abcdef0123")
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")

    with pytest.raises(Problem) as excinfo:
        authority.authenticate(tampered)

    assert unauthorized(excinfo)


def test_a_token_whose_customer_was_swapped_is_unauthorized(authority: TokenAuthority) -> None:
    token = authority.issue("cus_0123456789abcdef0123")
    forged = token.replace("cus_0123456789abcdef0123", "cus_ffffffffffffffffffff")

    with pytest.raises(Problem) as excinfo:
        authority.authenticate(forged)

    assert unauthorized(excinfo)


def test_a_token_issued_under_another_admin_key_is_unauthorized(authority: TokenAuthority) -> None:
    foreign = TokenAuthority("another-admin-token").issue("cus_0123456789abcdef0123")

    with pytest.raises(Problem) as excinfo:
        authority.authenticate(foreign)

    assert unauthorized(excinfo)


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "Bearer",
        "nvt_",
        "nvt_cus_abc_nonce",
        "nvt_cus_abc_nonce_mac_extra",
        "xyz_cus_abc_nonce_mac",
        ADMIN_TOKEN + "x",
        ADMIN_TOKEN[:-1],
        " " + ADMIN_TOKEN,
        "\u00e9\u00e9\u00e9",
    ],
    ids=[
        "garbage",
        "scheme-only",
        "prefix-only",
        "too-few-parts",
        "too-many-parts",
        "wrong-prefix",
        "admin-token-with-a-suffix",
        "admin-token-truncated",
        "admin-token-with-a-space",
        "non-ascii",
    ],
)
def test_garbage_tokens_are_unauthorized(authority: TokenAuthority, token: str) -> None:
    with pytest.raises(Problem) as excinfo:
        authority.authenticate(token)

    assert unauthorized(excinfo)


@pytest.mark.parametrize("token", [None, ""], ids=["missing", "empty"])
def test_a_missing_token_is_unauthorized_and_asks_for_a_bearer_token(
    authority: TokenAuthority, token: str | None
) -> None:
    with pytest.raises(Problem) as excinfo:
        authority.authenticate(token)

    assert unauthorized(excinfo)
    assert excinfo.value.headers["WWW-Authenticate"] == "Bearer"


# -- idempotency keys in flight ------------------------------------------------------------------


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


def claim_and_report(keys: InFlightKeys, scope: str, key: str, entered: threading.Event | None = None) -> str:
    with keys.claim(scope, key):
        if entered is not None:
            entered.set()
    return "proceeded"


def test_a_duplicate_waiting_longer_than_the_bound_gets_request_in_progress(pool: ThreadPoolExecutor) -> None:
    keys = InFlightKeys(wait_seconds=0.05)

    with keys.claim("cus_a", "key-1"):
        duplicate = pool.submit(claim_and_report, keys, "cus_a", "key-1")
        error = duplicate.exception(timeout=5)

    assert isinstance(error, Problem)
    assert (error.status, error.code) == (409, "request_in_progress")
    assert error.headers["Retry-After"] == "1"


def test_a_waiting_duplicate_proceeds_once_the_first_request_releases_its_key(pool: ThreadPoolExecutor) -> None:
    keys = InFlightKeys(wait_seconds=5)
    entered = threading.Event()

    with keys.claim("cus_a", "key-1"):
        duplicate: Future[str] = pool.submit(claim_and_report, keys, "cus_a", "key-1", entered)
        assert not entered.wait(0.1), "the duplicate ran while the first request held the key"

    assert duplicate.result(timeout=5) == "proceeded"


@pytest.mark.parametrize(
    ("scope", "key"), [("cus_a", "key-2"), ("cus_b", "key-1")], ids=["another-key", "same-key-of-another-caller"]
)
def test_another_key_or_another_caller_does_not_wait(pool: ThreadPoolExecutor, scope: str, key: str) -> None:
    keys = InFlightKeys(wait_seconds=0.05)

    with keys.claim("cus_a", "key-1"):
        assert pool.submit(claim_and_report, keys, scope, key).result(timeout=5) == "proceeded"


def test_a_key_is_released_when_its_request_fails() -> None:
    keys = InFlightKeys(wait_seconds=0.05)

    with pytest.raises(RuntimeError), keys.claim("cus_a", "key-1"):
        raise RuntimeError("the request crashed")

    assert claim_and_report(keys, "cus_a", "key-1") == "proceeded"


def test_a_missing_idempotency_key_is_idempotency_key_missing() -> None:
    with pytest.raises(Problem) as excinfo:
        check_idempotency_key(None)

    assert (excinfo.value.status, excinfo.value.code) == (400, "idempotency_key_missing")


@pytest.mark.parametrize(
    "key",
    ["", "k" * 256, "tab\there", "caf\u00e9", "nul\x00"],
    ids=["empty", "256-chars", "control-character", "non-ascii", "nul"],
)
def test_an_idempotency_key_outside_1_to_255_printable_ascii_characters_is_a_validation_error(key: str) -> None:
    with pytest.raises(Problem) as excinfo:
        check_idempotency_key(key)

    assert (excinfo.value.status, excinfo.value.code) == (422, "validation_error")


@pytest.mark.parametrize("key", ["k", "k" * 255, "order-42:retry ~!"], ids=["1-char", "255-chars", "punctuation"])
def test_an_idempotency_key_of_1_to_255_printable_ascii_characters_is_accepted(key: str) -> None:
    assert check_idempotency_key(key) == key


# -- rate limits ---------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(monotonic=fake))
    return fake


@pytest.mark.usefixtures("clock")
def test_a_caller_is_admitted_for_its_whole_burst() -> None:
    limiter = RateLimiter(per_second=1, burst=3)

    for _ in range(3):
        limiter.admit("cus_a")


@pytest.mark.usefixtures("clock")
def test_a_caller_past_its_burst_gets_429_with_retry_after() -> None:
    limiter = RateLimiter(per_second=1, burst=3)
    for _ in range(3):
        limiter.admit("cus_a")

    with pytest.raises(Problem) as excinfo:
        limiter.admit("cus_a")

    assert (excinfo.value.status, excinfo.value.code) == (429, "rate_limited")
    assert excinfo.value.headers["Retry-After"] == "1"


@pytest.mark.usefixtures("clock")
def test_retry_after_is_the_whole_seconds_until_a_request_is_admitted_again() -> None:
    limiter = RateLimiter(per_second=0.25, burst=1)
    limiter.admit("cus_a")

    with pytest.raises(Problem) as excinfo:
        limiter.admit("cus_a")

    assert excinfo.value.headers["Retry-After"] == "4"


def test_a_limited_caller_is_admitted_again_once_its_bucket_refills(clock: FakeClock) -> None:
    limiter = RateLimiter(per_second=2, burst=1)
    limiter.admit("cus_a")
    with pytest.raises(Problem):
        limiter.admit("cus_a")

    clock.now += 0.5

    limiter.admit("cus_a")


@pytest.mark.usefixtures("clock")
def test_one_callers_burst_does_not_limit_another_caller() -> None:
    limiter = RateLimiter(per_second=1, burst=1)
    limiter.admit("cus_a")

    limiter.admit("cus_b")

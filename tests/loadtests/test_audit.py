"""The payment audit on a hand-built book and a fake payments API: expected balances, lost and duplicated payments."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from loadtests.audit import (
    AUDIT_KEYS,
    Outcome,
    PaymentBook,
    audit,
    breach,
    merge_audits,
    outcome_of,
    plan_audit,
    read_audit,
    summary_line,
    write_audit,
)
from loadtests.samples import CONNECTION_FAILED

FUNDING = 10_000
ALICE, BOB, CAROL, TRADER = "acc_alice", "acc_bob", "acc_carol", "acc_trader"
TOKENS = {ALICE: "tok-alice-secret", BOB: "tok-bob-secret", CAROL: "tok-carol-secret"}


def a_book(lookups_kept: int = 100) -> PaymentBook:
    book = PaymentBook(lookups_kept, random.Random(7))
    for account, token in TOKENS.items():
        book.open_account(account, token, FUNDING)
    return book


class FakePayments:
    """The two lookups the audit makes, answered from a ledger the test controls."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.balances = {account: FUNDING for account in TOKENS}
        self.down = False
        self.tokens_seen: set[str] = set()

    def apply(self, payment_id: str, source: str, target: str, amount: int) -> None:
        self.stored[payment_id] = {
            "id": payment_id,
            "from_account": source,
            "to_account": target,
            "amount_minor": amount,
        }
        self.move(source, target, amount)

    def move(self, source: str, target: str, amount: int) -> None:
        if source in self.balances:
            self.balances[source] -= amount
        if target in self.balances:
            self.balances[target] += amount

    def lookup(self, path: str, token: str) -> tuple[int, dict[str, Any]]:
        self.tokens_seen.add(token)
        if self.down:
            return CONNECTION_FAILED, {}
        kind, _, ident = path.removeprefix("/v1/").partition("/")
        if kind == "payments":
            return (200, self.stored[ident]) if ident in self.stored else (404, {"code": "payment_not_found"})
        if TOKENS.get(ident) != token:
            return 404, {"code": "account_not_found"}
        return 200, {"id": ident, "currency": "USD", "balance_minor": self.balances[ident]}


def pay(
    book: PaymentBook,
    service: FakePayments | None,
    source: str,
    target: str,
    amount: int,
    status: int = 201,
    attempts: int = 1,
) -> str:
    """A payment as a paying customer makes it: registered in flight, settled by its final answer.

    A 201 is applied to `service` as a faithful payments API would.
    """
    record = book.sending(source, target, amount, TOKENS[source])
    payment_id = f"pay_{book.acknowledged + book.refused + book.unknown}"
    book.settle(record, status, attempts, payment_id if status == 201 else None)
    if status == 201 and service is not None:
        service.apply(payment_id, source, target, amount)
    return payment_id


def test_the_expected_balance_is_the_deposit_minus_acknowledged_outgoing_plus_incoming() -> None:
    book = a_book()
    pay(book, None, ALICE, BOB, 300)
    pay(book, None, BOB, ALICE, 50)
    pay(book, None, ALICE, TRADER, 1_000)  # to an account outside the book: only the payer's side is checked
    pay(book, None, CAROL, ALICE, 7)

    plan = plan_audit(book)

    expected = {check.account_id: check.expected_minor for check in plan.balances}
    assert expected == {ALICE: FUNDING - 300 + 50 - 1_000 + 7, BOB: FUNDING + 300 - 50, CAROL: FUNDING - 7}
    assert (plan.acknowledged, len(plan.to_look_up), plan.accounts_skipped) == (4, 4, 0)


def test_a_refused_payment_moves_no_money_and_is_not_looked_up() -> None:
    book = a_book()
    pay(book, None, ALICE, BOB, 300, status=422)

    plan = plan_audit(book)

    assert (plan.refused, plan.acknowledged, plan.to_look_up) == (1, 0, [])
    assert {check.account_id: check.expected_minor for check in plan.balances}[ALICE] == FUNDING


def test_an_unknown_outcome_skips_both_accounts_it_touches() -> None:
    book = a_book()
    pay(book, None, ALICE, BOB, 300, status=503, attempts=4)  # a 5xx after the last retry

    plan = plan_audit(book)

    assert plan.unknown == 1
    assert [check.account_id for check in plan.balances] == [CAROL] and plan.accounts_skipped == 2


def test_a_payment_still_in_flight_when_its_user_stopped_is_an_unknown_outcome() -> None:
    book = a_book()
    book.sending(CAROL, ALICE, 20, TOKENS[CAROL])  # never settled: the user was killed mid-request

    plan = plan_audit(book)

    assert (plan.unknown, plan.acknowledged) == (1, 0)
    assert [check.account_id for check in plan.balances] == [BOB]


@pytest.mark.parametrize(
    ("status", "attempts", "payment_id", "outcome"),
    [
        (201, 1, "pay_1", Outcome.ACKNOWLEDGED),
        (201, 3, "pay_1", Outcome.ACKNOWLEDGED),
        (201, 1, None, Outcome.UNKNOWN),
        (422, 1, None, Outcome.REFUSED),
        (422, 2, None, Outcome.REFUSED),  # a refusal the service stored and replayed
        (409, 1, None, Outcome.REFUSED),
        (409, 2, None, Outcome.UNKNOWN),  # the earlier attempt may still be running
        (429, 3, None, Outcome.UNKNOWN),
        (503, 4, None, Outcome.UNKNOWN),
        (CONNECTION_FAILED, 4, None, Outcome.UNKNOWN),
    ],
)
def test_the_final_answer_decides_the_outcome(
    status: int, attempts: int, payment_id: str | None, outcome: Outcome
) -> None:
    assert outcome_of(status, attempts, payment_id) == outcome


def test_a_faithful_ledger_passes() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    pay(book, service, BOB, CAROL, 40)
    pay(book, service, CAROL, ALICE, 5, status=422)

    document = audit(book, service.lookup)

    assert document["passed"] is True
    counts = ("payments_acknowledged", "payments_looked_up", "payments_confirmed", "payments_refused")
    assert [document[name] for name in counts] == [2, 2, 2, 1]
    assert (document["accounts_checked"], document["accounts_skipped"]) == (3, 0)
    assert document["lost"] == [] and document["balance_mismatches"] == []
    assert tuple(document) == (*AUDIT_KEYS, "passed")


def test_an_acknowledged_payment_the_service_does_not_know_is_lost() -> None:
    book, service = a_book(), FakePayments()
    kept = pay(book, service, ALICE, BOB, 300)
    lost = pay(book, None, BOB, CAROL, 40)  # acknowledged, but neither stored nor applied

    document = audit(book, service.lookup)

    assert document["passed"] is False
    assert document["lost"] == [lost] and document["payments_lost"] == 1
    assert document["payments_confirmed"] == 1 and kept not in document["lost"]
    assert breach(document) == "payment audit: 1 of 2 acknowledged payments lost, 2 of 3 account balances wrong"


def test_a_payment_found_with_another_amount_is_lost() -> None:
    book, service = a_book(), FakePayments()
    payment = pay(book, service, ALICE, BOB, 300)
    service.stored[payment] = {**service.stored[payment], "amount_minor": 30}

    assert audit(book, service.lookup)["lost"] == [payment]


def test_a_payment_applied_twice_is_a_balance_mismatch() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    service.move(ALICE, BOB, 300)  # a retry that paid again

    document = audit(book, service.lookup)

    assert document["passed"] is False and document["lost"] == []
    assert document["balance_mismatches"] == [
        {"account": ALICE, "expected_minor": FUNDING - 300, "actual_minor": FUNDING - 600},
        {"account": BOB, "expected_minor": FUNDING + 300, "actual_minor": FUNDING + 600},
    ]


def test_a_duplicate_on_an_account_an_unknown_outcome_touched_is_not_judged() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    pay(book, None, ALICE, CAROL, 10, status=CONNECTION_FAILED, attempts=4)
    service.move(ALICE, CAROL, 10)  # the unanswered payment did land: nobody can tell from the book

    document = audit(book, service.lookup)

    assert document["passed"] is True
    assert (document["accounts_checked"], document["accounts_skipped"], document["payments_unknown"]) == (1, 2, 1)


def test_beyond_the_lookup_limit_a_sample_is_looked_up_and_balances_still_cover_every_payment() -> None:
    book, service = a_book(lookups_kept=5), FakePayments()
    payments = [pay(book, service, (ALICE, BOB)[i % 2], CAROL, 10 + i) for i in range(40)]
    unapplied = pay(book, None, ALICE, BOB, 1)  # lost, and perhaps not in the sample

    document = audit(book, service.lookup)

    assert (document["payments_acknowledged"], document["payments_looked_up"]) == (41, 5)
    assert document["payments_confirmed"] + document["payments_lost"] == 5
    assert {m["account"] for m in document["balance_mismatches"]} == {ALICE, BOB}
    assert set(document["lost"]) <= {unapplied}
    assert len({record.payment_id for record in book.to_look_up}) == 5
    assert {record.payment_id for record in book.to_look_up} - {*payments, unapplied} == set()


def test_lookups_without_an_answer_fail_the_audit_but_lose_nothing() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    service.down = True

    document = audit(book, service.lookup)

    assert document["passed"] is False
    assert document["lost"] == [] and document["balance_mismatches"] == []
    assert document["lookups_failed"] == 1 + 3
    assert breach(document) == "payment audit: 4 audit lookups unanswered"


def test_each_lookup_carries_its_owners_token_and_no_token_reaches_the_document(tmp_path: Path) -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)

    path = write_audit(tmp_path, audit(book, service.lookup))
    book.sending(BOB, CAROL, 1, TOKENS[BOB])  # in flight: what the book holds then is checked too

    assert service.tokens_seen == set(TOKENS.values())
    assert not any(token in path.read_text() for token in TOKENS.values())
    state = repr(book.to_look_up) + repr(book.in_flight) + repr(book.accounts) + repr(plan_audit(book))
    assert not any(token in state for token in TOKENS.values())
    assert read_audit(tmp_path) == json.loads(path.read_text())


def test_the_audits_of_several_processes_merge_into_one() -> None:
    first, second = a_book(), a_book()
    first_service, second_service = FakePayments(), FakePayments()
    pay(first, first_service, ALICE, BOB, 300)
    pay(second, second_service, BOB, CAROL, 40)
    pay(second, second_service, CAROL, ALICE, 1, status=422)

    merged = merge_audits([audit(first, first_service.lookup), audit(second, second_service.lookup)])

    assert merged["passed"] is True
    assert (merged["payments_acknowledged"], merged["payments_confirmed"], merged["payments_refused"]) == (2, 2, 1)
    assert (merged["accounts_checked"], merged["processes"], merged["processes_missing"]) == (6, 2, 0)
    assert tuple(merged) == (*AUDIT_KEYS, "passed")


def test_a_process_whose_audit_is_missing_fails_the_merged_audit() -> None:
    merged = merge_audits([audit(a_book(), FakePayments().lookup)], missing=1)

    assert merged["passed"] is False
    assert breach(merged) == "payment audit: no audit from 1 Locust process(es)"


def test_the_summary_line_says_what_was_found() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    pay(book, None, BOB, CAROL, 4, status=CONNECTION_FAILED, attempts=4)

    line = summary_line(audit(book, service.lookup))

    assert line == (
        "audit: 1 acknowledged payments all found; 1 accounts balance (2 skipped); 1 unknown outcome, 0 refused"
    )

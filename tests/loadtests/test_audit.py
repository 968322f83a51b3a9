"""The payment audit on a hand-built book and a fake payments API: unknown outcomes reconciled, expected
balances, lost and duplicated payments."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtests.audit import (
    AUDIT_KEYS,
    RECONCILE_PAUSES,
    BalanceMismatch,
    Outcome,
    PaymentAudit,
    PaymentBook,
    PaymentRecord,
    Reply,
    audit,
    breach,
    merge_audits,
    outcome_of,
    plan_audit,
    read_audit,
    reconcile,
    run_audit,
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
    """The payments API as the audit uses it, from a ledger the test controls: the two lookups, and
    `POST /v1/payments` with an Idempotency-Key (a key seen before gets its first answer, replayed)."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}
        self.balances = {account: FUNDING for account in TOKENS}
        self.down = False
        self.writes_down = False  # every POST answered 503, nothing made
        self.tokens_seen: set[str] = set()
        self.posted: list[tuple[str, str, dict[str, Any]]] = []  # (token, Idempotency-Key, body) of every POST
        self.answered: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> the payment made under it

    def post(self, token: str, key: str, body: dict[str, Any], trace_id: str = "", timeout: float = 5.0) -> Reply:
        self.tokens_seen.add(token)
        self.posted.append((token, key, dict(body)))
        if self.writes_down:
            return Reply(503, {"code": "database_unavailable"})
        if key in self.answered:
            return Reply(201, self.answered[key], replayed=True)
        payment_id = f"pay_{key[:8]}"
        self.apply(payment_id, body["from_account"], body["to_account"], body["amount_minor"])
        self.answered[key] = self.stored[payment_id]
        return Reply(201, self.stored[payment_id])

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


def send(book: PaymentBook, source: str, target: str, amount: int) -> PaymentRecord:
    """A payment registered in flight, as a paying customer does before sending it."""
    body = {"from_account": source, "to_account": target, "amount_minor": amount, "currency": "USD", "reference": "x"}
    return book.sending(TOKENS[source], str(uuid.uuid4()), body)


def pay(
    book: PaymentBook,
    service: FakePayments | None,
    source: str,
    target: str,
    amount: int,
    status: int = 201,
    attempts: int = 1,
    landed: bool | None = None,
) -> str:
    """A payment as a paying customer makes it: registered in flight, settled by its final answer.

    It is made by `service` (under its Idempotency-Key, as a faithful payments API would) if it
    `landed`; by default if it was acknowledged (201).
    """
    record = send(book, source, target, amount)
    payment_id = f"pay_{book.acknowledged + book.refused + book.unknown}"
    if service is not None and (status == 201 if landed is None else landed):
        service.posted.append((record.token, record.key, dict(record.body)))
        service.apply(payment_id, source, target, amount)
        service.answered[record.key] = service.stored[payment_id]
    book.settle(record, status, attempts, payment_id if status == 201 else None)
    return payment_id


def no_pause(_seconds: float) -> None:
    pass


def counts(document: PaymentAudit, *names: str) -> tuple[Any, ...]:
    return tuple(getattr(document, name) for name in names)


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
    send(book, CAROL, ALICE, 20)  # never settled: the user was killed mid-request

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

    assert document.passed is True
    counts = ("payments_acknowledged", "payments_looked_up", "payments_confirmed", "payments_refused")
    assert [getattr(document, name) for name in counts] == [2, 2, 2, 1]
    assert (document.accounts_checked, document.accounts_skipped) == (3, 0)
    assert document.lost == [] and document.balance_mismatches == []
    assert tuple(document.to_json()) == (*AUDIT_KEYS, "passed")


def test_an_acknowledged_payment_the_service_does_not_know_is_lost() -> None:
    book, service = a_book(), FakePayments()
    kept = pay(book, service, ALICE, BOB, 300)
    lost = pay(book, None, BOB, CAROL, 40)  # acknowledged, but neither stored nor applied

    document = audit(book, service.lookup)

    assert document.passed is False
    assert document.lost == [lost] and document.payments_lost == 1
    assert document.payments_confirmed == 1 and kept not in document.lost
    assert breach(document) == "payment audit: 1 of 2 acknowledged payments lost, 2 of 3 account balances wrong"


def test_a_payment_found_with_another_amount_is_lost() -> None:
    book, service = a_book(), FakePayments()
    payment = pay(book, service, ALICE, BOB, 300)
    service.stored[payment] = {**service.stored[payment], "amount_minor": 30}

    assert audit(book, service.lookup).lost == [payment]


def test_a_payment_applied_twice_is_a_balance_mismatch() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    service.move(ALICE, BOB, 300)  # a retry that paid again

    document = audit(book, service.lookup)

    assert document.passed is False and document.lost == []
    assert document.balance_mismatches == [
        BalanceMismatch(ALICE, expected_minor=FUNDING - 300, actual_minor=FUNDING - 600),
        BalanceMismatch(BOB, expected_minor=FUNDING + 300, actual_minor=FUNDING + 600),
    ]


def test_a_duplicate_on_an_account_an_unknown_outcome_touched_is_not_judged() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    pay(book, None, ALICE, CAROL, 10, status=CONNECTION_FAILED, attempts=4)
    service.move(ALICE, CAROL, 10)  # the unanswered payment did land: nobody can tell from the book

    document = audit(book, service.lookup)

    assert document.passed is True
    assert (document.accounts_checked, document.accounts_skipped, document.payments_unknown) == (1, 2, 1)


def test_an_unknown_payment_the_replay_shows_was_made_is_acknowledged_and_its_accounts_are_checked() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300, status=503, attempts=4, landed=True)  # made, but its answer was a 503

    reconcile(book, service.post, sleep=no_pause)
    document = audit(book, service.lookup)

    assert document.passed is True
    assert (document.payments_reconciled, document.payments_reconciled_replayed) == (1, 1)
    assert counts(document, "payments_acknowledged", "payments_confirmed", "payments_unknown") == (1, 1, 0)
    assert (document.accounts_checked, document.accounts_skipped) == (3, 0)
    assert service.balances[ALICE] == FUNDING - 300  # the replay paid nothing again


def test_a_payment_made_twice_is_found_once_its_unknown_outcome_is_reconciled() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300, status=CONNECTION_FAILED, attempts=4, landed=True)
    service.move(ALICE, BOB, 300)  # a retry that paid again: hidden while the outcome was unknown

    reconcile(book, service.post, sleep=no_pause)
    document = audit(book, service.lookup)

    assert document.passed is False
    assert {row.account for row in document.balance_mismatches} == {ALICE, BOB}


def test_an_unknown_payment_that_never_ran_is_made_by_the_reconciliation_and_counted() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, CAROL, ALICE, 20, status=CONNECTION_FAILED, attempts=4)  # never reached the service

    reconcile(book, service.post, sleep=no_pause)
    document = audit(book, service.lookup)

    assert document.passed is True
    assert (document.payments_reconciled, document.payments_reconciled_replayed) == (1, 0)
    assert counts(document, "payments_acknowledged", "payments_confirmed", "payments_unknown") == (1, 1, 0)
    assert document.accounts_checked == 3
    assert (service.balances[CAROL], service.balances[ALICE]) == (FUNDING - 20, FUNDING + 20)


def test_a_payment_left_in_flight_by_a_stopped_user_is_reconciled_too() -> None:
    book, service = a_book(), FakePayments()
    send(book, CAROL, ALICE, 20)  # the user was killed before the answer came

    reconcile(book, service.post, sleep=no_pause)

    assert (book.in_flight, book.acknowledged, book.reconciled, book.unknown) == (set(), 1, 1, 0)
    assert audit(book, service.lookup).accounts_checked == 3


def test_a_payment_still_503_through_every_reconciliation_attempt_stays_unknown_and_its_accounts_are_skipped() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300, status=503, attempts=4, landed=True)
    service.writes_down = True
    pauses: list[float] = []

    reconcile(book, service.post, sleep=pauses.append)
    document = audit(book, service.lookup)

    assert len(service.posted) == 1 + 1 + len(RECONCILE_PAUSES) and pauses == list(RECONCILE_PAUSES)
    assert counts(document, "payments_unknown", "payments_reconciled", "payments_acknowledged") == (1, 0, 0)
    assert (document.accounts_checked, document.accounts_skipped) == (1, 2)
    assert document.passed is True


def test_a_refusal_answered_to_the_reconciliation_settles_the_payment_as_refused() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300, status=503, attempts=4)

    reconcile(book, lambda *_request: Reply(422, {"code": "insufficient_funds"}), sleep=no_pause)

    assert (book.refused, book.unknown, book.reconciled) == (1, 0, 0)
    assert len(plan_audit(book).balances) == 3


def test_a_request_in_progress_is_asked_again_after_the_pause_its_retry_after_asks_up_to_two_seconds() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300, status=409, attempts=2, landed=True)
    answers = iter([Reply(409, {"code": "request_in_progress"}, retry_after="30"), Reply(429, {}, retry_after="1")])
    pauses: list[float] = []

    def post(token: str, key: str, body: dict[str, Any], trace_id: str, timeout: float) -> Reply:
        return next(answers, None) or service.post(token, key, body)

    reconcile(book, post, sleep=pauses.append)

    assert pauses == [2.0, 1.0] and (book.reconciled, book.reconciled_replayed) == (1, 1)


def test_the_reconciliation_sends_the_payment_again_with_its_idempotency_key_body_and_token() -> None:
    book, service = a_book(), FakePayments()
    body = {"from_account": ALICE, "to_account": BOB, "amount_minor": 300, "currency": "USD", "reference": "rent"}
    book.settle(book.sending(TOKENS[ALICE], "key-rent-1", body), 503, 4, None)

    reconcile(book, service.post, sleep=no_pause)

    assert service.posted == [(TOKENS[ALICE], "key-rent-1", body)]


def test_run_audit_reconciles_over_http_with_the_key_body_and_token_traced_and_synthetic() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300, status=CONNECTION_FAILED, attempts=4, landed=True)
    pay(book, service, BOB, CAROL, 40, status=503, attempts=4)
    posts: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        if request.method == "GET":
            status, found = service.lookup(request.url.path, token)
            return httpx.Response(status, json=found)
        posts.append(request)
        body = json.loads(request.content)
        reply = service.post(token, request.headers["Idempotency-Key"], body)
        headers = {"Idempotent-Replayed": "true"} if reply.replayed else {}
        return httpx.Response(reply.status, json=reply.body, headers=headers)

    document = run_audit(book, "http://payments", transport=httpx.MockTransport(answer))

    assert (document.payments_reconciled, document.payments_reconciled_replayed) == (2, 1)
    assert document.passed is True and document.accounts_checked == 3
    assert {(request.url.path, request.headers["baggage"]) for request in posts} == {
        ("/v1/payments", "synthetic_request=true")
    }
    assert all(request.headers["traceparent"].startswith("00-") for request in posts)


def test_beyond_the_lookup_limit_a_sample_is_looked_up_and_balances_still_cover_every_payment() -> None:
    book, service = a_book(lookups_kept=5), FakePayments()
    payments = [pay(book, service, (ALICE, BOB)[i % 2], CAROL, 10 + i) for i in range(40)]
    unapplied = pay(book, None, ALICE, BOB, 1)  # lost, and perhaps not in the sample

    document = audit(book, service.lookup)

    assert (document.payments_acknowledged, document.payments_looked_up) == (41, 5)
    assert document.payments_confirmed + document.payments_lost == 5
    assert {m.account for m in document.balance_mismatches} == {ALICE, BOB}
    assert set(document.lost) <= {unapplied}
    assert len({record.payment_id for record in book.to_look_up}) == 5
    assert {record.payment_id for record in book.to_look_up} - {*payments, unapplied} == set()


def test_lookups_without_an_answer_fail_the_audit_but_lose_nothing() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    service.down = True

    document = audit(book, service.lookup)

    assert document.passed is False
    assert document.lost == [] and document.balance_mismatches == []
    assert document.lookups_failed == 1 + 3
    assert breach(document) == "payment audit: 4 audit lookups unanswered"


def test_each_request_carries_its_owners_token_and_no_token_or_key_reaches_the_document(tmp_path: Path) -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)

    pay(book, service, BOB, CAROL, 40, status=503, attempts=4)
    reconcile(book, service.post, sleep=no_pause)
    path = write_audit(tmp_path, audit(book, service.lookup))
    send(book, BOB, CAROL, 1)  # in flight: what the book holds then is checked too
    pay(book, None, CAROL, ALICE, 2, status=503, attempts=4)  # an unknown outcome kept to reconcile
    keys = {key for _token, key, _body in service.posted} | {record.key for record in book.unresolved}

    assert service.tokens_seen == set(TOKENS.values())
    assert not any(secret in path.read_text() for secret in (*TOKENS.values(), *keys))
    state = repr(book.to_look_up) + repr(book.in_flight) + repr(book.unresolved) + repr(book.accounts)
    state += repr(plan_audit(book))
    assert not any(secret in state for secret in (*TOKENS.values(), *keys))
    assert read_audit(tmp_path) == PaymentAudit.from_json(json.loads(path.read_text()))


def test_the_audits_of_several_processes_merge_into_one() -> None:
    first, second = a_book(), a_book()
    first_service, second_service = FakePayments(), FakePayments()
    pay(first, first_service, ALICE, BOB, 300)
    pay(second, second_service, BOB, CAROL, 40)
    pay(second, second_service, CAROL, ALICE, 1, status=422)

    merged = merge_audits([audit(first, first_service.lookup), audit(second, second_service.lookup)])

    assert merged.passed is True
    assert (merged.payments_acknowledged, merged.payments_confirmed, merged.payments_refused) == (2, 2, 1)
    assert (merged.accounts_checked, merged.processes, merged.processes_missing) == (6, 2, 0)
    assert tuple(merged.to_json()) == (*AUDIT_KEYS, "passed")


def test_a_process_whose_audit_is_missing_fails_the_merged_audit() -> None:
    merged = merge_audits([audit(a_book(), FakePayments().lookup)], missing=1)

    assert merged.passed is False
    assert breach(merged) == "payment audit: no audit from 1 Locust process(es)"


def test_the_summary_line_says_what_was_found() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    pay(book, None, BOB, CAROL, 4, status=CONNECTION_FAILED, attempts=4)

    line = summary_line(audit(book, service.lookup))

    assert line == (
        "audit: 1 acknowledged payments all found; 1 accounts balance (2 skipped); 1 unknown outcome, 0 refused"
    )


def test_the_summary_line_says_how_many_unknown_outcomes_were_reconciled() -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300, status=503, attempts=4, landed=True)
    pay(book, service, BOB, CAROL, 4, status=CONNECTION_FAILED, attempts=4)

    reconcile(book, service.post, sleep=no_pause)
    line = summary_line(audit(book, service.lookup))

    assert line == (
        "audit: 2 acknowledged payments all found; 3 accounts balance (0 skipped); 0 unknown outcome, 0 refused, "
        "2 unknown outcomes reconciled (1 replayed)"
    )


def test_audit_json_reads_back_as_the_audit_written(tmp_path: Path) -> None:
    book, service = a_book(), FakePayments()
    pay(book, service, ALICE, BOB, 300)
    service.move(ALICE, BOB, 300)  # a balance mismatch, so the rows round-trip too
    written = audit(book, service.lookup)

    write_audit(tmp_path, written)

    assert read_audit(tmp_path) == written and written.balance_mismatches


def test_an_audit_from_before_sampling_looked_up_every_acknowledged_payment() -> None:
    older = PaymentAudit.from_json({"passed": True, "payments_acknowledged": 12, "payments_confirmed": 12})
    assert (older.payments_looked_up, older.processes, older.passed) == (12, 1, True)


@pytest.mark.parametrize(
    "document",
    [[], {"payments_lost": "1"}, {"lost": "pay_1"}, {"balance_mismatches": [{"account": "acc_1"}]}],
)
def test_a_document_that_is_not_an_audit_is_refused(document: object) -> None:
    with pytest.raises(ValueError):
        PaymentAudit.from_json(document)

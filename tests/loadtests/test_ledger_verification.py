"""`GET /v1/ledger/verify`'s answer has one typed home that its clients read it through."""

from __future__ import annotations

import pytest

from loadtests.ledger_verification import LedgerVerification

ANSWER = {
    "balanced": True,
    "sum_minor": {"EUR": 0, "USD": 0},
    "negative_accounts": 0,
    "payments": 412,
    "entries": 824,
    "mismatched_balances": 0,
}


def test_the_services_answer_reads_back_as_it_was_given() -> None:
    ledger = LedgerVerification.from_json(ANSWER)
    assert (ledger.payments, ledger.entries, ledger.sum_minor) == (412, 824, {"EUR": 0, "USD": 0})
    assert ledger.to_json() == ANSWER


@pytest.mark.parametrize(
    ("changes", "holds"),
    [({}, True), ({"balanced": False}, False), ({"negative_accounts": 2}, False)],
)
def test_the_ledger_holds_only_balanced_with_no_customer_account_below_zero(
    changes: dict[str, object], holds: bool
) -> None:
    assert LedgerVerification.from_json({**ANSWER, **changes}).holds is holds


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"sum_minor": {}},
        {"balanced": "yes"},
        {"balanced": True, "payments": "412"},
        {"balanced": True, "sum_minor": {"USD": 0.5}},
    ],
)
def test_an_answer_that_is_not_a_ledger_verification_is_refused(document: object) -> None:
    with pytest.raises(ValueError):
        LedgerVerification.from_json(document)

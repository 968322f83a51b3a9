"""Ledger and idempotency rules, free of web and database concerns.

Every movement of money is one `Transfer` that posts two entries summing to zero, so
per currency the whole ledger always sums to zero; only the platform's funding
accounts (the source of deposits) may go below zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core_services.currencies import ISO_4217

MAX_AMOUNT_MINOR = 10**15
# Balances are 64-bit signed integers in the database (PostgreSQL bigint; SQLite would
# silently turn an overflowing sum into a float): no balance may leave this range.
MAX_BALANCE_MINOR = 2**63 - 1


class LedgerRuleViolation(ValueError):
    """A transfer that the ledger must refuse; `code` is the problem code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    customer_id: str | None
    currency: str
    balance_minor: int

    @property
    def is_funding(self) -> bool:
        return self.customer_id is None


@dataclass(frozen=True, slots=True)
class Entry:
    account_id: str
    amount_minor: int
    currency: str


@dataclass(frozen=True, slots=True)
class Transfer:
    from_account: Account
    to_account: Account
    amount_minor: int
    currency: str

    def entries(self) -> tuple[Entry, Entry]:
        return (
            Entry(self.from_account.id, -self.amount_minor, self.currency),
            Entry(self.to_account.id, self.amount_minor, self.currency),
        )


def check_amount(amount_minor: int) -> None:
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise LedgerRuleViolation("validation_error", "amount_minor must be an integer number of minor units")
    if not 0 < amount_minor < MAX_AMOUNT_MINOR:
        raise LedgerRuleViolation("validation_error", f"amount_minor must be > 0 and < {MAX_AMOUNT_MINOR}")


def check_currency(currency: str) -> None:
    if currency not in ISO_4217:
        raise LedgerRuleViolation("validation_error", f"currency {currency!r} is not an ISO 4217 code")


def plan_transfer(from_account: Account, to_account: Account, amount_minor: int, currency: str) -> Transfer:
    """The transfer to post, or the rule it breaks.

    The balance check here is advisory (it gives the right error early); the store
    enforces it again atomically, since a concurrent payment may have moved the money.
    """
    check_amount(amount_minor)
    check_currency(currency)
    if from_account.id == to_account.id:
        raise LedgerRuleViolation("same_account", "from_account and to_account must differ")
    if not from_account.currency == to_account.currency == currency:
        raise LedgerRuleViolation(
            "currency_mismatch",
            f"payment in {currency} between accounts in {from_account.currency} and {to_account.currency}",
        )
    if not from_account.is_funding and from_account.balance_minor < amount_minor:
        raise LedgerRuleViolation("insufficient_funds", f"account {from_account.id} cannot pay {amount_minor}")
    if to_account.balance_minor + amount_minor > MAX_BALANCE_MINOR:
        raise LedgerRuleViolation("balance_limit_exceeded", f"account {to_account.id} cannot hold {amount_minor} more")
    if from_account.balance_minor - amount_minor < -MAX_BALANCE_MINOR:
        raise LedgerRuleViolation("balance_limit_exceeded", f"account {from_account.id} cannot pay {amount_minor} more")
    return Transfer(from_account, to_account, amount_minor, currency)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The first response given for an idempotency key, replayed for every retry."""

    fingerprint: str
    status: int
    body: dict[str, Any]


def replay(stored: StoredResponse, fingerprint: str) -> StoredResponse:
    """The response a retry gets, or `idempotency_key_reused` if the retry is another request."""
    if stored.fingerprint != fingerprint:
        raise LedgerRuleViolation(
            "idempotency_key_reused", "this Idempotency-Key was first used with a different request body"
        )
    return stored


@dataclass(frozen=True, slots=True)
class LedgerVerification:
    balanced: bool
    sum_minor: dict[str, int]
    negative_accounts: int
    payments: int
    entries: int
    mismatched_balances: int

    def as_json(self) -> dict[str, Any]:
        return {
            "balanced": self.balanced,
            "sum_minor": self.sum_minor,
            "negative_accounts": self.negative_accounts,
            "payments": self.payments,
            "entries": self.entries,
            "mismatched_balances": self.mismatched_balances,
        }


def verify_ledger(
    sum_by_currency: dict[str, int],
    negative_customer_accounts: int,
    payments: int,
    entries: int,
    mismatched_balances: int,
) -> LedgerVerification:
    """Balanced means: every currency sums to zero, each payment has exactly two entries,
    no customer account is negative, and every cached balance equals its entries."""
    balanced = (
        all(total == 0 for total in sum_by_currency.values())
        and entries == 2 * payments
        and negative_customer_accounts == 0
        and mismatched_balances == 0
    )
    return LedgerVerification(
        balanced,
        dict(sorted(sum_by_currency.items())),
        negative_customer_accounts,
        payments,
        entries,
        mismatched_balances,
    )

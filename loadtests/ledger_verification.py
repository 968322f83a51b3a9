"""`GET /v1/ledger/verify` as its clients read it: one typed home for the answer (DESIGN.md, payments API).

The payments service builds the answer from its own domain type (`core_services.payments.domain`);
its clients (load tests, chaos probes and the game day, runbooks, benchmarks) may not import the
services, so they read the answer through this one type, kept here in the lowest package that all
of them import.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LEDGER_VERIFY_PATH = "/v1/ledger/verify"


@dataclass(frozen=True)
class LedgerVerification:
    """`{"balanced", "sum_minor", "negative_accounts", "payments", "entries", "mismatched_balances"}`."""

    balanced: bool
    sum_minor: dict[str, int] = field(default_factory=dict)  # per currency; each must be 0
    negative_accounts: int = 0  # customer accounts below zero (the funding account may be)
    payments: int = 0
    entries: int = 0
    mismatched_balances: int = 0  # cached balances that differ from their entries

    @property
    def holds(self) -> bool:
        """Balanced and no customer account below zero: the ledger check every phase must pass."""
        return self.balanced and self.negative_accounts == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "balanced": self.balanced,
            "sum_minor": dict(self.sum_minor),
            "negative_accounts": self.negative_accounts,
            "payments": self.payments,
            "entries": self.entries,
            "mismatched_balances": self.mismatched_balances,
        }

    @classmethod
    def from_json(cls, document: Any) -> LedgerVerification:
        """The answer from its JSON document; ValueError naming what is wrong. Counts it lacks are 0."""
        if not isinstance(document, Mapping) or not isinstance(document.get("balanced"), bool):
            raise ValueError("a ledger verification is an object with a true or false 'balanced'")
        sums = document.get("sum_minor") or {}
        counts = {
            name: document.get(name, 0) for name in ("negative_accounts", "payments", "entries", "mismatched_balances")
        }
        if not isinstance(sums, Mapping) or not all(_is_integer(value) for value in sums.values()):
            raise ValueError("a ledger verification's 'sum_minor' maps currencies to integers (minor units)")
        if not all(_is_integer(value) for value in counts.values()):
            raise ValueError("a ledger verification's counts are integers")
        return cls(document["balanced"], {str(key): value for key, value in sums.items()}, **counts)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

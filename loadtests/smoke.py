"""A scripted customer journey through both APIs, as a client sees it.

Used by `nova demo` to prove a fresh platform works end to end: two customers, a
deposit, a payment and its idempotent replay, a stock order, the portfolio, and the
ledger's own verification.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from loadtests.ledger_verification import LedgerVerification


@dataclass
class Step:
    name: str
    status: int
    millis: float
    summary: str
    ok: bool


@dataclass
class Journey:
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)


class SmokeFailure(RuntimeError):
    pass


def run_journey(payments_url: str, portfolio_url: str, admin_token: str) -> Journey:
    journey = Journey()
    admin = {"Authorization": f"Bearer {admin_token}"}
    with httpx.Client(timeout=10.0) as http:

        def call(name: str, method: str, url: str, expect: int, summary: str = "", **kwargs: Any) -> Any:
            started = time.perf_counter()
            response = http.request(method, url, **kwargs)
            millis = (time.perf_counter() - started) * 1000
            body = response.json() if response.content else {}
            ok = response.status_code == expect
            detail = summary.format(**body) if ok and isinstance(body, dict) else body.get("code", response.text[:80])
            journey.steps.append(Step(name, response.status_code, millis, detail, ok))
            if not ok:
                raise SmokeFailure(f"{name}: expected {expect}, got {response.status_code}: {detail}")
            return body

        def key() -> dict[str, str]:
            return {"Idempotency-Key": str(uuid.uuid4())}

        try:
            alice = call(
                "create customer alice",
                "POST",
                f"{payments_url}/v1/customers",
                201,
                "{id}",
                json={"name": "Alice"},
                headers=admin,
            )
            bob = call(
                "create customer bob",
                "POST",
                f"{payments_url}/v1/customers",
                201,
                "{id}",
                json={"name": "Bob"},
                headers=admin,
            )
            as_alice = {"Authorization": f"Bearer {alice['token']}"}
            as_bob = {"Authorization": f"Bearer {bob['token']}"}
            a_acc = call(
                "open alice's USD account",
                "POST",
                f"{payments_url}/v1/accounts",
                201,
                "{id}",
                json={"currency": "USD"},
                headers=as_alice,
            )
            b_acc = call(
                "open bob's USD account",
                "POST",
                f"{payments_url}/v1/accounts",
                201,
                "{id}",
                json={"currency": "USD"},
                headers=as_bob,
            )
            call(
                "deposit 100,000.00 to alice",
                "POST",
                f"{payments_url}/v1/deposits",
                201,
                "{id} {amount_minor} minor units",
                json={"account_id": a_acc["id"], "amount_minor": 10_000_000},
                headers={**admin, **key()},
            )
            payment = {
                "from_account": a_acc["id"],
                "to_account": b_acc["id"],
                "amount_minor": 12_500,
                "currency": "USD",
                "reference": "dinner",
            }
            pay_key = key()
            first = call(
                "alice pays bob 125.00",
                "POST",
                f"{payments_url}/v1/payments",
                201,
                "{id} {status}",
                json=payment,
                headers={**as_alice, **pay_key},
            )
            again = call(
                "retry with the same key",
                "POST",
                f"{payments_url}/v1/payments",
                201,
                "{id} (replayed)",
                json=payment,
                headers={**as_alice, **pay_key},
            )
            if again != first:
                _fail(journey, "the retry did not replay the first payment")
            call(
                "quote NOVA",
                "GET",
                f"{portfolio_url}/v1/quotes/NOVA",
                200,
                "{price_minor} minor units",
                headers=as_alice,
            )
            call(
                "alice buys 10 NOVA",
                "POST",
                f"{portfolio_url}/v1/orders",
                201,
                "{id} {status} at {price_minor}",
                json={"account_id": a_acc["id"], "symbol": "NOVA", "side": "buy", "quantity": 10},
                headers={**as_alice, **key()},
            )
            call(
                "alice's portfolio",
                "GET",
                f"{portfolio_url}/v1/portfolios/{a_acc['id']}",
                200,
                "cash {cash_minor}, market value {market_value_minor}",
                headers=as_alice,
            )
            call(
                "bob's balance",
                "GET",
                f"{payments_url}/v1/accounts/{b_acc['id']}",
                200,
                "{balance_minor} minor units",
                headers=as_bob,
            )
            verify = call(
                "verify the ledger",
                "GET",
                f"{payments_url}/v1/ledger/verify",
                200,
                "balanced={balanced}, {payments} payments, {entries} entries",
                headers=admin,
            )
            if not LedgerVerification.from_json(verify).balanced:
                _fail(journey, "the ledger does not balance")
        except SmokeFailure:
            pass
    return journey


def _fail(journey: Journey, reason: str) -> None:
    journey.steps[-1].ok = False
    journey.steps[-1].summary = reason
    raise SmokeFailure(reason)

"""Portfolio use cases: quotes, orders settled through payments, and portfolio views.

An order is written `pending` before its payment is sent and finished after, each in
its own short transaction: no database transaction is held open across a network
call. A pending order has one driver at a time (a claim that expires), so the request
that created it, a client's retry and the reconciler never drive it together; and
its payment's idempotency key comes from the order id, so driving it twice is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection

from core_services import ids
from core_services.auth import Principal, TokenAuthority, require_customer
from core_services.clock import utc_now
from core_services.database import Database
from core_services.fingerprint import request_fingerprint
from core_services.idempotency import InFlightKeys
from core_services.portfolio import order_store as store
from core_services.portfolio.domain import (
    FILLED,
    ORDER_CURRENCY,
    PENDING,
    REJECTED,
    Order,
    PaymentOutcome,
    PaymentSettled,
    PortfolioRuleViolation,
    StoredResponse,
    order_amount,
    payment_for,
    payment_outcome,
    replay,
    value_portfolio,
)
from core_services.portfolio.market import MarketSimulator
from core_services.portfolio.order_store import HouseAccount, KnownAccount
from core_services.portfolio.payments_client import PaymentsAnswer, PaymentsClient, PaymentsUnavailable
from core_services.portfolio.schema import MIGRATIONS, metadata
from core_services.problems import Problem

log = logging.getLogger("nova.portfolio")
_P = ParamSpec("_P")
_T = TypeVar("_T")

# Longer than the slowest drive (3 payment attempts with their timeouts and backoff),
# so a live driver never loses its claim; a dead one's order is picked up after it.
CLAIM_SECONDS = 15.0
RETRY_AFTER = {"Retry-After": "2"}
HOUSE_CUSTOMER_NAME = "portfolio-house"
# The house pays for every sell; a float this size never runs dry in a load test.
HOUSE_FLOAT_MINOR = 10**13
HOUSE_OPENING_WAIT_SECONDS = 15.0
HOUSE_POLL_SECONDS = 0.05


class PortfolioService:
    def __init__(
        self,
        database: Database,
        tokens: TokenAuthority,
        payments: PaymentsClient,
        market_seed: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = database
        self.tokens = tokens
        self.payments = payments
        self.in_flight = InFlightKeys()
        self._clock = clock
        self._market_seed = market_seed
        self._market: MarketSimulator | None = None
        self._house: HouseAccount | None = None
        self._market_lock = threading.Lock()
        self._house_lock = threading.Lock()

    def prepare(self) -> None:
        self.db.migrate(metadata, MIGRATIONS)

    @property
    def market(self) -> MarketSimulator:
        """The market, started from the epoch every worker shares.

        Read on first use rather than at boot: a worker must come up even while its
        database is down.
        """
        if self._market is None:
            with self._market_lock:
                if self._market is None:
                    with self.db.write() as conn:
                        epoch = store.market_epoch(conn, int(self._clock()))
                    self._market = MarketSimulator(self._market_seed, epoch, self._clock)
        return self._market

    # -- callers -----------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Principal:
        """A stateless check: the portfolio keeps no tokens; payments still vets them on account reads."""
        return self.tokens.authenticate(token)[0]

    # -- quotes ------------------------------------------------------------------------------------

    def quote(self, symbol: str) -> dict[str, Any]:
        return _check(self.market.quote, symbol).as_json()

    def quotes(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [self.market.quote(symbol, now).as_json() for symbol in self.market.symbols]

    # -- orders ------------------------------------------------------------------------------------

    def place_order(
        self, principal: Principal, token: str, key: str, body: dict[str, Any]
    ) -> tuple[StoredResponse, bool]:
        """The order's final answer and whether it is a replay; 503 if its payment's fate is unknown."""
        customer_id = require_customer(principal)
        fingerprint = request_fingerprint("order", body)
        quote = _check(self.market.quote, body["symbol"])
        amount = _check(order_amount, quote.price_minor, body["quantity"])
        with self.in_flight.claim(customer_id, key):
            account = self._owned_account(customer_id, token, body["account_id"])
            if account.currency != ORDER_CURRENCY:
                raise Problem(
                    "currency_mismatch", f"orders settle in {ORDER_CURRENCY}; the account is in {account.currency}"
                )
            house = self.house()
            admitted, replayed = self._admit(customer_id, key, fingerprint, body, quote.price_minor, amount)
            if isinstance(admitted, StoredResponse):
                return admitted, replayed
            answer = self.settle(admitted, house)
            if answer is None:
                raise Problem(
                    "payments_unavailable",
                    "the order is pending and will be reconciled",
                    headers=RETRY_AFTER,
                    order_id=admitted.id,
                )
            return answer, False

    def _admit(
        self, customer_id: str, key: str, fingerprint: str, body: dict[str, Any], price_minor: int, amount_minor: int
    ) -> tuple[Order | StoredResponse, bool]:
        """A new order to drive, a pending one this retry may drive, or a stored answer to replay."""
        now_ms = self._now_ms()
        order = Order(
            id=ids.new_id("ord"),
            customer_id=customer_id,
            account_id=body["account_id"],
            symbol=body["symbol"],
            side=body["side"],
            quantity=body["quantity"],
            price_minor=price_minor,
            amount_minor=amount_minor,
            status=PENDING,
            created_at=utc_now(),
        )
        with self.db.write() as conn:
            if store.insert_order(conn, order, key, fingerprint, now_ms, now_ms + _ms(CLAIM_SECONDS)):
                return _reserve_shares(conn, order), False
            existing = store.order_by_key(conn, customer_id, key)
            if existing is None:
                raise RuntimeError(f"order {order.id} collided with an existing order id")
            record = _check(replay, existing, fingerprint)
            if record.response is not None:
                return record.response, True
            claimed = store.claim_order(conn, record.order.id, now_ms, now_ms + _ms(CLAIM_SECONDS))
            if claimed is None:
                raise Problem("request_in_progress", "the order is being settled", headers={"Retry-After": "1"})
            return claimed.order, False

    def settle(self, order: Order, house: HouseAccount) -> StoredResponse | None:
        """Send the order's payment and record its outcome.

        None when the outcome is unknown: the order stays pending and is released, so
        the next retry or reconciler pass sends the very same payment again.
        """
        instruction = payment_for(order, house.account_id)
        try:
            answer = self.payments.pay(instruction.idempotency_key, instruction.body())
        except PaymentsUnavailable as exc:
            log.warning("order %s left pending: %s", order.id, exc)
            answer = None
        outcome = payment_outcome(answer.status, answer.body) if answer else None
        if outcome is None:
            with self.db.write() as conn:
                store.release_order(conn, order.id)
            return None
        with self.db.write() as conn:
            return _finish(conn, order.id, outcome)

    def stale_pending(self, older_than_seconds: float, limit: int) -> list[str]:
        now_ms = self._now_ms()
        with self.db.read() as conn:
            return store.stale_pending_orders(conn, now_ms - _ms(older_than_seconds), now_ms, limit)

    def claim(self, order_id: str) -> Order | None:
        """Become the driver of a pending order; None if it is finished or someone else drives it."""
        now_ms = self._now_ms()
        with self.db.write() as conn:
            record = store.claim_order(conn, order_id, now_ms, now_ms + _ms(CLAIM_SECONDS))
        return record.order if record else None

    # -- portfolios --------------------------------------------------------------------------------

    def portfolio(self, principal: Principal, token: str, account_id: str) -> dict[str, Any]:
        customer_id = require_customer(principal)
        _check_account_id(account_id)
        # One transaction: an account not known here yet has placed no order, so holds nothing.
        with self.db.read() as conn:
            known = store.known_account(conn, account_id)
            held = store.account_positions(conn, account_id) if known is not None else []
        if known is not None and known.customer_id != customer_id:
            raise Problem("account_not_found")
        account, cash_minor = self._confirm_owner(customer_id, token, account_id, remember=known is None)
        step = self.market.step_at(self._clock())
        prices = {
            position.symbol: self.market.price_at(position.symbol, step) for position in held if position.quantity > 0
        }
        return value_portfolio(account_id, account.currency, cash_minor, held, prices).as_json()

    # -- accounts ----------------------------------------------------------------------------------

    def house(self) -> HouseAccount:
        """The house account, opened on the first order rather than at start, so the portfolio
        can start while payments is down."""
        if self._house is None:
            with self._house_lock:
                if self._house is None:
                    self._house = ensure_house_account(self.db, self.payments)
        return self._house

    def _owned_account(self, customer_id: str, token: str, account_id: str) -> KnownAccount:
        _check_account_id(account_id)
        with self.db.read() as conn:
            known = store.known_account(conn, account_id)
        if known is None:
            known, _ = self._confirm_owner(customer_id, token, account_id, remember=True)
        if known.customer_id != customer_id:
            raise Problem("account_not_found")
        return known

    def _confirm_owner(
        self, customer_id: str, token: str, account_id: str, *, remember: bool
    ) -> tuple[KnownAccount, int]:
        """Read the account from payments with the customer's own token: payments answers 404
        for another customer's account, so a 200 proves ownership. Also yields the balance."""
        answer = _reach_payments(
            lambda: self.payments.account(account_id, token), "could not confirm the account with payments"
        )
        if answer.status == 401:
            raise Problem("unauthorized")
        if answer.status != 200:
            raise Problem("account_not_found")
        known = KnownAccount(account_id, customer_id, str(answer.body["currency"]))
        if remember:
            with self.db.write() as conn:
                store.remember_account(conn, known, utc_now())
        return known, int(answer.body["balance_minor"])

    def _now_ms(self) -> int:
        return _ms(self._clock())


def ensure_house_account(
    database: Database,
    payments: PaymentsClient,
    *,
    wait_seconds: float = HOUSE_OPENING_WAIT_SECONDS,
    poll_seconds: float = HOUSE_POLL_SECONDS,
) -> HouseAccount:
    """The house account, opened and funded exactly once however many workers ask at once.

    One worker wins a claim in the database and opens the account; the others poll
    until it is recorded. A claim expires, so a worker that dies halfway is replaced.
    The house customer's token is used once, to open the account, and never stored:
    payments are made with the admin token. The float's deposit is idempotent on a key
    derived from the account, so any worker may finish it.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        with database.read() as conn:
            house, funded = store.house_account(conn)
        if house is None and _claim_house_opening(database):
            house = _open_house_account(database, payments)
        if house is not None:
            if not funded:
                _fund_house_account(database, payments, house)
            return house
        if time.monotonic() >= deadline:
            raise Problem("payments_unavailable", "the house account is still being opened", headers=RETRY_AFTER)
        time.sleep(poll_seconds)


def _claim_house_opening(database: Database) -> bool:
    now_ms = _ms(time.time())
    with database.write() as conn:
        return store.claim_house_opening(conn, now_ms, now_ms + _ms(2 * CLAIM_SECONDS))


def _open_house_account(database: Database, payments: PaymentsClient) -> HouseAccount:
    unreachable = "could not open the house account"
    try:
        customer = _created(
            _reach_payments(lambda: payments.create_customer(HOUSE_CUSTOMER_NAME), unreachable), "house customer"
        )
        token = str(customer["token"])
        account = _created(
            _reach_payments(lambda: payments.open_account(token, ORDER_CURRENCY), unreachable), "house account"
        )
    except Problem:
        # Let the next order try at once instead of waiting for this claim to expire.
        with database.write() as conn:
            store.release_house_opening(conn)
        raise
    with database.write() as conn:
        store.save_house_account(conn, HouseAccount(str(customer["id"]), str(account["id"])))
        # A worker that took over an expired claim may have recorded its own first.
        house, _ = store.house_account(conn)
    assert house is not None
    return house


def _fund_house_account(database: Database, payments: PaymentsClient, house: HouseAccount) -> None:
    answer = _reach_payments(
        lambda: payments.deposit(f"house-float-{house.account_id}", house.account_id, HOUSE_FLOAT_MINOR),
        "could not fund the house account",
    )
    deposit = _created(answer, "house float deposit")
    with database.write() as conn:
        store.mark_house_funded(conn, str(deposit["id"]))


def _created(answer: PaymentsAnswer, what: str) -> dict[str, Any]:
    if answer.status != 201:
        code = answer.body.get("code", "no code")
        raise Problem(
            "payments_unavailable", f"payments refused the {what}: {answer.status} {code}", headers=RETRY_AFTER
        )
    return answer.body


def _reserve_shares(conn: Connection, order: Order) -> Order | StoredResponse:
    """A sell takes its shares out of the position until its payment settles.

    Refusing an oversell is an answer too, recorded like any other, so a retry with
    the same key gets the same refusal.
    """
    if order.side == "buy":
        return order
    position = store.locked_position(conn, order.account_id, order.symbol)
    try:
        remaining, cost_minor = position.sold(order.quantity)
    except PortfolioRuleViolation as violation:
        response = StoredResponse(422, Problem(violation.code, violation.detail, order_id=order.id).body())
        store.finish_order(conn, order.id, REJECTED, None, response, order.created_at)
        return response
    store.save_position(conn, order.account_id, remaining)
    store.reserve_cost(conn, order.id, cost_minor)
    return replace(order, reserved_cost_minor=cost_minor)


def _finish(conn: Connection, order_id: str, outcome: PaymentOutcome) -> StoredResponse:
    """Record a settled payment as a fill (a buy gains its shares) or a refusal (a sell gets its
    shares back). An order another driver finished meanwhile keeps that answer."""
    record = store.locked_order(conn, order_id)
    order = record.order
    if order.status != PENDING and record.response is not None:
        return record.response
    now = utc_now()
    if isinstance(outcome, PaymentSettled):
        if order.side == "buy":
            position = store.locked_position(conn, order.account_id, order.symbol)
            store.save_position(conn, order.account_id, position.bought(order.quantity, order.amount_minor))
        response = StoredResponse(201, replace(order, status=FILLED, payment_id=outcome.payment_id).as_json())
        store.finish_order(conn, order.id, FILLED, outcome.payment_id, response, now)
        return response
    assert outcome is not None
    if order.side == "sell":
        position = store.locked_position(conn, order.account_id, order.symbol)
        restored = position.restored(order.quantity, order.reserved_cost_minor)
        store.save_position(conn, order.account_id, restored)
    response = StoredResponse(422, Problem(outcome.code, outcome.detail, order_id=order.id).body())
    store.finish_order(conn, order.id, REJECTED, None, response, now)
    return response


def _check_account_id(account_id: str) -> None:
    """An id that cannot exist is missing: no need to ask payments."""
    if not ids.is_well_formed(account_id):
        raise Problem("account_not_found")


def _reach_payments(call: Callable[[], PaymentsAnswer], detail: str) -> PaymentsAnswer:
    try:
        return call()
    except PaymentsUnavailable as exc:
        log.warning("%s: %s", detail, exc)
        raise Problem("payments_unavailable", detail, headers=RETRY_AFTER) from None


def _check(rule: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    try:
        return rule(*args, **kwargs)
    except PortfolioRuleViolation as violation:
        raise Problem(violation.code, violation.detail) from None


def _ms(seconds: float) -> int:
    return int(seconds * 1000)

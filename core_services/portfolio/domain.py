"""Order, position and valuation rules, free of web and database concerns.

An order locks its price when it is accepted. Its cash moves as one payment between
the customer's account and the house account, under an idempotency key derived from
the order id: re-sending that payment (a client retry, the reconciler) can never pay
twice. Cost basis is average cost: a sale takes away its proportional share of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

ORDER_CURRENCY = "USD"
MAX_QUANTITY = 1_000_000
# The payments API refuses amounts from here up.
MAX_AMOUNT_MINOR = 10**15

PENDING = "pending"
FILLED = "filled"
REJECTED = "rejected"

Side = Literal["buy", "sell"]

# Answers from payments that settle nothing either way: the same payment may still go
# through later (an in-flight duplicate, a rate limit, our own credentials refused).
_UNDECIDED_STATUSES = {401, 403, 408, 409, 425, 429}


class PortfolioRuleViolation(ValueError):
    """A request the portfolio must refuse; `code` is the problem code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    quantity: int
    cost_basis_minor: int

    def bought(self, quantity: int, amount_minor: int) -> Position:
        return replace(self, quantity=self.quantity + quantity, cost_basis_minor=self.cost_basis_minor + amount_minor)

    def sold(self, quantity: int) -> tuple[Position, int]:
        """The position left and the cost basis the sold shares take with them.

        Rounding down leaves the remainder on the shares kept; selling the last share
        takes all that is left, so no cost is ever lost or invented.
        """
        if quantity > self.quantity:
            raise PortfolioRuleViolation(
                "insufficient_position", f"cannot sell {quantity} {self.symbol}: {self.quantity} held"
            )
        cost = self.cost_basis_minor * quantity // self.quantity
        left = replace(self, quantity=self.quantity - quantity, cost_basis_minor=self.cost_basis_minor - cost)
        return left, cost

    def restored(self, quantity: int, cost_minor: int) -> Position:
        """Undo `sold`: a sale whose payment was refused gives its shares back."""
        return self.bought(quantity, cost_minor)


@dataclass(frozen=True, slots=True)
class Holding:
    """A position valued at a price."""

    position: Position
    price_minor: int

    @property
    def market_value_minor(self) -> int:
        return self.position.quantity * self.price_minor

    @property
    def unrealised_pnl_minor(self) -> int:
        return self.market_value_minor - self.position.cost_basis_minor

    def as_json(self) -> dict[str, Any]:
        return {
            "symbol": self.position.symbol,
            "quantity": self.position.quantity,
            "cost_basis_minor": self.position.cost_basis_minor,
            "price_minor": self.price_minor,
            "market_value_minor": self.market_value_minor,
            "unrealised_pnl_minor": self.unrealised_pnl_minor,
        }


@dataclass(frozen=True, slots=True)
class Valuation:
    account_id: str
    currency: str
    cash_minor: int
    holdings: tuple[Holding, ...]

    @property
    def market_value_minor(self) -> int:
        return sum(holding.market_value_minor for holding in self.holdings)

    @property
    def unrealised_pnl_minor(self) -> int:
        return sum(holding.unrealised_pnl_minor for holding in self.holdings)

    @property
    def total_value_minor(self) -> int:
        return self.cash_minor + self.market_value_minor

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "currency": self.currency,
            "cash_minor": self.cash_minor,
            "positions": [holding.as_json() for holding in self.holdings],
            "market_value_minor": self.market_value_minor,
            "unrealised_pnl_minor": self.unrealised_pnl_minor,
            "total_value_minor": self.total_value_minor,
        }


def value_portfolio(
    account_id: str, currency: str, cash_minor: int, positions: Iterable[Position], prices: Mapping[str, int]
) -> Valuation:
    """Positions still held, in symbol order, each at its price."""
    holdings = tuple(
        Holding(position, prices[position.symbol])
        for position in sorted(positions, key=lambda held: held.symbol)
        if position.quantity > 0
    )
    return Valuation(account_id, currency, cash_minor, holdings)


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    customer_id: str
    account_id: str
    symbol: str
    side: Side
    quantity: int
    price_minor: int
    amount_minor: int
    status: str
    created_at: str
    reserved_cost_minor: int = 0
    payment_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "account_id": self.account_id,
            "symbol": self.symbol,
            "side": self.side,
            "quantity": self.quantity,
            "price_minor": self.price_minor,
            "amount_minor": self.amount_minor,
            "payment_id": self.payment_id,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """The final answer to an order, replayed for every retry with the same key."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OrderRecord:
    order: Order
    fingerprint: str
    response: StoredResponse | None


def order_amount(price_minor: int, quantity: int) -> int:
    if not 1 <= quantity <= MAX_QUANTITY:
        raise PortfolioRuleViolation("validation_error", f"quantity must be 1 to {MAX_QUANTITY}")
    amount = price_minor * quantity
    if amount >= MAX_AMOUNT_MINOR:
        raise PortfolioRuleViolation("validation_error", f"the order is worth {amount}, over the limit")
    return amount


def replay(record: OrderRecord, fingerprint: str) -> OrderRecord:
    """The order a retry refers to, or `idempotency_key_reused` if the retry is another request."""
    if record.fingerprint != fingerprint:
        raise PortfolioRuleViolation(
            "idempotency_key_reused", "this Idempotency-Key was first used with a different order"
        )
    return record


@dataclass(frozen=True, slots=True)
class PaymentInstruction:
    """The one payment that settles an order; the same every time it is sent."""

    idempotency_key: str
    from_account: str
    to_account: str
    amount_minor: int
    reference: str

    def body(self) -> dict[str, Any]:
        return {
            "from_account": self.from_account,
            "to_account": self.to_account,
            "amount_minor": self.amount_minor,
            "currency": ORDER_CURRENCY,
            "reference": self.reference,
        }


def payment_for(order: Order, house_account_id: str) -> PaymentInstruction:
    """A buy pays the house; a sell is paid by the house."""
    if order.side == "buy":
        source, target = order.account_id, house_account_id
    else:
        source, target = house_account_id, order.account_id
    reference = f"{order.id} {order.side} {order.quantity} {order.symbol} @ {order.price_minor}"
    return PaymentInstruction(f"order-{order.id}", source, target, order.amount_minor, reference)


@dataclass(frozen=True, slots=True)
class PaymentSettled:
    payment_id: str


@dataclass(frozen=True, slots=True)
class PaymentRefused:
    code: str
    detail: str


PaymentOutcome = PaymentSettled | PaymentRefused | None


def payment_outcome(status: int, body: Mapping[str, Any]) -> PaymentOutcome:
    """What an answer from payments means for the order; None when it is still unknown."""
    if 200 <= status < 300 and isinstance(body.get("id"), str):
        return PaymentSettled(body["id"])
    if status >= 500 or status in _UNDECIDED_STATUSES or not 400 <= status < 500:
        return None
    code = "insufficient_funds" if body.get("code") == "insufficient_funds" else "payment_rejected"
    return PaymentRefused(code, str(body.get("detail") or body.get("title") or f"payments answered {status}"))

"""SQL for orders, positions and service facts: every function runs inside the caller's transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Connection, RowMapping, and_, select, update

from core_services.database import Sql, insert_if_absent
from core_services.portfolio.domain import PENDING, Order, OrderRecord, Position, StoredResponse
from core_services.portfolio.schema import known_accounts, orders, positions, service_facts

_MARKET_EPOCH = "market_epoch"
_HOUSE_ACCOUNT = "house_account"
_HOUSE_FUNDED = "house_funded"
_HOUSE_CLAIM = "house_claim"


@dataclass(frozen=True, slots=True)
class HouseAccount:
    """The portfolio's own customer and USD account in payments: every order's counterparty."""

    customer_id: str
    account_id: str


@dataclass(frozen=True, slots=True)
class KnownAccount:
    account_id: str
    customer_id: str
    currency: str


# -- service facts ---------------------------------------------------------------------------------


def market_epoch(conn: Connection, now_seconds: int) -> int:
    """The epoch of the market walk: the first caller's `now`, the same for everyone after."""
    insert_if_absent(conn, service_facts, {"key": _MARKET_EPOCH, "value": str(now_seconds)})
    return int(_fact(conn, _MARKET_EPOCH) or now_seconds)


def house_account(conn: Connection) -> tuple[HouseAccount | None, bool]:
    """The house account if it has been opened, and whether its float has been deposited."""
    opened = _fact(conn, _HOUSE_ACCOUNT)
    if opened is None:
        return None, False
    ids = json.loads(opened)
    return HouseAccount(ids["customer_id"], ids["account_id"]), _fact(conn, _HOUSE_FUNDED) is not None


def save_house_account(conn: Connection, house: HouseAccount) -> None:
    value = json.dumps({"customer_id": house.customer_id, "account_id": house.account_id})
    insert_if_absent(conn, service_facts, {"key": _HOUSE_ACCOUNT, "value": value})


def mark_house_funded(conn: Connection, deposit_id: str) -> None:
    insert_if_absent(conn, service_facts, {"key": _HOUSE_FUNDED, "value": deposit_id})


def claim_house_opening(conn: Connection, now_ms: int, until_ms: int) -> bool:
    """Become the one process that opens the house account, unless a live claim exists.

    A claim that has expired belonged to a process that died halfway; it is taken over.
    """
    if insert_if_absent(conn, service_facts, {"key": _HOUSE_CLAIM, "value": str(until_ms)}):
        return True
    query = select(service_facts.c.value).where(service_facts.c.key == _HOUSE_CLAIM).with_for_update()
    if int(conn.execute(query).scalar_one()) > now_ms:
        return False
    conn.execute(update(service_facts).where(service_facts.c.key == _HOUSE_CLAIM).values(value=str(until_ms)))
    return True


def release_house_opening(conn: Connection) -> None:
    conn.execute(update(service_facts).where(service_facts.c.key == _HOUSE_CLAIM).values(value="0"))


def _fact(conn: Connection, key: str) -> str | None:
    return conn.execute(select(service_facts.c.value).where(service_facts.c.key == key)).scalar()


# -- account owners ----------------------------------------------------------------------------------


# The portfolio view's reads, in plain SQL: building and compiling the expressions cost
# more than the reads themselves.
_KNOWN_ACCOUNT = Sql("SELECT account_id, customer_id, currency FROM known_accounts WHERE account_id = :id")
_POSITIONS = Sql("SELECT symbol, quantity, cost_basis_minor FROM positions WHERE account_id = :id ORDER BY symbol")


def known_account(conn: Connection, account_id: str) -> KnownAccount | None:
    row = _KNOWN_ACCOUNT.run(conn, {"id": account_id}).fetchone()
    return KnownAccount(row[0], row[1], row[2]) if row else None


def remember_account(conn: Connection, account: KnownAccount, now: str) -> None:
    insert_if_absent(
        conn,
        known_accounts,
        {
            "account_id": account.account_id,
            "customer_id": account.customer_id,
            "currency": account.currency,
            "confirmed_at": now,
        },
    )


# -- orders ------------------------------------------------------------------------------------------


def insert_order(
    conn: Connection, order: Order, key: str, fingerprint: str, created_ms: int, claimed_until_ms: int
) -> bool:
    """Record a new order, claimed by its creator; False if the key already has one."""
    return insert_if_absent(
        conn,
        orders,
        {
            "id": order.id,
            "customer_id": order.customer_id,
            "idempotency_key": key,
            "fingerprint": fingerprint,
            "account_id": order.account_id,
            "symbol": order.symbol,
            "side": order.side,
            "quantity": order.quantity,
            "price_minor": order.price_minor,
            "amount_minor": order.amount_minor,
            "reserved_cost_minor": order.reserved_cost_minor,
            "status": order.status,
            "payment_id": None,
            "response_status": None,
            "response_body": None,
            "claimed_until_ms": claimed_until_ms,
            "created_ms": created_ms,
            "created_at": order.created_at,
            "updated_at": order.created_at,
        },
    )


def order_by_key(conn: Connection, customer_id: str, key: str) -> OrderRecord | None:
    query = select(orders).where(and_(orders.c.customer_id == customer_id, orders.c.idempotency_key == key))
    row = conn.execute(query).mappings().first()
    return _record(row) if row else None


def locked_order(conn: Connection, order_id: str) -> OrderRecord:
    row = conn.execute(select(orders).where(orders.c.id == order_id).with_for_update()).mappings().one()
    return _record(row)


def reserve_cost(conn: Connection, order_id: str, cost_minor: int) -> None:
    conn.execute(update(orders).where(orders.c.id == order_id).values(reserved_cost_minor=cost_minor))


def claim_order(conn: Connection, order_id: str, now_ms: int, until_ms: int) -> OrderRecord | None:
    """Take a pending order nobody is driving; None if it is finished or someone else holds it."""
    claimed = conn.execute(
        update(orders)
        .where(and_(orders.c.id == order_id, orders.c.status == PENDING, orders.c.claimed_until_ms < now_ms))
        .values(claimed_until_ms=until_ms)
    ).rowcount
    return locked_order(conn, order_id) if claimed == 1 else None


def release_order(conn: Connection, order_id: str) -> None:
    """Let the next retry or reconciler pass drive this order at once."""
    conn.execute(
        update(orders).where(and_(orders.c.id == order_id, orders.c.status == PENDING)).values(claimed_until_ms=0)
    )


def finish_order(
    conn: Connection, order_id: str, status: str, payment_id: str | None, response: StoredResponse, now: str
) -> None:
    conn.execute(
        update(orders)
        .where(orders.c.id == order_id)
        .values(
            status=status,
            payment_id=payment_id,
            response_status=response.status,
            response_body=json.dumps(response.body, separators=(",", ":")),
            claimed_until_ms=0,
            updated_at=now,
        )
    )


def stale_pending_orders(conn: Connection, created_before_ms: int, now_ms: int, limit: int) -> list[str]:
    """Pending orders old enough to need reconciling and not held by a live driver, oldest first."""
    query = (
        select(orders.c.id)
        .where(
            and_(
                orders.c.status == PENDING, orders.c.created_ms < created_before_ms, orders.c.claimed_until_ms < now_ms
            )
        )
        .order_by(orders.c.created_ms)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def _record(row: RowMapping) -> OrderRecord:
    order = Order(
        id=row["id"],
        customer_id=row["customer_id"],
        account_id=row["account_id"],
        symbol=row["symbol"],
        side=row["side"],
        quantity=int(row["quantity"]),
        price_minor=int(row["price_minor"]),
        amount_minor=int(row["amount_minor"]),
        status=row["status"],
        created_at=row["created_at"],
        reserved_cost_minor=int(row["reserved_cost_minor"]),
        payment_id=row["payment_id"],
    )
    response = None
    if row["response_status"] is not None:
        response = StoredResponse(int(row["response_status"]), json.loads(row["response_body"]))
    return OrderRecord(order, row["fingerprint"], response)


# -- positions ---------------------------------------------------------------------------------------


def locked_position(conn: Connection, account_id: str, symbol: str) -> Position:
    """The position, row-locked, made empty on first use so concurrent orders queue on it."""
    insert_if_absent(
        conn, positions, {"account_id": account_id, "symbol": symbol, "quantity": 0, "cost_basis_minor": 0}
    )
    query = select(positions).where(and_(positions.c.account_id == account_id, positions.c.symbol == symbol))
    return _position(conn.execute(query.with_for_update()).mappings().one())


def save_position(conn: Connection, account_id: str, position: Position) -> None:
    conn.execute(
        update(positions)
        .where(and_(positions.c.account_id == account_id, positions.c.symbol == position.symbol))
        .values(quantity=position.quantity, cost_basis_minor=position.cost_basis_minor)
    )


def account_positions(conn: Connection, account_id: str) -> list[Position]:
    rows = _POSITIONS.run(conn, {"id": account_id}).fetchall()
    return [Position(row[0], int(row[1]), int(row[2])) for row in rows]


def _position(row: RowMapping) -> Position:
    return Position(row["symbol"], int(row["quantity"]), int(row["cost_basis_minor"]))

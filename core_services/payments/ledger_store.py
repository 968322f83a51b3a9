"""SQL for the ledger: every function runs inside the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, func, insert, select, update

from core_services.database import insert_if_absent
from core_services.payments.domain import Account, StoredResponse, Transfer
from core_services.payments.schema import accounts, customers, entries, idempotency_keys, payments

FUNDING_PREFIX = "acc_funding"


def add_customer(conn: Connection, customer_id: str, name: str, token_sha256: str, now: str) -> None:
    conn.execute(insert(customers).values(id=customer_id, name=name, token_sha256=token_sha256, created_at=now))


def customer_for_token(conn: Connection, token_sha256: str) -> str | None:
    return conn.execute(select(customers.c.id).where(customers.c.token_sha256 == token_sha256)).scalar()


def add_account(conn: Connection, account_id: str, customer_id: str, currency: str, now: str) -> Account:
    conn.execute(
        insert(accounts).values(id=account_id, customer_id=customer_id, currency=currency, balance_minor=0,
                                created_at=now)
    )
    return Account(account_id, customer_id, currency, 0)


def funding_account(conn: Connection, currency: str, now: str) -> Account:
    """The platform's account that deposits in `currency` come from, made on first use."""
    account_id = f"{FUNDING_PREFIX}{currency.lower()}"
    insert_if_absent(conn, accounts, {"id": account_id, "customer_id": None, "currency": currency,
                                      "balance_minor": 0, "created_at": now})
    found = locked_accounts(conn, [account_id])
    return found[account_id]


def find_account(conn: Connection, account_id: str) -> Account | None:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).mappings().first()
    return _account(row) if row else None


def locked_accounts(conn: Connection, account_ids: list[str]) -> dict[str, Account]:
    """The accounts, row-locked in id order so two opposite payments cannot deadlock."""
    query = select(accounts).where(accounts.c.id.in_(sorted(set(account_ids)))).order_by(accounts.c.id)
    rows = conn.execute(query.with_for_update()).mappings().all()
    return {row["id"]: _account(row) for row in rows}


def post_transfer(conn: Connection, payment_id: str, kind: str, transfer: Transfer, reference: str | None,
                  now: str) -> None:
    """Write the payment, its two entries, and both balances."""
    debit = update(accounts).where(accounts.c.id == transfer.from_account.id)
    if not transfer.from_account.is_funding:
        # Re-checked in the statement itself: the ledger never trusts an earlier read.
        debit = debit.where(accounts.c.balance_minor >= transfer.amount_minor)
    if conn.execute(debit.values(balance_minor=accounts.c.balance_minor - transfer.amount_minor)).rowcount != 1:
        raise RuntimeError(f"debit of {transfer.from_account.id} lost its balance check")
    conn.execute(
        update(accounts)
        .where(accounts.c.id == transfer.to_account.id)
        .values(balance_minor=accounts.c.balance_minor + transfer.amount_minor)
    )
    conn.execute(
        insert(payments).values(
            id=payment_id, kind=kind, from_account=transfer.from_account.id, to_account=transfer.to_account.id,
            amount_minor=transfer.amount_minor, currency=transfer.currency, reference=reference,
            status="settled", created_at=now,
        )
    )
    conn.execute(
        insert(entries),
        [{"payment_id": payment_id, "account_id": entry.account_id, "amount_minor": entry.amount_minor,
          "currency": entry.currency, "created_at": now} for entry in transfer.entries()],
    )


def find_payment(conn: Connection, payment_id: str) -> RowMapping | None:
    return conn.execute(select(payments).where(payments.c.id == payment_id)).mappings().first()


def account_entries(conn: Connection, account_id: str, before_id: int | None, limit: int) -> list[RowMapping]:
    query = select(entries).where(entries.c.account_id == account_id)
    if before_id is not None:
        query = query.where(entries.c.id < before_id)
    return list(conn.execute(query.order_by(entries.c.id.desc()).limit(limit)).mappings())


def stored_response(conn: Connection, scope: str, key: str) -> StoredResponse | None:
    row = conn.execute(
        select(idempotency_keys.c.fingerprint, idempotency_keys.c.status, idempotency_keys.c.body).where(
            and_(idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
        )
    ).first()
    return StoredResponse(row.fingerprint, row.status, json.loads(row.body)) if row else None


def store_response(conn: Connection, scope: str, key: str, response: StoredResponse, now: str) -> bool:
    """Record the first response for a key; False if a concurrent request recorded one first."""
    return insert_if_absent(
        conn,
        idempotency_keys,
        {"scope": scope, "key": key, "fingerprint": response.fingerprint, "status": response.status,
         "body": json.dumps(response.body, separators=(",", ":")), "created_at": now},
    )


def ledger_totals(conn: Connection) -> dict[str, Any]:
    """The aggregates `/v1/ledger/verify` judges; one consistent snapshot."""
    sums = dict(conn.execute(select(entries.c.currency, func.sum(entries.c.amount_minor)).group_by(
        entries.c.currency)).tuples().all())
    entry_sums = (
        select(entries.c.account_id, func.sum(entries.c.amount_minor).label("total"))
        .group_by(entries.c.account_id)
        .subquery()
    )
    mismatched = conn.execute(
        select(func.count())
        .select_from(accounts.outerjoin(entry_sums, entry_sums.c.account_id == accounts.c.id))
        .where(accounts.c.balance_minor != func.coalesce(entry_sums.c.total, 0))
    ).scalar_one()
    negative = conn.execute(
        select(func.count()).select_from(accounts).where(
            and_(accounts.c.customer_id.is_not(None), accounts.c.balance_minor < 0)
        )
    ).scalar_one()
    return {
        "sum_by_currency": {currency: int(total) for currency, total in sums.items()},
        "negative_customer_accounts": negative,
        "payments": conn.execute(select(func.count()).select_from(payments)).scalar_one(),
        "entries": conn.execute(select(func.count()).select_from(entries)).scalar_one(),
        "mismatched_balances": mismatched,
    }


def _account(row: RowMapping) -> Account:
    return Account(row["id"], row["customer_id"], row["currency"], int(row["balance_minor"]))

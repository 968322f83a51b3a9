"""SQL for the ledger: every function runs inside the caller's transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, RowMapping, and_, func, insert, select, update

from core_services.clock import utc_now
from core_services.database import Sql, insert_if_absent
from core_services.payments.domain import MAX_BALANCE_MINOR, Account, StoredResponse, Transfer
from core_services.payments.schema import (
    accounts,
    customer_tokens,
    customers,
    entries,
    payments,
    token_revocations,
)

FUNDING_PREFIX = "acc_funding"


def add_customer(conn: Connection, customer_id: str, name: str, token_sha256: str, now: str) -> None:
    conn.execute(insert(customers).values(id=customer_id, name=name, token_sha256=token_sha256, created_at=now))


def customer_for_token(conn: Connection, token_sha256: str) -> str | None:
    first = select(customers.c.id).where(customers.c.token_sha256 == token_sha256)
    later = select(customer_tokens.c.customer_id).where(customer_tokens.c.token_sha256 == token_sha256)
    return conn.execute(first.union_all(later)).scalar()


def customer_exists(conn: Connection, customer_id: str) -> bool:
    return conn.execute(select(customers.c.id).where(customers.c.id == customer_id)).scalar() is not None


def add_token(conn: Connection, customer_id: str, token_sha256: str, now: str) -> None:
    conn.execute(insert(customer_tokens).values(token_sha256=token_sha256, customer_id=customer_id, created_at=now))


def revoked_before(conn: Connection, customer_id: str) -> int | None:
    """The customer's revocation instant (ms): its tokens issued at or before it no longer work."""
    query = select(token_revocations.c.revoked_before_ms).where(token_revocations.c.customer_id == customer_id)
    found = conn.execute(query).scalar()
    return None if found is None else int(found)


def revoke_tokens(conn: Connection, customer_id: str, before_ms: int) -> None:
    insert_if_absent(conn, token_revocations, {"customer_id": customer_id, "revoked_before_ms": before_ms})
    conn.execute(
        update(token_revocations)
        .where(token_revocations.c.customer_id == customer_id)
        .values(revoked_before_ms=before_ms)
    )


def all_revocations(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(token_revocations.c.customer_id, token_revocations.c.revoked_before_ms))
    return {customer_id: int(before_ms) for customer_id, before_ms in rows}


def add_account(conn: Connection, account_id: str, customer_id: str, currency: str, now: str) -> Account:
    conn.execute(
        insert(accounts).values(
            id=account_id, customer_id=customer_id, currency=currency, balance_minor=0, created_at=now
        )
    )
    return Account(account_id, customer_id, currency, 0)


def funding_account(conn: Connection, currency: str, now: str, *, lock: bool) -> Account:
    """The platform's account that deposits in `currency` come from, made on first use."""
    account_id = f"{FUNDING_PREFIX}{currency.lower()}"
    insert_if_absent(
        conn,
        accounts,
        {"id": account_id, "customer_id": None, "currency": currency, "balance_minor": 0, "created_at": now},
    )
    return read_accounts(conn, [account_id], lock=lock)[account_id]


_FIND_ACCOUNT = Sql("SELECT id, customer_id, currency, balance_minor FROM accounts WHERE id = :id")


def find_account(conn: Connection, account_id: str) -> Account | None:
    # Plain SQL: every account read and every portfolio view comes here.
    row = _FIND_ACCOUNT.run(conn, {"id": account_id}).fetchone()
    return Account(row[0], row[1], row[2], int(row[3])) if row else None


# The payment path's statements: plain SQL that both dialects accept as written
# (ON CONFLICT and multi-row VALUES included). Only PostgreSQL gets FOR UPDATE: on
# SQLite the single writer already excludes every other transaction.
_ACCOUNTS = "SELECT id, customer_id, currency, balance_minor FROM accounts WHERE id IN (:a, :b) ORDER BY id"
_READ_ACCOUNTS = Sql(_ACCOUNTS)
_LOCK_ACCOUNTS = {"sqlite": _READ_ACCOUNTS, "postgresql": Sql(_ACCOUNTS + " FOR UPDATE")}
_MOVE_BALANCES = Sql(
    "UPDATE accounts SET balance_minor = balance_minor + CASE WHEN id = :source THEN -:amount ELSE :amount END"
    " WHERE id IN (:source, :target)"
    # Re-checked in the statement itself: the ledger never trusts an earlier read. The
    # source keeps its funds (the funding account may go negative) and both stay in 64 bits.
    " AND CASE WHEN id = :source"
    " THEN (customer_id IS NULL OR balance_minor >= :amount) AND balance_minor >= :floor"
    " ELSE balance_minor <= :ceiling END"
)
_INSERT_PAYMENT = Sql(
    "INSERT INTO payments (id, kind, from_account, to_account, amount_minor, currency, reference, status,"
    " created_at) VALUES (:id, :kind, :source, :target, :amount, :currency, :reference, 'settled', :now)"
)
_INSERT_ENTRIES = Sql(
    "INSERT INTO entries (payment_id, account_id, amount_minor, currency, created_at) VALUES"
    " (:id, :source, -:amount, :currency, :now), (:id, :target, :amount, :currency, :now)"
)
_STORED_RESPONSE = "SELECT fingerprint, status, body FROM idempotency_keys WHERE scope = :scope AND key = :key"
_LOOKUP = Sql(_STORED_RESPONSE)
# PostgreSQL: first queue behind any transaction holding the same key, in the same round
# trip. The row read may predate the wait; a duplicate that slips through is caught by
# the record's primary key when it is stored.
_QUEUE_AND_LOOKUP = Sql(
    "SELECT fingerprint, status, body FROM (SELECT pg_advisory_xact_lock(:lock)) AS queued"
    " LEFT JOIN idempotency_keys ON scope = :scope AND key = :key"
)
_STORE_RESPONSE = Sql(
    "INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, created_at)"
    " VALUES (:scope, :key, :fingerprint, :status, :body, :now) ON CONFLICT DO NOTHING"
)
# PostgreSQL: the row locks (in id order, so two opposite payments cannot deadlock) and
# the four writes in one statement, one round trip. A hot account (the house's, the
# funding account) is then locked for this statement and the COMMIT only.
_POST_AND_RECORD = Sql(
    "WITH locked AS (SELECT id FROM accounts WHERE id IN (:source, :target) ORDER BY id FOR UPDATE),"
    f" moved AS ({_MOVE_BALANCES.by_dialect['sqlite']} AND id IN (SELECT id FROM locked) RETURNING id),"
    f" paid AS ({_INSERT_PAYMENT.by_dialect['sqlite']}),"
    f" posted AS ({_INSERT_ENTRIES.by_dialect['sqlite']}),"
    f" stored AS ({_STORE_RESPONSE.by_dialect['sqlite']} RETURNING 1)"
    " SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM stored)"
)


class BalancesMoved(Exception):
    """A balance changed between the read a posting was decided on and its write: decide again."""


def read_accounts(conn: Connection, account_ids: list[str], *, lock: bool) -> dict[str, Account]:
    """The accounts; with `lock`, row-locked in id order until the transaction ends.

    Unlocked, a posting decided on them is still safe: its write re-checks the balances
    and raises BalancesMoved if they no longer allow it.
    """
    first, second = (account_ids * 2)[:2]
    query = _LOCK_ACCOUNTS[conn.dialect.name] if lock else _READ_ACCOUNTS
    rows = query.run(conn, {"a": first, "b": second}).fetchall()
    return {row[0]: Account(row[0], row[1], row[2], int(row[3])) for row in rows}


@dataclass(frozen=True, slots=True)
class Posting:
    """A decided money movement, written together with the answer that reports it."""

    payment_id: str
    kind: str
    transfer: Transfer
    reference: str | None
    now: str

    def params(self) -> dict[str, Any]:
        amount = self.transfer.amount_minor
        return {
            "id": self.payment_id,
            "kind": self.kind,
            "source": self.transfer.from_account.id,
            "target": self.transfer.to_account.id,
            "amount": amount,
            "floor": amount - MAX_BALANCE_MINOR,
            "ceiling": MAX_BALANCE_MINOR - amount,
            "currency": self.transfer.currency,
            "reference": self.reference,
            "now": self.now,
        }

    def payment_json(self) -> dict[str, Any]:
        return {
            "id": self.payment_id,
            "status": "settled",
            "from_account": self.transfer.from_account.id,
            "to_account": self.transfer.to_account.id,
            "amount_minor": self.transfer.amount_minor,
            "currency": self.transfer.currency,
            "reference": self.reference,
            "created_at": self.now,
        }

    def deposit_json(self) -> dict[str, Any]:
        return {
            "id": self.payment_id,
            "status": "settled",
            "account_id": self.transfer.to_account.id,
            "amount_minor": self.transfer.amount_minor,
            "currency": self.transfer.currency,
            "created_at": self.now,
        }


def record_outcome(conn: Connection, scope: str, key: str, response: StoredResponse, posting: Posting | None) -> bool:
    """Write the posting (payment, two entries, both balances) and the idempotency record.

    False if a concurrent duplicate recorded its answer first: the caller must roll
    back. BalancesMoved if a balance no longer allows the posting (it was decided on an
    unlocked read): the caller must roll back and decide again. PostgreSQL does it all
    in one round trip.
    """
    record = {
        "scope": scope,
        "key": key,
        "fingerprint": response.fingerprint,
        "status": response.status,
        "body": json.dumps(response.body, separators=(",", ":")),
        "now": posting.now if posting else utc_now(),
    }
    if posting is None:
        return bool(_STORE_RESPONSE.run(conn, record).rowcount == 1)
    params = {**posting.params(), **record}
    if conn.dialect.name == "postgresql":
        moved, stored = _POST_AND_RECORD.run(conn, params).fetchone()
    else:
        moved = _MOVE_BALANCES.run(conn, params).rowcount
        _INSERT_PAYMENT.run(conn, params)
        _INSERT_ENTRIES.run(conn, params)
        stored = _STORE_RESPONSE.run(conn, params).rowcount
    if moved != 2:
        raise BalancesMoved(posting.transfer.from_account.id)
    return bool(stored == 1)


def find_payment(conn: Connection, payment_id: str) -> RowMapping | None:
    return conn.execute(select(payments).where(payments.c.id == payment_id)).mappings().first()


def account_entries(conn: Connection, account_id: str, before_id: int | None, limit: int) -> list[RowMapping]:
    query = select(entries).where(entries.c.account_id == account_id)
    if before_id is not None:
        query = query.where(entries.c.id < before_id)
    return list(conn.execute(query.order_by(entries.c.id.desc()).limit(limit)).mappings())


def stored_response(conn: Connection, scope: str, key: str, *, queue: bool = False) -> StoredResponse | None:
    """The first response given for this key, if any.

    `queue` (PostgreSQL) first waits, up to the lock timeout, for a transaction that
    holds the same key, so duplicates from other processes line up here rather than
    on the accounts.
    """
    if queue:
        lock = int.from_bytes(hashlib.sha256(f"{scope}\0{key}".encode()).digest()[:8], "big", signed=True)
        row = _QUEUE_AND_LOOKUP.run(conn, {"lock": lock, "scope": scope, "key": key}).fetchone()
    else:
        row = _LOOKUP.run(conn, {"scope": scope, "key": key}).fetchone()
    return StoredResponse(row[0], row[1], json.loads(row[2])) if row and row[0] is not None else None


def ledger_totals(conn: Connection) -> dict[str, Any]:
    """The aggregates `/v1/ledger/verify` judges; one consistent snapshot."""
    sums = dict(
        conn.execute(select(entries.c.currency, func.sum(entries.c.amount_minor)).group_by(entries.c.currency))
        .tuples()
        .all()
    )
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
        select(func.count())
        .select_from(accounts)
        .where(and_(accounts.c.customer_id.is_not(None), accounts.c.balance_minor < 0))
    ).scalar_one()
    return {
        "sum_by_currency": {currency: int(total) for currency, total in sums.items()},
        "negative_customer_accounts": negative,
        "payments": conn.execute(select(func.count()).select_from(payments)).scalar_one(),
        "entries": conn.execute(select(func.count()).select_from(entries)).scalar_one(),
        "mismatched_balances": mismatched,
    }

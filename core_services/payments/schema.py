"""The payments database: customers, accounts, payments, ledger entries, idempotency records."""

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from core_services.database import Migration

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY.
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")

customers = Table(
    "customers",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", String(32), nullable=False),
)

# Tokens issued after the first (POST /v1/customers/{id}/tokens), by SHA-256 only.
customer_tokens = Table(
    "customer_tokens",
    metadata,
    Column("token_sha256", String(64), primary_key=True),
    Column("customer_id", String(32), nullable=False, index=True),
    Column("created_at", String(32), nullable=False),
)

# Every token of a customer issued at or before `revoked_before_ms` is revoked (DELETE .../tokens).
token_revocations = Table(
    "token_revocations",
    metadata,
    Column("customer_id", String(32), primary_key=True),
    Column("revoked_before_ms", BigInteger, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", String(32), primary_key=True),
    # NULL for the platform's funding accounts, the only ones allowed below zero.
    Column("customer_id", String(32), index=True),
    Column("currency", String(3), nullable=False),
    Column("balance_minor", BigInteger, nullable=False),
    Column("created_at", String(32), nullable=False),
)

payments = Table(
    "payments",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("from_account", String(32), nullable=False),
    Column("to_account", String(32), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", String(140)),
    Column("status", String(16), nullable=False),
    Column("created_at", String(32), nullable=False),
)

entries = Table(
    "entries",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("payment_id", String(32), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", String(32), nullable=False),
    Index("entries_by_account", "account_id", "id"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("scope", String(32), nullable=False),
    Column("key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", String(32), nullable=False),
    PrimaryKeyConstraint("scope", "key"),
)

# Append-only: migrations[i] takes a database from schema version i to i + 1.
# (New tables need none: `Database.migrate` creates whatever tables are missing.)
MIGRATIONS: list[Migration] = []

"""The portfolio database: orders, positions, confirmed account owners, and service facts."""

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
    UniqueConstraint,
)

from core_services.database import Migration

metadata = MetaData()

# Facts this service records once and every worker shares: the market epoch, the house
# account, the claim of whoever is opening the house account.
service_facts = Table(
    "portfolio_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Accounts whose owner payments has confirmed, so orders need not ask again.
known_accounts = Table(
    "known_accounts",
    metadata,
    Column("account_id", String(32), primary_key=True),
    Column("customer_id", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("confirmed_at", String(32), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("customer_id", String(32), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("account_id", String(32), nullable=False),
    Column("symbol", String(12), nullable=False),
    Column("side", String(4), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    # Cost basis a pending sell took from the position, given back if its payment is refused.
    Column("reserved_cost_minor", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("payment_id", String(32)),
    Column("response_status", Integer),
    Column("response_body", Text),
    # Unix milliseconds until which one driver (a request or the reconciler) owns a pending order.
    Column("claimed_until_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("updated_at", String(32), nullable=False),
    UniqueConstraint("customer_id", "idempotency_key", name="orders_by_key"),
    Index("orders_by_status", "status", "created_ms"),
)

positions = Table(
    "positions",
    metadata,
    Column("account_id", String(32), nullable=False),
    Column("symbol", String(12), nullable=False),
    Column("quantity", BigInteger, nullable=False),
    Column("cost_basis_minor", BigInteger, nullable=False),
    PrimaryKeyConstraint("account_id", "symbol"),
)

# Append-only: migrations[i] takes a database from schema version i to i + 1.
MIGRATIONS: list[Migration] = []

"""The payments service: customers, accounts, a double-entry ledger and idempotent payments."""

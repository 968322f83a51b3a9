"""Resource identifiers: a type prefix and 20 hex digits (no underscore, so tokens can embed them)."""

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"

"""Resource identifiers: a type prefix and 20 hex digits (no underscore, so tokens can embed them)."""

import re
import secrets

WELL_FORMED = re.compile(r"[a-z]{3}_[a-z0-9]{1,28}")


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def is_well_formed(resource_id: str) -> bool:
    """Ids that cannot exist are answered as missing without asking the database."""
    return WELL_FORMED.fullmatch(resource_id) is not None

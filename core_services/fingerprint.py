"""What makes two requests 'the same' for an idempotency key."""

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def request_fingerprint(operation: str, body: Mapping[str, Any]) -> str:
    """The operation and its body, canonically (key order does not matter), hashed."""
    canonical = json.dumps([operation, dict(body)], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

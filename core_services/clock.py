"""Timestamps as stored and shown: ISO 8601 UTC with milliseconds."""

from datetime import UTC, datetime


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

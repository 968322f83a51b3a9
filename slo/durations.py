"""Prometheus durations (`5m`, `1h`, `30d`, `1w`) to seconds and back, in Prometheus's own spelling."""

from __future__ import annotations

import re

UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_SECONDS = dict(UNITS)
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> int:
    """Seconds in a Prometheus duration; whole seconds only, since rules never need less."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like 5m, 1h, 30d or 1w")
    seconds = sum(int(value) * _SECONDS[unit] for value, (unit, _) in zip(match.groups(), UNITS, strict=True) if value)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


def format_duration(seconds: int) -> str:
    """Prometheus's own spelling: years and weeks only when exact (`30d`, `1w`, `4w`, `1h30m`)."""
    if seconds <= 0:
        raise ValueError("durations are positive")
    parts = []
    for unit, size in UNITS:
        if unit in ("y", "w") and seconds % size:
            continue
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)

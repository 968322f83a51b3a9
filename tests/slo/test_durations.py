"""Prometheus durations: parsed to whole seconds and written back in Prometheus's own spelling."""

from __future__ import annotations

from typing import Any

import pytest

from slo.durations import format_duration, parse_duration

MINUTE, HOUR, DAY, WEEK, YEAR = 60, 3600, 86400, 7 * 86400, 365 * 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1),
        ("5m", 5 * MINUTE),
        ("30m", 30 * MINUTE),
        ("1h", HOUR),
        ("6h", 6 * HOUR),
        ("1d", DAY),
        ("3d", 3 * DAY),
        ("30d", 30 * DAY),
        ("1w", WEEK),
        ("1y", YEAR),
        ("1h30m", 90 * MINUTE),
        ("2w3d", 17 * DAY),
        ("1d2h3m4s", DAY + 2 * HOUR + 3 * MINUTE + 4),
    ],
)
def test_parse_duration_gives_whole_seconds(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "spelling"),
    [
        ("30d", "30d"),
        ("7d", "1w"),
        ("14d", "2w"),
        ("28d", "4w"),
        ("90m", "1h30m"),
        ("60m", "1h"),
        ("24h", "1d"),
        ("72h", "3d"),
        ("8d", "8d"),
        ("365d", "1y"),
        ("90d", "90d"),
        ("14d1h", "14d1h"),
        ("1w1d", "8d"),
        ("3600s", "1h"),
    ],
)
def test_format_duration_spells_like_prometheus(text: str, spelling: str) -> None:
    """Years and weeks only when exact (Prometheus's model.Duration.String), so 30d stays 30d."""
    assert format_duration(parse_duration(text)) == spelling


@pytest.mark.parametrize(
    "seconds", [1, 59, 60, 61, 300, 1800, 3600, 5400, 7200, 21600, 86400, 259200, 604800, 2419200, 2592000, 31536000]
)
def test_format_then_parse_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("text", ["5m", "1h30m", "30d", "1w", "4w", "1y", "14d1h", "1d2h3m4s"])
def test_a_duration_in_prometheus_spelling_formats_back_to_itself(text: str) -> None:
    assert format_duration(parse_duration(text)) == text


def test_parse_duration_ignores_surrounding_whitespace() -> None:
    assert parse_duration(" 5m\n") == 300


@pytest.mark.parametrize(
    "text",
    ["", " ", "5", "m", "1.5h", "-5m", "+5m", "5M", "5 m", "5min", "1d1d", "1m1h", "1h 30m", "0s", "0m0s", "ms", "5ms"],
)
def test_parse_duration_rejects_what_is_not_a_whole_positive_duration(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration|must be longer than zero"):
        parse_duration(text)


@pytest.mark.parametrize("value", [None, 5, 5.0, True, ["5m"]])
def test_parse_duration_rejects_values_that_are_not_text(value: Any) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(value)


def test_parse_duration_errors_quote_the_input() -> None:
    with pytest.raises(ValueError, match="'7x' is not a duration like 5m, 1h, 30d or 1w"):
        parse_duration("7x")


@pytest.mark.parametrize("seconds", [0, -1, -3600])
def test_format_duration_rejects_non_positive_seconds(seconds: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        format_duration(seconds)

"""The market-data simulator: one seeded random walk of prices per symbol.

A price is a deterministic function of (seed, symbol, step), where a step is one
second since an epoch that the portfolio database stores once, so every worker
process and every restart quotes the same price at the same moment.

Log-prices follow gaussian steps with a gentle pull back toward the base price (an
Ornstein-Uhlenbeck walk), so a suite that runs for weeks still quotes sane prices.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core_services.portfolio.domain import PortfolioRuleViolation

# Base prices in minor units (US cents).
UNIVERSE: dict[str, int] = {
    "NOVA": 12_500,
    "ACME": 4_210,
    "GLBX": 28_740,
    "INIT": 1_995,
    "ORBT": 7_320,
    "QNTM": 51_080,
    "VRTX": 15_460,
    "ZEPH": 880,
    "HELX": 3_375,
    "KSTR": 9_910,
}
QUOTE_CURRENCY = "USD"
STEP_SECONDS = 1
# Per-step standard deviation of the log-price: about 0.1 % a second.
VOLATILITY = 0.001
# Pull toward the base price per step: a half-life of about 80 minutes.
REVERSION = 1 / 7200


@dataclass(frozen=True, slots=True)
class Quote:
    symbol: str
    price_minor: int
    as_of: str
    currency: str = QUOTE_CURRENCY

    def as_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "price_minor": self.price_minor, "currency": self.currency, "as_of": self.as_of}


class _Walk:
    """One symbol's path: hourly anchors, joined second by second by Brownian bridges.

    The anchors follow the exact Ornstein-Uhlenbeck transition over an hour, so a cold
    process catches up on a year of history in about 9,000 draws, not 31 million; the
    seconds inside an hour come from that hour's own seeded stream, pinned to both of
    its anchors so the path is continuous.
    """

    def __init__(self, seed: int, symbol: str) -> None:
        self._seed_text = f"{seed}:{symbol}"
        self.lock = threading.Lock()
        self._anchors = [0.0]
        self._anchor_rng = random.Random(f"{self._seed_text}:anchors")
        self._hour = -1
        self._inside: list[float] = []

    def deviation_at(self, step: int) -> float:
        """The log-price's distance from the base price after `step` steps."""
        hour, second = divmod(step, _HOUR_STEPS)
        start, end = self._anchor(hour), self._anchor(hour + 1)
        if hour != self._hour:
            self._hour, self._inside = hour, self._hour_noise(hour)
        fraction = second / _HOUR_STEPS
        bridge = self._inside[second] - fraction * self._inside[-1]
        return start + fraction * (end - start) + bridge

    def _anchor(self, hour: int) -> float:
        while len(self._anchors) <= hour:
            previous = self._anchors[-1]
            self._anchors.append(previous * _HOUR_DECAY + _HOUR_SPREAD * self._anchor_rng.gauss())
        return self._anchors[hour]

    def _hour_noise(self, hour: int) -> list[float]:
        rng = random.Random(f"{self._seed_text}:{hour}")
        path, level = [0.0], 0.0
        for _ in range(_HOUR_STEPS):
            level += VOLATILITY * rng.gauss()
            path.append(level)
        return path


_HOUR_STEPS = 3600 // STEP_SECONDS
_HOUR_DECAY = math.exp(-REVERSION * _HOUR_STEPS)
_HOUR_SPREAD = VOLATILITY * math.sqrt((1 - _HOUR_DECAY**2) / (2 * REVERSION))


class MarketSimulator:
    """Quotes for the fixed universe; thread-safe, one instance per process."""

    def __init__(self, seed: int, epoch_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self.seed = seed
        self.epoch_seconds = epoch_seconds
        self._clock = clock
        self._walks = {symbol: _Walk(seed, symbol) for symbol in UNIVERSE}

    @property
    def symbols(self) -> list[str]:
        return sorted(UNIVERSE)

    def step_at(self, now: float) -> int:
        # A clock behind the epoch (another host, NTP step) quotes the opening price.
        return max(0, math.floor((now - self.epoch_seconds) / STEP_SECONDS))

    def price_at(self, symbol: str, step: int) -> int:
        walk = self._walks.get(symbol)
        if walk is None:
            known = ", ".join(self.symbols)
            raise PortfolioRuleViolation("unknown_symbol", f"no symbol {symbol!r}; known: {known}")
        with walk.lock:
            deviation = walk.deviation_at(step)
        return max(1, round(UNIVERSE[symbol] * math.exp(deviation)))

    def quote(self, symbol: str, now: float | None = None) -> Quote:
        step = self.step_at(self._clock() if now is None else now)
        price = self.price_at(symbol, step)
        as_of = datetime.fromtimestamp(self.epoch_seconds + step * STEP_SECONDS, UTC)
        return Quote(symbol, price, as_of.isoformat(timespec="milliseconds").replace("+00:00", "Z"))

    def warm(self) -> None:
        """Walk every symbol up to now, so no request pays for a cold cache."""
        step = self.step_at(self._clock())
        for symbol in UNIVERSE:
            self.price_at(symbol, step)

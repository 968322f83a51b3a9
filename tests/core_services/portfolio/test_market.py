"""The market simulator: a deterministic seeded walk per symbol that every process agrees on."""

from __future__ import annotations

import pytest

from core_services.portfolio.domain import PortfolioRuleViolation
from core_services.portfolio.market import UNIVERSE, MarketSimulator

EPOCH = 1_700_000_000


def path(market: MarketSimulator, symbol: str, steps: range) -> list[int]:
    return [market.price_at(symbol, step) for step in steps]


def test_same_seed_gives_the_same_path() -> None:
    assert path(MarketSimulator(7, EPOCH), "NOVA", range(0, 500, 7)) == path(
        MarketSimulator(7, EPOCH), "NOVA", range(0, 500, 7)
    )


def test_another_seed_gives_another_path() -> None:
    assert path(MarketSimulator(7, EPOCH), "NOVA", range(1, 200)) != path(
        MarketSimulator(8, EPOCH), "NOVA", range(1, 200)
    )


def test_symbols_walk_differently() -> None:
    market = MarketSimulator(7, EPOCH)
    moves = {symbol: [market.price_at(symbol, step) / UNIVERSE[symbol] for step in range(1, 50)] for symbol in UNIVERSE}
    assert len({tuple(ratios) for ratios in moves.values()}) == len(UNIVERSE)


def test_two_instances_agree_however_their_caches_were_filled() -> None:
    warm, cold = MarketSimulator(42, EPOCH), MarketSimulator(42, EPOCH)
    path(warm, "ACME", range(0, 3000, 13))
    assert warm.price_at("ACME", 2500) == cold.price_at("ACME", 2500)
    assert warm.price_at("ACME", 100) == cold.price_at("ACME", 100)


def test_quote_is_taken_at_the_step_of_the_clock() -> None:
    market = MarketSimulator(42, EPOCH, clock=lambda: EPOCH + 90.7)
    quote = market.quote("GLBX")
    assert quote.price_minor == market.price_at("GLBX", 90)
    assert quote.as_of == "2023-11-14T22:14:50.000Z"
    assert quote.currency == "USD"


def test_clock_before_the_epoch_quotes_the_base_price() -> None:
    market = MarketSimulator(42, EPOCH, clock=lambda: EPOCH - 3600)
    assert market.quote("ZEPH").price_minor == UNIVERSE["ZEPH"]


def test_prices_stay_positive_over_a_long_walk() -> None:
    market = MarketSimulator(3, EPOCH)
    assert min(path(market, "ZEPH", range(0, 200_000, 1000))) >= 1


def test_prices_move_but_stay_near_the_base_price_over_a_day() -> None:
    market = MarketSimulator(42, EPOCH)
    prices = path(market, "QNTM", range(0, 86_400, 600))
    assert len(set(prices)) > 100
    assert all(0.5 * UNIVERSE["QNTM"] < price < 2 * UNIVERSE["QNTM"] for price in prices)


def test_unknown_symbol_is_refused() -> None:
    with pytest.raises(PortfolioRuleViolation) as refused:
        MarketSimulator(42, EPOCH).quote("NOPE")
    assert refused.value.code == "unknown_symbol"

"""Shared fixtures: a small order-book DSL and one simulated baseline day reused by many tests."""

from __future__ import annotations

import pytest

from rlexec.market.book import BUY, SELL, OrderBook
from rlexec.market.config import MarketConfig
from rlexec.market.simulate import simulate_day

DAY_SEED = 11


@pytest.fixture
def book_with():
    """``book_with(bids=[(price, [size, ...]), ...], asks=[...])`` -> OrderBook.

    Orders at a level are submitted left to right (so the first size has time priority), each by
    its own agent id starting at 1, at increasing times; bids are entered before asks.
    """

    def build(bids=(), asks=()):
        book = OrderBook(price_levels=1_000, n_agents=64)
        clock = 0
        for side, levels in ((BUY, bids), (SELL, asks)):
            for price, sizes in levels:
                for size in sizes:
                    clock += 1
                    book.limit(side, price, size, agent=clock, time=clock)
        book.check_integrity()
        return book

    return build


@pytest.fixture(scope="session")
def baseline_day():
    """One full default-population day (simulated once per test session)."""
    return simulate_day(MarketConfig(), DAY_SEED)

"""Shared fixtures of tests/strategies (builders live in strategies_helpers.py)."""

from __future__ import annotations

import pytest

from rlexec.data import MarketData, SyntheticMarketConfig, generate_bars, load_sample


@pytest.fixture(scope="session")
def sample_market() -> MarketData:
    """The shipped real sample (AAPL, JPM, MSFT, SPY; 2019-02-11..15)."""
    return load_sample()


@pytest.fixture(scope="session")
def deep_market() -> MarketData:
    """Three synthetic days of a liquid stock (5M shares a day, no zero-volume minute), seed 0."""
    config = SyntheticMarketConfig(symbols=("SYN",), num_days=3, daily_volume=5_000_000.0, volatility=0.02)
    return MarketData.from_table(generate_bars(config, seed=0), source="synthetic")

"""Shared fixtures of tests/envs (builders live in envs_helpers.py)."""

from __future__ import annotations

import pytest

from rlexec.data import MarketData, load_sample


@pytest.fixture(scope="session")
def sample_market() -> MarketData:
    """The shipped real sample (AAPL, JPM, MSFT, SPY; 2019-02-11..15)."""
    return load_sample()

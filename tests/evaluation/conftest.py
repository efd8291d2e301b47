"""Shared fixtures of tests/evaluation: one evaluation of the four strategies over sample orders."""

from __future__ import annotations

import pytest

from rlexec.data import MarketData, load_sample
from rlexec.data.orders import OrderGenerator, generate_orders
from rlexec.envs import ExecutionConfig, prepare_orders
from rlexec.evaluation import evaluate
from rlexec.strategies import make_strategy, strategy_names

NUM_ORDERS = 60


@pytest.fixture(scope="session")
def sample_market() -> MarketData:
    return load_sample()


@pytest.fixture(scope="session")
def sample_evaluation(sample_market):
    """(config, batch, evaluation) of TWAP/VWAP/IS/POV over 60 random sample orders, seed 0."""
    config = ExecutionConfig()
    orders = generate_orders(sample_market, NUM_ORDERS, seed=0, generator=OrderGenerator(horizon_minutes=240))
    batch = prepare_orders(sample_market, orders, config)
    strategies = [make_strategy(name) for name in strategy_names()]
    return config, batch, evaluate(batch, config, strategies)

"""Builders for the execution-environment tests (imported by the test modules): a tiny two-session
market computable on paper, and a future-perturbing copy of any market.

The hand market has one symbol ``TST`` and two sessions, D0 and D1. Unless a test overrides them,
every bar is flat (open = high = low = close) at 100 USD with 1,000 shares, so the typical price
equals the close. Orders start at minute 10 of D1 under :func:`tiny_config` (2 steps x 2 minutes,
2 lookback minutes): lookback bars are D1 minutes 8, 9 and the horizon is D1 minutes 10..13.
"""

from __future__ import annotations

import datetime as dt
import warnings

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import check_env

from rlexec.data import MarketData
from rlexec.data.orders import Order
from rlexec.envs import ExecutionConfig, FillModel, RewardConfig

D0 = dt.date(2024, 1, 2)
D1 = dt.date(2024, 1, 3)
START = 10  # order start minute on D1
HORIZON = slice(START, START + 4)


def make_market(
    prices=None,
    volumes=None,
    *,
    start: int = START,
    day0_close=None,
    day0_volume=None,
    lookback_prices=None,
    lookback_volumes=None,
) -> MarketData:
    """Flat bars at 100 / 1,000 shares; ``prices``/``volumes`` overwrite D1 minutes ``start..``."""
    bars = np.zeros((2, 390, 5))
    bars[..., :4] = 100.0
    bars[..., 4] = 1000.0
    if day0_close is not None:
        bars[0, :, :4] = np.asarray(day0_close, dtype=float)[:, None]
    if day0_volume is not None:
        bars[0, :, 4] = day0_volume
    if prices is not None:
        p = np.asarray(prices, dtype=float)
        bars[1, start : start + p.size, :4] = p[:, None]
    if volumes is not None:
        v = np.asarray(volumes, dtype=float)
        bars[1, start : start + v.size, 4] = v
    if lookback_prices is not None:
        p = np.asarray(lookback_prices, dtype=float)
        bars[1, start - p.size : start, :4] = p[:, None]
    if lookback_volumes is not None:
        v = np.asarray(lookback_volumes, dtype=float)
        bars[1, start - v.size : start, 4] = v
    return MarketData(
        symbols=("TST",),
        dates=(D0, D1),
        row_symbols=("TST", "TST"),
        bars=bars,
        observed=np.ones((2, 390), dtype=bool),
    )


def strict_check_env(env: gym.Env) -> None:
    """Gymnasium's env checker with every warning an error, except the one about the intended unbounded
    Box observation space (both envs' observations are unbounded features)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*Box observation space m(in|ax)imum value is.*infinity")
        check_env(env, skip_render_check=True)


def tiny_config(*, reward: RewardConfig | None = None, **fill) -> ExecutionConfig:
    """2 steps x 2 minutes, 2 lookback minutes, one profile day; ``fill`` sets FillModel fields."""
    fill.setdefault("impact_coefficient_bps", 0.0)
    return ExecutionConfig(
        n_steps=2,
        step_minutes=2,
        lookback_minutes=2,
        profile_days=1,
        fill=FillModel(**fill),
        reward=reward or RewardConfig(),
    )


def order(side: str = "buy", quantity: float = 400.0, start: int = START, date=D1, symbol="TST") -> Order:
    return Order(symbol=symbol, date=date, side=side, quantity=quantity, start_minute=start)


def perturb_future(market: MarketData, symbol, date, first_minute: int, seed: int) -> MarketData:
    """A copy of ``market`` whose bars of (symbol, date) from ``first_minute`` on are randomly changed.

    Prices move by a few percent, volumes by a factor in [0.8, 3]; everything else is identical.
    """
    rng = np.random.default_rng(seed)
    bars = market.bars.copy()
    row = market.row(symbol, date)
    n = 390 - first_minute
    if n > 0:
        bars[row, first_minute:, :4] *= np.exp(rng.normal(0.0, 0.03, (n, 1)) + rng.normal(0.0, 0.01, (n, 4)))
        bars[row, first_minute:, 4] = np.rint(bars[row, first_minute:, 4] * rng.uniform(0.8, 3.0, n)) + 1.0
    return MarketData(
        symbols=market.symbols,
        dates=market.dates,
        row_symbols=market.row_symbols,
        bars=bars,
        observed=market.observed.copy(),
    )

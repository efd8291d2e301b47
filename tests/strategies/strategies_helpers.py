"""Builders for the broker-strategy tests: small hand markets and a run loop.

A hand market has one symbol ``TST`` and ``n_days`` sessions; bars are flat (open = high = low = close,
so the typical price is the close) at 100 USD with 1,000 shares unless a test sets them. The order
day is the last session; orders start at minute ``START``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from rlexec.data import MarketData
from rlexec.data.orders import Order
from rlexec.envs import BatchExecutionEngine, ExecutionConfig, FillModel, RewardConfig, prepare_orders

START = 10
DAYS = tuple(dt.date(2024, 1, d) for d in (2, 3, 4, 5))


def hand_bars(n_days: int = 2) -> np.ndarray:
    bars = np.zeros((n_days, 390, 5))
    bars[..., :4] = 100.0
    bars[..., 4] = 1000.0
    return bars


def set_minutes(bars: np.ndarray, day: int, first: int, prices=None, volumes=None) -> None:
    if prices is not None:
        p = np.asarray(prices, dtype=float)
        bars[day, first : first + p.size, :4] = p[:, None]
    if volumes is not None:
        v = np.asarray(volumes, dtype=float)
        bars[day, first : first + v.size, 4] = v


def market_from(bars: np.ndarray) -> MarketData:
    n = bars.shape[0]
    return MarketData(
        symbols=("TST",),
        dates=DAYS[:n],
        row_symbols=("TST",) * n,
        bars=bars,
        observed=np.ones((n, 390), dtype=bool),
    )


def config(n_steps: int = 2, step_minutes: int = 2, lookback_minutes: int = 2, profile_days: int = 1, **fill):
    fill.setdefault("impact_coefficient_bps", 0.0)
    return ExecutionConfig(
        n_steps=n_steps, step_minutes=step_minutes, lookback_minutes=lookback_minutes,
        profile_days=profile_days, fill=FillModel(**fill), reward=RewardConfig(),
    )


def order(market: MarketData, side: str = "buy", quantity: float = 400.0, start: int = START) -> Order:
    return Order(symbol="TST", date=market.dates[-1], side=side, quantity=quantity, start_minute=start)


def run(market, orders, cfg, strategy):
    """Run ``strategy`` on the batch engine; returns (batch, state, fractions per step, fills per step)."""
    batch = prepare_orders(market, orders, cfg)
    engine = BatchExecutionEngine(cfg)
    state = engine.reset(batch)
    fractions, fills = [], []
    while not state.done:
        f = np.array(strategy.fractions(state), dtype=float, copy=True)
        fractions.append(f)
        out = engine.step(f)
        fills.append(out.quantity.copy())
    return batch, state, np.array(fractions), np.array(fills)

"""Invariants of the batch engine over many random sample orders and random actions."""

from __future__ import annotations

import numpy as np
import pytest

from rlexec.data.orders import OrderGenerator, generate_orders
from rlexec.envs import BatchExecutionEngine, ExecutionConfig, FillModel, prepare_orders


@pytest.mark.parametrize("force_remainder", [True, False])
def test_conservation_cap_and_fill_rate_invariants(sample_market, force_remainder):
    config = ExecutionConfig(fill=FillModel(force_remainder=force_remainder, impact_coefficient_bps=25.0))
    # large orders (0.5 %-3 % of the previous day's volume) so the 20 % cap binds in places
    generator = OrderGenerator(horizon_minutes=config.horizon_minutes, size_fraction=(0.005, 0.03))
    orders = generate_orders(sample_market, 200, seed=7, generator=generator)
    batch = prepare_orders(sample_market, orders, config)
    engine = BatchExecutionEngine(config)
    state = engine.reset(batch)
    rng = np.random.default_rng(0)
    # half the orders trade eagerly, half hardly at all (they reach the last step with most of Q left)
    scale = np.where(np.arange(len(batch)) % 2 == 0, 1.0, 0.05)
    cap = config.fill.participation_cap * batch.volume
    H, m = config.horizon_minutes, config.step_minutes
    prev_executed = state.executed.copy()
    while not state.done:
        t = state.t
        outcome = engine.step(scale * rng.uniform(0.0, 1.0, len(batch)))
        # executed + remaining == Q at every step
        np.testing.assert_allclose(state.executed + state.remaining, batch.quantity, rtol=1e-9, atol=0)
        np.testing.assert_allclose(outcome.quantity, state.executed - prev_executed, rtol=1e-12, atol=1e-9)
        prev_executed = state.executed.copy()
        assert np.all(state.minute_fills >= 0.0)
        assert np.all(state.remaining >= -1e-9 * batch.quantity)
        # only minutes of steps already taken can have fills
        assert not state.minute_fills[:, state.t * m :].any()
        if t < config.n_steps - 1:
            assert np.all(outcome.quantity >= 0.0)
    fills = state.minute_fills
    over = fills > cap * (1 + 1e-12)
    if force_remainder:
        # only the horizon's last minute may exceed the cap
        assert not over[:, : H - 1].any()
        np.testing.assert_allclose(state.fill_rate, 1.0, rtol=1e-12)
        assert np.all(state.remaining == 0.0)
        assert over[:, H - 1].any(), "test data should exercise the forced-remainder rule"
    else:
        assert not over.any()
        assert np.all(state.fill_rate <= 1.0 + 1e-12)
        assert (state.fill_rate < 1.0 - 1e-9).any(), "test data should leave some orders unfilled"
    # the cap did bind somewhere (the test exercises it)
    assert np.isclose(fills[:, : H - 1], cap[:, : H - 1]).any()
    # zero-volume minutes never fill except the forced last one
    zero = batch.volume == 0
    assert not fills[:, : H - 1][zero[:, : H - 1]].any()
    # cash is the sum of fills at prices within the impact band of the minute prices: a capped minute
    # pays at most the impact at the cap's participation, the forced last minute that of its own
    # participation against max(its volume, floor x the horizon's mean traded minute volume); every
    # fill pays some impact (coefficient > 0, no half spread), against the trader.
    fill = config.fill
    participation = np.full(fills.shape, fill.participation_cap)
    if force_remainder:
        liquidity = np.maximum(batch.volume[:, -1], fill.forced_volume_floor * batch.horizon_mean_volume)
        participation[:, -1] = fills[:, -1] / liquidity
    worst = 1.0 - batch.sigma[:, None] * fill.impact_coefficient_bps * participation**fill.impact_exponent * 1e-4
    at_minute_price = (fills * batch.price).sum(axis=1)
    at_worst_price = (fills * batch.price * worst).sum(axis=1)
    low, high = np.minimum(at_minute_price, at_worst_price), np.maximum(at_minute_price, at_worst_price)
    traded = state.executed > 0
    assert traded.all()
    assert np.all(low <= state.cash * (1 + 1e-12)) and np.all(state.cash <= high * (1 + 1e-12))
    # and strictly against the trader: buys (sigma -1) pay more than the minute prices, sells receive less
    assert np.all(batch.sigma * (state.cash - at_minute_price) < 0)

"""The batch engine and the single-order env give the same numbers for the same actions."""

from __future__ import annotations

import numpy as np

from rlexec.data.orders import OrderGenerator, generate_orders
from rlexec.envs import BarExecutionEnv, BatchExecutionEngine, ExecutionConfig, FillModel, prepare_orders
from rlexec.envs.interpreters import ObservationInterpreter
from rlexec.envs.reward import PriceAdvantagePenaltyReward

N = 64


def test_batch_equals_each_order_alone(sample_market):
    config = ExecutionConfig(fill=FillModel(impact_coefficient_bps=15.0, half_spread_bps=0.5))
    generator = OrderGenerator(horizon_minutes=config.horizon_minutes, size_fraction=(0.002, 0.03))
    orders = generate_orders(sample_market, N, seed=21, generator=generator)
    fractions = np.random.default_rng(5).uniform(0.0, 0.6, (config.n_steps, N))

    batch = prepare_orders(sample_market, orders, config)
    engine = BatchExecutionEngine(config)
    observe = ObservationInterpreter(config)
    reward_fn = PriceAdvantagePenaltyReward(config.reward)
    state = engine.reset(batch)
    batch_obs, batch_rewards = [observe(state).copy()], []
    while not state.done:
        outcome = engine.step(fractions[state.t])
        batch_rewards.append(reward_fn(outcome, batch.quantity).copy())
        batch_obs.append(observe(state).copy())
    batch_obs, batch_rewards = np.array(batch_obs), np.array(batch_rewards)  # (T+1, N, D), (T, N)

    for i, o in enumerate(orders):
        # the gymnasium env over a fixed one-order list
        env = BarExecutionEnv({"continuous": True}, market=sample_market, orders=[o], execution=config)
        obs, _ = env.reset(seed=0)
        np.testing.assert_allclose(obs, batch_obs[0, i], rtol=1e-12, atol=0)
        for t in range(config.n_steps):
            obs, reward, done, _, info = env.step(np.array([fractions[t, i]]))
            np.testing.assert_allclose(obs, batch_obs[t + 1, i], rtol=1e-12, atol=0)
            np.testing.assert_allclose(reward, batch_rewards[t, i], rtol=1e-12, atol=1e-12)
        assert done
        single = env.state
        np.testing.assert_allclose(single.executed[0], state.executed[i], rtol=1e-12)
        np.testing.assert_allclose(single.cash[0], state.cash[i], rtol=1e-12)
        np.testing.assert_allclose(single.minute_fills[0], state.minute_fills[i], rtol=1e-12, atol=0)

        # and the engine with a one-order batch prepared on its own
        one = BatchExecutionEngine(config)
        s1 = one.reset(prepare_orders(sample_market, [o], config))
        while not s1.done:
            one.step(fractions[s1.t, i : i + 1])
        np.testing.assert_allclose(s1.cash[0], state.cash[i], rtol=1e-12)
        np.testing.assert_allclose(s1.minute_fills[0], state.minute_fills[i], rtol=1e-12, atol=0)
    # the batch is not trivial: the cap bound somewhere and orders differ
    assert np.isclose(state.minute_fills, config.fill.participation_cap * batch.volume).any()


def test_select_makes_independent_sub_batches(sample_market):
    config = ExecutionConfig()
    orders = generate_orders(sample_market, 4, seed=2, generator=OrderGenerator(horizon_minutes=240))
    batch = prepare_orders(sample_market, orders, config)
    sub = batch.select(np.array([2]))
    assert sub.orders == (orders[2],)
    np.testing.assert_array_equal(sub.price[0], batch.price[2])
    sub.price[0, 0] = -1.0
    assert batch.price[2, 0] != -1.0

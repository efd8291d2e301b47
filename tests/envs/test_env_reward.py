"""The step reward scale * (PA_t - alpha * concentration_t) and its episode sum (RewardConfig, spec 2.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from envs_helpers import make_market, order, tiny_config
from rlexec.envs import BarExecutionEnv, BatchExecutionEngine, RewardConfig, prepare_orders
from rlexec.envs.reward import PriceAdvantagePenaltyReward


def episode(market, the_order, config, fractions):
    batch = prepare_orders(market, [the_order], config)
    engine = BatchExecutionEngine(config)
    reward_fn = PriceAdvantagePenaltyReward(config.reward)
    state = engine.reset(batch)
    rewards = []
    for f in fractions:
        rewards.append(float(reward_fn(engine.step(np.array([f])), batch.quantity)[0]))
    return batch, state, rewards


# Hand case: prices 100, 102, 104, 106 (twap 103), volumes 1000 (cap 200 a minute), Q = 600.
# Step 0 asks for 100 % -> 300 a minute, capped: fills 200, 200. Step 1 (last) trades the 200 left:
# 100, 100. No impact. Minute fills / Q = 1/3, 1/3, 1/6, 1/6; step fills / Q = 2/3, 1/3.
PRICES, VOLUMES, Q = [100, 102, 104, 106], [1000] * 4, 600.0
CASH = 200 * 100 + 200 * 102 + 100 * 104 + 100 * 106  # 61,400
AVG = CASH / Q  # 102.333...


@pytest.mark.parametrize("side, sigma", [("buy", -1), ("sell", 1)])
@pytest.mark.parametrize(
    "basis, concentration",
    [("minute", 2 * (1 / 3) ** 2 + 2 * (1 / 6) ** 2), ("step", (2 / 3) ** 2 + (1 / 3) ** 2)],
)
def test_episode_reward_equals_scaled_pa_minus_penalty_by_hand(side, sigma, basis, concentration):
    reward = RewardConfig(alpha=7.0, scale=0.5, basis=basis)
    config = tiny_config(reward=reward)
    batch, state, rewards = episode(make_market(PRICES, VOLUMES), order(side, Q), config, [1.0, 0.0])
    assert batch.twap_price[0] == 103.0
    assert state.cash[0] == CASH
    pa_bps = sigma * (AVG / 103.0 - 1) * 1e4  # buy: +64.7 bp, sell: -64.7 bp
    expected = 0.5 * (pa_bps * 1.0 - 7.0 * concentration)
    assert sum(rewards) == pytest.approx(expected, rel=1e-12)
    # step 0 alone: PA_0 = sigma (spent / twap - q) / Q 1e4
    pa0 = sigma * ((200 * 100 + 200 * 102) / 103.0 - 400) / Q * 1e4
    conc0 = 2 * (1 / 3) ** 2 if basis == "minute" else (2 / 3) ** 2
    assert rewards[0] == pytest.approx(0.5 * (pa0 - 7.0 * conc0), rel=1e-12)


def test_episode_reward_with_partial_fill_weights_pa_by_fill_rate():
    # force_remainder off: step 0 nothing, step 1 wants 600, capped at 200 + 200 -> fill rate 2/3
    reward = RewardConfig(alpha=3.0, scale=0.01, basis="minute")
    config = tiny_config(reward=reward, force_remainder=False)
    _, state, rewards = episode(make_market(PRICES, VOLUMES), order("sell", Q), config, [0.0, 1.0])
    assert state.fill_rate[0] == pytest.approx(2 / 3)
    avg = (200 * 104 + 200 * 106) / 400  # 105
    pa = (avg / 103 - 1) * 1e4
    expected = 0.01 * (pa * (2 / 3) - 3.0 * 2 * (1 / 3) ** 2)
    assert sum(rewards) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("basis", ["minute", "step"])
def test_episode_reward_identity_over_random_sample_orders(sample_market, basis):
    """sum_t r_t = scale (PA fill_rate - alpha sum concentration), PA from the final average price."""
    from rlexec.data.orders import OrderGenerator, generate_orders
    from rlexec.envs import ExecutionConfig

    config = ExecutionConfig(reward=RewardConfig(alpha=100.0, scale=0.01, basis=basis))
    orders = generate_orders(sample_market, 48, seed=3, generator=OrderGenerator(horizon_minutes=240))
    batch = prepare_orders(sample_market, orders, config)
    engine = BatchExecutionEngine(config)
    reward_fn = PriceAdvantagePenaltyReward(config.reward)
    state = engine.reset(batch)
    rng = np.random.default_rng(11)
    total = np.zeros(len(orders))
    step_fills = []
    while not state.done:
        outcome = engine.step(rng.uniform(0.0, 0.4, len(orders)))
        step_fills.append(outcome.quantity.copy())
        total += reward_fn(outcome, batch.quantity)
    avg = state.cash / state.executed
    pa = batch.sigma * (avg / batch.twap_price - 1) * 1e4
    if basis == "minute":
        concentration = ((state.minute_fills / batch.quantity[:, None]) ** 2).sum(axis=1)
    else:
        concentration = ((np.array(step_fills).T / batch.quantity[:, None]) ** 2).sum(axis=1)
    expected = 0.01 * (pa * state.fill_rate - 100.0 * concentration)
    np.testing.assert_allclose(total, expected, rtol=1e-9, atol=1e-9)


def test_env_rewards_sum_to_the_same_identity(sample_market):
    env = BarExecutionEnv({"order_pool_size": 8}, market=sample_market)
    env.reset(seed=5)
    total, done = 0.0, False
    while not done:
        _, r, done, _, info = env.step(1)
        total += r
    state, batch, cfg = env.state, env.state.batch, env.execution.reward
    pa = batch.sigma[0] * (info["average_price"] / batch.twap_price[0] - 1) * 1e4
    conc = float(((state.minute_fills[0] / batch.quantity[0]) ** 2).sum())
    assert total == pytest.approx(cfg.scale * (pa * info["fill_rate"] - cfg.alpha * conc), rel=1e-9)
    assert math.isclose(info["fill_rate"], 1.0)

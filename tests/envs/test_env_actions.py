"""Action interpreters of the bar env: OPD's fractions of Q and the TWAP-relative pace multipliers.

Hand market (envs_helpers): flat bars at 100 USD and 1,000 shares; the orders below run 4 one-minute
steps over D1 minutes 10..13 with no impact, so fills can be computed on paper.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs_helpers import make_market, order
from rlexec.data.orders import OrderGenerator, generate_orders
from rlexec.envs import BarExecutionEnv, ExecutionConfig, FillModel, prepare_orders
from rlexec.errors import ConfigError
from rlexec.evaluation.episodes import BarEpisodes
from rlexec.strategies import make_strategy

PACE = {m: i for i, m in enumerate((0.0, 0.5, 1.0, 1.5, 2.0))}  # default twap_relative multiplier -> action index


def four_steps(**fill) -> ExecutionConfig:
    fill.setdefault("impact_coefficient_bps", 0.0)
    return ExecutionConfig(n_steps=4, step_minutes=1, lookback_minutes=2, profile_days=1,
                           action_interpreter="twap_relative", fill=FillModel(**fill))


def run_indices(market, orders, config, actions) -> BarEpisodes:
    """Step every order with ``actions[t]`` (indices, or float fractions of Q) through the batch path."""
    episodes = BarEpisodes(prepare_orders(market, orders, config), config)
    episodes.reset()
    for t in range(config.n_steps):
        episodes.step(np.asarray(actions[t]))
    return episodes


def test_twap_relative_default_values_are_the_documented_multipliers():
    assert ExecutionConfig(action_interpreter="twap_relative").action_values == (0.0, 0.5, 1.0, 1.5, 2.0)
    assert ExecutionConfig().action_values == (0.0, 0.25, 0.5, 0.75, 1.0)
    config = ExecutionConfig.from_dict({"action_interpreter": "twap_relative", "action_values": [0, 1, 3]})
    assert config.action_values == (0.0, 1.0, 3.0)
    assert ExecutionConfig.from_dict(config.to_dict()) == config


def test_hand_computed_pace_multipliers():
    # Q = 400 over 4 steps. t0: 2.0 x 400 / 4 = 200; t1: 0; t2: 0.5 x 200 / 2 = 50; t3: the remaining 150.
    episodes = run_indices(make_market(), [order("buy", 400)], four_steps(),
                           [[PACE[2.0]], [PACE[0.0]], [PACE[0.5]], [PACE[1.0]]])
    np.testing.assert_array_equal(episodes.state.minute_fills[0], [200, 0, 50, 150])
    assert episodes.state.remaining[0] == 0.0


def test_pace_one_every_step_reproduces_twap_on_hand_market():
    episodes = run_indices(make_market(), [order("sell", 400)], four_steps(), [[PACE[1.0]]] * 4)
    np.testing.assert_array_equal(episodes.state.minute_fills[0], [100, 100, 100, 100])


def test_pace_one_every_step_reproduces_the_twap_strategy_on_real_orders(sample_market):
    # Uncapped (the OPD code's setting) and on windows where every minute traded (a minute without
    # volume fills nothing, and then TWAP catches up in the next step while the pace spreads the
    # shortfall, as under a binding cap below): both ask exactly Q / n_steps each step.
    config = ExecutionConfig(action_interpreter="twap_relative", fill=FillModel(max_participation=None))
    orders = generate_orders(sample_market, 48, seed=3,
                             generator=OrderGenerator(horizon_minutes=config.horizon_minutes))
    traded = np.all(prepare_orders(sample_market, orders, config).volume > 0, axis=1)
    orders = [o for o, keep in zip(orders, traded) if keep]
    assert len(orders) >= 24
    paced = run_indices(sample_market, orders, config, [np.full(len(orders), PACE[1.0])] * config.n_steps)
    twap = BarEpisodes(prepare_orders(sample_market, orders, config), config)
    twap.reset()
    strategy = make_strategy("twap")
    while not twap.done:
        twap.step(strategy.fractions(twap.state))
    np.testing.assert_allclose(paced.state.minute_fills, twap.state.minute_fills, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(paced.state.cash, twap.state.cash, rtol=1e-12)
    assert np.all(paced.state.remaining == 0.0)


def test_under_a_binding_cap_pace_spreads_the_shortfall_where_twap_catches_up():
    # Minute 1 has 100 shares: cap 20 % = 20 fills of the 100 asked. TWAP then asks its cumulative
    # target 300 - 120 = 180 in minute 2; pace 1.0 asks 280 / 2 = 140 in minutes 2 and 3.
    market = make_market(volumes=[1000, 100, 1000, 1000])
    config = four_steps(max_participation=0.2)
    paced = run_indices(market, [order("buy", 400)], config, [[PACE[1.0]]] * 4)
    np.testing.assert_allclose(paced.state.minute_fills[0], [100, 20, 140, 140], rtol=1e-12)
    twap = BarEpisodes(prepare_orders(market, [order("buy", 400)], config), config)
    twap.reset()
    while not twap.done:
        twap.step(make_strategy("twap").fractions(twap.state))
    np.testing.assert_allclose(twap.state.minute_fills[0], [100, 20, 180, 100], rtol=1e-12)


@pytest.mark.parametrize("max_participation, force_remainder", [(0.2, True), (0.2, False), (None, True)])
def test_shares_are_conserved_and_the_last_step_trades_the_remainder(sample_market, max_participation,
                                                                     force_remainder):
    config = ExecutionConfig(action_interpreter="twap_relative",
                             fill=FillModel(max_participation=max_participation, force_remainder=force_remainder))
    orders = generate_orders(sample_market, 48, seed=8, generator=OrderGenerator(horizon_minutes=config.horizon_minutes))
    episodes = BarEpisodes(prepare_orders(sample_market, orders, config), config)
    episodes.reset()
    rng = np.random.default_rng(2)
    q = episodes.batch.quantity
    while not episodes.done:
        last = episodes.state.t == config.n_steps - 1
        remaining_before = episodes.state.remaining.copy()
        _, record = episodes.step(rng.integers(0, 5, len(orders)))
        state = episodes.state
        np.testing.assert_allclose(state.executed + state.remaining, q, rtol=1e-12)
        np.testing.assert_allclose(state.minute_fills.sum(axis=1), state.executed, rtol=1e-12)
        # the engine's running subtraction leaves a filled order at +-1e-12 shares, hence the tolerance
        assert np.all(record.filled <= np.maximum(remaining_before, 0.0) + 1e-9 * q)
        if last:  # the last step asks for all that remained, whatever the action
            np.testing.assert_allclose(record.child, remaining_before, rtol=1e-12)
    if force_remainder:
        assert np.all(episodes.state.remaining == 0.0)


def test_zero_pace_until_the_end_trades_everything_in_the_last_step():
    episodes = run_indices(make_market(), [order("buy", 400)], four_steps(), [[PACE[0.0]]] * 4)
    np.testing.assert_array_equal(episodes.state.minute_fills[0], [0, 0, 0, 400])


@pytest.mark.parametrize("interpreter", ["fraction", "twap_relative"])
def test_batch_path_equals_single_env_on_a_fixed_seed(sample_market, interpreter):
    config = ExecutionConfig(action_interpreter=interpreter, fill=FillModel(impact_coefficient_bps=15.0))
    orders = generate_orders(sample_market, 12, seed=21, generator=OrderGenerator(horizon_minutes=config.horizon_minutes))
    actions = np.random.default_rng(5).integers(0, 5, (config.n_steps, len(orders)))
    episodes = BarEpisodes(prepare_orders(sample_market, orders, config), config)
    observations, rewards = [episodes.reset()], []
    while not episodes.done:
        obs, record = episodes.step(actions[episodes.state.t])
        observations.append(obs)
        rewards.append(record.reward.copy())
    for i, o in enumerate(orders):
        env = BarExecutionEnv({}, market=sample_market, orders=[o], execution=config)
        obs, _ = env.reset(seed=0)
        np.testing.assert_allclose(obs, observations[0][i], rtol=1e-12, atol=0)
        for t in range(config.n_steps):
            obs, reward, done, _, _ = env.step(int(actions[t, i]))
            np.testing.assert_allclose(obs, observations[t + 1][i], rtol=1e-12, atol=0)
            np.testing.assert_allclose(reward, rewards[t][i], rtol=1e-12, atol=1e-12)
        assert done
        np.testing.assert_allclose(env.state.minute_fills[0], episodes.state.minute_fills[i], rtol=1e-12, atol=0)
        np.testing.assert_allclose(env.state.cash[0], episodes.state.cash[i], rtol=1e-12)


@pytest.mark.parametrize("fields, match", [
    ({"action_interpreter": "twap"}, r"ExecutionConfig\.action_interpreter must be one of"),
    ({"action_interpreter": "twap_relative", "action_values": [0, -0.5]}, r"ExecutionConfig\.action_values must be >= 0"),
    ({"action_interpreter": "twap_relative", "action_values": [0, float("inf")]}, r"ExecutionConfig\.action_values must be >= 0 and finite"),
    ({"action_interpreter": "twap_relative", "action_values": [0, float("nan")]}, r"ExecutionConfig\.action_values must be >= 0"),
    ({"action_interpreter": "twap_relative", "action_values": [1.0]}, r"ExecutionConfig\.action_values needs at least two"),
    ({"action_values": [0, 2.0]}, r"ExecutionConfig\.action_values must lie in \[0, 1\]"),
    ({"action_values": "0 1"}, r"ExecutionConfig\.action_values must be a list"),
])
def test_bad_action_settings_are_config_errors_naming_the_field(fields, match):
    with pytest.raises(ConfigError, match=match):
        ExecutionConfig.from_dict(fields)


def test_continuous_actions_refuse_the_twap_relative_interpreter():
    with pytest.raises(ConfigError, match=r"action_interpreter 'twap_relative' needs discrete actions"):
        BarExecutionEnv({"continuous": True, "execution": {"action_interpreter": "twap_relative"}},
                        market=make_market(), orders=[order("buy", 400)])

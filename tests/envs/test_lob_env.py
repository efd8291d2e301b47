"""The LOB execution environment on the simulator and on the shipped LOBSTER excerpt."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rlexec.envs.lob_brokers import BrokerRule
from rlexec.envs.lob_env import HOLD, LIMIT, MARKET, OBSERVATION_NAMES, LOBExecutionConfig, LOBExecutionEnv
from rlexec.errors import ConfigError
from rlexec.market.lobster import SAMPLE_REPLAY

FAST_SIM = {"regime": "open", "decision_interval_s": 60.0}  # a 30-minute window, 30 decisions
REPLAY = {"replay": str(SAMPLE_REPLAY), "replay_window_minutes": 10, "decision_interval_s": 30.0}


def rollout(env, seed, action):
    obs, info = env.reset(seed=seed)
    observations, rewards, done = [obs], [], False
    while not done:
        obs, reward, done, truncated, info = env.step(action)
        assert not truncated
        observations.append(obs)
        rewards.append(reward)
    return np.array(observations), np.array(rewards), info


@pytest.mark.parametrize("config", [FAST_SIM, REPLAY], ids=["simulator", "replay"])
def test_check_env(config):
    check_env(LOBExecutionEnv(config), skip_render_check=True)


@pytest.mark.parametrize("config", [FAST_SIM, REPLAY], ids=["simulator", "replay"])
def test_same_seed_same_episode(config):
    a = rollout(LOBExecutionEnv(config), 4, LIMIT)
    b = rollout(LOBExecutionEnv(config), 4, LIMIT)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[0].shape[1] == len(OBSERVATION_NAMES)


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("config", [FAST_SIM, REPLAY], ids=["simulator", "replay"])
def test_episode_return_is_arrival_slippage_minus_symmetric_penalty(config, side):
    env = LOBExecutionEnv({**config, "side": side})
    _, rewards, info = rollout(env, 1, MARKET)
    sigma = 1 if side == "sell" else -1
    advantage = sigma * (info["average_price"] / info["arrival_price"] - 1) * 1e4 * info["fill_rate"]
    penalty = 50.0 * abs(1 - info["fill_rate"])
    assert rewards.sum() == pytest.approx(advantage - penalty, abs=1e-6)
    assert info["executed"] <= info["quantity"]


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_holding_is_penalised_the_same_for_buys_and_sells(side):
    _, rewards, info = rollout(LOBExecutionEnv({**FAST_SIM, "side": side}), 2, HOLD)
    assert info["executed"] == 0
    assert rewards[:-1].tolist() == [0.0] * (len(rewards) - 1)
    assert rewards[-1] == pytest.approx(-50.0)


def test_a_finished_sell_pays_no_penalty():
    env = LOBExecutionEnv({**FAST_SIM, "side": "sell", "quantity": 500})
    _, rewards, info = rollout(env, 3, MARKET)
    assert info["fill_rate"] == 1.0
    assert rewards.sum() == pytest.approx(1e4 * (info["average_price"] / info["arrival_price"] - 1), abs=1e-6)


def test_arrival_price_is_reset_every_episode():
    env = LOBExecutionEnv(REPLAY)
    arrivals = []
    for seed in (0, 1, 2):
        env.reset(seed=seed)
        arrivals.append(env.arrival_price)
        assert env.arrival_price == pytest.approx(env.venue.mid() * env.venue.tick_size)
    assert len(set(arrivals)) > 1


def test_step_after_end_and_bad_action_raise():
    env = LOBExecutionEnv(REPLAY)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be"):
        env.step(3)
    rollout(env, 0, HOLD)
    with pytest.raises(RuntimeError, match="finished episode"):
        env.step(HOLD)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="unknown field"):
        LOBExecutionEnv({"colour": "red"})
    with pytest.raises(ConfigError, match="side"):
        LOBExecutionConfig(side="short")
    with pytest.raises(ConfigError, match="broker must be one of"):
        LOBExecutionConfig.from_dict({"broker": "vwap2"})


@pytest.mark.parametrize("x", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_broker_targets_match_the_spec_schedules(x):
    assert BrokerRule(name="twap").cumulative_target(x) == pytest.approx(x)
    assert BrokerRule(name="is").cumulative_target(x) == pytest.approx(x**0.6)
    # VWAP: the normalised integral of the U-shaped density (u(1-u))^(a-1), a = 2.
    grid = np.linspace(0.0, x, 2001)
    integral = np.trapezoid(grid * (1 - grid), grid) / (1 / 6)
    assert BrokerRule(name="vwap").cumulative_target(x) == pytest.approx(integral, abs=1e-6)


def test_child_size_clips_to_one_share_max_child_and_remaining():
    twap = BrokerRule(name="twap")
    assert twap.child_size(quantity=1000, executed=0, x_next=0.1, last_interval_volume=0, max_child=200) == 100
    assert twap.child_size(quantity=1000, executed=100, x_next=0.1, last_interval_volume=0, max_child=200) == 1
    assert twap.child_size(quantity=1000, executed=0, x_next=0.9, last_interval_volume=0, max_child=200) == 200
    assert twap.child_size(quantity=1000, executed=995, x_next=1.0, last_interval_volume=0, max_child=200) == 5
    assert twap.child_size(quantity=1000, executed=1000, x_next=1.0, last_interval_volume=0, max_child=200) == 0
    pov = BrokerRule(name="pov", participation=0.1)
    assert pov.child_size(quantity=1000, executed=0, x_next=0.1, last_interval_volume=1500, max_child=200) == 150

"""The LOB execution environment on the simulator and on the shipped LOBSTER excerpt."""

import dataclasses
import math

import numpy as np
import pytest

from envs_helpers import strict_check_env
from rlexec.envs.lob_env import (
    HOLD,
    LIMIT,
    MARKET,
    OBSERVATION_NAMES,
    LOBExecutionConfig,
    LOBExecutionEnv,
    expected_volume_profile,
    expected_window_volume,
)
from rlexec.errors import ConfigError
from rlexec.market import regime_config
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
    strict_check_env(LOBExecutionEnv(config))


def test_the_strict_env_check_fails_on_a_warning():
    """A ``terminated`` that is not a bool only warns in gymnasium's checker: here it must fail."""

    class IntTerminated(LOBExecutionEnv):
        def step(self, action):
            obs, reward, terminated, truncated, info = super().step(action)
            return obs, reward, int(terminated), truncated, info

    with pytest.raises(UserWarning, match="terminated.*boolean"):
        strict_check_env(IntTerminated(REPLAY))


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
    with pytest.raises(ConfigError, match=r"broker.is_exponent: is.exponent must be in \(0, 1\], got 1.5"):
        LOBExecutionConfig.from_dict({"broker": {"name": "twap", "is_exponent": 1.5}})
    with pytest.raises(ConfigError, match="broker.participation must be a number"):
        LOBExecutionConfig.from_dict({"broker": {"name": "pov", "participation": "ten percent"}})
    with pytest.raises(ConfigError, match="broker.vwap_profile must be one of"):
        LOBExecutionConfig.from_dict({"broker": {"name": "vwap", "vwap_profile": "hump"}})
    with pytest.raises(ConfigError, match="replayed day has no earlier sessions"):
        LOBExecutionEnv({**REPLAY, "broker": {"name": "vwap", "vwap_profile": "calibrated"}})
    with pytest.raises(ConfigError, match="calibration_days"):
        LOBExecutionConfig(calibration_days=0)


def test_a_window_opening_on_an_empty_book_counts_its_decisions_from_the_moved_start():
    """Defect 7d: n_decisions was computed before reset moved the window start past the empty book
    at the session open, so with a decision interval no longer than the move the episode took extra,
    zero-length decisions after the window had ended (and time_pct never reached 1 at window_end)."""
    env = LOBExecutionEnv({"regime": "open", "decision_interval_s": 1.0})
    env.reset(seed=0)
    session_open, window_end = regime_config("open").window_ns
    assert env.window_start > session_open  # the book is empty at the open: the start moved
    assert env.window_end == window_end
    assert env.n_decisions == math.ceil((window_end - env.window_start) / 1e9)
    done, before = False, env.venue.now
    while not done:
        obs, _, done, _, _ = env.step(HOLD)
        assert env.venue.now > before, "every decision covers some market time"
        assert (env.venue.now == window_end) == done, "the episode ends exactly at window_end"
        before = env.venue.now
    assert obs[1] == 1.0  # time_pct


def test_broker_config_switches_broker_keeping_every_brokers_parameters():
    config = LOBExecutionConfig.from_dict({"broker": {"name": "is", "is_exponent": 0.4, "participation": 0.2}})
    assert LOBExecutionEnv(config).broker.exponent == 0.4
    pov = dataclasses.replace(config, broker=dataclasses.replace(config.broker, name="pov"))
    assert LOBExecutionEnv(pov).broker.participation == 0.2
    assert LOBExecutionEnv(FAST_SIM).broker.name == "twap"


@pytest.mark.parametrize("regime, front_loaded", [("open", True), ("close", False)])
def test_lob_vwap_children_follow_the_regimes_volume_smile(regime, front_loaded):
    """At the open volume is heaviest early, so VWAP's child orders run ahead of TWAP's; towards
    the close it is heaviest late, so they lag. The calibrated profile says which (not the test)."""
    config = {"regime": regime, "decision_interval_s": 60.0}
    profile = expected_volume_profile(regime, 12345, 5, 60 * 10**9)
    assert profile.shape == (30,) and profile.sum() == pytest.approx(1.0)
    first_half = profile[:15].sum()
    assert (first_half > 0.5) == front_loaded

    def children(broker):
        env = LOBExecutionEnv({**config, "broker": broker})
        env.reset(seed=0)
        sizes, filled, done = [], [], False
        while not done:
            sizes.append(env.child_shares())
            _, _, done, _, info = env.step(MARKET)
            filled.append(info["fill_rate"])
        return np.cumsum(sizes), np.array(filled)

    vwap, vwap_filled = children("vwap")
    twap, twap_filled = children("twap")
    ahead = vwap[:15] - twap[:15]
    if front_loaded:
        assert np.all(ahead[2:] > 0)
    else:
        assert np.all(ahead[2:] < 0)
    # and by about what the profile says: at mid-window TWAP has filled 1/2, VWAP the profile's share
    assert twap_filled[14] == pytest.approx(0.5, abs=0.02)
    assert vwap_filled[14] == pytest.approx(first_half, abs=0.02)


def test_calibrated_profile_comes_from_the_calibration_days():
    one_day = expected_volume_profile("open", 12345, 1, 60 * 10**9)
    five_days = expected_volume_profile("open", 12345, 5, 60 * 10**9)
    assert not np.array_equal(one_day, five_days)
    assert expected_volume_profile("open", 12345, 1, 1800 * 10**9).tolist() == [1.0]
    assert expected_window_volume("open", 12345) > 0


def test_replay_vwap_follows_the_u_shaped_closed_form():
    env = LOBExecutionEnv({**REPLAY, "broker": "vwap"})
    env.reset(seed=0)
    n = env.n_decisions
    x = np.arange(1, n) / n
    targets = [env.broker.cumulative_target(v, env.context)[0] for v in x]
    np.testing.assert_allclose(targets, 2 / np.pi * np.arcsin(np.sqrt(x)), atol=1e-12)

"""Gymnasium contract of BarExecutionEnv: env checker, determinism, pickling, action validation."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from envs_helpers import make_market, order, strict_check_env, tiny_config
from rlexec.envs import BarExecutionEnv
from rlexec.envs.interpreters import ContinuousActionInterpreter

VARIANTS = {
    "discrete": {},
    "continuous": {"continuous": True},
    "oracle": {"oracle": True},
}


def make_env(market, **config):
    return BarExecutionEnv({"order_pool_size": 16, **config}, market=market)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_env_checker_passes(sample_market, variant):
    strict_check_env(make_env(sample_market, **VARIANTS[variant]))


def rollout(env, seed):
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    trajectory = [(obs, info)]
    done = False
    while not done:
        obs, reward, done, truncated, info = env.step(env.action_space.sample())
        assert not truncated
        trajectory.append((obs, reward, info))
    return trajectory


def assert_same_trajectory(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])
        assert x[1:] == y[1:]


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_same_seed_gives_identical_trajectories(sample_market, variant):
    a = rollout(make_env(sample_market, **VARIANTS[variant]), seed=123)
    b = rollout(make_env(sample_market, **VARIANTS[variant]), seed=123)
    assert_same_trajectory(a, b)
    assert len(a) == 9 and a[-1][2]["fill_rate"] == pytest.approx(1.0)
    c = rollout(make_env(sample_market, **VARIANTS[variant]), seed=124)
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def _clone(env, how):
    return pickle.loads(pickle.dumps(env)) if how == "pickle" else copy.deepcopy(env)


def test_env_pickles_before_reset(sample_market):
    env = make_env(sample_market)
    twin = _clone(env, "pickle")
    assert_same_trajectory(rollout(env, seed=3), rollout(twin, seed=3))


@pytest.mark.parametrize("clone, steps_before", [("pickle", 3), ("deepcopy", 0)])
def test_env_survives_a_copy_mid_episode(sample_market, clone, steps_before):
    """A pickled (or deep-copied) env must continue exactly like the original."""
    env = make_env(sample_market)
    env.reset(seed=9)
    for _ in range(steps_before):
        env.step(1)
    twin = _clone(env, clone)
    for action in [2, 0, 3, 1, 4, 1, 2, 3][steps_before:]:
        obs_a, r_a, done_a, _, info_a = env.step(action)
        obs_b, r_b, done_b, _, info_b = twin.step(action)
        assert (r_a, done_a, info_a) == (r_b, done_b, info_b)
        np.testing.assert_array_equal(obs_b, obs_a, err_msg=f"{clone} copy diverged at step {info_a['step']}")
    assert done_a and done_b


def test_invalid_discrete_action_raises_value_error(sample_market):
    env = make_env(sample_market)
    env.reset(seed=0)
    for bad in (5, -1, np.int64(17)):
        with pytest.raises(ValueError, match="action index"):
            env.step(bad)
    assert env.state.t == 0  # nothing happened


def test_invalid_continuous_action_raises_value_error(sample_market):
    env = make_env(sample_market, continuous=True)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([np.nan]))
    assert env.state.t == 0  # nothing happened


@pytest.mark.parametrize("action, fraction", [(7.0, 1.0), (-3.0, 0.0), (0.25, 0.25)])
def test_out_of_range_continuous_actions_are_clipped_to_zero_and_one(action, fraction):
    """On the hand market (1,000 shares a minute, cap 20 % = 200 a minute, two 2-minute steps), Q = 500.
    7.0 is clipped to all of Q: 250 a minute asked, so the first step fills exactly the cap, 2 x 200;
    -3.0 is clipped to nothing; 0.25 is in range: 125 shares, 62.5 a minute, under the cap."""
    assert ContinuousActionInterpreter()(np.array([action])).tolist() == [fraction]
    env = BarExecutionEnv({"continuous": True}, market=make_market(), orders=[order("buy", 500)],
                          execution=tiny_config())
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([action], dtype=np.float32))
    expected = {1.0: 2 * 0.2 * 1000, 0.0: 0.0, 0.25: 0.25 * 500}[fraction]
    assert info["executed"] == expected
    np.testing.assert_array_equal(env.state.minute_fills[0, :2], [expected / 2] * 2)


def test_step_after_termination_raises(sample_market):
    env = make_env(sample_market)
    env.reset(seed=0)
    done = False
    while not done:
        _, _, done, _, _ = env.step(0)
    with pytest.raises(RuntimeError, match="finished episode"):
        env.step(0)
    env.reset(seed=1)  # a reset makes it usable again
    env.step(0)


def test_fixed_order_list_and_order_option(sample_market):
    from rlexec.data.orders import OrderGenerator, generate_orders

    orders = generate_orders(sample_market, 3, seed=4, generator=OrderGenerator(horizon_minutes=240))
    env = BarExecutionEnv(market=sample_market, orders=orders)
    for i, o in enumerate(orders):
        env.reset(options={"order_index": i})
        assert env.state.batch.orders == (o,)
    obs, _ = env.reset(options={"order": orders[1]})
    assert env.state.batch.orders == (orders[1],)
    assert obs[2] == orders[1].sigma

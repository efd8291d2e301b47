"""The shared action space of the broker experts (issue 9 contract): ids, sizes, buckets, windows, rewards."""

from collections import deque

import numpy as np
import pytest

from rlexec.envs.lob_env import BROKERS, SHARED_OBSERVATION_NAMES, LOBExecutionConfig, LOBExecutionEnv
from rlexec.envs.lob_interpreters import (
    HOLD,
    LIMIT,
    MARKET,
    OBSERVATION_NAMES,
    SIZE_MULTIPLIERS,
    LOBOrderState,
    PlacementInterpreter,
    bucket_shares,
    decode_shared_action,
    num_shared_actions,
    pace,
    shared_action,
    size_bucket,
)
from rlexec.envs.reward import ArrivalSlippageReward, DecisionPriceReward
from rlexec.errors import ConfigError
from rlexec.market.config import clock_ns

WINDOW = {"regime": "baseline", "window_start": "10:30", "window_minutes": 10}


def test_action_ids_follow_the_contract_and_round_trip():
    assert num_shared_actions() == 11
    assert shared_action(None, HOLD) == 0 and shared_action(3, HOLD) == 0
    assert shared_action(0, MARKET) == 1 and shared_action(0, LIMIT) == 2 and shared_action(4, LIMIT) == 10
    for a in range(11):
        bucket, placement = decode_shared_action(a)
        assert shared_action(bucket, placement) == a
    with pytest.raises(ValueError):
        shared_action(None, MARKET)


def test_pace_buckets_and_sizes_on_hand_cases():
    assert pace(600, 60) == 10.0 and pace(5, 60) == 1.0 and pace(0, 3) == 0.0
    # nearest multiplier in log space: 14/10 = 1.4 is nearer 1 than 2 in log (sqrt 2 = 1.414 is the cut)
    assert size_bucket(14, 10) == 2 and size_bucket(15, 10) == 3 and size_bucket(1, 10) == 0
    assert size_bucket(100, 10) == 4 and size_bucket(0, 10) == 0
    assert bucket_shares(4, 10.0, remaining_shares=1000, max_child=1000) == 40
    assert bucket_shares(4, 10.0, remaining_shares=30, max_child=1000) == 30  # never more than remains
    assert bucket_shares(4, 10.0, remaining_shares=1000, max_child=25) == 25  # nor the env's max child
    assert bucket_shares(0, 1.0, remaining_shares=1000, max_child=25) == 1  # at least one share


class _Recording(PlacementInterpreter):
    """The env's placement interpreter, recording (placement, shares) of every order it is given."""

    def __init__(self):
        self.sent = []

    def __call__(self, action, venue, side, shares):
        self.sent.append((action, shares))
        super().__call__(action, venue, side, shares)


def _recording(env):
    env.place = _Recording()
    return env.place.sent


def test_shared_env_appends_each_brokers_bucket_and_sends_the_actions_size():
    env = LOBExecutionEnv({**WINDOW, "action_space": "shared"})
    assert env.observation_names == SHARED_OBSERVATION_NAMES and env.action_space.n == 11
    obs, _ = env.reset(seed=4)
    assert obs.shape == (len(OBSERVATION_NAMES) + 4,)
    sent = _recording(env)
    for action in (1 + 2 * 4, 2 + 2 * 1, 0, 1 + 2 * 2):
        expected = [size_bucket(env.child_shares(name), env.pace) for name in BROKERS]
        assert obs[len(OBSERVATION_NAMES):].tolist() == expected
        bucket, placement = decode_shared_action(action)
        want = 0 if bucket is None else round(SIZE_MULTIPLIERS[bucket] * env.pace)
        want = min(want, env.quantity - env.executed, env.max_child)
        obs, *_ = env.step(action)
        assert sent[-1] == (placement, want) and env.last_child == want and env.last_shared_action == action


def test_shared_placement_executes_the_brokers_bucket():
    env = LOBExecutionEnv({**WINDOW, "action_space": "shared_placement", "broker": "pov"})
    assert env.action_space.n == 3
    obs, _ = env.reset(seed=5)
    sent = _recording(env)
    for placement in (LIMIT, MARKET, HOLD):
        bucket = int(obs[SHARED_OBSERVATION_NAMES.index("bucket_pov")])
        expected_shares = env.bucket_shares(bucket)
        obs, *_ = env.step(placement)
        assert env.last_shared_action == shared_action(bucket, placement)
        assert sent[-1] == (placement, expected_shares)


def test_window_inside_the_session_sets_the_decision_count():
    env = LOBExecutionEnv({"regime": "baseline", "window_start": "10:30", "window_minutes": 30})
    env.reset(seed=1)
    assert (env.window_start, env.window_end) == (clock_ns(10, 30), clock_ns(11, 0)) and env.n_decisions == 60
    # open/close/midday keep their own window start; the length cuts it
    env = LOBExecutionEnv({"regime": "midday", "window_minutes": 30})
    env.reset(seed=1)
    assert (env.window_start, env.window_end) == (clock_ns(12), clock_ns(12, 30))
    with pytest.raises(ConfigError, match="window_start"):
        LOBExecutionEnv({"regime": "midday", "window_start": "10:00"})
    with pytest.raises(ConfigError, match="window_start"):
        LOBExecutionConfig(window_start="25:00")
    with pytest.raises(ConfigError, match="action_space"):
        LOBExecutionConfig(action_space="sizes")


def test_decision_price_reward_on_a_hand_case():
    state = LOBOrderState(quantity=100, sigma=-1, window_start=0, window_end=1, n_decisions=1, arrival_price=100.0,
                          prices=deque(), decision_price=101.0)
    prices, qty = np.array([101.02]), np.array([50.0])
    # buy 50 of 100 at 101.02: 2 cents above the decision price -> -2 bp of p0 x 0.5
    assert DecisionPriceReward(50.0).fills(state, prices, qty) == pytest.approx(-1.0)
    # the arrival reward also charges the 1.02 dollar drift since arrival: -102 bp x 0.5
    assert ArrivalSlippageReward(50.0).fills(state, prices, qty) == pytest.approx(-51.0)

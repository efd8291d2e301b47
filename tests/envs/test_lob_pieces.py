"""The LOB env's pieces on hand-made inputs, and the composed env against values recorded before the split.

``data/lob_replay_recorded.npz`` holds observations, rewards, infos and episode facts of the LOB env as
it was at commit 4ea4ec8 (before observation, placement and reward became separate pieces), on the
shipped LOBSTER excerpt: 25 episodes over the brokers whose sizing did not change (twap, is, pov),
both sides and four action patterns. Replay only: the simulator's event stream is not frozen (a
change of its random streams would move every number without any change here).
"""

from collections import deque
from pathlib import Path

import numpy as np
import pytest

from rlexec.envs.lob_env import LOBExecutionEnv
from rlexec.envs.lob_interpreters import (
    HOLD,
    LIMIT,
    MARKET,
    NUM_RETURNS,
    OBSERVATION_NAMES,
    LOBObservationInterpreter,
    LOBOrderState,
    PlacementInterpreter,
)
from rlexec.envs.reward import ArrivalSlippageReward
from rlexec.market import BUY, SELL
from rlexec.market.lobster import SAMPLE_REPLAY
from rlexec.market.simulator import BookDepth

RECORDED = Path(__file__).parent / "data" / "lob_replay_recorded.npz"
REPLAY = {"replay": str(SAMPLE_REPLAY), "replay_window_minutes": 10, "decision_interval_s": 30.0}
INFO_KEYS = ("executed", "fill_rate", "average_price", "arrival_price", "market_vwap", "quantity", "step")


class StubVenue:
    """A fixed book; records the orders it is sent."""

    tick_size = 0.01

    def __init__(self, bid=9_990, ask=10_010, bid_sizes=(300, 100, 0, 0, 0), ask_sizes=(100, 100, 100, 100, 100)):
        self.bid, self.ask = bid, ask
        self.bid_sizes, self.ask_sizes = np.array(bid_sizes), np.array(ask_sizes)
        self.calls = []

    def best_bid_ask(self):
        return self.bid, self.ask

    def depth(self, k):
        return BookDepth(bid_prices=np.zeros(k), bid_sizes=self.bid_sizes[:k], ask_prices=np.zeros(k),
                         ask_sizes=self.ask_sizes[:k])

    def cancel_all_external(self):
        self.calls.append(("cancel",))

    def submit_market(self, side, qty):
        self.calls.append(("market", side, qty))

    def submit_limit(self, side, price_ticks, qty):
        self.calls.append(("limit", side, price_ticks, qty))


def order_state(**changes) -> LOBOrderState:
    fields = dict(quantity=1000, sigma=-1, window_start=0, window_end=10, n_decisions=10, arrival_price=100.0,
                  prices=deque([100.0, 101.0, 100.0], maxlen=NUM_RETURNS + 1), t=4, executed=250)
    fields.update(changes)
    return LOBOrderState(**fields)


def test_observation_by_hand():
    obs = LOBObservationInterpreter()(order_state(), StubVenue())
    assert obs.dtype == np.float32 and obs.shape == (len(OBSERVATION_NAMES),)
    expected = {
        "holdings_pct": 0.25, "time_pct": 0.4, "diff_pct": -0.15,
        "imbalance_1": (300 - 100) / 400, "imbalance_5": (400 - 500) / 900,
        "price_move_bps": 0.0,  # the price is back at the arrival price
        "spread_bps": 20 * 0.01 / 100.0 * 1e4,
        "mid_return_2_bps": 100.0, "mid_return_1_bps": (100.0 / 101.0 - 1) * 1e4,
    }
    for name, value in expected.items():
        assert obs[OBSERVATION_NAMES.index(name)] == pytest.approx(value, rel=1e-6), name
    assert not obs[OBSERVATION_NAMES.index("mid_return_9_bps"):OBSERVATION_NAMES.index("mid_return_2_bps")].any()


@pytest.mark.parametrize("sigma", [-1, 1])
def test_price_move_is_positive_when_adverse(sigma):
    state = order_state(sigma=sigma, prices=deque([101.0]))
    move = LOBObservationInterpreter()(state, StubVenue())[OBSERVATION_NAMES.index("price_move_bps")]
    assert move == pytest.approx(-sigma * np.log(1.01) * 1e4, rel=1e-6)
    assert (move > 0) == (sigma == -1)  # a rising price hurts a buyer


def test_spread_and_imbalance_on_an_empty_side_are_zero():
    venue = StubVenue(ask=None, bid_sizes=(0,) * 5, ask_sizes=(0,) * 5)
    obs = LOBObservationInterpreter()(order_state(), venue)
    assert obs[OBSERVATION_NAMES.index("spread_bps")] == 0.0
    assert obs[OBSERVATION_NAMES.index("imbalance_1")] == 0.0


@pytest.mark.parametrize("side, touch", [(BUY, 9_990), (SELL, 10_010)])
def test_placement_cancels_then_sends_at_the_near_touch(side, touch):
    place = PlacementInterpreter()
    venue = StubVenue()
    place(MARKET, venue, side, 70)
    place(LIMIT, venue, side, 80)
    place(HOLD, venue, side, 90)
    place(MARKET, venue, side, 0)  # the order is complete: nothing to send
    assert venue.calls == [("cancel",), ("market", side, 70), ("cancel",), ("limit", side, touch, 80),
                           ("cancel",), ("cancel",)]


def test_a_limit_order_without_a_near_touch_is_not_sent():
    venue = StubVenue(bid=None)
    PlacementInterpreter()(LIMIT, venue, BUY, 50)
    assert venue.calls == [("cancel",)]


@pytest.mark.parametrize("action", [-1, 3])
def test_placement_rejects_unknown_actions(action):
    with pytest.raises(ValueError, match="action must be 0"):
        PlacementInterpreter.check(action)


def test_reward_by_hand():
    reward = ArrivalSlippageReward(unfilled_penalty_bps=50.0)
    buy = order_state(sigma=-1, quantity=100, executed=60)
    # bought 50 at 100.10 and 10 at 99.90 against p0 = 100: -10 bp x 0.5 + 10 bp x 0.1
    assert reward.fills(buy, np.array([100.10, 99.90]), np.array([50.0, 10.0])) == pytest.approx(-5.0 + 1.0)
    sell = order_state(sigma=1, quantity=100, executed=60)
    assert reward.fills(sell, np.array([100.10]), np.array([50.0])) == pytest.approx(5.0)
    assert reward.unfilled_penalty(buy) == pytest.approx(20.0) == reward.unfilled_penalty(sell)
    assert reward.unfilled_penalty(order_state(quantity=100, executed=100)) == 0.0


def recorded_cases():
    with np.load(RECORDED) as data:
        return sorted({key.split("/")[0] for key in data.files})


def case_config(name: str) -> tuple[dict, int, int | str]:
    if name == "replay_random_side_s7":
        return {**REPLAY, "side": "random", "broker": {"name": "is", "is_exponent": 0.4}}, 7, "mixed"
    _, broker, side, policy = name.split("_")
    return {**REPLAY, "broker": broker, "side": side}, 3, policy if policy == "mixed" else int(policy)


@pytest.mark.parametrize("case", recorded_cases())
def test_the_composed_env_reproduces_the_recorded_episodes(case):
    config, seed, policy = case_config(case)
    with np.load(RECORDED) as data:
        recorded = {key.split("/")[1]: data[key] for key in data.files if key.startswith(case + "/")}
    env = LOBExecutionEnv(config)
    obs, info = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    observations, rewards, infos, done = [obs], [], [info], False
    while not done:
        action = int(rng.integers(3)) if policy == "mixed" else policy
        obs, reward, done, _, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
    np.testing.assert_array_equal(np.array(observations), recorded["obs"])
    np.testing.assert_array_equal(np.array(rewards), recorded["rew"])
    np.testing.assert_array_equal(np.array([[float(i[k]) for k in INFO_KEYS] for i in infos]), recorded["info"])
    facts = [env.window_start, env.window_end, env.n_decisions, env.quantity, env.sigma]
    np.testing.assert_array_equal(np.array(facts, dtype=np.float64), recorded["meta"])


def test_the_recording_covers_episodes_that_trade():
    executed = []
    with np.load(RECORDED) as data:
        for case in recorded_cases():
            executed.append(data[case + "/info"][-1, 0])
    assert len(executed) == 25 and sum(e > 0 for e in executed) == 19  # the 6 hold-only episodes fill nothing

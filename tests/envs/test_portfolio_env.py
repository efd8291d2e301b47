"""The daily portfolio env: hand-computed accounting, no look-ahead, the documented action map."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from rlexec.envs.portfolio_env import PortfolioEnv, buy_and_hold, run_weights, softmax
from rlexec.errors import ConfigError

HEADER = "date,open,high,low,close,volume,Name\n"
CLOSES = {"AAA": [10, 11, 12, 11, 13, 14, 12, 15], "BBB": [20, 20, 22, 24, 23, 25, 26, 24]}
SPLIT = {"validation_start": "2016-01-04", "test_start": "2016-01-06"}


def write_panel(tmp_path, closes=CLOSES, name="p.csv.gz"):
    path = tmp_path / name
    with gzip.open(path, "wt") as handle:
        handle.write(HEADER)
        for symbol, series in closes.items():
            for day, close in enumerate(series, start=1):
                handle.write(f"2016-01-{day:02d},,,,{close},1,{symbol}\n")
    return path


def make_env(path, **config):
    return PortfolioEnv({"data": str(path), "symbols": ["AAA", "BBB"], "split": SPLIT, "lookback": 2,
                         "episode_days": None, **config})


def test_one_rebalance_by_hand(tmp_path):
    env = make_env(write_panel(tmp_path), part="validation", cost_bp=100.0, reward_scale=1.0)
    _, info = env.reset()
    assert info["date"] == "2016-01-04" and env.t == 3 and env.end == 4  # validation: the 4th and 5th
    # day 3 -> 4: AAA 11 -> 13, BBB 24 -> 23. Target 0.2 cash, 0.5 AAA, 0.3 BBB from all cash:
    # turnover 0.8, cost 1% of it; V = (1 - 0.008) * (0.2 + 0.5 * 13/11 + 0.3 * 23/24)
    _, reward, terminated, _, info = env.step_weights(np.array([0.2, 0.5, 0.3]))
    gross = 0.2 + 0.5 * 13 / 11 + 0.3 * 23 / 24
    assert info["value"] == pytest.approx(0.992 * gross)
    assert reward == pytest.approx(np.log(0.992 * gross))
    np.testing.assert_allclose(info["weights"], np.array([0.2, 0.5 * 13 / 11, 0.3 * 23 / 24]) / gross)
    assert info["turnover"] == pytest.approx(0.8) and terminated


def test_buy_and_hold_pays_once_and_drifts(tmp_path):
    env = make_env(write_panel(tmp_path), part="test", cost_bp=10.0)
    dates, values = buy_and_hold(env)
    assert [str(d) for d in dates] == ["2016-01-06", "2016-01-07", "2016-01-08"]
    # half of V in each at day 6's close (14, 25) after paying 10 bp on a turnover of 1, then held
    expected = (1 - 1e-3) * 0.5 * (np.array([14, 12, 15]) / 14 + np.array([25, 26, 24]) / 25)
    np.testing.assert_allclose(values, np.concatenate([[1.0], expected[1:]]))


def test_action_map_is_a_clipped_scaled_softmax(tmp_path):
    env = make_env(write_panel(tmp_path), part="test", action_scale=2.0)
    weights = env.target_weights(np.array([3.0, 0.0, -0.5]))  # 3 is clipped to 1
    np.testing.assert_allclose(weights, softmax(np.array([2.0, 0.0, -1.0])))
    assert weights.sum() == pytest.approx(1.0) and weights.min() > 0
    with pytest.raises(ConfigError, match="3 entries"):
        env.target_weights(np.zeros(2))
    env.reset()
    with pytest.raises(ConfigError, match="summing to 1"):
        env.step_weights(np.array([0.5, 0.6, 0.1]))  # leverage
    with pytest.raises(ConfigError, match="non-negative"):
        env.step_weights(np.array([0.5, 0.7, -0.2]))  # a short position


def test_observation_is_the_scaled_past_log_returns(tmp_path):
    env = make_env(write_panel(tmp_path), part="validation")
    observation, _ = env.reset()
    # day index 3 (2016-01-04), lookback 2: returns of days 2 and 3, rows oldest first, x10
    expected = 10 * np.log([[12 / 11, 22 / 20], [11 / 12, 24 / 22]])
    np.testing.assert_allclose(observation, expected.ravel(), rtol=1e-6)
    assert env.observation_space.contains(observation)


def test_no_look_ahead(tmp_path):
    """Multiplying every close after day index 4 by 3 changes no observation, target or value the env
    shows up to day 4, for a policy that reacts to what it sees; after day 4 they do change."""
    split = {"validation_start": "2016-01-02", "test_start": "2016-01-03"}  # test: day indices 2 .. 7
    future = {s: c[:5] + [3 * x for x in c[5:]] for s, c in CLOSES.items()}
    traces = []
    for closes, name in ((CLOSES, "a.csv.gz"), (future, "b.csv.gz")):
        env = make_env(write_panel(tmp_path, closes, name=name), part="test", split=split)
        trace = []

        def policy(step, observation, weights, env=env, trace=trace):
            target = softmax(np.array([0.0, observation.sum(), -observation.sum()]))
            trace.append((env.t, observation.copy(), target, env.value))
            return target

        run_weights(env, policy)
        traces.append(trace)
    seen_by_day_4 = [[(o, w, v) for t, o, w, v in trace if t <= 4] for trace in traces]
    assert len(seen_by_day_4[0]) == 3  # decisions at day indices 2, 3, 4
    for (o1, w1, v1), (o2, w2, v2) in zip(*seen_by_day_4):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(w1, w2)
        assert v1 == v2
    later = [next(o for t, o, w, v in trace if t == 5) for trace in traces]
    assert not np.array_equal(*later)  # the perturbation is visible from day 5 on


def test_train_episodes_start_at_seeded_random_dates(tmp_path):
    closes = {s: list(np.linspace(10, 20, 30)) for s in ("AAA", "BBB")}
    path = tmp_path / "long.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(HEADER)
        for symbol, series in closes.items():
            for day, close in enumerate(series):
                date = np.datetime64("2016-01-01") + day
                handle.write(f"{date},,,,{close},1,{symbol}\n")
    config = {"data": str(path), "symbols": ["AAA", "BBB"], "lookback": 3, "episode_days": 5,
              "split": {"validation_start": "2016-01-25", "test_start": "2016-01-28"}}
    starts = []
    for seed in range(20):
        env = PortfolioEnv(config)
        env.reset(seed=seed)
        starts.append((env.t, env.end))
    assert all(3 <= t and end == t + 5 and end <= 23 for t, end in starts)  # train ends on 2016-01-24
    assert len({t for t, _ in starts}) > 3
    again = PortfolioEnv(config)
    again.reset(seed=7)
    assert (again.t, again.end) == starts[7]


def test_unknown_config_key(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['lookbak'\]"):
        make_env(write_panel(tmp_path), lookbak=3)

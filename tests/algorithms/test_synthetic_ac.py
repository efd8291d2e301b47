"""The synthetic Almgren-Chriss check (issue 11): the closed-form optimum, the env agreeing with it, the
synthetic split that configs/synthetic_ac_ppo.yaml trains on, and (slow) PPO within 2% of the optimum."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from rlexec.data.splits import DataSplit
from rlexec.envs.bar_env import BarExecutionEnv
from rlexec.errors import ConfigError
from rlexec.strategies.almgren_chriss import expected_cost_bps, optimal_expected_cost_bps, optimal_schedule

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "synthetic_ac_ppo.yaml"


def _load_check():
    spec = importlib.util.spec_from_file_location("synthetic_ac_check", ROOT / "benchmarks" / "synthetic_ac_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _load_check()


def _env_config(**synthetic) -> dict:
    env_config = yaml.safe_load(CONFIG.read_text())["environment"]["env_config"]
    env_config["split"]["synthetic"].update(synthetic)
    return env_config


# ---- closed form, by hand ----------------------------------------------------------------------------
def test_optimum_trades_in_proportion_to_volume_and_costs_c_q_over_v():
    # Q = 1000 over minutes of 100 and 300 shares, c = 10 bp: q = (250, 750),
    # cost = 10 / 1000 * (250^2 / 100 + 750^2 / 300) = 10 / 1000 * 2500 = 25 bp = c Q / V.
    np.testing.assert_allclose(optimal_schedule(1000.0, [[100.0, 300.0]]), [[250.0, 750.0]])
    np.testing.assert_allclose(optimal_expected_cost_bps(1000.0, [[100.0, 300.0]], 10.0), [25.0])
    np.testing.assert_allclose(expected_cost_bps([[250.0, 750.0]], [[100.0, 300.0]], 10.0), [25.0])


def test_optimum_with_steps_spread_evenly_over_their_minutes():
    # One 2-minute step over volumes 100 and 300: 500 shares each minute,
    # 10 / 1000 * (500^2 / 100 + 500^2 / 300) = 10 / 1000 * 3333.33 = 33.33 bp = c Q / (s^2 / (1/100 + 1/300)).
    np.testing.assert_allclose(optimal_expected_cost_bps(1000.0, [[100.0, 300.0]], 10.0, step_minutes=2), [100 / 3])
    # Two 2-minute steps of volume 100 and 300 a minute: weights 200 and 600, so 250 and 750 shares per step,
    # 125, 125, 375, 375 a minute; 10 / 1000 * (2 * 125^2 / 100 + 2 * 375^2 / 300) = 12.5 bp = c Q / 800.
    volume = [[100.0, 100.0, 300.0, 300.0]]
    np.testing.assert_allclose(optimal_schedule(1000.0, volume, step_minutes=2), [[125.0, 125.0, 375.0, 375.0]])
    np.testing.assert_allclose(optimal_expected_cost_bps(1000.0, volume, 10.0, step_minutes=2), [12.5])


def test_no_schedule_costs_less_than_the_optimum():
    rng = np.random.default_rng(0)
    volume = rng.uniform(50.0, 500.0, size=(1, 12))
    best = optimal_expected_cost_bps(900.0, volume, 7.0, step_minutes=3)[0]
    np.testing.assert_allclose(expected_cost_bps(optimal_schedule(900.0, volume, 3), volume, 7.0), [best])
    for _ in range(200):
        steps = rng.dirichlet(np.ones(4)) * 900.0
        assert expected_cost_bps(np.repeat(steps / 3, 3)[None, :], volume, 7.0)[0] >= best - 1e-12


def test_optimum_refuses_a_minute_without_volume_and_ragged_steps():
    with pytest.raises(ConfigError, match="volume > 0"):
        optimal_expected_cost_bps(10.0, [[5.0, 0.0]], 1.0)
    with pytest.raises(ConfigError, match="whole number"):
        optimal_expected_cost_bps(10.0, [[5.0, 5.0, 5.0]], 1.0, step_minutes=2)


# ---- the env agrees with the closed form -----------------------------------------------------------
def _episode_costs(env: BarExecutionEnv, policy, orders: int, seed: int):
    """(cost bp from the rewards, minute fills, Q, horizon volume) of ``orders`` episodes of ``policy(t)``."""
    rows = []
    env.reset(seed=seed)
    for i in range(orders):
        env.reset(options={"order_index": i})
        total = 0.0
        for t in range(env.execution.n_steps):
            _, reward, terminated, _, info = env.step(policy(t))
            total += reward
        assert terminated and info["fill_rate"] == pytest.approx(1.0)
        state = env.state
        rows.append((-total / env.execution.reward.scale, state.minute_fills[0].copy(), state.batch.quantity[0],
                     state.batch.volume[0].copy()))
    return rows


def test_env_cost_of_the_optimal_schedule_is_the_closed_form():
    """TWAP pace every step on the shipped synthetic config (volatility on): with flat volume TWAP is the
    optimum, its price term vanishes exactly (it trades every minute's price equally against their
    mean) and its impact term is c Q / V whatever the prices, so each order's simulated cost is the
    closed form to rounding."""
    env = BarExecutionEnv(_env_config())
    execution = env.execution
    assert execution.action_interpreter == "twap_relative"
    twap = check.twap_action(execution)
    rows = _episode_costs(env, lambda t: twap, orders=40, seed=3)
    simulated = np.array([r[0] for r in rows])
    quantity = np.array([r[2] for r in rows])
    volume = np.stack([r[3] for r in rows])
    assert np.all(volume == volume[0, 0]), "the synthetic market's volume is flat"
    closed = optimal_expected_cost_bps(quantity, volume, execution.fill.impact_coefficient_bps, execution.step_minutes)
    np.testing.assert_allclose(simulated, closed, rtol=1e-9)
    np.testing.assert_allclose(np.stack([r[1] for r in rows]), optimal_schedule(quantity, volume, execution.step_minutes),
                               rtol=1e-9)
    assert 5.0 < simulated.mean() < 30.0  # 100 bp x (0.05..0.15 x 3.9M) / 2.4M: 8..24 bp


def test_env_cost_of_any_schedule_is_the_expected_cost_without_volatility():
    """With no price noise the env charges exactly ``c / Q * sum q_m^2 / v_m`` for any action sequence,
    and every schedule costs at least the optimum."""
    env = BarExecutionEnv(_env_config(volatility=0.0))
    rng = np.random.default_rng(5)
    actions = rng.integers(env.action_space.n, size=(30, env.execution.n_steps))
    rows = []
    for k, row in enumerate(actions):
        rows += _episode_costs(env, lambda t, row=row: int(row[t]), orders=1, seed=100 + k)
    simulated = np.array([r[0] for r in rows])
    fills = np.stack([r[1] for r in rows])
    volume = np.stack([r[3] for r in rows])
    c = env.execution.fill.impact_coefficient_bps
    np.testing.assert_allclose(simulated, expected_cost_bps(fills, volume, c), rtol=1e-9)
    optimum = optimal_expected_cost_bps(fills.sum(axis=1), volume, c, env.execution.step_minutes)
    assert np.all(simulated >= optimum * (1 - 1e-9))
    assert np.any(simulated > optimum * 1.05)  # random actions are not all TWAP


def test_check_refuses_a_market_where_the_closed_form_does_not_hold():
    config = _env_config()
    config["execution"]["fill"]["impact_exponent"] = 0.5
    with pytest.raises(ConfigError, match="linear temporary impact"):
        check.check_setup(config)


# ---- the synthetic split -----------------------------------------------------------------------------
def test_synthetic_split_generates_the_same_market_for_the_same_mapping():
    split = DataSplit.from_dict(_env_config()["split"])
    market = split.market()
    again = DataSplit.from_dict(_env_config()["split"]).market()
    np.testing.assert_array_equal(market.bars, again.bars)
    assert split == DataSplit.from_dict(_env_config()["split"]) and hash(split) is not None  # still hashable
    other = DataSplit.from_dict(_env_config(seed=12)["split"]).market()
    assert not np.array_equal(market.bars[..., 3], other.bars[..., 3])  # another seed, other prices
    assert {str(d) for _, d in split.sessions(market, "test")} == set(_env_config()["split"]["test_days"])
    assert np.all(market.bars[..., 4] == 10_000)  # flat: 3.9M shares over 390 minutes


def test_synthetic_split_errors_name_the_field():
    with pytest.raises(ConfigError, match="volatility"):
        DataSplit.from_dict({"synthetic": {"volatility": -1.0}})
    with pytest.raises(ConfigError, match="unknown field.*volatilty"):
        DataSplit.from_dict({"synthetic": {"volatilty": 0.1}})
    with pytest.raises(ConfigError, match="not both"):
        DataSplit.from_dict({"data": ["bars.csv"], "synthetic": {}})
    with pytest.raises(ConfigError, match="synthetic.seed"):
        DataSplit.from_dict({"synthetic": {"seed": "x"}})


# ---- slow: the whole check ----------------------------------------------------------------------------
@pytest.mark.slow
def test_ppo_comes_within_two_percent_of_the_optimum(tmp_path):
    """Trains configs/synthetic_ac_ppo.yaml (at most 40 min, 240 iterations) and evaluates its last
    checkpoint on 2,000 orders of the held-out synthetic days: the greedy policy (what ``rlexec
    evaluate`` acts with) and the sampled one both within 2% of the optimum's expected cost."""
    subprocess.run([sys.executable, "-m", "rlexec.cli.main", "train", str(CONFIG), "--local", "--out", str(tmp_path)],
                   check=True, cwd=ROOT)
    result = check.evaluate_run(check.newest_run(tmp_path / "train" / "synthetic_ac_ppo"))
    assert result["optimum_max_abs_gap_bps"] < 1e-6, json.dumps(result)
    assert result["final_greedy_excess"] <= check.CRITERION, json.dumps(result)
    assert result["checkpoints"][-1]["sampled_excess"] <= check.CRITERION, json.dumps(result)

"""Logic-Q on the bar env: decision-time features see only closed bars; the adjusted policy at
temperature 1 is the frozen policy; (Aug) observations; the study's comparison pipeline."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from rlexec.data import load_sample
from rlexec.data.orders import OrderGenerator, generate_orders
from rlexec.envs import ExecutionConfig, prepare_orders
from rlexec.envs.engine import BatchExecutionEngine
from rlexec.errors import ConfigError
from rlexec.evaluation.episodes import BarEpisodes
from rlexec.evaluation.runner import run_episodes
from rlexec.logicq.execution import (
    AdjustedExecution,
    TrendAugmentedBarEnv,
    aug_inputs,
    state_closes,
)
from rlexec.logicq.features import TrendFeatureConfig
from rlexec.logicq.sketch import Sketch, temperature_holes
from rlexec.policies.actors import ExpectedFractionActor, SampledActor

FEATURES = TrendFeatureConfig(window=30, relative=True)


class LinearModel:
    """A frozen stand-in policy: logits = obs @ W, fixed random weights (no training needed)."""

    def __init__(self, obs_dim: int, seed: int, actions: int = 5):
        self.w = torch.from_numpy(np.random.default_rng(seed).normal(0, 0.05, (obs_dim, actions)).astype(np.float32))

    def logits(self, obs):
        return torch.as_tensor(obs, dtype=torch.float32) @ self.w


@pytest.fixture(scope="module")
def batch():
    market, config = load_sample(), ExecutionConfig()
    orders = generate_orders(market, 40, seed=0, generator=OrderGenerator(horizon_minutes=config.horizon_minutes))
    return config, prepare_orders(market, orders, config)


def test_decision_time_features_do_not_see_bars_that_have_not_closed(batch):
    config, b = batch
    engine = BatchExecutionEngine(config)
    state = engine.reset(b)
    for _ in range(3):
        engine.step(np.full(len(b), 0.1))
    before = FEATURES(state_closes(state))
    visible = state.visible_minutes
    future = dataclasses.replace(b, window_bars=b.window_bars.copy())
    future.window_bars[:, visible:] *= 1.5  # every bar after the decision time changes
    engine2 = BatchExecutionEngine(config)
    state2 = engine2.reset(future)
    for _ in range(3):
        engine2.step(np.full(len(b), 0.1))
    after = FEATURES(state_closes(state2))
    for name in ("vol", "dr", "gr"):
        assert np.array_equal(getattr(before, name), getattr(after, name))
    assert state_closes(state).t == visible - 1


def _adjusted(model, config, temperatures, act, seed=0, sketch=None):
    sketch = sketch or Sketch()
    values = {h.name: 0.5 for h in temperature_holes(sketch)} | temperatures
    return AdjustedExecution("x", [model], sketch.temperature_assignment(values), sketch=sketch, features=FEATURES,
                             execution=config, act=act, seed=seed)


def test_temperature_one_executes_exactly_the_frozen_policy(batch):
    config, b = batch
    model = LinearModel(3 + 6 * 270, seed=1)
    ones = {f"temperature.{k}": 1.0 for k in ("steady_descend", "steady_ascend", "rapid_descend", "rapid_ascend",
                                               "oscillation")}
    for act, frozen in (("expected", ExpectedFractionActor(model, config.action_values)),
                        ("sampled", SampledActor(model, seed=4))):
        adjusted, _ = run_episodes(BarEpisodes(b, config), _adjusted(model, config, ones, act, seed=4))
        reference, _ = run_episodes(BarEpisodes(b, config), frozen)
        assert np.allclose(adjusted.metrics["price_advantage_bps"], reference.metrics["price_advantage_bps"])


def test_a_hot_trend_trades_towards_the_mean_action_value(batch):
    """phi -> inf: every step trades the mean action value (0.5 of Q) whatever the model says."""
    config, b = batch
    model = LinearModel(3 + 6 * 270, seed=2)
    hot = {f"temperature.{k}": 1e9 for k in ("steady_descend", "steady_ascend", "rapid_descend", "rapid_ascend",
                                              "oscillation")}
    actor = _adjusted(model, config, hot, "expected")
    episodes = BarEpisodes(b, config)
    episodes.reset()
    assert actor.fractions(episodes.state) == pytest.approx(np.full(len(b), 0.5))
    with pytest.raises(ConfigError, match="greedy"):
        _adjusted(model, config, hot, "greedy")


def test_the_aug_env_appends_the_trend_inputs_of_its_past_closes():
    env = TrendAugmentedBarEnv({"order_pool_size": 8})
    obs, _ = env.reset(seed=0)
    assert obs.shape == env.observation_space.shape == (3 + 6 * 270 + 3,)
    for _ in range(3):
        obs, *_ = env.step(2)
    expected = aug_inputs(FEATURES(state_closes(env.state)))[0]
    assert obs[-3:] == pytest.approx(expected)
    assert obs[-3:].any()


def test_the_study_compares_every_method_on_the_same_test_orders(tmp_path, monkeypatch):
    from rlexec.data.splits import DataSplit
    from rlexec.logicq import study as study_module
    from rlexec.logicq.search import BEST_FILE

    study = study_module.ExecutionStudy(
        name="t", policies=("a", "b", "c"), split={"preset": "sample"},
        validation=study_module.OrderSet(part="validation", num_orders=20, seed=0),
        test=study_module.OrderSet(part="test", num_orders=30, seed=1),
        bounds=study_module.OrderSet(part="train", num_orders=20, seed=2), seeds=(0, 1))
    split = DataSplit.from_dict(study.split)
    config = ExecutionConfig()
    loaded = study_module.Loaded([LinearModel(1623, s) for s in (1, 2, 3)], None, None, config, split.market(), split)
    monkeypatch.setitem(study_module._LOADED, __import__("rlexec.provenance").provenance.config_hash(study.settings()),
                        loaded)
    bounds = study_module.threshold_bounds(study)
    assert bounds.vol[0] < bounds.vol[1]
    # hand-written "tuned" holes: every variant at its range's middle, w/o sketch hot
    for seed in study.seeds:
        for variant in study.variants:
            holes = study.holes(variant, bounds)
            values = {h.name: (h.low + h.high) / 2 for h in holes}
            if variant == "without_sketch":
                values = {"temperature.oscillation": 5.0}
            folder = tmp_path / "tune" / study.experiment_name(variant, seed)
            folder.mkdir(parents=True)
            (folder / BEST_FILE).write_text(json.dumps({"holes": values}))
    assert [len(study.holes(v, bounds)) for v in study.variants] == [1, 13, 23]
    summary = study_module.evaluate_study(study, out=tmp_path)
    assert list(summary["methods"]) == ["base", "without_sketch", "logicq", "ensemble"]
    base = summary["methods"]["base"]["per_seed"]
    # the paired difference is the difference of the means on the same orders
    for name, rows in summary["paired"].items():
        a = name.split(" - ")[0]
        for row, mine, ref in zip(rows, summary["methods"][a]["per_seed"], base):
            if name.endswith("- base"):
                assert row["mean"] == pytest.approx(mine["pa"] - ref["pa"])
    assert summary["methods"]["base"]["per_seed"][0]["arr"] == pytest.approx(base[0]["pa"] * 2.52)
    table = study_module.results_markdown(summary)
    assert "Logic-Q (13 holes)" in table and "logicq - without_sketch" in table
    # an objective scores one hole assignment by the mean PA of its validation backtest
    objective = study_module.ValidationBacktest(study, "logicq", seed=0)
    values = {h.name: (h.low + h.high) / 2 for h in study.holes("logicq", bounds)}
    assert objective(values)["objective"] == pytest.approx(objective(values)["objective"])
    figure = study_module.plot_trend_labels(study, values, tmp_path / "trend.png")
    assert figure.stat().st_size > 1000


def test_twap_relative_actions_are_refused(batch):
    """Both execution modes turn actions into fractions of Q through action_values: under the TWAP-relative
    interpreter those values are pace multipliers, so the adjusted policy would trade the wrong amounts."""
    config, _ = batch
    relative = ExecutionConfig.from_dict({**config.to_dict(), "action_interpreter": "twap_relative",
                                          "action_values": None})
    with pytest.raises(ConfigError, match="action_interpreter: fraction"):
        _adjusted(LinearModel(3 + 6 * 270, seed=1), relative, {}, "expected")

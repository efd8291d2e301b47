"""Logic-Q daily trading: 23 holes, per-trend ensemble mixing, the validation-Sharpe objective, no look-ahead."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest

from rlexec.envs.portfolio_env import PortfolioEnv
from rlexec.errors import ConfigError
from rlexec.evaluation.portfolio_metrics import portfolio_metrics
from rlexec.logicq.sketch import ThresholdBounds, Trend
from rlexec.logicq.trading import (
    EnsembleObjective,
    PartData,
    TradingSpec,
    backtest,
    decision_days,
    deterministic_actions,
    index_features,
)

SPLIT = {"validation_start": "2016-02-20", "test_start": "2016-03-20"}


@pytest.fixture(scope="module")
def panel_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("daily") / "panel.csv.gz"
    dates = np.datetime64("2016-01-01") + np.arange(100)
    with gzip.open(path, "wt") as handle:
        handle.write("date,open,high,low,close,volume,Name\n")
        for symbol in ("AAA", "BBB", "CCC"):
            closes = 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, len(dates))))
            for date, close in zip(dates, closes):
                handle.write(f"{date},,,,{close:.4f},1,{symbol}\n")
    return path


def make_spec(panel_file, **extra) -> TradingSpec:
    return TradingSpec(sub_policies={"a": "x", "b": "y", "c": "z"}, window=5,
                       env_config={"data": str(panel_file), "symbols": ["AAA", "BBB", "CCC"], "split": SPLIT,
                                   "lookback": 3, "cost_bp": 10.0}, **extra)


def hole_values(holes, **overrides) -> dict[str, float]:
    values = {h.name: h.low for h in holes}
    values.update(overrides)
    return values


def part(spec: TradingSpec, name: str, components: np.ndarray | None = None) -> PartData:
    env = spec.env(name)
    days = decision_days(env)
    if components is None:
        rng = np.random.default_rng(1)
        raw = rng.random((3, len(days), env.n_assets + 1))
        components = raw / raw.sum(axis=2, keepdims=True)
    return PartData(name, days, components, index_features(env, days, spec.feature_config()))


def test_hole_counts(panel_file):
    spec = make_spec(panel_file)
    bounds = ThresholdBounds(vol=(0, 1), dr=(0, 1), gr=(0, 5))
    assert len(spec.sketch("logicq").ensemble_holes(3, bounds)) == 23
    assert len(spec.sketch("wo_sketch").ensemble_holes(3, bounds)) == 3  # one weight vector


def test_mixing_follows_each_days_trend(panel_file):
    spec = make_spec(panel_file)
    data = part(spec, "validation")
    sketch = spec.sketch("logicq")
    holes = sketch.ensemble_holes(3, ThresholdBounds(vol=(0, 1), dr=(0, 1), gr=(0, 5)))
    # every conditional reads "vol above/below a threshold and a second feature above one": put all of them
    # out of reach but rapid ascend's (vol >= 0 and gr > 0), so a day is rapid ascend iff its index grew
    values = hole_values(holes)
    for name in values:
        if name.startswith("threshold.") and not name.startswith("threshold.rapid_ascend"):
            values[name] = 1e9 if name.endswith(("_dr", "_gr")) else values[name]
    values.update({"weight.rapid_ascend.0": 3.0, "weight.rapid_ascend.1": 1.0, "weight.rapid_ascend.2": 0.0,
                   "weight.oscillation.0": 0.0, "weight.oscillation.1": 0.0, "weight.oscillation.2": 2.0})
    trends, targets = EnsembleObjective(spec, data, sketch).targets(values)
    grew = data.features.gr > 0
    assert grew.any() and (~grew).any()
    np.testing.assert_array_equal(trends, np.where(grew, int(Trend.RAPID_ASCEND), int(Trend.OSCILLATION)))
    a, b, c = data.components
    expected = np.where(grew[:, None], 0.75 * a + 0.25 * b, c)
    np.testing.assert_allclose(targets, expected)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0)


def test_objective_is_the_validation_sharpe_of_the_backtest(panel_file):
    spec = make_spec(panel_file)
    data = part(spec, "validation")
    sketch = spec.sketch("wo_sketch")
    objective = pickle.loads(pickle.dumps(EnsembleObjective(spec, data, sketch)))  # Tune ships it to trials
    values = {"weight.oscillation.0": 0.0, "weight.oscillation.1": 1.0, "weight.oscillation.2": 0.0}
    score = objective(values)
    _, equity = backtest(spec.env("validation"), data.components[1])  # sub-policy b alone
    assert score["objective"] == pytest.approx(portfolio_metrics(equity)["SR"])
    assert score["validation_CR"] == pytest.approx(equity[-1] - 1)
    other = objective({"weight.oscillation.0": 1.0, "weight.oscillation.1": 0.0, "weight.oscillation.2": 0.0})
    assert other["objective"] != pytest.approx(score["objective"])
    assert objective.describe() == EnsembleObjective(spec, data, sketch).describe()
    changed = PartData(data.part, data.days, data.components[::-1].copy(), data.features)
    assert EnsembleObjective(spec, changed, sketch).describe() != objective.describe()


def test_index_features_use_no_future_close(panel_file, tmp_path):
    spec = make_spec(panel_file)
    env = spec.env("validation")
    days = decision_days(env)
    before = index_features(env, days, spec.feature_config())
    cut = int(days[len(days) // 2])
    perturbed = PortfolioEnv({**spec.env_config, "part": "validation", "episode_days": None})
    perturbed.panel = type(env.panel)(env.panel.source, env.panel.dates, env.panel.symbols, env.panel.close.copy())
    perturbed.panel.close[cut + 1:] *= np.linspace(0.5, 2.0, len(env.panel.dates) - cut - 1)[:, None]
    after = index_features(perturbed, days, spec.feature_config())
    upto = days <= cut
    for name in ("vol", "dr", "gr"):
        np.testing.assert_array_equal(getattr(before, name)[upto], getattr(after, name)[upto])
        assert not np.array_equal(getattr(before, name)[~upto], getattr(after, name)[~upto])


def test_deterministic_actions_squash_sac_and_take_the_gaussian_mean():
    import gymnasium as gym
    import torch
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.core.columns import Columns

    observation_space = gym.spaces.Box(-5, 5, (4,), np.float32)
    action_space = gym.spaces.Box(-1, 1, (3,), np.float32)
    observations = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32) * 3
    for config in (PPOConfig(), SACConfig()):
        module = _build_module(config, observation_space, action_space)
        with torch.no_grad():
            inputs = module.forward_inference({Columns.OBS: torch.as_tensor(observations)})[Columns.ACTION_DIST_INPUTS]
        mean = inputs[:, :3].numpy()
        actions = deterministic_actions(module, observations)
        expected = np.tanh(mean) if isinstance(config, SACConfig) else mean
        np.testing.assert_allclose(actions, expected, rtol=1e-5, atol=1e-6)


def _build_module(config, observation_space, action_space):
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    default = config.get_default_rl_module_spec()
    return RLModuleSpec(module_class=default.module_class, catalog_class=default.catalog_class,
                        observation_space=observation_space, action_space=action_space,
                        model_config={**config.model_config, "fcnet_hiddens": [8]}, inference_only=False).build()


def test_spec_refuses_a_part_and_unknown_keys(panel_file, tmp_path):
    with pytest.raises(ConfigError, match="env_config.part is set by Logic-Q"):
        TradingSpec(sub_policies={"a": "x"}, env_config={"part": "test"})
    with pytest.raises(ConfigError, match="sub_policies"):
        TradingSpec()
    path = tmp_path / "t.yaml"
    path.write_text("sub_policies: {a: runs/x}\nwindoww: 3\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['windoww'\]"):
        TradingSpec.from_yaml(path)
    path.write_text("sub_policies: {a: runs/x}\nsearch: {num_sample: 3}\n")
    with pytest.raises(ConfigError, match=r"search: unknown key"):
        TradingSpec.from_yaml(path)


@pytest.mark.slow
def test_whole_experiment_on_untrained_modules(panel_file, tmp_path, monkeypatch, ray_session):
    """Search both variants (a few trials), backtest on test: the files and tables the note quotes."""
    import json

    from ray.rllib.algorithms.ppo import PPOConfig

    from rlexec.logicq import trading

    spec = make_spec(panel_file, search={"num_samples": 3, "n_startup_trials": 2, "max_concurrent": 1})
    env = spec.env("test")
    modules = [_build_module(PPOConfig(), env.observation_space, env.action_space) for _ in range(3)]
    monkeypatch.setattr(trading, "load_sub_policies", lambda spec: modules)
    folder = trading.run(spec, out=tmp_path)
    results = json.loads((folder / "results.json").read_text())
    assert results["variants"]["logicq"]["holes"] == 23 and results["variants"]["wo_sketch"]["holes"] == 3
    assert results["variants"]["logicq"]["trials"] == 3
    assert set(results["test"]) == {"Logic-Q", "Logic-Q w/o sketch", "buy-and-hold (equal weight)", "a", "b", "c"}
    assert sum(results["test_trend_days"].values()) == len(decision_days(env))
    assert (folder / "equity_test.png").stat().st_size > 0 and "| Logic-Q |" in (folder / "results.md").read_text()

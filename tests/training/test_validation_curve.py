"""Validation PA per training iteration (``validation:`` in a training YAML, rlexec.training.validation)."""

from __future__ import annotations

import json

import pytest

from rlexec.data.splits import DataSplit
from rlexec.envs.engine import prepare_orders
from rlexec.errors import ConfigError
from rlexec.evaluation.episodes import BarEpisodes
from rlexec.evaluation.runner import run_episodes
from rlexec.policies.trained import TrainedPolicy
from rlexec.training import runner
from rlexec.training.spec import TrainSpec
from rlexec.training.validation import ValidationSpec, Validator

TINY = {
    "algorithm": "ppo", "name": "tiny_val", "seed": 3, "stop": {"training_iterations": 2}, "checkpoint_frequency": 0,
    "validation": {"every": 1, "orders": 24, "seed": 5},
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train"}},
    "env_runners": {"num_env_runners": 0, "num_envs_per_env_runner": 4},
    "training": {"lr": 1.0e-3, "gamma": 1.0, "lambda_": 1.0, "train_batch_size_per_learner": 128,
                 "minibatch_size": 64, "num_epochs": 1},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [16]}},
}


def test_training_logs_one_validation_pa_per_iteration_from_the_current_weights(ray_session, tmp_path):
    run_dir = runner.train(TrainSpec.from_dict(TINY), out=tmp_path, local=True)
    lines = [json.loads(text) for text in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [1, 2]
    assert all("validation_pa_bps" in line and "validation_pa_se" in line and "time_validation_s" in line
               for line in lines)
    # The last value is the final checkpoint's PA on the same validation orders, evaluated afresh.
    policy = TrainedPolicy.load(run_dir)
    split = DataSplit.from_dict({"preset": "sample"})
    market = split.market()
    orders = split.orders(market, "validation", 24, 5, policy.execution.horizon_minutes)
    assert {o.date.isoformat() for o in orders} == set(split.validation_days)
    batch = prepare_orders(market, orders, policy.execution)
    result, _ = run_episodes(BarEpisodes(batch, policy.execution), policy.actor("greedy"))
    assert lines[-1]["validation_pa_bps"] == pytest.approx(result.summary.price_advantage_bps.mean, rel=1e-9)


def test_validation_runs_every_k_iterations():
    validator = Validator.__new__(Validator)
    validator.spec = ValidationSpec(every=3)
    assert [i for i in range(1, 10) if validator.due(i)] == [3, 6, 9]


def test_the_validation_section_is_checked_when_the_yaml_is_read():
    with pytest.raises(ConfigError, match=r"<dict>: ValidationSpec: unknown field\(s\) \['order'\]"):
        TrainSpec.from_dict({**TINY, "validation": {"order": 5}})
    with pytest.raises(ConfigError, match="validation.every must be an integer >= 1"):
        TrainSpec.from_dict({**TINY, "validation": {"every": 0}})
    assert "validation" not in TrainSpec.from_dict({k: v for k, v in TINY.items() if k != "validation"}).to_dict()


def test_validation_needs_a_split_with_validation_days():
    no_days = TrainSpec.from_dict(TINY, source="cfg.yaml").with_overrides(
        {"environment.env_config.split.validation_days": []})
    with pytest.raises(ConfigError, match="cfg.yaml: validation: the split has no validation days"):
        Validator(ValidationSpec(), no_days)
    no_split = TrainSpec.from_dict(TINY, source="cfg.yaml").with_overrides({"environment.env_config": {}})
    with pytest.raises(ConfigError, match="cfg.yaml: validation needs the bar env with a split"):
        Validator(ValidationSpec(), no_split)

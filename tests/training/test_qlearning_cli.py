"""``rlexec train`` of a tabular Q-learning expert on the LOB env, then ``rlexec evaluate --env lob --policy``.

One tiny run per module: regime ``open`` (30 minutes of 30 s decisions = 60 steps per episode), one
episode per iteration, 2 iterations, ``--local``; the expert export collects 2 episodes and distils
for 5 epochs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rlexec.policies.expert import ExpertPolicy
from rlexec.cli.main import main
from rlexec.envs.lob_env import LOBExecutionEnv

NAME = "tiny_qlearning"
ENV_CONFIG = {"regime": "open", "broker": "twap"}
TINY_Q = {
    "algorithm": "qlearning",
    "name": NAME,
    "seed": 0,
    "stop": {"training_iterations": 2},
    "checkpoint_frequency": 1,
    "environment": {"env": "lob", "env_config": ENV_CONFIG},
    "env_runners": {"num_env_runners": 0, "num_envs_per_env_runner": 1},
    "training": {"gamma": 0.9, "alpha": 0.1, "epsilon": 0.9, "train_batch_size_per_learner": 60,
                 "expert_episodes": 2, "expert_epochs": 5},
}
TINY_BAR = {  # a PPO on the bar env, as small as a run gets: its only use is to be refused by --env lob
    "algorithm": "ppo",
    "name": "tiny_bar",
    "seed": 0,
    "stop": {"training_iterations": 1},
    "checkpoint_frequency": 1,
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train"}},
    "env_runners": {"num_env_runners": 0, "num_envs_per_env_runner": 1},
    "training": {"train_batch_size_per_learner": 32, "minibatch_size": 32, "num_epochs": 1},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [8]}},
}


def train(config: dict, tmp: Path) -> Path:
    path = tmp / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp / "runs"
    assert main(["train", str(path), "--local", "--out", str(out)]) == 0
    runs = sorted((out / "train" / config["name"]).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture(scope="module")
def q_run(ray_session, tmp_path_factory) -> Path:
    return train(TINY_Q, tmp_path_factory.mktemp("qlearning"))


def test_train_qlearning_exports_an_expert(q_run):
    summary = json.loads((q_run / "summary.json").read_text())
    assert summary["iterations"] == 2
    figures = summary["after_training"]
    assert math.isfinite(figures["kl"]) and figures["kl"] >= 0
    assert Path(figures["expert_path"]) == q_run / "expert"
    assert (q_run / "expert" / "policy.pt").is_file() and (q_run / "expert" / "policy.json").is_file()
    assert (q_run / "checkpoints" / "latest.json").is_file()

    policy = ExpertPolicy.load(q_run / "expert")
    assert policy.metadata["algorithm"] == "qlearning" and policy.metadata["env_config"]["regime"] == "open"
    env = LOBExecutionEnv(ENV_CONFIG)
    obs, _ = env.reset(seed=3)
    observations = [obs]
    for _ in range(5):
        obs, *_ = env.step(0)
        observations.append(obs)
    with torch.no_grad():
        probs = policy.probs(np.stack(observations)).numpy()
    assert probs.shape == (6, env.action_space.n)
    assert np.all(probs >= 0) and np.allclose(probs.sum(axis=-1), 1.0, atol=1e-5)


def test_evaluate_lob_policy_and_refuse_a_bar_policy(q_run, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["evaluate", "--env", "lob", "--regime", "open", "--policy", str(q_run), "--episodes", "2",
                 "--strategies", "twap", "--no-plots", "--out", str(out)]) == 0
    (summary_file,) = out.rglob("summary.json")
    results = json.loads(summary_file.read_text())["results"]
    assert set(results) == {"twap", NAME}
    for name in ("twap", NAME):
        assert results[name]["n_orders"] == 2
        fill = results[name]["fill_rate"]["mean"]
        assert math.isfinite(fill) and 0.0 <= fill <= 1.0, (name, fill)

    bar_run = train(TINY_BAR, tmp_path)
    capsys.readouterr()
    assert main(["evaluate", "--env", "lob", "--regime", "open", "--policy", str(bar_run), "--episodes", "1",
                 "--strategies", "twap", "--no-plots", "--out", str(tmp_path / "eval_bar")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlexec: error: ") and str(bar_run) in err and "'bar'" in err

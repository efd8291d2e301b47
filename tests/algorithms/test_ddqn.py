"""DDQN (RLlib DQN with double Q, new API stack): registered, built from configs/ddqn.yaml, trained one
tiny iteration through the training driver, checkpointed, restored, and acting greedily (argmax Q)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rlexec.algorithms.registry import algorithm_names, get_algorithm
from rlexec.errors import ConfigError
from rlexec.training.spec import TrainSpec, build_algorithm_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "ddqn.yaml"


def tiny_spec(**training) -> TrainSpec:
    """configs/ddqn.yaml on the shipped sample, with a budget of seconds."""
    data = yaml.safe_load(CONFIG.read_text())
    data["environment"]["env_config"]["split"] = {"preset": "sample"}
    data["stop"] = {"training_iterations": 1}
    data["checkpoint_frequency"] = 1
    data["env_runners"] = {"num_env_runners": 0, "num_envs_per_env_runner": 2}
    data["rl_module"]["model_config"] = {"fcnet_hiddens": [8]}
    data["reporting"] = {"min_sample_timesteps_per_iteration": 64}
    data["training"].update({"num_steps_sampled_before_learning_starts": 32, "train_batch_size_per_learner": 16,
                             "replay_buffer_config": {"type": "PrioritizedEpisodeReplayBuffer", "capacity": 1000}},
                            **training)
    return TrainSpec.from_dict(data, source=str(CONFIG))


def test_ddqn_is_registered_as_rllib_dqn():
    from ray.rllib.algorithms.dqn import DQNConfig

    assert "ddqn" in algorithm_names()
    assert issubclass(get_algorithm("ddqn").load_config_class(), DQNConfig)


def test_config_has_double_q_on_and_refuses_it_off():
    config = build_algorithm_config(tiny_spec(), local=True)
    assert config.double_q is True and config.dueling is False
    assert config.gamma == 1.0 and config.lr == 1.0e-4 and config.grad_clip == 100.0  # spec 2.2
    assert config.enable_rl_module_and_learner and config.enable_env_runner_and_connector_v2  # new stack
    # the module is built with double Q too (RLlib copies it into the model config)
    assert config.get_default_rl_module_spec().module_class.__name__ == "DefaultDQNTorchRLModule"
    assert config.model_config["double_q"] is True
    with pytest.raises(ConfigError, match="double_q must be true"):
        build_algorithm_config(tiny_spec(double_q=False), local=True).validate()


def test_learner_targets_are_double_q():
    """The TD target takes the next action from the online network and its value from the target
    network: with online Q' = (1, 5) and target Q' = (7, 2) at the next state, double Q's target uses
    Q_target(s', argmax Q_online) = 2, where plain DQN would use max Q_target = 7."""
    from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_NEXT_PREDS, QF_PREDS, QF_TARGET_NEXT_PREDS
    from ray.rllib.core.columns import Columns

    config = build_algorithm_config(tiny_spec(td_error_loss_fn="mse"), local=True)
    learner_class = config.get_default_learner_class()
    fwd_out = {QF_PREDS: torch.tensor([[0.0, 0.0]], requires_grad=True),
               QF_NEXT_PREDS: torch.tensor([[1.0, 5.0]]), QF_TARGET_NEXT_PREDS: torch.tensor([[7.0, 2.0]])}
    batch = {Columns.ACTIONS: torch.tensor([0]), Columns.REWARDS: torch.tensor([0.5]),
             Columns.TERMINATEDS: torch.tensor([False]), "n_step": torch.tensor([1.0]), "weights": torch.tensor([1.0])}

    class Probe(learner_class):  # the loss alone, without building a learner
        def __init__(self, config):
            self.config = config
            self.metrics = type("Sink", (), {"log_value": lambda *a, **k: None, "log_dict": lambda *a, **k: None})()

    def loss(config) -> float:
        return float(Probe(config).compute_loss_for_module(module_id="default_policy", config=config, batch=batch,
                                                           fwd_out=fwd_out).detach())

    # mse, gamma 1: (Q(s, a) - (r + Q_target(s', argmax_a' Q_online(s', a'))))^2 = (0 - (0.5 + 2))^2
    assert loss(config) == pytest.approx(2.5**2)
    config.double_q = False  # plain DQN would bootstrap from max Q_target = 7: (0 - 7.5)^2
    assert loss(config) == pytest.approx(7.5**2)


def _observations(env_config: dict, count: int) -> np.ndarray:
    from rlexec.envs.bar_env import BarExecutionEnv

    env = BarExecutionEnv(env_config)
    rows = []
    for seed in range(count):
        obs, _ = env.reset(seed=seed)
        for _ in range(seed % env.execution.n_steps):
            obs, *_ = env.step(1)
        rows.append(obs)
    return np.stack(rows)


def test_trains_checkpoints_restores_and_acts_greedily(ray_session, tmp_path):
    from ray.rllib.algorithms.dqn.default_dqn_rl_module import QF_PREDS
    from ray.rllib.core.columns import Columns

    from rlexec.policies.trained import TrainedPolicy
    from rlexec.training.runner import train

    spec = tiny_spec()
    run_dir = train(spec, out=tmp_path, local=True)
    progress = [yaml.safe_load(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    trained = [p for p in progress if "iteration" in p]
    assert trained[-1]["iteration"] == 1 and trained[-1]["env_steps_sampled_lifetime"] >= 64
    assert np.isfinite(trained[-1]["qf_loss"])  # the learner updated (past the 32 warm-up steps)

    # restore: the run goes on from its checkpoint to iteration 2
    longer = spec.with_overrides({"stop": {"training_iterations": 2}})
    assert train(longer, out=tmp_path, resume=run_dir, local=True) == run_dir
    lines = [yaml.safe_load(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    assert [p["iteration"] for p in lines if "iteration" in p and "qf_loss" in p] == [1, 2]

    # the greedy actor of the restored policy is argmax Q
    policy = TrainedPolicy.load(run_dir)
    assert policy.execution.action_interpreter == "fraction"
    obs = _observations(spec.sections["environment"]["env_config"], 16)
    q = policy.model.compute_q_values({Columns.OBS: torch.from_numpy(obs)})[QF_PREDS].detach().numpy()
    actor = policy.actor("greedy")
    np.testing.assert_array_equal(actor.actions(obs), q.argmax(axis=1))

    for kind in ("sampled", "expected"):  # a Q-network has no action distribution to draw from
        with pytest.raises(ConfigError, match="greedy actions only"):
            policy.actor(kind).actions(obs)

    # a hand-set Q head: zero weights, biases (0, 1, 3, 2, -1): Q is the bias whatever the state, argmax 2
    model = copy.deepcopy(policy.model)
    head = [m for m in model.af.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 1.0, 3.0, 2.0, -1.0]))
    policy.model = model
    np.testing.assert_array_equal(policy.actor("greedy").actions(obs), np.full(len(obs), 2))


def test_config_file_trains_on_the_bar_env_with_either_interpreter():
    spec = TrainSpec.from_dict(yaml.safe_load(CONFIG.read_text()), source=str(CONFIG))
    assert spec.algorithm == "ddqn" and spec.sections["environment"]["env"] == "bar"
    ppo = yaml.safe_load((ROOT / "configs" / "ppo.yaml").read_text())
    env_config = dict(spec.sections["environment"]["env_config"])
    assert env_config.pop("execution") == {"action_interpreter": "fraction"}
    assert env_config == ppo["environment"]["env_config"]
    twap = spec.with_overrides({"environment.env_config.execution.action_interpreter": "twap_relative"}, origin="--set")
    assert twap.sections["environment"]["env_config"]["execution"]["action_interpreter"] == "twap_relative"

"""The batched rollout path (env_runners.batched: true): equal to the plain path on a fixed seed, and trainable.

Everything runs on the shipped sample (split preset ``sample``) with tiny batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ray.rllib.core.columns import Columns
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

from rlexec.envs.bar_env import ORACLE_OBS, BarExecutionEnv
from rlexec.envs.engine import OrderBatch
from rlexec.errors import ConfigError
from rlexec.training.batched_runner import BatchedBarEnvRunner
from rlexec.training.spec import TrainSpec, build_algorithm_config

SAMPLE = {"split": {"preset": "sample"}, "part": "train"}
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY_PPO = {"train_batch_size_per_learner": 64, "minibatch_size": 32, "num_epochs": 1, "lr": 1e-4}


class StatefulRuleModule(TorchRLModule):
    """A deterministic policy whose greedy action follows the state (step, what remains, side, market),
    so that equal actions on both paths mean equal states, and different states give different actions."""

    def setup(self):
        self.unused = torch.nn.Parameter(torch.zeros(1))  # RLlib expects a module with parameters

    def _forward(self, batch, **kwargs):
        obs = batch[Columns.OBS]
        step = torch.round(obs[:, 1] * 8).long()
        action = (step + (obs[:, 0] > 0.6).long() + (obs[:, 2] > 0).long() + (obs[:, 3:].sum(1) > 0).long()) % 5
        return {Columns.ACTION_DIST_INPUTS: 5.0 * torch.nn.functional.one_hot(action, 5).float() + 0 * self.unused}


def runner_config(seed: int = 7, envs: int = 2, **env_config):
    from ray.rllib.algorithms.ppo import PPOConfig

    return (PPOConfig()
            .environment(BarExecutionEnv, env_config={**SAMPLE, **env_config})
            .env_runners(num_env_runners=0, num_envs_per_env_runner=envs)
            .rl_module(rl_module_spec=RLModuleSpec(module_class=StatefulRuleModule))
            .debugging(seed=seed))


def oracle_views(episode) -> np.ndarray:
    return np.stack([info[ORACLE_OBS] for info in episode.get_infos()])


def assert_same_episodes(got, expected, n: int) -> None:
    """n episodes on both paths, with equal observations, actions and rewards, in the same order."""
    assert len(got) == len(expected) == n
    for want, have in zip(expected, got):
        np.testing.assert_array_equal(have.get_observations(), want.get_observations())
        np.testing.assert_array_equal(have.get_actions(), want.get_actions())
        np.testing.assert_array_equal(have.get_rewards(), want.get_rewards())


def test_batched_episodes_equal_the_plain_runners_on_a_fixed_seed():
    """Same orders, observations, teacher views, actions, rewards and returns, over two sample() calls."""
    config = runner_config(teacher_observation=True)
    plain, batched = SingleAgentEnvRunner(config=config), BatchedBarEnvRunner(config=config)
    actions_seen = set()
    for _ in range(2):  # the second call continues each sub-env's order stream
        # 2 sub-envs x 3 whole episodes of 8 steps; the plain runner returns them as they finish
        expected = plain.sample(num_timesteps=48, explore=False)
        got = batched.sample(num_timesteps=48, explore=False)
        assert len(got) == len(expected) == 6
        for want, have in zip(expected, got):
            assert have.is_done and have.is_terminated and len(have) == len(want) == 8
            np.testing.assert_array_equal(have.get_observations(), want.get_observations())
            np.testing.assert_array_equal(oracle_views(have), oracle_views(want))
            np.testing.assert_array_equal(have.get_actions(), want.get_actions())
            np.testing.assert_array_equal(have.get_rewards(), want.get_rewards())
            assert have.get_return() == want.get_return()
            actions_seen.update(have.get_actions().tolist())
        assert len({e.get_observations(0).tobytes() for e in got}) > 1, "different orders (the check can fail)"
    assert len(actions_seen) > 2, "the rule's actions vary with the state (the check can fail)"
    got_metrics, expected_metrics = batched.get_metrics(), plain.get_metrics()
    for key in ("episode_return_mean", "episode_len_mean", "num_episodes_lifetime", "num_env_steps_sampled_lifetime"):
        assert got_metrics[key].peek() == pytest.approx(expected_metrics[key].peek()), key


def test_num_episodes_returns_the_plain_runners_first_episodes_and_reseeds():
    config = runner_config(seed=3, envs=2)
    plain, batched = SingleAgentEnvRunner(config=config), BatchedBarEnvRunner(config=config)
    for _ in range(2):  # RLlib reseeds after a num_episodes call: the same three episodes again
        expected = plain.sample(num_episodes=3, explore=False)
        assert_same_episodes(batched.sample(num_episodes=3, explore=False), expected, 3)


def test_exploration_outputs_are_what_ppo_needs():
    """Sampled actions with their log-probability under the stored distribution inputs; slim infos."""
    from ray.rllib.algorithms.ppo import PPOConfig

    config = (PPOConfig().environment(BarExecutionEnv, env_config=SAMPLE)
              .env_runners(num_env_runners=0, num_envs_per_env_runner=4).debugging(seed=1))
    runner = BatchedBarEnvRunner(config=config)
    episodes = runner.sample(num_timesteps=100, explore=True)  # 13 orders, rounded up to 4 per sub-env
    assert len(episodes) == 16
    assert runner.get_metrics()["num_env_steps_sampled_lifetime"].peek() == 128
    for episode in episodes:
        logits = episode.get_extra_model_outputs(Columns.ACTION_DIST_INPUTS)
        logp = episode.get_extra_model_outputs(Columns.ACTION_LOGP)
        actions = episode.get_actions()
        assert logits.shape == (8, 5) and logp.shape == (8,) and actions.dtype == np.int64
        expected = torch.log_softmax(torch.from_numpy(logits), -1)[torch.arange(8), torch.from_numpy(actions)]
        np.testing.assert_allclose(logp, expected.numpy(), rtol=1e-5, atol=1e-6)
        assert (episode.get_extra_model_outputs(WEIGHTS_SEQ_NO) == 0).all()
        assert episode.get_infos() == [{}] * 9
        assert episode.is_numpy and episode.observation_space == runner.env.single_observation_space
    assert len({a for e in episodes for a in e.get_actions().tolist()}) > 1


def test_runner_state_round_trips():
    source, target = BatchedBarEnvRunner(config=runner_config(seed=2)), BatchedBarEnvRunner(config=runner_config(seed=9))
    source.sample(num_timesteps=16)
    source.num_env_steps_sampled_lifetime = 16  # the Algorithm keeps this count and pushes it to its runners
    with torch.no_grad():
        source.module.unused.fill_(3.0)
    target.set_state(source.get_state())
    assert target.num_env_steps_sampled_lifetime == 16
    assert target.module.unused.item() == 3.0


def test_ppo_trains_through_the_batched_runner_and_counts_env_steps(ray_session, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm

    spec = TrainSpec.from_dict({
        "algorithm": "ppo", "name": "batched", "seed": 4, "environment": {"env": "bar", "env_config": SAMPLE},
        "env_runners": {"num_envs_per_env_runner": 2, "batched": True}, "training": TINY_PPO,
        "rl_module": {"model_config": {"fcnet_hiddens": [16]}},
    })
    algo = build_algorithm_config(spec, local=True).build_algo()
    try:
        assert type(algo.env_runner) is BatchedBarEnvRunner
        result = algo.train()
        runners = result["env_runners"]
        assert runners["num_env_steps_sampled"] == 64 and runners["num_episodes"] == 8
        assert runners["num_env_steps_sampled_lifetime"] == 64
        assert runners["episode_len_mean"] == 8 and np.isfinite(runners["episode_return_mean"])
        assert np.isfinite(result["learners"]["default_policy"]["total_loss"])
        algo.save_to_path(str(tmp_path))
        weights = algo.env_runner.module.get_state()
    finally:
        algo.stop()
    restored = Algorithm.from_checkpoint(str(tmp_path))
    try:
        assert type(restored.env_runner) is BatchedBarEnvRunner
        for name, value in restored.env_runner.module.get_state().items():
            np.testing.assert_array_equal(value, weights[name])
        assert restored.train()["env_runners"]["num_env_steps_sampled_lifetime"] == 128
    finally:
        restored.stop()


def test_opd_student_distils_through_a_remote_batched_runner(ray_session, tmp_path):
    """num_env_runners: 1 (a Ray actor), the OPD network, and the teacher's view reaching the learner."""
    from rlexec.algorithms.opd.learner import DISTILLATION_LOSS
    from rlexec.algorithms.opd.module import OPDRecurrentModule
    from rlexec.policies.checkpoints import write_module_weights

    env = BarExecutionEnv(SAMPLE)
    torch.manual_seed(0)
    teacher = OPDRecurrentModule(observation_space=env.observation_space, action_space=env.action_space,
                                 model_config={"oracle": True})
    teacher.save_to_path(str(tmp_path / "default_policy"))
    write_module_weights(tmp_path / "default_policy")
    spec = TrainSpec.from_dict({
        "algorithm": "opd", "name": "batched_opd", "seed": 4,
        "environment": {"env": "bar", "env_config": {**SAMPLE, "teacher_observation": True}},
        "env_runners": {"num_env_runners": 1, "num_envs_per_env_runner": 2, "batched": True},
        "training": {**TINY_PPO, "distillation_coeff": 0.5, "teacher_checkpoint": str(tmp_path / "default_policy")},
        "rl_module": {"module": "opd"},
    })
    algo = build_algorithm_config(spec).build_algo()
    try:
        classes = algo.env_runner_group.foreach_env_runner(lambda r: type(r).__name__, local_env_runner=False)
        assert classes == ["BatchedBarEnvRunner"]
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled"] == 64
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] == 64
        assert result["learners"]["default_policy"][DISTILLATION_LOSS] > 0
    finally:
        algo.stop()


def _spec(env_runners: dict, env: str = "bar") -> TrainSpec:
    return TrainSpec.from_dict({"algorithm": "ppo", "name": "x", "environment": {"env": env},
                                "env_runners": env_runners})


def test_the_switch_defaults_to_the_plain_runner_and_checks_its_value():
    assert build_algorithm_config(_spec({})).env_runner_cls is None
    assert build_algorithm_config(_spec({"batched": False})).env_runner_cls is None
    assert build_algorithm_config(_spec({"batched": True})).env_runner_cls is BatchedBarEnvRunner
    with pytest.raises(ConfigError, match="env_runners.batched must be true or false"):
        _spec({"batched": "yes"})
    with pytest.raises(ConfigError, match="needs environment.env: bar"):
        build_algorithm_config(_spec({"batched": True}, env="lob"))
    overridden = _spec({}).with_overrides({"env_runners.batched": True}, origin="--set")
    assert build_algorithm_config(overridden).env_runner_cls is BatchedBarEnvRunner


@pytest.mark.parametrize("name", ["ppo.yaml", "opds.yaml", "opd.yaml", "opd_teacher.yaml", "ddqn.yaml"])
def test_opd_study_configs_use_the_batched_runner(name):
    spec = TrainSpec.from_yaml(CONFIGS / name)
    assert build_algorithm_config(spec).env_runner_cls is BatchedBarEnvRunner


def test_the_runner_refuses_what_it_cannot_run():
    from ray.rllib.connectors.env_to_module import FlattenObservations

    with pytest.raises(ConfigError, match="connectors"):
        BatchedBarEnvRunner(config=runner_config().env_runners(env_to_module_connector=lambda env: FlattenObservations()))
    with pytest.raises(ConfigError, match="discrete actions"):
        BatchedBarEnvRunner(config=runner_config(continuous=True))


def test_order_batch_concatenate_keeps_every_order_and_array():
    env = BarExecutionEnv(SAMPLE)
    env.next_order_index(seed=0)
    pool = env.order_pool
    first, second = pool.select(np.array([3, 1])), pool.select(np.array([5]))
    joined = OrderBatch.concatenate([first, second])
    expected = pool.select(np.array([3, 1, 5]))
    assert joined.orders == expected.orders and len(joined) == 3
    for name in ("quantity", "window_bars", "price", "public_features", "volume_profile", "twap_price"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(expected, name))


def test_next_order_index_is_the_draw_reset_makes():
    drawn, reset = BarExecutionEnv(SAMPLE), BarExecutionEnv(SAMPLE)
    indices = [drawn.next_order_index(seed=11)] + [drawn.next_order_index() for _ in range(4)]
    for k, index in enumerate(indices):
        obs, _ = reset.reset(seed=11 if k == 0 else None)
        assert reset.state.batch.orders[0] == drawn.order_pool.orders[index]


def dqn_runner_config(seed: int = 5, envs: int = 2, epsilon: float = 0.0):
    from ray.rllib.algorithms.dqn import DQNConfig

    return (DQNConfig()
            .environment(BarExecutionEnv, env_config=SAMPLE)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=envs)
            .training(epsilon=[[0, epsilon], [1, epsilon]])
            .rl_module(model_config={"fcnet_hiddens": [16]})
            .debugging(seed=seed))


def test_dqn_modules_own_actions_run_batched_greedy_equal_to_the_plain_runner():
    """DQN's module returns its actions (argmax Q, epsilon-greedy): the batched runner keeps them, with no
    log-probabilities, and greedy episodes equal the plain runner's on the same weights."""
    config = dqn_runner_config()
    plain, batched = SingleAgentEnvRunner(config=config), BatchedBarEnvRunner(config=config)
    torch.manual_seed(0)
    with torch.no_grad():  # RLlib's small initial weights give one greedy action everywhere; these vary it
        for parameter in plain.module.parameters():
            parameter.normal_(0.0, 1.0)
    batched.module.set_state(plain.module.get_state())
    expected = plain.sample(num_timesteps=48, explore=False)
    got = batched.sample(num_timesteps=48, explore=False)
    assert_same_episodes(got, expected, 6)
    greedy = np.concatenate([e.get_actions() for e in got])
    assert len(set(greedy.tolist())) > 2, "the greedy actions vary with the state (the check can fail)"
    assert all(Columns.ACTION_LOGP not in episode.extra_model_outputs for episode in got)
    obs = torch.from_numpy(np.concatenate([e.get_observations()[:-1] for e in got]))
    q_argmax = batched.module.compute_q_values({Columns.OBS: obs})["qf_preds"].argmax(-1).numpy()
    np.testing.assert_array_equal(greedy, q_argmax)

    exploring = BatchedBarEnvRunner(config=dqn_runner_config(epsilon=1.0))  # all actions random
    actions = np.concatenate([e.get_actions() for e in exploring.sample(num_timesteps=400, explore=True)])
    assert set(actions.tolist()) == set(range(5)), "epsilon 1 draws every action (the check can fail)"


def test_ddqn_trains_through_the_batched_runner(ray_session):
    spec = TrainSpec.from_dict({
        "algorithm": "ddqn", "name": "batched_ddqn", "seed": 4, "environment": {"env": "bar", "env_config": SAMPLE},
        "env_runners": {"num_envs_per_env_runner": 2, "rollout_fragment_length": 16, "batched": True},
        "training": {"train_batch_size_per_learner": 16, "num_steps_sampled_before_learning_starts": 32,
                     "replay_buffer_config": {"type": "PrioritizedEpisodeReplayBuffer", "capacity": 1000}},
        "reporting": {"min_sample_timesteps_per_iteration": 64},
        "rl_module": {"model_config": {"fcnet_hiddens": [8]}},
    })
    algo = build_algorithm_config(spec, local=True).build_algo()
    try:
        assert type(algo.env_runner) is BatchedBarEnvRunner
        result = algo.train()
        assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 64
        assert result["env_runners"]["episode_len_mean"] == 8
        assert np.isfinite(result["learners"]["default_policy"]["qf_loss"])
    finally:
        algo.stop()

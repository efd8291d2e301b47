"""Tabular Q-learning (rlexec.algorithms.qlearning) and the distilled expert (rlexec.policies.expert)."""

from __future__ import annotations

import math
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlexec.algorithms.qlearning.binning import DEFAULT_LOB_EDGES, FeatureBins, StateBinning
from rlexec.algorithms.qlearning.config import TabularQConfig
from rlexec.algorithms.qlearning.export import after_training, distill_expert
from rlexec.policies.expert import MLPPolicy
from rlexec.envs.lob_env import OBSERVATION_NAMES, LOBExecutionEnv
from rlexec.errors import ConfigError, RlexecError

STOP_REWARD = (0.85, 0.5, 0.2)
GAMMA = 0.9


class StopOrAdvance(gym.Env):
    """A 3-state chain with a known optimum. Action 0 stops (reward STOP_REWARD[s], episode ends),
    action 1 advances to s + 1 (reward 0); advancing from state 2 reaches the goal (reward 1, ends).
    Episodes start in a uniformly drawn state so that every (s, a) is visited."""

    def __init__(self, config=None):
        self.observation_space = gym.spaces.Box(0.0, 2.0, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.state = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = int(self.np_random.integers(3))
        return np.array([self.state], np.float32), {}

    def step(self, action):
        if int(action) == 0:
            return np.array([self.state], np.float32), STOP_REWARD[self.state], True, False, {}
        if self.state == 2:
            return np.array([2.0], np.float32), 1.0, True, False, {}
        self.state += 1
        return np.array([self.state], np.float32), 0.0, False, False, {}


# Remote EnvRunners cannot import this test module by name: ship its classes by value.
import ray.cloudpickle  # noqa: E402

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

CHAIN_BINNING = [{"name": "state", "index": 0, "edges": [0.5, 1.5]}]


def optimal_q() -> np.ndarray:
    """Q* of StopOrAdvance by value iteration."""
    q = np.zeros((3, 2))
    for _ in range(100):
        v = q.max(axis=1)
        q = np.array([[STOP_REWARD[s], 1.0 if s == 2 else GAMMA * v[s + 1]] for s in range(3)])
    return q


def chain_config(num_env_runners: int) -> TabularQConfig:
    return (
        TabularQConfig()
        .environment(StopOrAdvance)
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1)
        .training(gamma=GAMMA, binning=CHAIN_BINNING, train_batch_size_per_learner=120, alpha=0.7, alpha_decay=0.99,
                  alpha_final=0.5, epsilon=1.0, epsilon_decay=0.999, epsilon_final=0.4)
        .debugging(seed=3)
    )


def learner_table(algo) -> np.ndarray:
    return np.asarray(algo.learner_group.get_weights()["default_policy"]["q_table"])


# ---- (a) learning a known MDP through the real algorithm --------------------------------------------
def test_optimal_q_by_value_iteration():
    q = optimal_q()
    np.testing.assert_allclose(q, [[0.85, 0.81], [0.5, 0.9], [0.2, 1.0]])
    assert q.argmax(axis=1).tolist() == [0, 1, 1]  # stop at 0, advance at 1 and 2


@pytest.mark.parametrize("num_env_runners", [0, 1])
def test_learns_optimal_policy_of_chain(ray_session, num_env_runners):
    config = chain_config(num_env_runners)
    algo = config.build_algo()
    try:
        for _ in range(12):
            result = algo.train()
        q = learner_table(algo)
        np.testing.assert_allclose(q, optimal_q(), atol=0.01)
        assert q.argmax(axis=1).tolist() == optimal_q().argmax(axis=1).tolist()

        # The EnvRunners' copy is synced, and acts greedily at inference.
        module = algo.get_module()
        np.testing.assert_allclose(module.q_table.detach().numpy(), q)
        out = module.forward_inference({"obs": torch.tensor([[0.0], [1.0], [2.0]])})
        assert out["action_dist_inputs"].argmax(-1).tolist() == [0, 1, 1]

        # Schedules: alpha per batched update, epsilon per env step sampled.
        steps = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        assert steps >= 12 * 120
        assert result["epsilon"] == pytest.approx(config.epsilon_at(steps))
        assert float(module.epsilon) == pytest.approx(config.epsilon_at(steps))
        assert result["learners"]["default_policy"]["alpha"] == pytest.approx(config.alpha_at(11))
        assert config.alpha_at(11) == pytest.approx(0.7 * 0.99**11) and config.alpha_at(40) == 0.5
        assert math.isfinite(result["learners"]["default_policy"]["td_error"])
    finally:
        algo.stop()


def test_one_update_is_the_batched_tabular_update(ray_session):
    """Q(s,a) moves by alpha * mean TD error of the pair's transitions; unvisited pairs stay."""
    from ray.rllib.env.single_agent_episode import SingleAgentEpisode

    config = chain_config(0).training(alpha=0.5)
    learner = config.build_learner(env=StopOrAdvance())
    module = learner.module["default_policy"]
    with torch.no_grad():
        module.q_table.copy_(torch.tensor([[0.0, 0.2], [0.0, 0.4], [0.0, 0.0]]))
    o = lambda s: np.array([s], np.float32)  # noqa: E731
    episodes = [
        # 0 --advance--> 1 --advance--> 2 --stop (0.2)--> end
        SingleAgentEpisode(observations=[o(0), o(1), o(2), o(2)], actions=[1, 1, 0], rewards=[0.0, 0.0, 0.2],
                           terminated=True, len_lookback_buffer=0),
        # 0 --advance--> 1, chunk cut there (not terminated: bootstraps)
        SingleAgentEpisode(observations=[o(0), o(1)], actions=[1], rewards=[0.1], len_lookback_buffer=0),
    ]
    learner.update(episodes=episodes, timesteps={"num_env_steps_sampled_lifetime": 4})
    q = module.q_table.detach().numpy()
    # (0, advance) twice: targets 0 + 0.9 * 0.4 and 0.1 + 0.9 * 0.4 -> mean 0.41; Q 0.2 -> 0.2 + 0.5 * 0.21
    assert q[0, 1] == pytest.approx(0.2 + 0.5 * (0.41 - 0.2))
    assert q[1, 1] == pytest.approx(0.4 + 0.5 * (0.0 + 0.9 * 0.0 - 0.4))  # target r + gamma max Q(2, .) = 0
    assert q[2, 0] == pytest.approx(0.0 + 0.5 * 0.2)  # terminal: no bootstrap
    assert q[0, 0] == q[1, 0] == q[2, 1] == 0.0
    assert int(module.num_updates) == 1
    assert module.update_counts.numpy().tolist() == [[0, 2], [0, 1], [1, 0]]


# ---- (b) binning --------------------------------------------------------------------------------------
def test_default_lob_binning_shape_and_edges():
    binning = StateBinning.from_any(None, OBSERVATION_NAMES)
    assert [f.name for f in binning.features] == ["holdings_pct", "time_pct", "diff_pct", "imbalance_1", "spread_bps"]
    assert binning.shape == (10, 10, 5, 3, 3)
    assert binning.num_states == 4500
    assert binning.strides == (450, 45, 9, 3, 1)
    assert [f.index for f in binning.features] == [OBSERVATION_NAMES.index(f.name) for f in binning.features]
    assert binning.features[0].edges == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    assert DEFAULT_LOB_EDGES["spread_bps"] == (1.5, 2.5)


def test_binning_hand_computed_indices_and_clipping():
    binning = StateBinning.from_any(None, OBSERVATION_NAMES)
    obs = np.zeros((4, 16), np.float32)
    # holdings 0.35 -> bin 3; time 0.4 -> bin 4 (left-closed); diff -0.05 -> bin 1; imbalance 0.5 -> 2; spread 2.0 -> 1
    obs[0, [0, 1, 2, 3, 6]] = [0.35, 0.4, -0.05, 0.5, 2.0]
    # all below range -> bin 0 everywhere
    obs[1, [0, 1, 2, 3, 6]] = [-5.0, -1.0, -0.9, -1.0, 0.0]
    # all above range -> last bins; the return lags (dropped) must not matter
    obs[2, [0, 1, 2, 3, 6]] = [1.0, 7.0, 0.9, 1.0, 13.0]
    obs[2, 7:] = 123.0
    # on-schedule diff, balanced book, 1-tick spread
    obs[3, [0, 1, 2, 3, 6]] = [0.0999, 0.1, 0.004999, -0.3, 1.0]
    expected = [3 * 450 + 4 * 45 + 1 * 9 + 2 * 3 + 1, 0,
                9 * 450 + 9 * 45 + 4 * 9 + 2 * 3 + 2, 0 * 450 + 1 * 45 + 2 * 9 + 1 * 3 + 0]
    assert binning.index(obs).tolist() == expected
    assert binning.index_torch(torch.from_numpy(obs)).tolist() == expected
    assert expected[2] == binning.num_states - 1
    # the same as numpy's own mixed-radix index of the per-feature bins
    assert np.ravel_multi_index(binning.bins(obs).T, binning.shape).tolist() == expected


def test_binning_numpy_and_torch_agree_on_env_like_values():
    rng = np.random.default_rng(0)
    binning = StateBinning.from_any(None, OBSERVATION_NAMES)
    obs = rng.normal(0, 1, (500, 16)).astype(np.float32)
    obs[:, 6] = rng.choice([0.0, 1.0, 1.5, 2.0, 2.5, 3.0], 500)  # exact edges included
    assert (binning.index(obs) == binning.index_torch(torch.from_numpy(obs)).numpy()).all()


def test_binning_configuration():
    edited = StateBinning.from_any({"spread_bps": [2.0], "imbalance_1": None, "imbalance_5": [-0.2, 0.0, 0.2]}, OBSERVATION_NAMES)
    assert {f.name: f.num_bins for f in edited.features} == {
        "holdings_pct": 10, "time_pct": 10, "diff_pct": 5, "spread_bps": 2, "imbalance_5": 4}
    assert StateBinning.from_any(edited.to_dict()) == edited
    config = TabularQConfig().environment(LOBExecutionEnv).training(binning={"spread_bps": [2.0]})
    assert config.resolved_binning().features[-1].edges == (2.0,)
    # Names are looked up in the env's observation_names: an env without them needs explicit indices.
    with pytest.raises(ConfigError, match="observation_names"):
        TabularQConfig().environment(StopOrAdvance).training(binning={"spread_bps": [2.0]}).validate()
    with pytest.raises(ConfigError, match="strictly increasing"):
        FeatureBins(name="x", index=0, edges=(0.5, 0.5))
    with pytest.raises(ConfigError, match="unknown feature.*'spred'"):
        StateBinning.from_any({"spred": [1.0]}, OBSERVATION_NAMES)
    with pytest.raises(ConfigError, match="epsilon_final"):
        TabularQConfig().environment(StopOrAdvance).training(epsilon=0.1, epsilon_final=0.5).validate()


# ---- (c) the exported expert --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def distilled():
    """An expert distilled from a smooth Q over 16-dim observations."""
    rng = np.random.default_rng(1)
    obs = rng.normal(0.0, 1.0, (3000, 16)).astype(np.float32)
    obs[:, 6] = rng.uniform(0.0, 13.0, 3000)  # one feature on another scale: standardisation matters
    q_fn = lambda o: np.stack([o[:, 0], 0.5 * o[:, 1] - 0.2, -o[:, 0] + 0.1 * o[:, 6]], axis=-1)  # noqa: E731
    policy = distill_expert(q_fn, obs, temperature=1.0, epochs=60, seed=0, metadata={"note": "test"})
    return policy, obs, q_fn


def test_expert_probabilities_are_distributions(distilled):
    policy, _, _ = distilled
    obs = torch.randn(64, 16) * 5
    probs = policy.probs(obs)
    assert probs.shape == (64, 3)
    torch.testing.assert_close(probs.sum(-1), torch.ones(64))
    all_actions = torch.stack([policy.log_prob(torch.full((64,), a), obs) for a in range(3)], dim=-1)
    torch.testing.assert_close(all_actions.exp().sum(-1), torch.ones(64))


def test_expert_matches_boltzmann_target(distilled):
    policy, obs, q_fn = distilled
    target = torch.log_softmax(torch.as_tensor(q_fn(obs), dtype=torch.float32), dim=-1)
    actions = torch.as_tensor(np.random.default_rng(2).integers(0, 3, len(obs)))
    log_prob = policy.log_prob(actions, obs).detach()
    error = (log_prob - target.gather(-1, actions[:, None]).squeeze(-1)).abs()
    assert error.mean() < 0.05  # nats, over the distillation states
    assert (log_prob.exp() - target.gather(-1, actions[:, None]).squeeze(-1).exp()).abs().max() < 0.05
    report = policy.metadata["distillation"]
    assert 0.0 <= report["kl"] < 0.002
    assert report["agreement"] > 0.97
    assert report["num_observations"] == 3000


def test_trajectory_log_prob_is_sum_of_steps(distilled):
    policy, obs, _ = distilled
    actions = torch.tensor([0, 2, 1, 1, 0])
    steps = policy.log_prob(actions, obs[:5])
    torch.testing.assert_close(policy.trajectory_log_prob(actions, obs[:5]), steps.sum())
    batch = policy.trajectory_log_prob(torch.stack([actions, actions.flip(0)]), np.stack([obs[:5], obs[5:10]]))
    assert batch.shape == (2,)
    torch.testing.assert_close(batch[1], policy.log_prob(actions.flip(0), obs[5:10]).sum())
    masked = policy.trajectory_log_prob(actions, obs[:5], mask=torch.tensor([1, 1, 1, 0, 0]))
    torch.testing.assert_close(masked, steps[:3].sum())


def test_expert_save_load_round_trip(distilled, tmp_path):
    policy, obs, _ = distilled
    folder = policy.save(tmp_path / "expert")
    assert (folder / "policy.pt").is_file() and (folder / "policy.json").is_file()
    loaded = MLPPolicy.load(folder)
    torch.testing.assert_close(loaded.logits(obs[:100]), policy.logits(obs[:100]), rtol=0, atol=0)
    assert loaded.metadata["note"] == "test"
    assert loaded.metadata["distillation"]["kl"] == pytest.approx(policy.metadata["distillation"]["kl"])


def test_expert_load_errors_name_the_file(distilled, tmp_path):
    policy, _, _ = distilled
    folder = policy.save(tmp_path / "expert")
    (folder / "policy.pt").write_bytes(b"not a torch file")
    with pytest.raises(ConfigError, match=r"policy\.pt: corrupt expert policy weights"):
        MLPPolicy.load(folder)
    (folder / "policy.json").write_text("{ truncated")
    with pytest.raises(RlexecError, match=r"policy\.json: corrupt expert policy metadata"):
        MLPPolicy.load(folder)
    with pytest.raises(ConfigError, match="missing.*policy.json: expert policy metadata not found"):
        MLPPolicy.load(tmp_path / "missing")


def test_frozen_copy_has_no_grads(distilled):
    policy, obs, _ = distilled
    frozen = policy.frozen_copy()
    assert all(not p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad for p in policy.parameters())
    out = frozen.log_prob(torch.zeros(8, dtype=torch.long), obs[:8])
    assert not out.requires_grad
    torch.testing.assert_close(out, policy.log_prob(torch.zeros(8, dtype=torch.long), obs[:8]).detach())


# ---- (d) checkpoints ------------------------------------------------------------------------------------
def test_checkpoint_round_trip_and_training_continues(ray_session, tmp_path):
    from ray.rllib.algorithms.algorithm import Algorithm

    algo = chain_config(0).build_algo()
    try:
        for _ in range(3):
            algo.train()
        q, module = learner_table(algo), algo.get_module()
        epsilon, updates = float(module.epsilon), int(module.num_updates)
        steps = algo.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime"))
        algo.save_to_path(tmp_path / "ckpt")
    finally:
        algo.stop()
    assert np.abs(q).sum() > 0 and updates == 3 and epsilon < 1.0

    restored = Algorithm.from_checkpoint(tmp_path / "ckpt")
    try:
        np.testing.assert_array_equal(learner_table(restored), q)
        np.testing.assert_array_equal(restored.get_module().q_table.detach().numpy(), q)
        assert float(restored.get_module().epsilon) == epsilon
        assert int(restored.get_module().num_updates) == updates
        assert restored.metrics.peek(("env_runners", "num_env_steps_sampled_lifetime")) == steps
        assert restored.iteration == 3
        result = restored.train()
        assert restored.iteration == 4
        assert int(restored.get_module().num_updates) == updates + 1
        assert result["learners"]["default_policy"]["alpha"] == pytest.approx(restored.config.alpha_at(updates))
        assert result["epsilon"] == pytest.approx(
            restored.config.epsilon_at(int(result["env_runners"]["num_env_steps_sampled_lifetime"])))
        assert not np.array_equal(learner_table(restored), q)
    finally:
        restored.stop()

    fresh = chain_config(0).build_algo()
    try:
        fresh.restore_from_path(tmp_path / "ckpt")
        np.testing.assert_array_equal(learner_table(fresh), q)
        assert float(fresh.get_module().epsilon) == epsilon
    finally:
        fresh.stop()


# ---- (e) a short run on the LOB env, and the exported expert ---------------------------------------------
def test_lob_training_and_expert_export(ray_session, tmp_path):
    config = (
        TabularQConfig()
        .environment(LOBExecutionEnv, env_config={"regime": "open", "broker": "twap"})
        .env_runners(num_env_runners=0)
        .training(train_batch_size_per_learner=240)  # four 60-step episodes of the 30-minute open window
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        for _ in range(2):
            result = algo.train()
        runners, learner = result["env_runners"], result["learners"]["default_policy"]
        assert runners["num_episodes_lifetime"] >= 7
        assert math.isfinite(runners["episode_return_mean"])
        assert runners["episode_len_mean"] == 60
        assert math.isfinite(learner["td_error"]) and learner["td_error"] > 0
        assert result["epsilon"] == pytest.approx(0.1)  # 480 actions: past the spec's floor
        q = learner_table(algo)
        assert np.isfinite(q).all() and np.abs(q).sum() > 0

        figures = after_training(algo, tmp_path, num_episodes=3, epochs=5)
    finally:
        algo.stop()
    assert figures["num_observations"] == 180
    assert 1 <= figures["num_states_visited"] <= 180
    assert figures["fraction_states_visited"] == pytest.approx(figures["num_states_visited"] / 4500)
    assert figures["kl"] >= 0 and math.isfinite(figures["kl"])
    assert 0.0 <= figures["agreement"] <= 1.0
    assert figures["state_action_pairs_trained"] >= 1
    expert = MLPPolicy.load(tmp_path / "expert")
    assert expert.obs_dim == 16 and expert.num_actions == 3 and expert.hidden_sizes == (64, 64)
    assert expert.metadata["env_config"] == {"regime": "open", "broker": "twap"}
    torch.testing.assert_close(expert.probs(torch.zeros(5, 16)).sum(-1), torch.ones(5))

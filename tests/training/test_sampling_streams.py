"""Sampling streams across iterations and across ``--resume`` (rlexec.training.runner.seed_iteration).

Tiny PPO runs on the shipped sample: 2 envs x 32 steps per iteration = 8 whole episodes of 8 steps.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rlexec.training import runner
from rlexec.training.spec import TrainSpec, build_algorithm_config

TINY = {
    "algorithm": "ppo",
    "name": "streams",
    "seed": 7,
    "stop": {"training_iterations": 4},
    "checkpoint_frequency": 1,
    "keep_checkpoints": 4,
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train"}},
    "env_runners": {"num_env_runners": 0, "num_envs_per_env_runner": 2},
    "training": {"lr": 1.0e-3, "gamma": 1.0, "lambda_": 1.0, "train_batch_size_per_learner": 64,
                 "minibatch_size": 32, "num_epochs": 2},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [16]}},
}
TIMINGS = {"env_steps_per_s"}  # and every time_* figure


def iterations(run_dir: Path) -> dict[int, dict]:
    """iteration -> its progress line without the wall-clock figures (the last line of each iteration)."""
    lines = [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]
    return {line["iteration"]: {k: v for k, v in line.items() if k not in TIMINGS and not k.startswith("time_")}
            for line in lines if "event" not in line}


def resumed_pair(tmp_path: Path, config: dict, *, local: bool) -> tuple[dict, dict, Path]:
    """(4 iterations in a row, 2 iterations + resume + 2 more, the resumed run folder)."""
    spec = TrainSpec.from_dict(config)
    unbroken = runner.train(spec, out=tmp_path / "unbroken", local=local)
    first = runner.train(spec.with_overrides({"stop.training_iterations": 2}), out=tmp_path / "resumed", local=local)
    resumed = runner.train(spec, out=tmp_path / "resumed", resume=first, local=local)
    assert resumed == first
    return iterations(unbroken), iterations(resumed), resumed


def check_resume_continues_the_streams(unbroken: dict, resumed: dict) -> None:
    assert sorted(unbroken) == sorted(resumed) == [1, 2, 3, 4]
    for k in (1, 2, 3, 4):  # same episodes, same actions, same minibatches, same KL coefficient
        assert resumed[k] == unbroken[k], k
    # The defect: a restored algorithm sampled iteration 3 exactly like iteration 1.
    assert resumed[3]["episode_return_mean"] != resumed[1]["episode_return_mean"]
    assert resumed[4]["episode_return_mean"] != resumed[2]["episode_return_mean"]
    returns = [unbroken[k]["episode_return_mean"] for k in (1, 2, 3, 4)]
    assert len(set(returns)) == 4, returns


def test_resume_samples_and_learns_like_an_unbroken_run(ray_session, tmp_path):
    unbroken, resumed, _ = resumed_pair(tmp_path, TINY, local=True)
    check_resume_continues_the_streams(unbroken, resumed)
    for k in (1, 2, 3, 4):
        assert unbroken[k]["num_episodes"] == 8 and unbroken[k]["env_steps_sampled"] == 64


@pytest.mark.slow
def test_resume_with_a_remote_env_runner(ray_session, tmp_path):
    """Remote EnvRunner: it also needs the restored weights (RLlib dropped that sync; complete_restore)."""
    config = {**TINY, "env_runners": {"num_env_runners": 1, "num_envs_per_env_runner": 2}}
    unbroken, resumed, _ = resumed_pair(tmp_path, config, local=False)
    check_resume_continues_the_streams(unbroken, resumed)


def test_complete_restore_restores_the_kl_coefficient(ray_session, tmp_path):
    spec = TrainSpec.from_dict(TINY)
    algo = build_algorithm_config(spec, local=True).build_algo()
    try:
        for k in (1, 2):
            runner.seed_iteration(algo, spec.seed, k)
            algo.train()
        kl_coeff = float(algo.learner_group._learner.curr_kl_coeffs_per_module["default_policy"])
        assert kl_coeff != pytest.approx(0.2), "PPO's adaptive coefficient moved away from kl_coeff in training"
        algo.save_to_path(str(tmp_path / "checkpoint"))
    finally:
        algo.stop()
    algo = build_algorithm_config(spec, local=True).build_algo()
    try:
        algo.restore_from_path(str(tmp_path / "checkpoint"))
        coefficients = algo.learner_group._learner.curr_kl_coeffs_per_module
        assert float(coefficients["default_policy"]) == pytest.approx(0.2), "RLlib's restore leaves it out"
        runner.complete_restore(algo)
        assert float(coefficients["default_policy"]) == pytest.approx(kl_coeff, rel=1e-6)
    finally:
        algo.stop()


def test_complete_restore_waits_until_remote_env_runners_hold_the_learner_weights(ray_session):
    spec = TrainSpec.from_dict({**TINY, "env_runners": {"num_env_runners": 1, "num_envs_per_env_runner": 2}})
    algo = build_algorithm_config(spec).build_algo()
    try:
        learned = {k: v.clone() for k, v in algo.learner_group._learner.module["default_policy"].state_dict().items()}

        def scramble(env_runner):
            with torch.no_grad():
                for value in env_runner.module.parameters():
                    value.add_(1.0)

        def weights(env_runner):
            return {k: v.clone() for k, v in env_runner.module.state_dict().items()}

        algo.env_runner_group.foreach_env_runner(scramble, local_env_runner=False)
        (before,) = algo.env_runner_group.foreach_env_runner(weights, local_env_runner=False)
        assert any(not torch.equal(learned[k], v) for k, v in before.items())
        runner.complete_restore(algo)
        (after,) = algo.env_runner_group.foreach_env_runner(weights, local_env_runner=False)
        assert after.keys() and all(torch.equal(learned[k], v) for k, v in after.items())
    finally:
        algo.stop()


def first_episodes(algo) -> tuple[np.ndarray, np.ndarray]:
    """Observations and actions of the first 8 steps the local EnvRunner samples."""
    episodes = algo.env_runner.sample(num_timesteps=16)  # one whole episode per env
    obs = np.stack([e.get_observations(slice(0, 8)) for e in episodes])
    actions = np.stack([e.get_actions(slice(0, 8)) for e in episodes])
    return obs, actions


def test_each_iteration_has_its_own_stream_and_the_same_one_every_time(ray_session):
    algo = build_algorithm_config(TrainSpec.from_dict(TINY), local=True).build_algo()
    try:
        runner.seed_iteration(algo, 7, 1)
        obs_1, actions_1 = first_episodes(algo)
        runner.seed_iteration(algo, 7, 2)
        obs_2, actions_2 = first_episodes(algo)
        runner.seed_iteration(algo, 7, 1)
        again_obs, again_actions = first_episodes(algo)
        runner.seed_iteration(algo, 8, 1)
        other_obs, _ = first_episodes(algo)
    finally:
        algo.stop()
    np.testing.assert_array_equal(again_obs, obs_1)
    np.testing.assert_array_equal(again_actions, actions_1)
    assert not np.array_equal(obs_2[:, 0], obs_1[:, 0]), "iteration 2 starts other orders than iteration 1"
    assert not np.array_equal(actions_2, actions_1)
    assert not np.array_equal(other_obs[:, 0], obs_1[:, 0]), "another seed, other orders"


def test_episodes_longer_than_an_iteration_still_finish(ray_session, tmp_path):
    """6 steps per env per iteration against 8-step episodes: episodes run on across iterations."""
    config = {**TINY, "stop": {"training_iterations": 3},
              "training": {**TINY["training"], "train_batch_size_per_learner": 12, "minibatch_size": 12}}
    run_dir = runner.train(TrainSpec.from_dict(config), out=tmp_path, local=True)
    lines = iterations(run_dir)
    assert sum(line.get("num_episodes", 0) for line in lines.values()) >= 2
    assert lines[3]["env_steps_sampled_lifetime"] == 36

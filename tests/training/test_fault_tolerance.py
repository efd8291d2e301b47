"""EnvRunner fault tolerance: a killed EnvRunner actor is restarted and training goes on.

Two remote EnvRunners (two envs each) on the session's 2-CPU Ray, half a CPU each so that the
restarted actor finds room; ``delay_between_env_runner_restarts_s`` shortened from RLlib's 60 s.
"""

from __future__ import annotations

import os
import signal
import time

from rlexec.training.runner import progress_line
from rlexec.training.spec import TrainSpec, build_algorithm_config

SPEC = {
    "algorithm": "ppo",
    "name": "fault_tolerance",
    "seed": 1,
    "stop": {"training_iterations": 4},
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train",
                                                 "order_pool_size": 64}},
    "env_runners": {"num_env_runners": 2, "num_envs_per_env_runner": 2, "num_cpus_per_env_runner": 0.5},
    "training": {"train_batch_size_per_learner": 128, "minibatch_size": 64, "num_epochs": 1},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [16]}},
    "fault_tolerance": {"restart_failed_env_runners": True, "delay_between_env_runner_restarts_s": 1.0},
}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killed_env_runner_is_restarted_and_training_continues(ray_session):
    config = build_algorithm_config(TrainSpec.from_dict(SPEC))
    assert config.restart_failed_env_runners and config.num_env_runners == 2
    algo = config.build_algo()
    try:
        group = algo.env_runner_group
        first = algo.train()
        assert first["env_runners"]["num_env_steps_sampled"] == 128
        assert first["fault_tolerance"]["num_healthy_workers"] == 2
        assert first["fault_tolerance"]["num_remote_worker_restarts"] == 0
        assert progress_line(first, algo.iteration)["env_runner_restarts"] == 0

        pids = group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        assert len(pids) == 2 and len(set(pids)) == 2 and os.getpid() not in pids
        victim = pids[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _alive(victim) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(victim)

        results = []
        deadline = time.monotonic() + 120
        while algo.iteration < 4 or (results and results[-1]["fault_tolerance"]["num_healthy_workers"] < 2):
            assert time.monotonic() < deadline, "the EnvRunner group did not recover"
            results.append(algo.train())
        last = results[-1]
        assert algo.iteration >= 4, "training went on after the kill"
        assert all(r["env_runners"]["num_env_steps_sampled"] > 0 for r in results)
        assert last["fault_tolerance"]["num_remote_worker_restarts"] >= 1
        assert last["fault_tolerance"]["num_healthy_workers"] == 2
        assert group.num_healthy_remote_env_runners() == 2

        new_pids = group.foreach_env_runner(lambda runner: os.getpid(), local_env_runner=False)
        assert len(new_pids) == 2 and victim not in new_pids and pids[1] in new_pids
        # the restarted runner samples again
        assert all(n > 0 for n in group.foreach_env_runner(lambda r: len(r.sample(num_timesteps=8)),
                                                           local_env_runner=False))

        # progress.jsonl figures (rlexec.training.runner) carry the restart count and the healthy runners
        line = progress_line(last, algo.iteration)
        assert line["env_runner_restarts"] >= 1
        assert line["healthy_env_runners"] == 2
    finally:
        algo.stop()


def test_fault_tolerance_settings_reach_the_config():
    spec = TrainSpec.from_dict({**SPEC, "fault_tolerance": {"restart_failed_env_runners": False,
                                                            "max_num_env_runner_restarts": 3}})
    config = build_algorithm_config(spec)
    assert config.restart_failed_env_runners is False and config.max_num_env_runner_restarts == 3
    assert config.num_cpus_per_env_runner == 0.5

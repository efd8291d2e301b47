"""PPO env steps per second on the bar env, default vs batched rollout path, against CartPole and a zero-cost env.

Every case runs RLlib PPO with identical settings (same default MLP 64x64, batch, epochs, env
runners, envs per runner), so the only difference between ``bar`` and ``cartpole`` is the env and
its observation size (1,623 vs 4 floats). Throughput = env steps sampled / wall time of whole
``train()`` iterations (sampling + learning), after warm-up iterations. Cases (all in one run):
CartPole, the zero-cost env of the bar env's shape, and the bar env through RLlib's default EnvRunner
and through the batched one (``env_runners.batched: true``), each with RLlib's MLP and with the OPD
network; the batched path with 1 and 2 remote env runners; the learner update's share of each
iteration; each env's raw loop (random actions); and the OPD study's settings (``*_study``: sampling
in the driver, 16,384 env steps an iteration, minibatch 1,024; ``configs/opd_experiment.sh``).
Targets (issue 11): batched >= 10x default, or the learner >= 80% of the iteration; 1 -> 2 runners
>= 1.6x. docs/fast_rollouts.md has the results.

    python benchmarks/bench_ppo_throughput.py [--iterations 6] [--warmup 2] [--envs 8] [--batch 2048]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402


class ZeroCostEnv(gym.Env):
    """An env that costs nothing, with the bar env's shape: 1,623-float observations, 5 actions, 8-step episodes.

    PPO on it shows what RLlib itself reaches for this MDP shape; the bar env's rate divided by it is
    the share of throughput the env's own work leaves.
    """

    def __init__(self, config=None):
        config = config or {}
        self.length = int(config.get("length", 8))
        size = int(config.get("size", 1623))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = gym.spaces.Discrete(5)
        self.obs = np.zeros(size, np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.obs, {}

    def step(self, action):
        self.t += 1
        return self.obs, 0.0, self.t >= self.length, False, {}


def throughput(env: str, *, runners: int, envs: int, batch: int, iterations: int, warmup: int,
               module: str = "default", batched: bool = False, minibatch: int = 512) -> dict[str, float]:
    """Env steps per second of whole ``train()`` iterations, and the learner update's share of their wall time.

    ``batched``: sample through rlexec's :class:`~rlexec.training.batched_runner.BatchedBarEnvRunner`
    (``env_runners.batched: true``) instead of RLlib's default EnvRunner. The learner's share is timed
    around ``learner_group.update``, the call RLlib's ``learner_update_timer`` wraps: that timer reaches
    the result dict as an EMA (coefficient 0.01) that still mostly holds the first, warm-up iteration.
    """
    from ray.rllib.algorithms.ppo import PPOConfig

    from rlexec.training.batched_runner import BatchedBarEnvRunner
    from rlexec.training.spec import module_spec, resolve_env

    env_config = {"split": {"preset": "sample"}, "part": "train"} if env == "bar" else {}
    env_class = {"bar": resolve_env("bar", "bench"), "cartpole": "CartPole-v1", "zero_cost": ZeroCostEnv}[env]
    config = (
        PPOConfig()
        .environment(env_class, env_config=env_config)
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs,
                     **({"env_runner_cls": BatchedBarEnvRunner} if batched else {}))
        .training(train_batch_size_per_learner=batch, minibatch_size=min(minibatch, batch), num_epochs=5, lr=1e-4)
        .rl_module(rl_module_spec=module_spec({"module": module, "model_config": {"fcnet_hiddens": [64, 64]}
                                                 if module == "default" else {}}, env_config, "bench"))
        .debugging(seed=0)
    )
    algo = config.build_algo()
    learner = {"wall": 0.0, "cpu": 0.0}
    update = algo.learner_group.update

    def timed_update(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return update(*args, **kwargs)
        finally:
            learner["wall"] += time.perf_counter() - wall
            learner["cpu"] += time.process_time() - cpu

    algo.learner_group.update = timed_update
    try:
        for _ in range(warmup):
            algo.train()
        learner.update(wall=0.0, cpu=0.0)
        cpu0, wall0 = _cpu_seconds(algo), time.perf_counter()
        steps = sum(algo.train()["env_runners"]["num_env_steps_sampled"] for _ in range(iterations))
        wall, cpu = time.perf_counter() - wall0, _cpu_seconds(algo) - cpu0
        return {"env_steps_per_s": round(steps / wall, 1), "learner_share": round(learner["wall"] / wall, 3),
                "env_steps_per_cpu_s": round(steps / cpu, 1), "learner_cpu_share": round(learner["cpu"] / cpu, 3)}
    finally:
        algo.stop()


def _cpu_seconds(algo) -> float:
    """CPU seconds used so far by the driver (sampling with 0 runners, and the learner) and the remote env runners.

    On a shared machine wall time measures the neighbours' load as much as the code; CPU time does
    not. Ray's own daemons (raylet, GCS) are not counted.
    """
    remote = algo.env_runner_group.foreach_env_runner(lambda _runner: time.process_time(), local_env_runner=False)
    return time.process_time() + sum(remote)


def raw_env_steps_per_s(env: str, steps: int = 20000) -> float:
    """The env alone (random actions, resets included): what PPO would reach if RLlib cost nothing."""
    import gymnasium as gym

    from rlexec.training.spec import resolve_env

    instance = resolve_env("bar", "bench")({"split": {"preset": "sample"}, "part": "train"}) if env == "bar" \
        else gym.make("CartPole-v1")
    instance.reset(seed=0)
    actions = [instance.action_space.sample() for _ in range(1000)]
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = instance.step(actions[i % 1000])
        if terminated or truncated:
            instance.reset()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    import ray

    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--envs", type=int, default=8, help="envs per env runner")
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--runners", type=int, default=1, help="env runners of the path comparisons")
    parser.add_argument("--study-batch", type=int, default=16384, help="env steps per iteration of the *_study cases")
    parser.add_argument("--study-minibatch", type=int, default=1024, help="minibatch of the *_study cases")
    parser.add_argument("--cases", default="all",
                        help="comma-separated case names to run (default all; the summary ratios need all)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch threads of the driver, where the learner runs (Ray gives each remote env runner "
                             "one); on a shared machine more than one thread spin-waits for cores others hold")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.torch_threads)

    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    common = dict(envs=args.envs, batch=args.batch, iterations=args.iterations, warmup=args.warmup)
    cases = {
        "cartpole": dict(env="cartpole", runners=args.runners),
        "zero_cost": dict(env="zero_cost", runners=args.runners),
        "bar": dict(env="bar", runners=args.runners),
        "bar_batched": dict(env="bar", runners=args.runners, batched=True),
        "bar_opd": dict(env="bar", runners=args.runners, module="opd"),
        "bar_opd_batched": dict(env="bar", runners=args.runners, module="opd", batched=True),
    }
    # the OPD study's settings (configs/opd_experiment.sh): sampling in the driver, 2,048 orders an iteration,
    # spec 2.2's minibatch of 1,024; against the default path above, per CPU-second
    study = dict(env="bar", runners=0, batched=True, batch=args.study_batch, minibatch=args.study_minibatch)
    cases["bar_batched_study"] = study
    cases["bar_opd_batched_study"] = dict(study, module="opd")
    for runners in (1, 2):  # the fan-out cases, batched path
        for module, name in (("default", "bar_batched"), ("opd", "bar_opd_batched")):
            if runners != args.runners:
                cases[f"{name}_{runners}_runners"] = dict(env="bar", runners=runners, module=module, batched=True)
    if args.cases != "all":
        cases = {name: case for name, case in cases.items() if name in args.cases.split(",")}
    measured = {}
    for name, case in cases.items():
        measured[name] = throughput(**{**common, **case})
        print(name, measured[name], file=sys.stderr, flush=True)  # progress: the JSON line comes at the end
    ray.shutdown()
    if args.cases != "all":  # a partial run: the measured cases only
        print(json.dumps({"benchmark": "ppo_throughput", "cpus": os.cpu_count(),
                          "load_average_1min": round(os.getloadavg()[0], 1), "settings": vars(args),
                          "cases": measured}))
        return
    for runners in (1, 2):
        for name in ("bar_batched", "bar_opd_batched"):
            measured.setdefault(f"{name}_{runners}_runners", measured[name])
    raw_bar, raw_cartpole = raw_env_steps_per_s("bar"), raw_env_steps_per_s("cartpole")
    rate = {name: m["env_steps_per_s"] for name, m in measured.items()}
    per_cpu = {name: m["env_steps_per_cpu_s"] for name, m in measured.items()}
    print(json.dumps({
        "benchmark": "ppo_throughput",
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "settings": vars(args),
        "env_steps_per_s": rate,
        "learner_share_of_iteration": {name: m["learner_share"] for name, m in measured.items()},
        "env_steps_per_cpu_s": per_cpu,
        "learner_share_of_iteration_cpu": {name: m["learner_cpu_share"] for name, m in measured.items()},
        "batched_vs_default_per_cpu_s": {"mlp": round(per_cpu["bar_batched"] / per_cpu["bar"], 2),
                                         "opd": round(per_cpu["bar_opd_batched"] / per_cpu["bar_opd"], 2)},
        "study_settings_vs_default_per_cpu_s": {
            "mlp": round(per_cpu["bar_batched_study"] / per_cpu["bar"], 2),
            "opd": round(per_cpu["bar_opd_batched_study"] / per_cpu["bar_opd"], 2)},
        "batched_vs_default": {"mlp": round(rate["bar_batched"] / rate["bar"], 2),
                               "opd": round(rate["bar_opd_batched"] / rate["bar_opd"], 2)},
        "target_batched_vs_default": 10.0,
        "target_learner_share": 0.8,
        "speedup_1_to_2_runners_batched": {
            "mlp": round(rate["bar_batched_2_runners"] / rate["bar_batched_1_runners"], 3),
            "opd": round(rate["bar_opd_batched_2_runners"] / rate["bar_opd_batched_1_runners"], 3)},
        "target_speedup_1_to_2_runners": 1.6,
        "bar_vs_cartpole": round(rate["bar"] / rate["cartpole"], 3),
        "bar_batched_vs_cartpole": round(rate["bar_batched"] / rate["cartpole"], 3),
        "bar_vs_zero_cost_same_shape": round(rate["bar"] / rate["zero_cost"], 3),
        "raw_env_steps_per_s": {"bar": round(raw_bar), "cartpole": round(raw_cartpole)},
        # share of a default-path PPO iteration's wall time spent inside env.step/reset (the rest is RLlib and torch)
        "env_share_of_ppo_time": {"bar": round(rate["bar"] / raw_bar, 3),
                                  "cartpole": round(rate["cartpole"] / raw_cartpole, 3)},
    }))


if __name__ == "__main__":
    main()

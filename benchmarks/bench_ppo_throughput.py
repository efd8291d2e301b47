"""PPO env steps per second on the bar env against CartPole in the same run, and 1 -> 2 env runners.

Every case runs RLlib PPO with identical settings (same default MLP 64x64, batch, epochs, env
runners, envs per runner), so the only difference between ``bar`` and ``cartpole`` is the env and
its observation size (1,623 vs 4 floats). Throughput = env steps sampled / wall time of whole
``train()`` iterations (sampling + learning), after warm-up iterations. Target: bar >= 80% of CartPole.
Also measured: the OPD network on the bar env, the bar env with 1 vs 2 remote env runners, and each
env's raw loop (random actions) to show what share of a PPO iteration the env itself takes.

    python benchmarks/bench_ppo_throughput.py [--iterations 6] [--warmup 2] [--envs 8] [--batch 2048]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
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
               module: str = "default") -> float:
    from ray.rllib.algorithms.ppo import PPOConfig

    from rlexec.training.spec import module_spec, resolve_env

    env_config = {"split": {"preset": "sample"}, "part": "train"} if env == "bar" else {}
    env_class = {"bar": resolve_env("bar", "bench"), "cartpole": "CartPole-v1", "zero_cost": ZeroCostEnv}[env]
    config = (
        PPOConfig()
        .environment(env_class, env_config=env_config)
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs)
        .training(train_batch_size_per_learner=batch, minibatch_size=min(512, batch), num_epochs=5, lr=1e-4)
        .rl_module(rl_module_spec=module_spec({"module": module, "model_config": {"fcnet_hiddens": [64, 64]}
                                                 if module == "default" else {}}, env_config, "bench"))
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        for _ in range(warmup):
            algo.train()
        t0 = time.perf_counter()
        steps = sum(algo.train()["env_runners"]["num_env_steps_sampled"] for _ in range(iterations))
        return steps / (time.perf_counter() - t0)
    finally:
        algo.stop()


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
    parser.add_argument("--runners", type=int, default=1, help="env runners of the bar-vs-CartPole comparison")
    args = parser.parse_args()

    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    common = dict(envs=args.envs, batch=args.batch, iterations=args.iterations, warmup=args.warmup)
    cartpole = throughput("cartpole", runners=args.runners, **common)
    bar = throughput("bar", runners=args.runners, **common)
    zero_cost = throughput("zero_cost", runners=args.runners, **common)
    bar_opd = throughput("bar", runners=args.runners, module="opd", **common)
    one = throughput("bar", runners=1, **common) if args.runners != 1 else bar
    two = throughput("bar", runners=2, **common)
    ray.shutdown()
    raw_bar, raw_cartpole = raw_env_steps_per_s("bar"), raw_env_steps_per_s("cartpole")
    print(json.dumps({
        "benchmark": "ppo_throughput",
        "cpus": os.cpu_count(),
        "settings": vars(args),
        "cartpole_env_steps_per_s": round(cartpole, 1),
        "bar_env_steps_per_s": round(bar, 1),
        "bar_vs_cartpole": round(bar / cartpole, 3),
        "target_bar_vs_cartpole": 0.8,
        "zero_cost_same_shape_env_steps_per_s": round(zero_cost, 1),
        "zero_cost_same_shape_vs_cartpole": round(zero_cost / cartpole, 3),
        "bar_vs_zero_cost_same_shape": round(bar / zero_cost, 3),
        "raw_env_steps_per_s": {"bar": round(raw_bar), "cartpole": round(raw_cartpole)},
        # share of a PPO iteration's wall time spent inside env.step/reset (the rest is RLlib and torch)
        "env_share_of_ppo_time": {"bar": round(bar / raw_bar, 3), "cartpole": round(cartpole / raw_cartpole, 3)},
        "bar_opd_network_env_steps_per_s": round(bar_opd, 1),
        "bar_opd_network_vs_cartpole": round(bar_opd / cartpole, 3),
        "bar_1_runner_env_steps_per_s": round(one, 1),
        "bar_2_runners_env_steps_per_s": round(two, 1),
        "speedup_1_to_2_runners": round(two / one, 3),
    }))


if __name__ == "__main__":
    main()

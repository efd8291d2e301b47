"""Speed of the LOB execution environment (issue target: >= 2,000 env steps/s).

How to run::

    python benchmarks/bench_lob_env.py [--episodes 3] [--regime open]

Prints one JSON line:

* ``env_steps_per_s``: ``LOBExecutionEnv.step`` on the simulator (default regime ``open``: a 30-minute
  window, 30-second decisions), the TWAP broker, alternating market / limit / hold actions, resets
  excluded (``reset_s`` reports them: a new simulated market each episode).
* ``reference_steps_per_s``: the same simulator advanced over the same 30-second intervals with no
  agent, in the same run: the floor the environment cannot beat. ``env_vs_reference`` is the
  environment's share of it.
* ``replay_env_steps_per_s``: the same environment over the shipped LOBSTER excerpt.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

from rlexec.envs.lob_env import LOBExecutionEnv  # noqa: E402
from rlexec.market import MarketSimulator, regime_config  # noqa: E402
from rlexec.market.lobster import SAMPLE_REPLAY  # noqa: E402

TARGET = 2_000


def time_env(env: LOBExecutionEnv, episodes: int, seed: int) -> tuple[float, float]:
    steps, step_seconds, reset_seconds = 0, 0.0, 0.0
    for e in range(episodes):
        start = time.perf_counter()
        env.reset(seed=seed + e)
        reset_seconds += time.perf_counter() - start
        done = False
        start = time.perf_counter()
        while not done:
            _, _, done, _, _ = env.step(steps % 3)
            steps += 1
        step_seconds += time.perf_counter() - start
    return steps / step_seconds, reset_seconds / episodes


def time_reference(regime: str, interval_s: float, episodes: int, seed: int) -> float:
    config = regime_config(regime)
    start_ns, end_ns = config.window_ns
    interval = int(interval_s * 1e9)
    steps, seconds = 0, 0.0
    for e in range(episodes):
        sim = MarketSimulator(config, seed=seed + e)
        sim.run_until(start_ns)
        start = time.perf_counter()
        for t in range(start_ns + interval, end_ns + interval, interval):
            sim.run_until(min(t, end_ns))
            steps += 1
        seconds += time.perf_counter() - start
    return steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--regime", default="open")
    parser.add_argument("--interval", type=float, default=30.0, help="decision interval, seconds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    env = LOBExecutionEnv({"regime": args.regime, "decision_interval_s": args.interval})
    time_env(env, 1, args.seed + 1000)  # warm-up: JIT, calibration day
    env_rate, reset_s = time_env(env, args.episodes, args.seed)
    reference = time_reference(args.regime, args.interval, args.episodes, args.seed)
    replay = LOBExecutionEnv({"replay": str(SAMPLE_REPLAY), "replay_window_minutes": 10,
                              "decision_interval_s": args.interval})
    time_env(replay, 1, args.seed)
    replay_rate, replay_reset_s = time_env(replay, max(args.episodes, 5), args.seed)
    print(json.dumps({
        "benchmark": "lob_env",
        "regime": args.regime,
        "decision_interval_s": args.interval,
        "env_steps_per_s": round(env_rate),
        "reset_s": round(reset_s, 3),
        "reference": "simulator alone over the same intervals",
        "reference_steps_per_s": round(reference),
        "env_vs_reference": round(env_rate / reference, 3),
        "replay_env_steps_per_s": round(replay_rate),
        "replay_reset_s": round(replay_reset_s, 4),
        "target_steps_per_s": TARGET,
        "meets_target": env_rate >= TARGET,
        "episodes": args.episodes,
    }))


if __name__ == "__main__":
    main()

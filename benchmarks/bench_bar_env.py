"""Speed of the bar-level execution environment.

How to run::

    python benchmarks/bench_bar_env.py [--repeats 5] [--batch 4096]

Prints one JSON line:

* ``single_env_steps_per_s``: ``BarExecutionEnv.step`` on the shipped sample, whole episodes of
  8 steps including ``reset`` (a new order each episode), discrete actions.
* ``batch_order_steps_per_s``: ``BatchExecutionEngine.step`` plus the student observation update
  for ``--batch`` orders at once, one core, whole episodes including the engine reset.
* ``reference_order_steps_per_s``: the same fill kernel run as plain Python (``execute_step.py_func``)
  over a small batch, measured in the same run; the ``*_vs_reference`` ratios are what to compare
  across machines.

Each figure is the median of ``--repeats`` timed runs after a warm-up. Results to expect on a
2-core laptop-class machine: single env above 50k steps/s, batch above 1M order-steps/s.
"""

from __future__ import annotations

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # "one core": no hidden threading in numpy or numba
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from rlexec.data import load_sample  # noqa: E402
from rlexec.data.orders import OrderGenerator, generate_orders  # noqa: E402
from rlexec.envs import BarExecutionEnv, BatchExecutionEngine, ExecutionConfig, prepare_orders  # noqa: E402
from rlexec.envs.interpreters import ObservationInterpreter  # noqa: E402
from rlexec.envs.kernels import execute_step  # noqa: E402

SINGLE_TARGET = 50_000
BATCH_TARGET = 1_000_000


def median_rate(run, repeats: int) -> float:
    run()  # warm-up: JIT, caches
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        work = run()
        rates.append(work / (time.perf_counter() - start))
    return statistics.median(rates)


def single_env(env: BarExecutionEnv, episodes: int, actions: np.ndarray):
    def run() -> int:
        steps = 0
        for e in range(episodes):
            env.reset()
            for t in range(8):
                env.step(int(actions[e % len(actions), t]))
                steps += 1
        return steps

    return run


def batch_engine(engine: BatchExecutionEngine, observe: ObservationInterpreter, batch, fractions: np.ndarray):
    def run() -> int:
        state = engine.reset(batch)
        observe(state)
        t = 0
        while not state.done:
            engine.step(fractions[t])
            observe(state)
            t += 1
        return len(batch) * t

    return run


def python_reference(batch, config: ExecutionConfig, fractions: np.ndarray):
    """The kernel's own code, interpreted: what the numba compilation buys."""
    fill = config.fill
    kernel = execute_step.py_func

    def run() -> int:
        n, h = len(batch), config.horizon_minutes
        remaining, executed, cash = batch.quantity.copy(), np.zeros(n), np.zeros(n)
        minute_fills = np.zeros((n, h))
        out = [np.empty(n) for _ in range(3)]
        for t in range(config.n_steps):
            kernel(
                t, config.step_minutes, config.n_steps, fractions[t][:n], batch.quantity, batch.sigma,
                batch.twap_price, batch.price, batch.volume, fill.max_participation, fill.impact_coefficient_bps,
                fill.impact_exponent, fill.half_spread_bps, fill.force_remainder, remaining, executed, cash,
                minute_fills, *out,
            )
        return n * config.n_steps

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--episodes", type=int, default=2000, help="single-env episodes per timed run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = ExecutionConfig()
    market = load_sample()
    rng = np.random.default_rng(args.seed)

    env = BarExecutionEnv(execution=config, market=market)
    env.reset(seed=args.seed)
    actions = rng.integers(0, len(config.action_values), size=(256, config.n_steps))
    single = median_rate(single_env(env, args.episodes, actions), args.repeats)

    orders = generate_orders(market, args.batch, args.seed, OrderGenerator(horizon_minutes=config.horizon_minutes))
    batch = prepare_orders(market, orders, config)
    fractions = rng.choice(np.asarray(config.action_values), size=(config.n_steps, args.batch))
    engine = BatchExecutionEngine(config)
    vectorised = median_rate(batch_engine(engine, ObservationInterpreter(config), batch, fractions), args.repeats)

    small = batch.select(np.arange(min(64, args.batch)))
    reference = median_rate(python_reference(small, config, fractions), args.repeats)

    print(
        json.dumps(
            {
                "benchmark": "bar_env",
                "single_env_steps_per_s": round(single),
                "batch_size": args.batch,
                "batch_order_steps_per_s": round(vectorised),
                "reference": "execute_step.py_func, plain Python, 64 orders",
                "reference_order_steps_per_s": round(reference),
                "single_vs_reference": round(single / reference, 2),
                "batch_vs_reference": round(vectorised / reference, 2),
                "single_target": SINGLE_TARGET,
                "batch_target": BATCH_TARGET,
                "single_meets_target": single >= SINGLE_TARGET,
                "batch_meets_target": vectorised >= BATCH_TARGET,
                "repeats": args.repeats,
            }
        )
    )


if __name__ == "__main__":
    main()

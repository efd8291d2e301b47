"""Speed of the bar-level execution environment.

How to run::

    python benchmarks/bench_bar_env.py [--repeats 5] [--batch 4096]

Prints one JSON line, every figure measured in the same run on one core:

* ``single_env_steps_per_s``: ``BarExecutionEnv.step`` on the shipped sample, whole episodes of
  8 steps including ``reset`` (a new order each episode), discrete actions.
* ``engine_order_steps_per_s``: ``BatchExecutionEngine`` alone, ``reset`` then 8 steps of 30
  minutes for ``--batch`` orders at once.
* ``numpy_order_steps_per_s``: :func:`numpy_episode`, the same fill arithmetic written as bare
  vectorised numpy over the same arrays; ``engine_vs_numpy`` is the ratio (target >= 0.5) and
  ``numpy_max_rel_diff`` how far its cash and fills are from the engine's.
* ``generic_pow_kernel_order_steps_per_s``: the kernel forced onto the generic ``pow`` law
  (what it ran before the square-root law was specialised), against ``sqrt_kernel_order_steps_per_s``,
  the same loop on the specialised law; both without the engine around them.
* ``batch_order_steps_per_s``: the engine plus the student observation update (an RL rollout's work).
* ``reference_order_steps_per_s``: the same fill kernel run as plain Python (``fill_orders.py_func``)
  over a small batch; the ``*_vs_reference`` ratios are what to compare across machines.

Each figure is the median of ``--repeats`` timed runs after a warm-up, in wall time, or with
``--clock cpu`` in the thread's CPU time (what an idle core would give when other processes load
the machine). Targets: single env 50k steps/s, batch engine 1M order-steps/s on an idle core.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # "one core": no hidden threading in numpy or numba (not when a test imports this)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from rlexec.data import load_sample  # noqa: E402
from rlexec.data.orders import OrderGenerator, generate_orders  # noqa: E402
from rlexec.envs import BarExecutionEnv, BatchExecutionEngine, ExecutionConfig, prepare_orders  # noqa: E402
from rlexec.envs.interpreters import ObservationInterpreter  # noqa: E402
from rlexec.envs.kernels import POWER_LAW, SQRT_LAW, fill_orders, impact_law  # noqa: E402

SINGLE_TARGET = 50_000
BATCH_TARGET = 1_000_000
ENGINE_VS_NUMPY_TARGET = 0.5


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = CLOCKS["wall"]


def median_rate(run, repeats: int) -> float:
    run()  # warm-up: JIT, caches
    rates = []
    for _ in range(repeats):
        start = clock()
        work = run()
        rates.append(work / (clock() - start))
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


def batch_engine(engine: BatchExecutionEngine, observe: ObservationInterpreter | None, batch, fractions: np.ndarray):
    def run() -> int:
        state = engine.reset(batch)
        if observe is not None:
            observe(state)
        t = 0
        while not state.done:
            engine.step(fractions[t])
            if observe is not None:
                observe(state)
            t += 1
        return len(batch) * t

    return run


def kernel_episode(kernel, batch, config: ExecutionConfig, fractions: np.ndarray):
    """One episode of ``kernel`` (execute_step's signature) on fresh state, as the engine's reset makes it."""
    fill = config.fill
    n, h = len(batch), config.horizon_minutes
    remaining, executed, cash = batch.quantity.copy(), np.zeros(n), np.zeros(n)
    minute_fills = np.zeros((n, h))
    out = [np.empty(n) for _ in range(3)]
    for t in range(config.n_steps):
        kernel(
            t, config.step_minutes, config.n_steps, fractions[t][:n], batch.quantity, batch.sigma,
            batch.twap_price, batch.price, batch.volume, batch.horizon_mean_volume,
            fill.participation_cap, fill.impact_coefficient_bps, fill.impact_exponent, fill.half_spread_bps,
            fill.force_remainder, fill.forced_volume_floor,
            remaining, executed, cash, minute_fills, *out,
        )
    return cash, minute_fills


def numpy_episode(batch, config: ExecutionConfig, fractions: np.ndarray):
    """The fill kernel's arithmetic as bare vectorised numpy, one array expression per kernel line,
    per-step outputs included; for a finite cap (the benchmark's config). Sums run in numpy's
    pairwise order, so results agree with the kernel to rounding, not bit for bit.
    """
    fill = config.fill
    n, m, steps = len(batch), config.step_minutes, config.n_steps
    quantity, sigma = batch.quantity, batch.sigma[:, None]
    remaining, executed, cash = quantity.copy(), np.zeros(n), np.zeros(n)
    minute_fills = np.zeros((n, config.horizon_minutes))
    for t in range(steps):
        last = t == steps - 1
        minutes = slice(t * m, (t + 1) * m)
        volume, price = batch.volume[:, minutes], batch.price[:, minutes]
        want = remaining if last else np.minimum(remaining, np.maximum(fractions[t] * quantity, 0.0))
        q = np.minimum((want / m)[:, None], fill.participation_cap * volume)
        np.maximum(q, 0.0, out=q)  # zero-volume minutes: cap 0, nothing fills
        liquidity = np.maximum(volume, 1.0)  # = volume wherever q > 0 (integer share volumes)
        forced = last and fill.force_remainder
        if forced:
            q[:, -1] = np.maximum(want - q[:, :-1].sum(axis=1), 0.0)
            liquidity[:, -1] = np.maximum(volume[:, -1], fill.forced_volume_floor * batch.horizon_mean_volume)
        impact_bps = fill.impact_coefficient_bps * (q / liquidity) ** fill.impact_exponent + fill.half_spread_bps
        fill_price = price * (1.0 - sigma * impact_bps * 1e-4)
        filled = q.sum(axis=1)
        spent = (q * fill_price).sum(axis=1)
        step_concentration = ((q / quantity[:, None]) ** 2).sum(axis=1)  # noqa: F841 - the kernel's output too
        step_pa_bps = batch.sigma * (spent / batch.twap_price - filled) / quantity * 1e4  # noqa: F841
        minute_fills[:, minutes] = q
        remaining = np.zeros(n) if forced else remaining - filled
        executed += filled
        cash += spent
    return cash, minute_fills


def episode_rate(episode, batch, config: ExecutionConfig, fractions: np.ndarray):
    def run() -> int:
        episode(batch, config, fractions)
        return len(batch) * config.n_steps

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--episodes", type=int, default=2000, help="single-env episodes per timed run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="cpu: this thread's CPU time, an idle core's figure on a machine others are loading")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]

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
    engine_rate = median_rate(batch_engine(engine, None, batch, fractions), args.repeats)
    with_observation = median_rate(batch_engine(engine, ObservationInterpreter(config), batch, fractions), args.repeats)

    sqrt_kernel = functools.partial(kernel_episode, functools.partial(fill_orders, SQRT_LAW))
    pow_kernel = functools.partial(kernel_episode, functools.partial(fill_orders, POWER_LAW))
    numpy_rate = median_rate(episode_rate(numpy_episode, batch, config, fractions), args.repeats)
    sqrt_rate = median_rate(episode_rate(sqrt_kernel, batch, config, fractions), args.repeats)
    pow_rate = median_rate(episode_rate(pow_kernel, batch, config, fractions), args.repeats)

    # The references must compute what the engine computes, or the ratios mean nothing.
    state = engine.reset(batch)
    while not state.done:
        engine.step(fractions[state.t])
    numpy_cash, numpy_fills = numpy_episode(batch, config, fractions)
    numpy_diff = max(
        float(np.max(np.abs(numpy_cash - state.cash) / state.cash)),
        float(np.max(np.abs(numpy_fills - state.minute_fills)) / batch.quantity.min()),
    )
    pow_cash, pow_fills = pow_kernel(batch, config, fractions)
    pow_identical = bool(np.array_equal(pow_cash, state.cash) and np.array_equal(pow_fills, state.minute_fills))

    small = batch.select(np.arange(min(64, args.batch)))
    plain_python = functools.partial(fill_orders.py_func, impact_law.py_func(config.fill.impact_exponent))
    reference = median_rate(episode_rate(functools.partial(kernel_episode, plain_python), small, config, fractions),
                            args.repeats)

    print(
        json.dumps(
            {
                "benchmark": "bar_env",
                "batch_size": args.batch,
                "steps": f"{config.n_steps} x {config.step_minutes} min",
                "single_env_steps_per_s": round(single),
                "engine_order_steps_per_s": round(engine_rate),
                "numpy_order_steps_per_s": round(numpy_rate),
                "engine_vs_numpy": round(engine_rate / numpy_rate, 2),
                "numpy_max_rel_diff": numpy_diff,
                "sqrt_kernel_order_steps_per_s": round(sqrt_rate),
                "generic_pow_kernel_order_steps_per_s": round(pow_rate),
                "sqrt_vs_generic_pow": round(sqrt_rate / pow_rate, 2),
                "generic_pow_bit_identical": pow_identical,
                "batch_order_steps_per_s": round(with_observation),
                "reference": "fill_orders.py_func, plain Python, 64 orders",
                "reference_order_steps_per_s": round(reference),
                "single_vs_reference": round(single / reference, 2),
                "batch_vs_reference": round(with_observation / reference, 2),
                "single_target": SINGLE_TARGET,
                "batch_target": BATCH_TARGET,
                "engine_vs_numpy_target": ENGINE_VS_NUMPY_TARGET,
                "single_meets_target": single >= SINGLE_TARGET,
                "engine_meets_target": engine_rate >= BATCH_TARGET,
                "batch_meets_target": with_observation >= BATCH_TARGET,
                "engine_vs_numpy_meets_target": engine_rate / numpy_rate >= ENGINE_VS_NUMPY_TARGET,
                "repeats": args.repeats,
                "clock": args.clock,
            }
        )
    )


if __name__ == "__main__":
    main()

"""The fill kernel's specialised impact laws against the generic power law, and the benchmark's numpy
reference against the engine (so the benchmark's ratio compares the same arithmetic)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from rlexec.data.orders import OrderGenerator, generate_orders
from rlexec.envs import BatchExecutionEngine, ExecutionConfig, FillModel, prepare_orders
from rlexec.envs.kernels import LINEAR_LAW, POWER_LAW, SQRT_LAW, execute_step, fill_orders, impact_law

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_bar_env.py"


def test_impact_law_specialises_exactly_the_square_root_and_linear_exponents():
    assert impact_law(0.5) == SQRT_LAW and impact_law(1.0) == LINEAR_LAW
    for exponent in (0.4999999999999999, 0.6, 0.9999999999999999, 1.5):
        assert impact_law(exponent) == POWER_LAW


def run_kernel(kernel, batch, config, fractions):
    """Every step's outputs and the final state of one episode of ``kernel`` (execute_step's signature)."""
    fill, n = config.fill, len(batch)
    remaining, executed, cash = batch.quantity.copy(), np.zeros(n), np.zeros(n)
    minute_fills = np.zeros((n, config.horizon_minutes))
    steps = []
    for t in range(config.n_steps):
        out = [np.empty(n) for _ in range(3)]
        kernel(
            t, config.step_minutes, config.n_steps, fractions[t], batch.quantity, batch.sigma, batch.twap_price,
            batch.price, batch.volume, batch.horizon_mean_volume,
            fill.participation_cap, fill.impact_coefficient_bps, fill.impact_exponent, fill.half_spread_bps,
            fill.force_remainder, fill.forced_volume_floor,
            remaining, executed, cash, minute_fills, *out,
        )
        steps.append(out)
    return np.array(steps), remaining, executed, cash, minute_fills


@pytest.mark.parametrize("exponent", [0.5, 1.0])
@pytest.mark.parametrize("max_participation", [0.2, None])
def test_specialised_laws_are_bit_identical_to_the_generic_power_law(sample_market, exponent, max_participation):
    # Large orders and random fractions: the cap binds, remainders are forced out above it, and the
    # participations span several decades (with and without the cap).
    config = ExecutionConfig(fill=FillModel(impact_exponent=exponent, half_spread_bps=0.5,
                                            max_participation=max_participation))
    generator = OrderGenerator(horizon_minutes=config.horizon_minutes, size_fraction=(0.001, 0.04))
    orders = generate_orders(sample_market, 256, seed=7, generator=generator)
    batch = prepare_orders(sample_market, orders, config)
    fractions = np.random.default_rng(3).choice([0.0, 0.05, 0.2, 0.6, 1.0], size=(config.n_steps, len(orders)))

    specialised = run_kernel(execute_step, batch, config, fractions)
    generic = run_kernel(lambda *args: fill_orders(POWER_LAW, *args), batch, config, fractions)
    for fast, slow in zip(specialised, generic):
        np.testing.assert_array_equal(fast, slow)
    participation = specialised[4][specialised[4] > 0] / np.maximum(batch.volume[specialised[4] > 0], 1.0)
    assert participation.min() < 1e-4 and participation.max() > 0.2  # the comparison covered a wide range
    # and the compiled kernel is the plain-Python code it says it is
    interpreted = run_kernel(execute_step.py_func, batch.select(np.arange(8)), config, fractions[:, :8])
    for compiled, plain in zip(run_kernel(execute_step, batch.select(np.arange(8)), config, fractions[:, :8]),
                               interpreted):
        np.testing.assert_array_equal(compiled, plain)


def test_sqrt_equals_generic_pow_over_many_decades_of_participation():
    # One forced step per order on synthetic bars: participation = quantity / volume, log-uniform in
    # [1e-9, 1e3], i.e. every input the square-root law can meet.
    rng = np.random.default_rng(0)
    n = 200_000
    volume = np.ones((n, 1))
    quantity = 10.0 ** rng.uniform(-9, 3, n)
    args = (0, 1, 1, np.ones(n), quantity, np.where(rng.random(n) < 0.5, 1.0, -1.0), np.full(n, 100.0),
            rng.uniform(10, 500, (n, 1)), volume, np.ones(n), np.inf, 10.0, 0.5, 0.0, True, 1e-12)
    results = []
    for law in (SQRT_LAW, POWER_LAW):
        state = [quantity.copy(), np.zeros(n), np.zeros(n), np.zeros((n, 1)), np.empty(n), np.empty(n), np.empty(n)]
        fill_orders(law, *args, *state)
        results.append(state)
    for fast, slow in zip(*results):
        np.testing.assert_array_equal(fast, slow)


def test_benchmark_numpy_reference_computes_what_the_engine_computes(sample_market):
    spec = importlib.util.spec_from_file_location("bench_bar_env", BENCHMARK)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    config = ExecutionConfig(fill=FillModel(half_spread_bps=0.5))
    orders = generate_orders(sample_market, 128, seed=2,
                             generator=OrderGenerator(horizon_minutes=config.horizon_minutes, size_fraction=(0.001, 0.04)))
    batch = prepare_orders(sample_market, orders, config)
    fractions = np.random.default_rng(4).choice(np.asarray(config.action_values), size=(config.n_steps, len(orders)))
    engine = BatchExecutionEngine(config)
    state = engine.reset(batch)
    while not state.done:
        engine.step(fractions[state.t])
    cash, minute_fills = bench.numpy_episode(batch, config, fractions)
    np.testing.assert_allclose(cash, state.cash, rtol=1e-12)
    np.testing.assert_allclose(minute_fills, state.minute_fills, rtol=1e-12, atol=1e-9)
    assert (state.minute_fills[:, -1] > config.fill.max_participation * batch.volume[:, -1]).any()  # forced fills

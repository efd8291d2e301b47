"""Observations: layout and values on the hand market, and no look-ahead for the student and strategies."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from envs_helpers import make_market, order, perturb_future, tiny_config
from rlexec.data.orders import Order
from rlexec.envs import BarExecutionEnv, BatchExecutionEngine, ExecutionConfig, prepare_orders
from rlexec.envs.interpreters import ObservationInterpreter
from rlexec.strategies import make_strategy, strategy_names


def test_student_and_oracle_observation_values_by_hand():
    # lookback 98, 99 (p0 = 99); horizon 99, 99.99, 100.98, 102.96; volumes 500, 1000, 2000, 4000, 1000, 0
    market = make_market(
        [99.0, 99.99, 100.98, 102.96], [2000, 4000, 1000, 0],
        lookback_prices=[98.0, 99.0], lookback_volumes=[500, 1000],
    )
    config = tiny_config()
    batch = prepare_orders(market, [order("sell", 100)], config)
    assert batch.reference_price[0] == 99.0
    assert batch.volume_scale[0] == 1000.0  # mean minute volume of D0
    pct = np.array([98 / 99 - 1, 0.0, 0.0, 0.01, 0.02, 0.04]) * 100  # % from p0, minute by minute
    logv = np.log1p(np.array([500, 1000, 2000, 4000, 1000, 0]) / 1000)
    expected = np.column_stack([pct] * 5 + [logv]).astype(np.float32)  # flat bars: OHLC = typical

    student, oracle = ObservationInterpreter(config), ObservationInterpreter(config, oracle=True)
    engine = BatchExecutionEngine(config)
    state = engine.reset(batch)
    assert student.layout.size == 3 + 6 * 6
    s0, o0 = student(state)[0].copy(), oracle(state)[0].copy()
    np.testing.assert_allclose(s0[:3], [1.0, 0.0, 1.0])  # remaining, elapsed, sigma (+1 sell)
    np.testing.assert_allclose(s0[3:].reshape(6, 6)[:2], expected[:2], rtol=1e-6, atol=1e-6)
    assert not s0[3:].reshape(6, 6)[2:].any()  # the horizon is hidden at t = 0
    np.testing.assert_allclose(o0[3:].reshape(6, 6), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(o0[:3], s0[:3])

    engine.step(np.array([0.5]))  # 25 shares a minute, nothing capped
    s1 = student(state)[0].copy()
    np.testing.assert_allclose(s1[:3], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(s1[3:].reshape(6, 6)[:4], expected[:4], rtol=1e-6, atol=1e-6)
    assert not s1[3:].reshape(6, 6)[4:].any()


def test_interpreter_output_does_not_depend_on_call_history(sample_market):
    from rlexec.data.orders import OrderGenerator, generate_orders

    config = ExecutionConfig()
    orders = generate_orders(sample_market, 6, seed=1, generator=OrderGenerator(horizon_minutes=240))
    batch = prepare_orders(sample_market, orders, config)
    engine = BatchExecutionEngine(config)
    incremental = ObservationInterpreter(config)
    state = engine.reset(batch)
    seen = [incremental(state).copy()]
    while not state.done:
        engine.step(np.full(len(orders), 0.1))
        seen.append(incremental(state).copy())
        np.testing.assert_array_equal(seen[-1], ObservationInterpreter(config)(state))
    # a new episode over the same batch hides the future again
    state = engine.reset(batch)
    np.testing.assert_array_equal(incremental(state), seen[0])


# --------------------------------------------------------------------------- no look-ahead

LOOKAHEAD_ORDERS = [
    Order(symbol="AAPL", date=dt.date(2019, 2, 13), side="buy", quantity=40_000, start_minute=0),
    Order(symbol="JPM", date=dt.date(2019, 2, 15), side="sell", quantity=30_000, start_minute=150),
    Order(symbol="SPY", date=dt.date(2019, 2, 12), side="sell", quantity=100_000, start_minute=77),
]


def _env_run(market, the_order, fractions, *, oracle):
    env = BarExecutionEnv({"continuous": True, "oracle": oracle}, market=market)
    obs, _ = env.reset(options={"order": the_order})
    seq = [obs]
    for f in fractions:
        obs, *_ = env.step(np.array([f]))
        seq.append(obs)
    return seq


@pytest.mark.parametrize("the_order", LOOKAHEAD_ORDERS, ids=lambda o: f"{o.symbol}-{o.start_minute}")
def test_student_observations_never_see_the_future(sample_market, the_order):
    config = ExecutionConfig()
    T, m = config.n_steps, config.step_minutes
    fractions = np.random.default_rng(2).uniform(0.0, 0.3, T)
    base_student = _env_run(sample_market, the_order, fractions, oracle=False)
    base_oracle = _env_run(sample_market, the_order, fractions, oracle=True)
    for t in range(T):
        first = the_order.start_minute + t * m  # every bar from the decision time of step t on
        market = perturb_future(sample_market, the_order.symbol, the_order.date, first, seed=100 + t)
        student = _env_run(market, the_order, fractions, oracle=False)
        for k in range(t + 1):  # observations up to and including the decision at t
            np.testing.assert_array_equal(student[k], base_student[k], err_msg=f"decision {k}, future from {t}")
        # the perturbation is visible once its bars have closed (the test can fail)
        assert not np.array_equal(student[t + 1], base_student[t + 1])
        # the oracle sees the whole window from the start
        oracle = _env_run(market, the_order, fractions, oracle=True)
        assert not np.array_equal(oracle[0], base_oracle[0])


@pytest.mark.parametrize("the_order", LOOKAHEAD_ORDERS, ids=lambda o: f"{o.symbol}-{o.start_minute}")
def test_broker_strategy_decisions_never_see_the_future(sample_market, the_order):
    config = ExecutionConfig()
    T, m = config.n_steps, config.step_minutes
    strategies = [make_strategy(name) for name in strategy_names()]
    assert {s.name for s in strategies} >= {"twap", "vwap", "is", "pov"}

    def decisions(market, strategy):
        engine = BatchExecutionEngine(config)
        state = engine.reset(prepare_orders(market, [the_order], config))
        out = []
        while not state.done:
            f = strategy.fractions(state).copy()
            out.append(f[0])
            engine.step(f)
        return np.array(out)

    base = {s.name: decisions(sample_market, s) for s in strategies}
    for t in range(T):
        market = perturb_future(sample_market, the_order.symbol, the_order.date, the_order.start_minute + t * m, 7 + t)
        for s in strategies:
            got = decisions(market, s)
            np.testing.assert_array_equal(got[: t + 1], base[s.name][: t + 1], err_msg=f"{s.name}, future from {t}")
            if s.name == "pov" and t < T - 1:
                # POV reads the interval just closed: the perturbation shows up one step later
                assert got[t + 1] != base[s.name][t + 1]

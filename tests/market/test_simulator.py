"""MarketSimulator: determinism, resumability and the external agent's API."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rlexec.errors import OrderError
from rlexec.market.book import BUY, SELL
from rlexec.market.config import MarketConfig, clock_ns
from rlexec.market.simulator import MarketSimulator

OPEN = clock_ns(9, 30)
SMALL = dataclasses.replace(MarketConfig(), noise=dataclasses.replace(MarketConfig().noise, count=100))


def _tape_after(config, seed, t_ns):
    sim = MarketSimulator(config, seed)
    sim.run_until(t_ns)
    return sim.tape_arrays().copy()


def test_same_seed_same_tape_and_different_seed_differs():
    until = clock_ns(10, 30)
    first = _tape_after(SMALL, 5, until)
    assert len(first) > 1_000
    assert np.array_equal(first, _tape_after(SMALL, 5, until))
    other = _tape_after(SMALL, 6, until)
    assert other.shape != first.shape or not np.array_equal(other, first)


def test_running_in_steps_equals_running_at_once():
    whole = _tape_after(SMALL, 3, clock_ns(10))
    stepped = MarketSimulator(SMALL, 3)
    for t in range(OPEN, clock_ns(10) + 1, 7 * 10**9 + 13):
        stepped.run_until(t)
    stepped.run_until(clock_ns(10))
    assert stepped.now == clock_ns(10)
    assert np.array_equal(whole, stepped.tape_arrays())


def test_day_keeps_the_book_consistent_and_sorted_tape():
    sim = MarketSimulator(SMALL, 2)
    for hour in (10, 12, 14, 16):
        sim.run_until(clock_ns(hour))
        sim.check_integrity()
    times = sim.tape_arrays()[:, 0]
    assert np.all(np.diff(times) >= 0)
    assert times[0] >= OPEN and times[-1] <= clock_ns(16)


def _warm_sim(seed=4):
    sim = MarketSimulator(SMALL, seed)
    sim.run_until(clock_ns(10))
    return sim


def test_external_limit_order_arrives_after_latency_and_rests():
    sim = _warm_sim()
    bid, ask = sim.best_bid_ask()
    price = bid - 20  # far from the touch: stays resting
    oid = sim.submit_limit(BUY, price, 300)
    assert sim.order_remaining(oid) == 0  # not at the exchange yet
    sim.run_until(sim.now + 10_000_000)
    assert sim.order_remaining(oid) == 300
    depth = sim.depth(40)
    assert 300 <= depth.bid_sizes[list(depth.bid_prices).index(price)]
    sim.cancel_all_external()
    sim.run_until(sim.now + 10_000_000)
    assert sim.order_remaining(oid) == 0


def test_external_market_order_fills_are_drained_once():
    sim = _warm_sim()
    assert len(sim.drain_external_fills()) == 0
    _, ask = sim.best_bid_ask()
    t_sent = sim.now
    sim.submit_market(BUY, 150)
    sim.run_until(sim.now + 5_000_000)
    fills = sim.drain_external_fills()
    assert fills.qty.sum() == 150
    assert np.all(fills.side == BUY)
    assert fills.price_ticks[0] == ask
    assert np.all(fills.time_ns > t_sent)
    assert sim.external_position == 150
    assert len(sim.drain_external_fills()) == 0
    assert sim.traded_volume_between(t_sent, sim.now + 1) >= 150


def test_external_marketable_limit_and_modify():
    sim = _warm_sim()
    bid, _ = sim.best_bid_ask()
    oid = sim.submit_limit(SELL, bid, 10)
    sim.run_until(sim.now + 5_000_000)
    fills = sim.drain_external_fills()
    assert fills.qty.sum() == 10 and np.all(fills.side == SELL) and np.all(fills.order_id == oid)
    far_ask = sim.best_bid_ask()[1] + 30
    resting = sim.submit_limit(SELL, far_ask, 50)
    sim.run_until(sim.now + 5_000_000)
    sim.modify(resting, far_ask, 20)
    sim.run_until(sim.now + 5_000_000)
    assert sim.order_remaining(resting) == 20
    sim.cancel(resting)
    sim.run_until(sim.now + 5_000_000)
    assert sim.order_remaining(resting) == 0


def test_market_data_accessors_agree():
    sim = _warm_sim()
    bid, ask = sim.best_bid_ask()
    assert bid < ask and sim.mid() == (bid + ask) / 2
    depth = sim.depth(5)
    assert depth.bid_prices[0] == bid and depth.ask_prices[0] == ask
    assert np.all(np.diff(depth.bid_prices[depth.bid_prices > 0]) < 0)
    assert sim.last_trade_price() is not None
    t0, t1 = OPEN, sim.now
    tape = sim.tape()
    volume = sim.traded_volume_between(t0, t1 + 1)
    assert volume == sum(tape.column("qty").to_pylist())
    vwap = sim.vwap_between(t0, t1 + 1)
    assert bid - 100 < vwap < ask + 100
    assert sim.vwap_between(0, 1) is None
    assert sim.tick_size == 0.01


@pytest.mark.parametrize("call", [
    lambda sim: sim.submit_limit(0, 100, 1),
    lambda sim: sim.submit_limit(BUY, 100, 0),
    lambda sim: sim.submit_limit(BUY, 10**9, 5),
    lambda sim: sim.submit_market(SELL, 2.5),
    lambda sim: sim.order_remaining(12345),
])
def test_external_orders_are_validated(call):
    with pytest.raises(OrderError):
        call(MarketSimulator(SMALL, 0))

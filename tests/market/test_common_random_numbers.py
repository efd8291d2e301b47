"""Common random numbers: with one seed, what the external agent sends never changes the background.

Same-seed comparisons of execution policies (paired evaluation, preference pairs) are only paired
if every policy meets the same market until its own orders trade. So the background tape must be
bit-identical whatever the agent sends, up to the agent's first fill.
"""

from __future__ import annotations

import numpy as np
import pytest

from rlexec.market.book import BUY, SELL, T_AGGRESSOR, T_BUYER, T_PRICE, T_QTY, T_SELLER, T_TIME
from rlexec.market.config import NS_PER_SECOND, MarketConfig
from rlexec.market.regimes import regime_config
from rlexec.market.simulator import MarketSimulator

SEED = 7
SECONDS = 120
DECISION_NS = 30 * NS_PER_SECOND
# Order ids come from one counter shared with the background, so an agent's order shifts the ids
# of later background orders; they are labels only (matching is by price and arrival), so the
# tape is compared on what the background did.
TRADE_COLUMNS = [T_TIME, T_PRICE, T_QTY, T_AGGRESSOR, T_BUYER, T_SELLER]


def _run(agent):
    """Baseline window's first SECONDS with ``agent(sim, k)`` called every 30 s (k = 0, 1, ...);
    ``agent=None`` holds and runs straight to the end. Returns (sim, tape)."""
    config = regime_config("baseline")
    start = config.window_ns[0]
    sim = MarketSimulator(config, SEED)
    sim.run_until(start)
    if agent is not None:
        for k, t in enumerate(range(start, start + SECONDS * NS_PER_SECOND, DECISION_NS)):
            sim.run_until(t)
            agent(sim, k)
    sim.run_until(start + SECONDS * NS_PER_SECOND)
    return sim, sim.tape_arrays().copy()


def _noop_cancel(sim, k):
    sim.cancel_all_external()


def _far_quotes():
    """An agent quoting 40 ticks behind each touch: the quotes rest, one is resized, both are
    cancelled, none trades."""
    far_bid = {}

    def agent(sim, k):
        if k == 1:
            bid, ask = sim.best_bid_ask()
            assert bid is not None and ask is not None
            far_bid.update(order_id=sim.submit_limit(BUY, bid - 40, 300), price=bid - 40)
            sim.submit_limit(SELL, ask + 40, 300)
        elif k == 2:
            assert sim.order_remaining(far_bid["order_id"]) == 300
            sim.modify(far_bid["order_id"], far_bid["price"], 100)
        elif k == 3:
            sim.cancel_all_external()

    return agent


@pytest.fixture(scope="module")
def held():
    return _run(None)[1]


def test_no_op_cancels_leave_the_tape_bit_identical(held):
    _, tape = _run(_noop_cancel)
    assert len(held) > 100
    assert np.array_equal(tape, held)


def test_far_resting_orders_leave_the_background_trades_identical(held):
    sim, tape = _run(_far_quotes())
    assert len(sim.drain_external_fills()) == 0
    assert np.array_equal(tape[:, TRADE_COLUMNS], held[:, TRADE_COLUMNS])


def test_market_order_leaves_the_tape_identical_until_its_first_fill(held):
    def cancels_then_buys(sim, k):
        sim.cancel_all_external()
        if k == 2:
            sim.submit_market(BUY, 200)

    sim, tape = _run(cancels_then_buys)
    fills = sim.drain_external_fills()
    assert fills.qty.sum() == 200
    first_fill = fills.time_ns[0]
    before = held[held[:, T_TIME] < first_fill]
    assert len(before) > 50
    assert np.array_equal(tape[tape[:, T_TIME] < first_fill][:, TRADE_COLUMNS], before[:, TRADE_COLUMNS])
    # From the first fill on the agent is part of the market, so the tapes may (and here do) part.
    assert not np.array_equal(tape[:, TRADE_COLUMNS], held[:, TRADE_COLUMNS])


def test_a_seed_sequence_seeds_like_its_int_and_is_not_consumed():
    until = MarketConfig().session.start_ns + 60 * NS_PER_SECOND
    tapes = []
    seq = np.random.SeedSequence(SEED)
    for seed in (SEED, seq, seq):
        sim = MarketSimulator(MarketConfig(), seed)
        sim.run_until(until)
        tapes.append(sim.tape_arrays().copy())
    assert len(tapes[0]) > 50
    assert np.array_equal(tapes[0], tapes[1]) and np.array_equal(tapes[0], tapes[2])

"""The LOB evaluation's numbers (LOBEpisodes + run_episodes), not just its shape.

Each episode's metrics are recomputed by hand from what the replayed venue itself handed the env
(every fill drained from it) and from the raw LOBSTER arrays (the book at the window start for the
arrival price, the tape for the window's TWAP and VWAP), following the definitions in
rlexec.evaluation.metrics and the LOB env's reward docstring. Then PA and fill rate of every broker
with market child orders are pinned on the shipped excerpt (a replay is deterministic given the seed).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rlexec.envs.lob_env import BROKERS, LOBExecutionConfig
from rlexec.evaluation import FixedAction, LOBEpisodes, TrajectoryRecorder, run_episodes
from rlexec.market.lobster import NS, SAMPLE_REPLAY, TICK_SIZE, LobsterReplay

REPLAY = LOBExecutionConfig(replay=str(SAMPLE_REPLAY), replay_window_minutes=10, decision_interval_s=30.0)
MINUTE = 60 * NS


@pytest.fixture
def venue_fills(monkeypatch):
    """Every fill each replay hands out, keyed by the replay: what the env was paid, seen from the venue."""
    fills: dict[LobsterReplay, list[tuple[float, int]]] = {}
    drain = LobsterReplay.drain_external_fills

    def recording(self):
        drained = drain(self)
        fills.setdefault(self, []).extend(zip(drained.price_ticks.tolist(), drained.qty.tolist()))
        return drained

    monkeypatch.setattr(LobsterReplay, "drain_external_fills", recording)
    return fills


def tape_vwap(day, t0: int, t1: int) -> float:
    """Dollar VWAP of the historical trades with t0 <= time <= t1 (the replay's closed interval)."""
    trades = day.is_trade & (day.time_ns >= t0) & (day.time_ns <= t1)
    assert trades.any()
    return float((day.price[trades] * day.size[trades]).sum() / day.size[trades].sum()) * TICK_SIZE


def by_hand(env, fills) -> dict[str, float]:
    """One episode's metrics from the venue's fills and the raw day, by the metrics' definitions."""
    day, start, end = env.venue.day, env.window_start, env.window_end
    row = int(np.searchsorted(day.time_ns, start, side="right")) - 1  # the book as the window opens
    bid, ask = day.bid_price[row, 0], day.ask_price[row, 0]
    assert bid > 0 and ask > 0
    arrival = (bid + ask) / 2 * TICK_SIZE
    in_window = day.is_trade & (day.time_ns >= start) & (day.time_ns <= end)
    quantity = max(1, int(REPLAY.volume_fraction * day.size[in_window].sum()))
    minute_vwaps = [tape_vwap(day, s, min(s + MINUTE, end) - 1) for s in range(start, end, MINUTE)]
    twap, vwap = float(np.mean(minute_vwaps)), tape_vwap(day, start, end)
    executed = sum(q for _, q in fills)
    cash = sum(p * TICK_SIZE * q for p, q in fills)
    sigma, fill = env.sigma, executed / quantity
    average = cash / executed
    return {
        "quantity": quantity, "executed": executed, "cash": cash, "arrival": arrival,
        "fill_rate": fill, "average_price": average,
        "price_advantage_bps": sigma * (average / twap - 1) * 1e4,
        "implementation_shortfall_bps": -sigma * (average / arrival - 1) * 1e4,
        "slippage_vwap_bps": -sigma * (average / vwap - 1) * 1e4,
        "profit_usd": sigma * (cash - executed * arrival),
        "execution_cost_usd": -sigma * (cash - executed * arrival),
        # the env's reward: arrival slippage of every fill weighted by its share of Q, less the penalty
        "reward": sigma * (average / arrival - 1) * 1e4 * fill - REPLAY.unfilled_penalty_bps * abs(1 - fill),
    }


@pytest.mark.parametrize("action", [0, 1], ids=["market", "limit"])
@pytest.mark.parametrize("broker", BROKERS)
def test_each_episodes_metrics_recomputed_from_the_venues_fills(venue_fills, broker, action):
    episodes = LOBEpisodes(dataclasses.replace(REPLAY, side="random"), episodes=4, seed=20, broker=broker)
    recorder = TrajectoryRecorder()
    result, steps = run_episodes(episodes, FixedAction("placement", action), recorder=recorder)
    metrics, table = result.metrics, recorder.to_table()
    order, filled = np.asarray(table["order"]), np.asarray(table["filled"])
    for i, env in enumerate(episodes.envs):
        expected = by_hand(env, venue_fills[env.venue])
        assert env.quantity == expected["quantity"]
        assert env.arrival_price == pytest.approx(expected["arrival"], rel=1e-15)
        # the env booked exactly what the venue filled, and the recorder saw every step of it
        assert env.executed == expected["executed"] == filled[order == i].sum()
        assert env.cash == pytest.approx(expected["cash"], rel=1e-12)
        assert np.asarray(table["cash"])[order == i].sum() == pytest.approx(expected["cash"], rel=1e-12)
        assert np.asarray(table["reward"])[order == i].sum() == pytest.approx(expected["reward"], abs=1e-9)
        for name in ("fill_rate", "average_price", "price_advantage_bps", "implementation_shortfall_bps",
                     "slippage_vwap_bps", "profit_usd", "execution_cost_usd", "reward"):
            assert metrics[name][i] == pytest.approx(expected[name], rel=1e-9, abs=1e-9), (name, i)
        # the fill curve is the running fill rate, step by step
        running = np.cumsum(filled[order == i]) / expected["quantity"]
        np.testing.assert_allclose(result.fill_curve[i, :running.size], running, rtol=1e-12)
        np.testing.assert_allclose(result.fill_curve[i, running.size:], expected["fill_rate"], rtol=1e-12)
    # the episodes exercise both sides and partial fills, where the numbers could go wrong
    assert {env.sigma for env in episodes.envs} == {-1, 1}
    assert (metrics["fill_rate"] < 1).any()


# Recorded from the code at commit 96dddda on the excerpt: the CLI's `evaluate --env lob --replay
# <sample> --replay-window 10 --episodes 3` set-up (buys, 30 s decisions, seeds 0, 1, 2), market orders.
# Trusted because the same episodes pass the hand recomputation above (metrics from the venue's fills
# and the tape), and the fill rates are whole-share ratios of the replay's Q: 659/715, 621/715, 610/715.
GOLDEN = {
    "twap": ([-1.3141138118633044, -2.6089354806635434, -5.110940737698133], [1.0, 1.0, 659 / 715]),
    "vwap": ([-3.244849202530542, -4.5735093029275475, -4.739195409579899], [1.0, 1.0, 621 / 715]),
    "is": ([2.0030045802721386, -3.8052706489755117, -5.984694090268583], [1.0, 1.0, 1.0]),
    "pov": ([-3.2119284021603356, -3.6441506881157437, -8.69568084080008], [1.0, 1.0, 610 / 715]),
}


@pytest.mark.parametrize("broker", BROKERS)
def test_golden_seed_pa_and_fill_of_each_broker_with_market_orders(venue_fills, broker):
    episodes = LOBEpisodes(REPLAY, episodes=3, seed=0, broker=broker)
    result, _ = run_episodes(episodes, FixedAction("market", 0))
    pa, fill = GOLDEN[broker]
    np.testing.assert_allclose(result.metrics["price_advantage_bps"], pa, rtol=1e-9)
    np.testing.assert_allclose(result.metrics["fill_rate"], fill, rtol=1e-12)
    assert [env.quantity for env in episodes.envs] == [963, 574, 715]
    for i, env in enumerate(episodes.envs):  # and the pinned numbers are the hand-computed ones
        expected = by_hand(env, venue_fills[env.venue])
        assert pa[i] == pytest.approx(expected["price_advantage_bps"], rel=1e-9)
        assert fill[i] == pytest.approx(expected["fill_rate"], rel=1e-12)

"""One whole session with no external trader, summarised as tables.

* ``tape`` - every trade (``rlexec.market.book.TAPE_COLUMNS``);
* ``book`` - one row per ``config.snapshot_interval_s`` (default every second) from the open
  to the close inclusive: the book after all events at or before ``time_ns``, depth 5 per side
  (``bid_price_1`` is the best bid; missing levels are null), mid, spread (ticks, null unless
  both sides exist), last trade price and the fundamental value;
* ``minute_bars`` - one row per minute ``[time_ns, time_ns + 60 s)``: trade open/high/low/close
  (null without trades), volume, trade count, VWAP, mean spread and the closing mid and
  fundamental from the last snapshot of the minute.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rlexec.market.book import T_PRICE, T_QTY, T_TIME
from rlexec.market.config import NS_PER_SECOND, MarketConfig
from rlexec.market.kernel import SNAPSHOT_DEPTH
from rlexec.market.simulator import MarketSimulator

MINUTE_NS = 60 * NS_PER_SECOND


@dataclass(frozen=True)
class SimulationResult:
    config: MarketConfig
    seed: int
    tape: pa.Table
    book: pa.Table
    minute_bars: pa.Table
    events: int
    """Events the loop processed (wake-ups and exchange messages)."""
    wall_seconds: float
    """Time spent in the event loop, seconds."""


def simulate_day(config: MarketConfig, seed: int) -> SimulationResult:
    """Run ``config``'s whole session with seed ``seed`` and tabulate it (see module docstring)."""
    sim = MarketSimulator(config, seed, record_snapshots=True)
    started = time.perf_counter()
    sim.run_until(config.session.end_ns)
    wall = time.perf_counter() - started
    book = book_table(sim)
    tape_rows = sim.tape_arrays()
    return SimulationResult(config=config, seed=seed, tape=sim.tape(), book=book,
                            minute_bars=minute_bars(tape_rows, book, config), events=sim.events_processed,
                            wall_seconds=wall)


def _masked(values: np.ndarray, missing: np.ndarray) -> pa.Array:
    return pa.array(values, mask=missing)


def book_table(sim: MarketSimulator) -> pa.Table:
    """The recorded snapshots of ``sim`` as a table (see module docstring)."""
    snaps = sim.snapshots()
    session = sim.config.session
    interval = int(round(sim.config.snapshot_interval_s * NS_PER_SECOND))
    times = session.start_ns + interval * np.arange(snaps.last_price.size, dtype=np.int64)
    columns: dict[str, pa.Array] = {"time_ns": pa.array(times)}
    for s, name in enumerate(("bid", "ask")):
        for level in range(SNAPSHOT_DEPTH):
            prices = snaps.depth[:, s, level, 0]
            columns[f"{name}_price_{level + 1}"] = _masked(prices, prices < 0)
            columns[f"{name}_size_{level + 1}"] = _masked(snaps.depth[:, s, level, 1], prices < 0)
    bid, ask = snaps.depth[:, 0, 0, 0], snaps.depth[:, 1, 0, 0]
    two_sided = (bid >= 0) & (ask >= 0)
    columns["mid"] = _masked(0.5 * (bid + ask), ~two_sided)
    columns["spread"] = _masked(ask - bid, ~two_sided)
    columns["last_price"] = _masked(snaps.last_price, snaps.last_price < 0)
    columns["fundamental"] = pa.array(sim.fundamental.at_many(times))
    return pa.table(columns)


def minute_bars(tape_rows: np.ndarray, book: pa.Table, config: MarketConfig) -> pa.Table:
    """One-minute bars from trades (int64 tape rows) and book snapshots."""
    start, end = config.session.start_ns, config.session.end_ns
    n = -(-(end - start) // MINUTE_NS)
    minute = np.minimum((tape_rows[:, T_TIME] - start) // MINUTE_NS, n - 1)
    price, qty = tape_rows[:, T_PRICE], tape_rows[:, T_QTY]
    volume = np.bincount(minute, weights=qty, minlength=n)[:n].astype(np.int64)
    trades = np.bincount(minute, minlength=n)[:n]
    notional = np.bincount(minute, weights=price * qty, minlength=n)[:n]
    high = np.full(n, np.iinfo(np.int64).min)
    low = np.full(n, np.iinfo(np.int64).max)
    np.maximum.at(high, minute, price)
    np.minimum.at(low, minute, price)
    first = np.searchsorted(minute, np.arange(n), side="left")
    last = np.searchsorted(minute, np.arange(n), side="right") - 1
    has_trades = trades > 0
    safe_first, safe_last = np.minimum(first, max(price.size - 1, 0)), np.maximum(last, 0)
    open_ = price[safe_first] if price.size else np.zeros(n, dtype=np.int64)
    close = price[safe_last] if price.size else np.zeros(n, dtype=np.int64)

    snap_time = book.column("time_ns").to_numpy()
    snap_minute = np.minimum((snap_time - start) // MINUTE_NS, n - 1)
    spread = book.column("spread").to_numpy(zero_copy_only=False).astype(float)
    mid = book.column("mid").to_numpy(zero_copy_only=False).astype(float)
    fundamental = book.column("fundamental").to_numpy()
    valid = ~np.isnan(spread)
    spread_sum = np.bincount(snap_minute[valid], weights=spread[valid], minlength=n)
    spread_count = np.bincount(snap_minute[valid], minlength=n)
    last_snap = np.searchsorted(snap_minute, np.arange(n), side="right") - 1
    no_trades = ~has_trades
    return pa.table({
        "time_ns": pa.array(start + MINUTE_NS * np.arange(n, dtype=np.int64)),
        "open": _masked(open_, no_trades),
        "high": _masked(high, no_trades),
        "low": _masked(low, no_trades),
        "close": _masked(close, no_trades),
        "volume": pa.array(volume),
        "trades": pa.array(trades.astype(np.int64)),
        "vwap": _masked(notional / np.maximum(volume, 1), no_trades),
        "spread_mean": _masked(spread_sum / np.maximum(spread_count, 1), spread_count == 0),
        "mid_close": _masked(mid[last_snap], np.isnan(mid[last_snap])),
        "fundamental_close": pa.array(fundamental[last_snap]),
    })

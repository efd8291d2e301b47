"""`MarketSimulator`: the background market plus one external trader, advanced on demand.

Typical use by an execution environment::

    sim = MarketSimulator(regime_config("open"), seed=7)
    start, end = sim.config.window_ns
    sim.run_until(start)
    oid = sim.submit_limit(BUY, price_ticks=sim.best_bid_ask()[0], qty=100)
    sim.run_until(start + 1_000_000_000)
    fills = sim.drain_external_fills()          # what the external agent traded since last call
    volume = sim.traded_volume_between(start, sim.now)

Orders of the external agent (``sim.external_agent_id``) go through the same latency model as
everyone else's: they are sent at ``sim.now`` and take effect at the exchange a little later,
while the background keeps trading. Prices are integer ticks (``sim.tick_size`` dollars each),
sizes whole shares, sides ``BUY`` (+1) / ``SELL`` (-1), times ns since midnight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rlexec.errors import OrderError
from rlexec.market.agents import build_population, pack_params
from rlexec.market.book import (B_BEST_ASK, B_BEST_BID, B_LAST_PRICE, B_NEXT_ORDER, B_TAPE_LEN, BUY, O_QTY,
                                O_STATUS, RESTING, SELL, T_BUY_ORDER, T_BUYER, T_PRICE, T_QTY, T_SELL_ORDER,
                                T_SELLER, T_TIME, TAPE_COLUMNS, allocate_book, fill_depth, grow_rows, new_order,
                                raise_if_broken)
from rlexec.market.config import NS_PER_SECOND, MarketConfig
from rlexec.market.events import (CANCEL, CANCEL_ALL, K_EVENTS, K_HEAP_SIZE, K_NOW, LIMIT, MARKET, MODIFY,
                                  N_HEAP_FIELDS, allocate_queue, schedule_wakes, send)
from rlexec.market.kernel import DONE, NEED_HEAP, NEED_ORDERS, NEED_TAPE, SNAPSHOT_DEPTH, Snapshots, run_events
from rlexec.market.latency import ConstantPlusJitterLatency, LatencyModel
from rlexec.market.oracle import FundamentalPath, draw_fundamental


@dataclass(frozen=True)
class Fills:
    """Trades of one agent: parallel arrays, oldest first. ``side`` is the agent's side (+1 bought)."""

    time_ns: np.ndarray
    price_ticks: np.ndarray
    qty: np.ndarray
    side: np.ndarray
    order_id: np.ndarray

    def __len__(self) -> int:
        return int(self.qty.size)


@dataclass(frozen=True)
class BookDepth:
    """The best ``k`` populated levels per side, best first; missing levels are price -1, size 0."""

    bid_prices: np.ndarray
    bid_sizes: np.ndarray
    ask_prices: np.ndarray
    ask_sizes: np.ndarray


def _doubled(array: np.ndarray, used: int) -> np.ndarray:
    return grow_rows(array, array.shape[0] - used + 1, used)


def _root_seed(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    """A fresh SeedSequence for ``seed``; a caller's SeedSequence is copied, since spawning from it
    would advance it and the same object would then seed a different market on its next use."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size)
    return np.random.SeedSequence(seed)


class MarketSimulator:
    """The background market of ``config`` with seed ``seed``; see the module docstring.

    ``seed`` (an int or SeedSequence) fixes everything: the fundamental path, the population, the
    background's event stream and the external agent's latency jitter, each drawn from its own
    child stream. The external agent having its own stream is what makes same-seed comparisons
    paired (common random numbers): whatever it sends, the background makes the same draws, so the
    tape is the same until the agent's first fill. ``record_snapshots`` keeps a depth-5 book
    snapshot every ``config.snapshot_interval_s`` (used by :func:`~rlexec.market.simulate.simulate_day`).
    """

    def __init__(self, config: MarketConfig, seed: int | np.random.SeedSequence, *,
                 latency: LatencyModel | None = None, record_snapshots: bool = False):
        self.config = config
        # Children are appended, never inserted: spawn(4)'s first three are spawn(3)'s, so adding
        # the external stream left every existing seeded market unchanged.
        fundamental_seq, population_seq, events_seq, external_seq = _root_seed(seed).spawn(4)
        session = config.session
        self.fundamental: FundamentalPath = draw_fundamental(config.fundamental, session,
                                                             np.random.default_rng(fundamental_seq))
        latency = latency or ConstantPlusJitterLatency.from_config(config.latency)
        population_rng = np.random.default_rng(population_seq)
        n_agents = (config.market_maker.count + config.value.count + config.momentum.count + config.noise.count
                    + config.volatility.count + 1)
        delays = latency.agent_delays_ns(n_agents, population_rng)
        self._population, first_agents, first_times = build_population(config, delays, population_rng)
        self._params = pack_params(config)
        self._jitter_mean_ns = float(latency.jitter_mean_ns)
        self._rng = np.random.default_rng(events_seq)
        self._external_rng = np.random.default_rng(external_seq)
        self._book = allocate_book(session.price_levels, n_agents, order_capacity=1 << 16, tape_capacity=1 << 15)
        self._queue = allocate_queue(n_agents + 64, session.start_ns)
        schedule_wakes(self._queue.heap, self._queue.kstate, first_agents, first_times)
        self._snapshot_interval_ns = int(round(config.snapshot_interval_s * NS_PER_SECOND))
        n_snapshots = (session.end_ns - session.start_ns) // self._snapshot_interval_ns + 1 if record_snapshots else 0
        self._snapshots = Snapshots(depth=np.zeros((n_snapshots, 2, SNAPSHOT_DEPTH, 2), dtype=np.int64),
                                    last_price=np.zeros(n_snapshots, dtype=np.int64))
        self._event = np.zeros(N_HEAP_FIELDS, dtype=np.int64)
        self.external_agent_id = n_agents - 1
        self._drained_to = 0

    # -- clock ---------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Simulation time, ns since midnight."""
        return int(self._queue.kstate[K_NOW])

    @property
    def tick_size(self) -> float:
        """Dollars per price tick."""
        return self.config.session.tick_size

    @property
    def events_processed(self) -> int:
        return int(self._queue.kstate[K_EVENTS])

    def run_until(self, t_ns: int) -> None:
        """Process every event up to and including ``t_ns``; afterwards ``now == max(now, t_ns)``."""
        while True:
            status = run_events(int(t_ns), self._book, self._queue, self._population, self._params,
                                self.fundamental.values, self._snapshots, self._snapshot_interval_ns, self._rng,
                                self._event)
            if status == DONE:
                return
            self._make_room(status)

    def _make_room(self, status: int) -> None:
        book, queue = self._book, self._queue
        if status == NEED_ORDERS:
            self._book = book._replace(orders=_doubled(book.orders, int(book.state[B_NEXT_ORDER])))
        elif status == NEED_TAPE:
            self._book = book._replace(tape=_doubled(book.tape, int(book.state[B_TAPE_LEN])))
        elif status == NEED_HEAP:
            self._queue = queue._replace(heap=_doubled(queue.heap, int(queue.kstate[K_HEAP_SIZE])))

    # -- the external agent ----------------------------------------------------------------------
    def _send_external(self, kind: int, side: int, price: int, qty: int, order_id: int) -> None:
        queue = self._queue
        used = int(queue.kstate[K_HEAP_SIZE])
        self._queue = queue = queue._replace(heap=grow_rows(queue.heap, 1, used))
        send(queue.heap, queue.kstate, self._population.delay, self._population.last_arrival, self._jitter_mean_ns,
             self._external_rng, self.external_agent_id, kind, side, price, qty, order_id, 0)

    @staticmethod
    def _check_side(side: int) -> None:
        if side not in (BUY, SELL):
            raise OrderError(f"side must be BUY (+1) or SELL (-1), got {side!r}")

    @staticmethod
    def _check_qty(qty: int) -> None:
        if int(qty) != qty or qty <= 0:
            raise OrderError(f"qty must be a positive whole number of shares, got {qty!r}")

    def _check_price(self, price: int) -> None:
        levels = self.config.session.price_levels
        if not (int(price) == price and 1 <= price < levels):
            raise OrderError(f"price {price!r} outside the price grid 1..{levels - 1} ticks")

    def submit_limit(self, side: int, price_ticks: int, qty: int) -> int:
        """Send a limit order now; returns its order id (valid for cancel/modify/status)."""
        self._check_side(side)
        self._check_qty(qty)
        self._check_price(price_ticks)
        used = int(self._book.state[B_NEXT_ORDER])
        self._book = self._book._replace(orders=grow_rows(self._book.orders, 1, used))
        order_id = int(new_order(self._book.orders, self._book.state, side, int(price_ticks), int(qty),
                                 self.external_agent_id))
        self._send_external(LIMIT, side, int(price_ticks), int(qty), order_id)
        return order_id

    def submit_market(self, side: int, qty: int) -> None:
        """Send a market order now; what the book cannot fill on arrival is dropped."""
        self._check_side(side)
        self._check_qty(qty)
        self._send_external(MARKET, side, 0, int(qty), -1)

    def cancel(self, order_id: int) -> None:
        """Send a cancel for one external order (a no-op at the exchange if it is already done)."""
        self._send_external(CANCEL, 0, 0, 0, int(order_id))

    def modify(self, order_id: int, price_ticks: int, qty: int) -> None:
        """Send a modify: a size-down at the same price keeps priority, anything else loses it."""
        self._check_qty(qty)
        self._check_price(price_ticks)
        self._send_external(MODIFY, 0, int(price_ticks), int(qty), int(order_id))

    def cancel_all_external(self) -> None:
        """Send a cancel for every resting external order."""
        self._send_external(CANCEL_ALL, 0, 0, 0, -1)

    def order_remaining(self, order_id: int) -> int:
        """Unfilled size of an order resting at the exchange now; 0 if done or not yet arrived."""
        if not 0 <= order_id < int(self._book.state[B_NEXT_ORDER]):
            raise OrderError(f"unknown order id {order_id!r}")
        row = self._book.orders[order_id]
        return int(row[O_QTY]) if row[O_STATUS] == RESTING else 0

    @property
    def external_position(self) -> int:
        """Net shares the external agent has bought (negative: sold)."""
        return int(self._population.position[self.external_agent_id])

    def drain_external_fills(self) -> Fills:
        """The external agent's trades since the previous call."""
        end = int(self._book.state[B_TAPE_LEN])
        tape = self._book.tape[self._drained_to:end]
        self._drained_to = end
        me = self.external_agent_id
        bought = np.flatnonzero(tape[:, T_BUYER] == me)
        sold = np.flatnonzero(tape[:, T_SELLER] == me)
        rows = np.concatenate([bought, sold])
        order = np.argsort(rows, kind="stable")
        rows = rows[order]
        side = np.concatenate([np.full(bought.size, BUY), np.full(sold.size, SELL)])[order]
        order_id = np.where(side == BUY, tape[rows, T_BUY_ORDER], tape[rows, T_SELL_ORDER])
        return Fills(time_ns=tape[rows, T_TIME].copy(), price_ticks=tape[rows, T_PRICE].copy(),
                     qty=tape[rows, T_QTY].copy(), side=side.astype(np.int64), order_id=order_id)

    # -- market data -------------------------------------------------------------------------------
    def best_bid_ask(self) -> tuple[int | None, int | None]:
        """Best bid and ask in ticks; None for an empty side."""
        bid, ask = int(self._book.state[B_BEST_BID]), int(self._book.state[B_BEST_ASK])
        return (bid if bid >= 0 else None), (ask if ask >= 0 else None)

    def mid(self) -> float | None:
        """Mid price in ticks; None unless both sides have orders."""
        bid, ask = self.best_bid_ask()
        return None if bid is None or ask is None else 0.5 * (bid + ask)

    def last_trade_price(self) -> int | None:
        last = int(self._book.state[B_LAST_PRICE])
        return last if last >= 0 else None

    def depth(self, k: int) -> BookDepth:
        out = np.empty((2, k, 2), dtype=np.int64)
        fill_depth(self._book.levels, self._book.state, k, out)
        return BookDepth(bid_prices=out[0, :, 0], bid_sizes=out[0, :, 1], ask_prices=out[1, :, 0],
                         ask_sizes=out[1, :, 1])

    def fundamental_at(self, t_ns: int) -> float:
        """The (unobservable to agents) fundamental value, ticks."""
        return self.fundamental.at(t_ns)

    def tape_arrays(self) -> np.ndarray:
        """All trades so far as an int64 array with columns ``TAPE_COLUMNS`` (a read-only view)."""
        view = self._book.tape[:int(self._book.state[B_TAPE_LEN])]
        view.flags.writeable = False
        return view

    def tape(self) -> pa.Table:
        """All trades so far as a table with columns ``TAPE_COLUMNS``."""
        rows = self.tape_arrays()
        return pa.table({name: rows[:, i].copy() for i, name in enumerate(TAPE_COLUMNS)})

    def _tape_slice(self, t0: int, t1: int) -> np.ndarray:
        rows = self.tape_arrays()
        lo, hi = np.searchsorted(rows[:, T_TIME], [t0, t1], side="left")
        return rows[lo:hi]

    def traded_volume_between(self, t0: int, t1: int) -> int:
        """Shares traded by everyone with t0 <= time < t1."""
        return int(self._tape_slice(t0, t1)[:, T_QTY].sum())

    def vwap_between(self, t0: int, t1: int) -> float | None:
        """Volume-weighted average trade price (ticks) over t0 <= time < t1; None with no trades."""
        rows = self._tape_slice(t0, t1)
        volume = rows[:, T_QTY].sum()
        return float((rows[:, T_PRICE] * rows[:, T_QTY]).sum() / volume) if volume else None

    def snapshots(self) -> Snapshots:
        """Recorded snapshots so far (``record_snapshots=True`` only)."""
        return self._snapshots

    def check_integrity(self) -> None:
        """Raise BookIntegrityError if the book breaks an invariant."""
        raise_if_broken(self._book.orders, self._book.levels, self._book.state)

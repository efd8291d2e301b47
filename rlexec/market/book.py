"""Price-time-priority limit order book on an integer tick grid, as numba functions over arrays.

The book is a pure matching engine: it owns no agent and knows nothing of time beyond the
arrival stamps it is given. Its state is a handful of preallocated int64 arrays:

* ``orders[id, O_*]`` - one row per order id (ids are never reused, so an id stays valid for
  status queries after the order is done);
* ``levels[side, price, L_*]`` - a doubly linked FIFO of resting orders per price level, with
  its total size and order count (side 0 = bids, 1 = asks);
* ``book_state[B_*]`` - best bid/ask (-1 for an empty side), resting order count per side,
  the last trade price and the next free order id / tape row;
* ``agent_head[agent]`` - each agent's live orders as a linked list, for cancel-all;
* ``tape[row, T_*]`` - the trades: time, price, quantity, aggressor side (+1 buy, -1 sell),
  buyer and seller agent ids, buy and sell order ids.

Matching functions append fills to ``tape`` and return how many they appended; callers make
sure the order and tape arrays have room (an order for q shares makes at most q fills).
:class:`OrderBook` wraps the arrays for direct use and tests.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from rlexec.errors import OrderError, RlexecError

BUY = 1
SELL = -1

# orders[id, field]
O_PRICE, O_QTY, O_SIDE, O_AGENT, O_PREV, O_NEXT, O_APREV, O_ANEXT, O_TIME, O_STATUS = range(10)
N_ORDER_FIELDS = 10
# O_STATUS values
PENDING, RESTING, DONE = 0, 1, 2

# levels[side, price, field]
L_HEAD, L_TAIL, L_SIZE, L_COUNT = range(4)

# book_state[field]
B_BEST_BID, B_BEST_ASK, B_N_BIDS, B_N_ASKS, B_LAST_PRICE, B_NEXT_ORDER, B_TAPE_LEN = range(7)
N_BOOK_FIELDS = 7

# tape[row, field]
T_TIME, T_PRICE, T_QTY, T_AGGRESSOR, T_BUYER, T_SELLER, T_BUY_ORDER, T_SELL_ORDER = range(8)
N_TAPE_FIELDS = 8
TAPE_COLUMNS = ("time_ns", "price_ticks", "qty", "aggressor_side", "buyer_id", "seller_id",
                "buy_order_id", "sell_order_id")


class BookIntegrityError(RlexecError, AssertionError):
    """The order book broke one of its invariants (a bug, never a user error)."""


INTEGRITY_MESSAGES = {
    1: "a bid level is at or above an ask level (crossed book)",
    2: "a resting order has zero or negative size",
    3: "a level's size differs from the sum of its orders",
    4: "orders within a level are not in arrival order",
    5: "a level's order count or links are inconsistent",
    6: "best bid/ask does not match the populated levels",
    7: "a resting order sits at a level other than its price or side",
}


BookArrays = namedtuple("BookArrays", "orders levels state agent_head tape")
"""The arrays of one book, in the argument order of the matching functions."""


def allocate_book(price_levels: int, n_agents: int, order_capacity: int = 1024,
                  tape_capacity: int = 1024) -> BookArrays:
    """Fresh empty book arrays."""
    orders = np.zeros((order_capacity, N_ORDER_FIELDS), dtype=np.int64)
    levels = np.zeros((2, price_levels, 4), dtype=np.int64)
    levels[:, :, L_HEAD] = -1
    levels[:, :, L_TAIL] = -1
    book_state = np.zeros(N_BOOK_FIELDS, dtype=np.int64)
    book_state[B_BEST_BID] = -1
    book_state[B_BEST_ASK] = -1
    book_state[B_LAST_PRICE] = -1
    agent_head = np.full(n_agents, -1, dtype=np.int64)
    tape = np.zeros((tape_capacity, N_TAPE_FIELDS), dtype=np.int64)
    return BookArrays(orders=orders, levels=levels, state=book_state, agent_head=agent_head, tape=tape)


def grow_rows(array: np.ndarray, min_free: int, used: int) -> np.ndarray:
    """``array`` with at least ``min_free`` rows free after ``used``, doubling as needed."""
    if array.shape[0] - used >= min_free:
        return array
    rows = max(2 * array.shape[0], used + min_free)
    grown = np.zeros((rows,) + array.shape[1:], dtype=array.dtype)
    grown[:used] = array[:used]
    return grown


@njit(cache=True)
def side_index(side):
    """+1 (buy) -> 0 (bid book), -1 (sell) -> 1 (ask book)."""
    return 0 if side > 0 else 1


@njit(cache=True)
def new_order(orders, book_state, side, price, qty, agent):
    """Reserve an order id for a not-yet-arrived order (PENDING)."""
    oid = book_state[B_NEXT_ORDER]
    book_state[B_NEXT_ORDER] = oid + 1
    row = orders[oid]
    row[O_PRICE] = price
    row[O_QTY] = qty
    row[O_SIDE] = side_index(side)
    row[O_AGENT] = agent
    row[O_PREV] = -1
    row[O_NEXT] = -1
    row[O_APREV] = -1
    row[O_ANEXT] = -1
    row[O_TIME] = -1
    row[O_STATUS] = PENDING
    return oid


@njit(cache=True)
def _next_best(levels, book_state, s, start):
    """Best populated price on side s at or behind ``start``; -1 if the side is empty."""
    if book_state[B_N_BIDS + s] == 0:
        return -1
    n_prices = levels.shape[1]
    if s == 0:
        p = min(start, n_prices - 1)
        while p >= 0 and levels[0, p, L_COUNT] == 0:
            p -= 1
        return p
    p = max(start, 0)
    while p < n_prices and levels[1, p, L_COUNT] == 0:
        p += 1
    return p if p < n_prices else -1


@njit(cache=True)
def _unlink(orders, levels, book_state, agent_head, oid):
    """Remove a resting order from its level and its agent's list; keeps best prices right."""
    row = orders[oid]
    s = row[O_SIDE]
    p = row[O_PRICE]
    prev, nxt = row[O_PREV], row[O_NEXT]
    if prev >= 0:
        orders[prev, O_NEXT] = nxt
    else:
        levels[s, p, L_HEAD] = nxt
    if nxt >= 0:
        orders[nxt, O_PREV] = prev
    else:
        levels[s, p, L_TAIL] = prev
    levels[s, p, L_SIZE] -= row[O_QTY]
    levels[s, p, L_COUNT] -= 1
    book_state[B_N_BIDS + s] -= 1
    aprev, anext = row[O_APREV], row[O_ANEXT]
    if aprev >= 0:
        orders[aprev, O_ANEXT] = anext
    else:
        agent_head[row[O_AGENT]] = anext
    if anext >= 0:
        orders[anext, O_APREV] = aprev
    row[O_PREV] = -1
    row[O_NEXT] = -1
    row[O_APREV] = -1
    row[O_ANEXT] = -1
    row[O_STATUS] = DONE
    if levels[s, p, L_COUNT] == 0 and book_state[B_BEST_BID + s] == p:
        book_state[B_BEST_BID + s] = _next_best(levels, book_state, s, p - 1 if s == 0 else p + 1)


@njit(cache=True)
def _rest(orders, levels, book_state, agent_head, oid, time):
    """Append an order to the tail of its price level (it becomes last in time priority)."""
    row = orders[oid]
    s = row[O_SIDE]
    p = row[O_PRICE]
    tail = levels[s, p, L_TAIL]
    row[O_PREV] = tail
    row[O_NEXT] = -1
    if tail >= 0:
        orders[tail, O_NEXT] = oid
    else:
        levels[s, p, L_HEAD] = oid
    levels[s, p, L_TAIL] = oid
    levels[s, p, L_SIZE] += row[O_QTY]
    levels[s, p, L_COUNT] += 1
    book_state[B_N_BIDS + s] += 1
    head = agent_head[row[O_AGENT]]
    row[O_APREV] = -1
    row[O_ANEXT] = head
    if head >= 0:
        orders[head, O_APREV] = oid
    agent_head[row[O_AGENT]] = oid
    row[O_TIME] = time
    row[O_STATUS] = RESTING
    best = book_state[B_BEST_BID + s]
    if best < 0 or (s == 0 and p > best) or (s == 1 and p < best):
        book_state[B_BEST_BID + s] = p


@njit(cache=True)
def _match(orders, levels, book_state, agent_head, tape, oid, limit_price, time):
    """Trade incoming order ``oid`` against the opposite side while prices cross.

    ``limit_price`` bounds the execution price (any price for market orders). Returns the
    number of fills appended to ``tape``; ``orders[oid, O_QTY]`` is left at the unfilled rest.
    """
    row = orders[oid]
    s = row[O_SIDE]
    opp = 1 - s
    aggressor = 1 if s == 0 else -1
    n_fills = 0
    while row[O_QTY] > 0:
        best = book_state[B_BEST_BID + opp]
        if best < 0 or (s == 0 and best > limit_price) or (s == 1 and best < limit_price):
            break
        resting = levels[opp, best, L_HEAD]
        qty = min(row[O_QTY], orders[resting, O_QTY])
        t = book_state[B_TAPE_LEN]
        fill = tape[t]
        fill[T_TIME] = time
        fill[T_PRICE] = best
        fill[T_QTY] = qty
        fill[T_AGGRESSOR] = aggressor
        if s == 0:
            fill[T_BUYER], fill[T_BUY_ORDER] = row[O_AGENT], oid
            fill[T_SELLER], fill[T_SELL_ORDER] = orders[resting, O_AGENT], resting
        else:
            fill[T_SELLER], fill[T_SELL_ORDER] = row[O_AGENT], oid
            fill[T_BUYER], fill[T_BUY_ORDER] = orders[resting, O_AGENT], resting
        book_state[B_TAPE_LEN] = t + 1
        book_state[B_LAST_PRICE] = best
        n_fills += 1
        row[O_QTY] -= qty
        if qty == orders[resting, O_QTY]:
            _unlink(orders, levels, book_state, agent_head, resting)
            orders[resting, O_QTY] = 0
        else:
            orders[resting, O_QTY] -= qty
            levels[opp, best, L_SIZE] -= qty
    return n_fills


@njit(cache=True)
def execute_limit(orders, levels, book_state, agent_head, tape, oid, time):
    """A limit order arrives: match what crosses, rest the remainder. Returns fills made."""
    n_fills = _match(orders, levels, book_state, agent_head, tape, oid, orders[oid, O_PRICE], time)
    if orders[oid, O_QTY] > 0:
        _rest(orders, levels, book_state, agent_head, oid, time)
    else:
        orders[oid, O_STATUS] = DONE
        orders[oid, O_TIME] = time
    return n_fills


@njit(cache=True)
def execute_immediate_or_cancel(orders, levels, book_state, agent_head, tape, oid, limit_price, time):
    """Match up to ``limit_price``; the unfilled rest is dropped. Returns fills made."""
    n_fills = _match(orders, levels, book_state, agent_head, tape, oid, limit_price, time)
    orders[oid, O_STATUS] = DONE
    orders[oid, O_TIME] = time
    return n_fills


@njit(cache=True)
def execute_market(orders, levels, book_state, agent_head, tape, oid, time):
    """A market order arrives: match at any price; the unfilled rest is dropped. Returns fills."""
    unbounded = levels.shape[1] if orders[oid, O_SIDE] == 0 else -1
    return execute_immediate_or_cancel(orders, levels, book_state, agent_head, tape, oid, unbounded, time)


@njit(cache=True)
def cancel_order(orders, levels, book_state, agent_head, oid):
    """Cancel a resting order; returns the cancelled size (0 if it was not resting)."""
    if oid < 0 or oid >= book_state[B_NEXT_ORDER]:
        return 0
    if orders[oid, O_STATUS] == PENDING:
        orders[oid, O_STATUS] = DONE
        return orders[oid, O_QTY]
    if orders[oid, O_STATUS] != RESTING:
        return 0
    qty = orders[oid, O_QTY]
    _unlink(orders, levels, book_state, agent_head, oid)
    return qty


@njit(cache=True)
def cancel_agent_orders(orders, levels, book_state, agent_head, agent):
    """Cancel every resting order of ``agent``; returns how many were cancelled."""
    n = 0
    while agent_head[agent] >= 0:
        _unlink(orders, levels, book_state, agent_head, agent_head[agent])
        n += 1
    return n


@njit(cache=True)
def modify_order(orders, levels, book_state, agent_head, tape, oid, new_price, new_qty, time):
    """Change a resting order's price and/or size; returns the fills a repriced order makes.

    A pure size reduction keeps time priority. A size increase or a price change loses it:
    the order leaves its level and arrives again at ``time`` (and may trade if it now crosses).
    ``new_qty <= 0`` cancels the order.
    """
    if oid < 0 or oid >= book_state[B_NEXT_ORDER] or orders[oid, O_STATUS] != RESTING:
        return 0
    if new_qty <= 0:
        _unlink(orders, levels, book_state, agent_head, oid)
        return 0
    row = orders[oid]
    if new_price == row[O_PRICE] and new_qty <= row[O_QTY]:
        levels[row[O_SIDE], row[O_PRICE], L_SIZE] -= row[O_QTY] - new_qty
        row[O_QTY] = new_qty
        return 0
    _unlink(orders, levels, book_state, agent_head, oid)
    row[O_PRICE] = new_price
    row[O_QTY] = new_qty
    return execute_limit(orders, levels, book_state, agent_head, tape, oid, time)


@njit(cache=True)
def fill_depth(levels, book_state, k, out):
    """Write the best ``k`` populated levels per side into ``out[side, level, (price, size)]``.

    Missing levels are (-1, 0). Bids descend from the best bid, asks ascend from the best ask.
    """
    out[:, :, 0] = -1
    out[:, :, 1] = 0
    n_prices = levels.shape[1]
    for s in range(2):
        p = book_state[B_BEST_BID + s]
        step = -1 if s == 0 else 1
        found = 0
        while p >= 0 and p < n_prices and found < k:
            if levels[s, p, L_COUNT] > 0:
                out[s, found, 0] = p
                out[s, found, 1] = levels[s, p, L_SIZE]
                found += 1
            p += step


@njit(cache=True)
def integrity_code(orders, levels, book_state):
    """0 if every book invariant holds, else a key of ``INTEGRITY_MESSAGES``."""
    n_prices = levels.shape[1]
    best = np.full(2, -1, dtype=np.int64)
    for s in range(2):
        n_side = 0
        for p in range(n_prices):
            count = levels[s, p, L_COUNT]
            oid = levels[s, p, L_HEAD]
            if count == 0:
                if oid >= 0 or levels[s, p, L_SIZE] != 0:
                    return 5
                continue
            if s == 0 or best[1] < 0:
                best[s] = p
            size = 0
            seen = 0
            prev = -1
            last_time = -1
            while oid >= 0:
                row = orders[oid]
                if row[O_STATUS] != RESTING or row[O_PREV] != prev:
                    return 5
                if row[O_PRICE] != p or row[O_SIDE] != s:
                    return 7
                if row[O_QTY] <= 0:
                    return 2
                if row[O_TIME] < last_time:
                    return 4
                last_time = row[O_TIME]
                size += row[O_QTY]
                seen += 1
                prev = oid
                oid = row[O_NEXT]
            if seen != count or levels[s, p, L_TAIL] != prev:
                return 5
            if size != levels[s, p, L_SIZE]:
                return 3
            n_side += seen
        if n_side != book_state[B_N_BIDS + s]:
            return 5
    if best[0] != book_state[B_BEST_BID] or best[1] != book_state[B_BEST_ASK]:
        return 6
    if best[0] >= 0 and best[1] >= 0 and best[0] >= best[1]:
        return 1
    return 0


def raise_if_broken(orders: np.ndarray, levels: np.ndarray, book_state: np.ndarray) -> None:
    """Raise :class:`BookIntegrityError` naming the first broken invariant."""
    code = integrity_code(orders, levels, book_state)
    if code:
        raise BookIntegrityError(INTEGRITY_MESSAGES[code])


class OrderBook:
    """A standalone order book over the numba engine; orders take effect immediately.

    Sides are ``BUY`` (+1) and ``SELL`` (-1); prices are ticks in 1 .. price_levels-1.
    Every submission returns ``(order_id, fills)`` with fills as a list of tape-row dicts.
    """

    def __init__(self, price_levels: int = 1_000, n_agents: int = 16):
        self.orders, self.levels, self.state, self.agent_head, self.tape = allocate_book(price_levels, n_agents)

    def _prepare(self, qty: int) -> None:
        self.orders = grow_rows(self.orders, 1, int(self.state[B_NEXT_ORDER]))
        self.tape = grow_rows(self.tape, qty, int(self.state[B_TAPE_LEN]))

    def _validate(self, side: int, price: int | None, qty: int) -> None:
        if side not in (BUY, SELL):
            raise OrderError(f"side must be +1 (buy) or -1 (sell), got {side}")
        if qty <= 0:
            raise OrderError(f"qty must be a positive number of shares, got {qty}")
        if price is not None and not 1 <= price < self.levels.shape[1]:
            raise OrderError(f"price {price} outside the grid 1..{self.levels.shape[1] - 1} ticks")

    def _fills_since(self, start: int) -> list[dict[str, int]]:
        rows = self.tape[start:int(self.state[B_TAPE_LEN])]
        return [dict(zip(TAPE_COLUMNS, (int(v) for v in row))) for row in rows]

    def limit(self, side: int, price: int, qty: int, agent: int = 0, time: int = 0) -> tuple[int, list]:
        self._validate(side, price, qty)
        self._prepare(qty)
        start = int(self.state[B_TAPE_LEN])
        oid = new_order(self.orders, self.state, side, price, qty, agent)
        execute_limit(self.orders, self.levels, self.state, self.agent_head, self.tape, oid, time)
        return oid, self._fills_since(start)

    def market(self, side: int, qty: int, agent: int = 0, time: int = 0) -> tuple[int, list]:
        self._validate(side, None, qty)
        self._prepare(qty)
        start = int(self.state[B_TAPE_LEN])
        oid = new_order(self.orders, self.state, side, 0, qty, agent)
        execute_market(self.orders, self.levels, self.state, self.agent_head, self.tape, oid, time)
        return oid, self._fills_since(start)

    def cancel(self, order_id: int) -> int:
        """Cancelled size (0 when the order was not resting)."""
        return int(cancel_order(self.orders, self.levels, self.state, self.agent_head, order_id))

    def cancel_agent(self, agent: int) -> int:
        return int(cancel_agent_orders(self.orders, self.levels, self.state, self.agent_head, agent))

    def modify(self, order_id: int, price: int, qty: int, time: int = 0) -> list:
        self._prepare(max(qty, 1))
        start = int(self.state[B_TAPE_LEN])
        modify_order(self.orders, self.levels, self.state, self.agent_head, self.tape, order_id, price, qty, time)
        return self._fills_since(start)

    def remaining(self, order_id: int) -> int:
        """Unfilled size of a resting order, 0 once it is filled or cancelled."""
        return int(self.orders[order_id, O_QTY]) if self.orders[order_id, O_STATUS] == RESTING else 0

    def best_bid_ask(self) -> tuple[int | None, int | None]:
        bid, ask = int(self.state[B_BEST_BID]), int(self.state[B_BEST_ASK])
        return (bid if bid >= 0 else None), (ask if ask >= 0 else None)

    def depth(self, k: int) -> dict[str, list[tuple[int, int]]]:
        """``{"bids": [(price, size), ...], "asks": [...]}``, best first, populated levels only."""
        out = np.empty((2, k, 2), dtype=np.int64)
        fill_depth(self.levels, self.state, k, out)
        return {name: [(int(p), int(q)) for p, q in out[s] if p >= 0] for s, name in enumerate(("bids", "asks"))}

    def level_orders(self, side: int, price: int) -> list[tuple[int, int]]:
        """The (order_id, remaining size) queue at one level, first in priority first."""
        s = 0 if side == BUY else 1
        queue, oid = [], int(self.levels[s, price, L_HEAD])
        while oid >= 0:
            queue.append((oid, int(self.orders[oid, O_QTY])))
            oid = int(self.orders[oid, O_NEXT])
        return queue

    def check_integrity(self) -> None:
        raise_if_broken(self.orders, self.levels, self.state)

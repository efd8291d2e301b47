"""The compiled event loop: pop the earliest message, apply it, repeat until a time bound.

:func:`run_events` stops early with a ``NEED_*`` status when an array lacks room for the next
event; the caller grows that array and calls again, so the loop never writes out of bounds and
resuming gives exactly the same stream as an uninterrupted run.

Book snapshots (depth ``SNAPSHOT_DEPTH`` per side plus the last trade price) are recorded at
``start + i * interval`` and show the book after every event at or before that time.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from rlexec.market.agents import P_MM_GROWTH, P_MM_LEVELS, P_MM_SPACING, P_N_PRICES, P_START_NS, wake
from rlexec.market.book import (B_LAST_PRICE, B_NEXT_ORDER, B_TAPE_LEN, O_AGENT, O_STATUS, PENDING, T_AGGRESSOR,
                                T_BUYER, T_QTY, T_SELLER, cancel_agent_orders, cancel_order, execute_immediate_or_cancel,
                                execute_limit, execute_market, fill_depth, modify_order, new_order)
from rlexec.market.events import (CANCEL, CANCEL_ALL, H_AGENT, H_AUX, H_KIND, H_ORDER, H_PRICE, H_QTY, H_SIDE,
                                  H_TIME, K_BUY_VOLUME, K_EVENTS, K_HEAP_SIZE, K_NOW, K_SELL_VOLUME, K_SNAP_INDEX,
                                  K_VOLUME, LADDER, LIMIT, MARKET, MODIFY, WAKE, heap_pop)

DONE, NEED_ORDERS, NEED_TAPE, NEED_HEAP = 0, 1, 2, 3
HEAP_ROOM = 8
SNAPSHOT_DEPTH = 5

Snapshots = namedtuple("Snapshots", "depth last_price")
"""``depth[i, side, level, (price, size)]`` (side 0 bids, 1 asks; empty levels are (-1, 0)) and
``last_price[i]`` (-1 before the first trade) for snapshot i; zero rows = not recording."""


@njit(cache=True)
def ladder_size(touch_size, level, growth):
    return np.int64(touch_size * (1.0 + growth * level) + 0.5)


@njit(cache=True)
def _max_fills(event, params):
    """Upper bound on the trades the event can make (each trade takes at least one share)."""
    kind = event[H_KIND]
    if kind == LIMIT or kind == MARKET or kind == MODIFY:
        return event[H_QTY]
    if kind == LADDER:
        total = 0
        for level in range(np.int64(params[P_MM_LEVELS])):
            total += ladder_size(event[H_QTY], level, params[P_MM_GROWTH])
        return 2 * total
    return 0


@njit(cache=True)
def _record_fills(book, start, kstate, position):
    tape = book.tape
    for t in range(start, book.state[B_TAPE_LEN]):
        qty = tape[t, T_QTY]
        position[tape[t, T_BUYER]] += qty
        position[tape[t, T_SELLER]] -= qty
        kstate[K_VOLUME] += qty
        if tape[t, T_AGGRESSOR] > 0:
            kstate[K_BUY_VOLUME] += qty
        else:
            kstate[K_SELL_VOLUME] += qty


@njit(cache=True)
def _place_ladder(book, event, params, time):
    """A market maker's quotes arrive: ``n_levels`` bids down from H_PRICE, asks up from H_AUX."""
    levels = np.int64(params[P_MM_LEVELS])
    spacing = np.int64(params[P_MM_SPACING])
    n_prices = np.int64(params[P_N_PRICES])
    agent = event[H_AGENT]
    for side in (1, -1):
        top = event[H_PRICE] if side > 0 else event[H_AUX]
        for level in range(levels):
            price = top - side * level * spacing
            if price < 1 or price >= n_prices:
                break
            qty = ladder_size(event[H_QTY], level, params[P_MM_GROWTH])
            oid = new_order(book.orders, book.state, side, price, qty, agent)
            execute_limit(book.orders, book.levels, book.state, book.agent_head, book.tape, oid, time)


@njit(cache=True)
def _owned(book, event):
    oid = event[H_ORDER]
    return 0 <= oid < book.state[B_NEXT_ORDER] and book.orders[oid, O_AGENT] == event[H_AGENT]


@njit(cache=True)
def _apply_message(event, book, params):
    """Carry out one exchange message at its arrival time."""
    kind = event[H_KIND]
    time = event[H_TIME]
    if kind == LIMIT:
        if book.orders[event[H_ORDER], O_STATUS] == PENDING:
            execute_limit(book.orders, book.levels, book.state, book.agent_head, book.tape, event[H_ORDER], time)
    elif kind == MARKET:
        oid = new_order(book.orders, book.state, event[H_SIDE], event[H_PRICE], event[H_QTY], event[H_AGENT])
        if event[H_PRICE] > 0:
            execute_immediate_or_cancel(book.orders, book.levels, book.state, book.agent_head, book.tape, oid,
                                        event[H_PRICE], time)
        else:
            execute_market(book.orders, book.levels, book.state, book.agent_head, book.tape, oid, time)
    elif kind == CANCEL:
        if _owned(book, event):
            cancel_order(book.orders, book.levels, book.state, book.agent_head, event[H_ORDER])
    elif kind == MODIFY:
        if _owned(book, event):
            modify_order(book.orders, book.levels, book.state, book.agent_head, book.tape, event[H_ORDER],
                         event[H_PRICE], event[H_QTY], time)
    elif kind == CANCEL_ALL:
        cancel_agent_orders(book.orders, book.levels, book.state, book.agent_head, event[H_AGENT])
    elif kind == LADDER:
        _place_ladder(book, event, params, time)


@njit(cache=True)
def _record_snapshots(book, snaps, kstate, params, interval_ns, until):
    """Fill every snapshot due at or before ``until``."""
    i = kstate[K_SNAP_INDEX]
    start = np.int64(params[P_START_NS])
    while i < snaps.last_price.size and start + i * interval_ns <= until:
        fill_depth(book.levels, book.state, SNAPSHOT_DEPTH, snaps.depth[i])
        snaps.last_price[i] = book.state[B_LAST_PRICE]
        i += 1
    kstate[K_SNAP_INDEX] = i


@njit(cache=True)
def _room_status(book, queue, params, next_event):
    if book.orders.shape[0] - book.state[B_NEXT_ORDER] < 2 * np.int64(params[P_MM_LEVELS]) + 4:
        return NEED_ORDERS
    if queue.heap.shape[0] - queue.kstate[K_HEAP_SIZE] < HEAP_ROOM:
        return NEED_HEAP
    if book.tape.shape[0] - book.state[B_TAPE_LEN] < _max_fills(next_event, params):
        return NEED_TAPE
    return DONE


@njit(cache=True)
def run_events(t_end, book, queue, pop, params, fundamental, snaps, snapshot_interval_ns, rng, event):
    """Process every event with time <= ``t_end``; returns DONE or the NEED_* status that stopped it."""
    heap, kstate = queue.heap, queue.kstate
    while kstate[K_HEAP_SIZE] > 0 and heap[0, H_TIME] <= t_end:
        _record_snapshots(book, snaps, kstate, params, snapshot_interval_ns, heap[0, H_TIME] - 1)
        status = _room_status(book, queue, params, heap[0])
        if status != DONE:
            return status
        heap_pop(heap, kstate, event)
        kstate[K_NOW] = event[H_TIME]
        kstate[K_EVENTS] += 1
        if event[H_KIND] == WAKE:
            wake(event[H_AGENT], book, queue, pop, params, fundamental, rng)
        else:
            first_fill = book.state[B_TAPE_LEN]
            _apply_message(event, book, params)
            _record_fills(book, first_fill, kstate, pop.position)
    _record_snapshots(book, snaps, kstate, params, snapshot_interval_ns, t_end)
    kstate[K_NOW] = max(kstate[K_NOW], t_end)
    return DONE

"""The event queue: a binary min-heap of messages ordered by (time, sequence number).

Each heap row is a whole message (``H_*`` fields), so there is no separate message pool.
A wake-up is a message an agent sends itself; every other message goes through the latency
model in :func:`send`. The sequence number breaks ties between equal times in send order, so
the event stream is a pure function of the seed. A message from the external agent takes a
number too; numbers only rank messages, so it shifts the numbers of later background messages
without changing their order among themselves.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

# heap[row, field]
H_TIME, H_SEQ, H_KIND, H_AGENT, H_SIDE, H_PRICE, H_QTY, H_ORDER, H_AUX = range(9)
N_HEAP_FIELDS = 9

# H_KIND values. A MARKET message with H_PRICE > 0 is immediate-or-cancel at that limit price.
WAKE, LIMIT, MARKET, CANCEL, MODIFY, CANCEL_ALL, LADDER = range(7)

# kstate[field]: the clock and market-wide counters agents may read
K_NOW, K_SEQ, K_HEAP_SIZE, K_VOLUME, K_BUY_VOLUME, K_SELL_VOLUME, K_SNAP_INDEX, K_EVENTS = range(8)
N_KSTATE_FIELDS = 8

Queue = namedtuple("Queue", "heap kstate")
"""The pending messages (heap rows) and the clock/counters (``K_*``)."""


def allocate_queue(capacity: int, start_ns: int) -> Queue:
    """An empty queue with the clock at ``start_ns``."""
    kstate = np.zeros(N_KSTATE_FIELDS, dtype=np.int64)
    kstate[K_NOW] = start_ns
    return Queue(heap=np.zeros((capacity, N_HEAP_FIELDS), dtype=np.int64), kstate=kstate)


@njit(cache=True)
def _earlier(heap, i, time, seq):
    return heap[i, H_TIME] < time or (heap[i, H_TIME] == time and heap[i, H_SEQ] < seq)


@njit(cache=True)
def _copy_row(heap, dst, src):
    for f in range(N_HEAP_FIELDS):
        heap[dst, f] = heap[src, f]


@njit(cache=True)
def heap_push(heap, kstate, time, kind, agent, side, price, qty, order, aux):
    """Queue a message for ``time``; the caller guarantees a free heap row."""
    i = kstate[K_HEAP_SIZE]
    kstate[K_HEAP_SIZE] = i + 1
    seq = kstate[K_SEQ]
    kstate[K_SEQ] = seq + 1
    while i > 0:
        parent = (i - 1) // 2
        if _earlier(heap, parent, time, seq):
            break
        _copy_row(heap, i, parent)
        i = parent
    row = heap[i]
    row[H_TIME] = time
    row[H_SEQ] = seq
    row[H_KIND] = kind
    row[H_AGENT] = agent
    row[H_SIDE] = side
    row[H_PRICE] = price
    row[H_QTY] = qty
    row[H_ORDER] = order
    row[H_AUX] = aux


@njit(cache=True)
def heap_pop(heap, kstate, event):
    """Move the earliest message into ``event`` (a length-N_HEAP_FIELDS array)."""
    for f in range(N_HEAP_FIELDS):
        event[f] = heap[0, f]
    size = kstate[K_HEAP_SIZE] - 1
    kstate[K_HEAP_SIZE] = size
    if size == 0:
        return
    time, seq = heap[size, H_TIME], heap[size, H_SEQ]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and _earlier(heap, child + 1, heap[child, H_TIME], heap[child, H_SEQ]):
            child += 1
        if _earlier(heap, child, time, seq):
            _copy_row(heap, i, child)
            i = child
        else:
            break
    _copy_row(heap, i, size)


@njit(cache=True)
def schedule_wake(heap, kstate, agent, time):
    heap_push(heap, kstate, time, WAKE, agent, 0, 0, 0, -1, 0)


@njit(cache=True)
def schedule_wakes(heap, kstate, agents, times):
    for i in range(agents.size):
        schedule_wake(heap, kstate, agents[i], times[i])


@njit(cache=True)
def send(heap, kstate, delays, last_arrival, jitter_mean_ns, rng, agent, kind, side, price, qty, order, aux):
    """Send a message to the exchange from ``agent`` now; it arrives after the agent's latency.

    Arrival times of one agent never decrease, so its messages are handled in send order.
    """
    arrival = kstate[K_NOW] + delays[agent]
    if jitter_mean_ns > 0:
        arrival += np.int64(rng.exponential(jitter_mean_ns))
    if arrival < last_arrival[agent]:
        arrival = last_arrival[agent]
    last_arrival[agent] = arrival
    heap_push(heap, kstate, arrival, kind, agent, side, price, qty, order, aux)

"""Event queue ordering and latency."""

from __future__ import annotations

import numpy as np

from rlexec.market.events import (H_AGENT, H_SEQ, H_TIME, K_HEAP_SIZE, K_NOW, LIMIT, N_HEAP_FIELDS, allocate_queue,
                                  heap_pop, heap_push, send)


def _drain(queue):
    event = np.zeros(N_HEAP_FIELDS, dtype=np.int64)
    out = []
    while queue.kstate[K_HEAP_SIZE]:
        heap_pop(queue.heap, queue.kstate, event)
        out.append(event.copy())
    return out


def test_heap_pops_by_time_then_send_order():
    queue = allocate_queue(64, 0)
    rng = np.random.default_rng(3)
    times = rng.integers(0, 20, 50)
    for i, t in enumerate(times):
        heap_push(queue.heap, queue.kstate, t, LIMIT, i, 0, 0, 0, -1, 0)
    popped = _drain(queue)
    keys = [(e[H_TIME], e[H_SEQ]) for e in popped]
    assert keys == sorted(keys)
    assert [e[H_AGENT] for e in popped] == sorted(range(50), key=lambda i: (times[i], i))


def test_latency_delays_messages_and_keeps_each_agents_order():
    queue = allocate_queue(64, 1_000)
    delays = np.array([500, 50], dtype=np.int64)
    last_arrival = np.zeros(2, dtype=np.int64)
    rng = np.random.default_rng(0)
    for i in range(20):
        send(queue.heap, queue.kstate, delays, last_arrival, 300.0, rng, i % 2, LIMIT, 1, 100, 1, i, 0)
    popped = _drain(queue)
    assert all(e[H_TIME] >= 1_000 + delays[e[H_AGENT]] for e in popped)
    for agent in (0, 1):
        orders = [e[7] for e in popped if e[H_AGENT] == agent]
        assert orders == sorted(orders)
    assert queue.kstate[K_NOW] == 1_000

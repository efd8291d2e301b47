"""Matching-engine behaviour on hand-built books."""

from __future__ import annotations

import numpy as np
import pytest

from rlexec.errors import OrderError
from rlexec.market.book import (B_BEST_BID, B_LAST_PRICE, BUY, L_SIZE, O_QTY, O_TIME, SELL, BookIntegrityError,
                                OrderBook, _rest, new_order)


def test_book_dsl_builds_full_depth(book_with):
    book = book_with(bids=[(100, [30, 40]), (99, [10])], asks=[(101, [50]), (103, [5, 6])])
    assert book.depth(5) == {"bids": [(100, 70), (99, 10)], "asks": [(101, 50), (103, 11)]}
    assert book.best_bid_ask() == (100, 101)
    assert [size for _, size in book.level_orders(BUY, 100)] == [30, 40]


def test_price_time_priority_fills_oldest_order_at_best_price_first(book_with):
    book = book_with(asks=[(101, [30, 40]), (102, [100])])
    first, second = [oid for oid, _ in book.level_orders(SELL, 101)]
    _, fills = book.market(BUY, 50, agent=9, time=10)
    assert [(f["sell_order_id"], f["price_ticks"], f["qty"]) for f in fills] == [(first, 101, 30), (second, 101, 20)]
    assert book.level_orders(SELL, 101) == [(second, 20)]
    assert book.depth(5)["asks"] == [(101, 20), (102, 100)]


def test_better_price_beats_earlier_time(book_with):
    book = book_with(bids=[(100, [10])])
    better, _ = book.limit(BUY, 101, 10, agent=2, time=5)
    _, fills = book.market(SELL, 10, agent=3, time=6)
    assert [(f["buy_order_id"], f["price_ticks"]) for f in fills] == [(better, 101)]


def test_partial_fill_of_incoming_limit_rests_the_remainder(book_with):
    book = book_with(asks=[(101, [30])])
    oid, fills = book.limit(BUY, 101, 50, agent=7, time=9)
    assert [(f["qty"], f["buyer_id"], f["aggressor_side"]) for f in fills] == [(30, 7, BUY)]
    assert book.remaining(oid) == 20
    assert book.depth(5) == {"bids": [(101, 20)], "asks": []}
    book.check_integrity()


def test_partial_fill_of_resting_order_keeps_its_priority(book_with):
    book = book_with(bids=[(100, [30, 40])])
    first, second = [oid for oid, _ in book.level_orders(BUY, 100)]
    book.market(SELL, 10)
    assert book.level_orders(BUY, 100) == [(first, 20), (second, 40)]


def test_market_order_walks_several_levels(book_with):
    book = book_with(asks=[(101, [10]), (102, [20]), (104, [30])])
    _, fills = book.market(BUY, 45)
    assert [(f["price_ticks"], f["qty"]) for f in fills] == [(101, 10), (102, 20), (104, 15)]
    assert book.depth(5)["asks"] == [(104, 15)]
    assert book.state[B_LAST_PRICE] == 104


def test_marketable_limit_stops_at_its_limit_price(book_with):
    book = book_with(asks=[(101, [10]), (103, [20])])
    oid, fills = book.limit(BUY, 102, 25)
    assert [(f["price_ticks"], f["qty"]) for f in fills] == [(101, 10)]
    assert book.depth(5) == {"bids": [(102, 15)], "asks": [(103, 20)]}
    assert book.remaining(oid) == 15


def test_market_order_into_empty_side_does_nothing(book_with):
    book = book_with(bids=[(100, [30])])
    _, fills = book.market(BUY, 10)
    assert fills == []
    assert book.depth(5) == {"bids": [(100, 30)], "asks": []}
    book.check_integrity()


def test_market_order_larger_than_the_book_fills_what_exists(book_with):
    book = book_with(asks=[(101, [10]), (102, [5])])
    _, fills = book.market(BUY, 100)
    assert sum(f["qty"] for f in fills) == 15
    assert book.best_bid_ask() == (None, None)


def test_cancel_removes_order_and_updates_best(book_with):
    book = book_with(bids=[(100, [30]), (99, [10])])
    (oid, _), = book.level_orders(BUY, 100)
    assert book.cancel(oid) == 30
    assert book.depth(5)["bids"] == [(99, 10)]
    assert book.cancel(oid) == 0
    book.check_integrity()


def test_cancel_agent_orders_removes_only_that_agent(book_with):
    book = book_with(bids=[(100, [30])])
    book.limit(BUY, 99, 5, agent=40)
    book.limit(SELL, 105, 6, agent=40)
    assert book.cancel_agent(40) == 2
    assert book.depth(5) == {"bids": [(100, 30)], "asks": []}


def test_modify_size_down_keeps_priority(book_with):
    book = book_with(bids=[(100, [30, 40])])
    first, second = [oid for oid, _ in book.level_orders(BUY, 100)]
    assert book.modify(first, 100, 10, time=50) == []
    assert book.level_orders(BUY, 100) == [(first, 10), (second, 40)]
    assert book.depth(1)["bids"] == [(100, 50)]


def test_modify_size_up_loses_priority(book_with):
    book = book_with(bids=[(100, [30, 40])])
    first, second = [oid for oid, _ in book.level_orders(BUY, 100)]
    book.modify(first, 100, 35, time=50)
    assert book.level_orders(BUY, 100) == [(second, 40), (first, 35)]


def test_modify_price_moves_order_to_back_of_new_level(book_with):
    book = book_with(bids=[(100, [30]), (99, [20])])
    (oid, _), = book.level_orders(BUY, 100)
    book.modify(oid, 99, 30, time=50)
    assert [q for _, q in book.level_orders(BUY, 99)] == [20, 30]
    assert book.depth(5)["bids"] == [(99, 50)]
    book.check_integrity()


def test_modify_to_a_crossing_price_trades(book_with):
    book = book_with(bids=[(100, [30])], asks=[(102, [10])])
    (oid, _), = book.level_orders(BUY, 100)
    fills = book.modify(oid, 102, 30, time=50)
    assert [(f["price_ticks"], f["qty"], f["buy_order_id"]) for f in fills] == [(102, 10, oid)]
    assert book.depth(5) == {"bids": [(102, 20)], "asks": []}


def test_invalid_orders_are_rejected_with_a_reason():
    book = OrderBook(price_levels=200)
    with pytest.raises(OrderError, match="qty"):
        book.limit(BUY, 100, 0)
    with pytest.raises(OrderError, match="price"):
        book.limit(BUY, 500, 1)
    with pytest.raises(OrderError, match="side"):
        book.market(0, 1)


def test_check_integrity_passes_on_random_activity():
    rng = np.random.default_rng(0)
    book = OrderBook(price_levels=300, n_agents=8)
    live = []
    for step in range(3_000):
        action = rng.random()
        if action < 0.55:
            side = BUY if rng.random() < 0.5 else SELL
            oid, _ = book.limit(side, int(150 + rng.integers(-10, 11)), int(rng.integers(1, 50)),
                                agent=int(rng.integers(0, 8)), time=step)
            live.append(oid)
        elif action < 0.7:
            book.market(BUY if rng.random() < 0.5 else SELL, int(rng.integers(1, 80)), time=step)
        elif action < 0.85 and live:
            book.cancel(live.pop(int(rng.integers(len(live)))))
        elif live:
            oid = live[int(rng.integers(len(live)))]
            book.modify(oid, int(150 + rng.integers(-10, 11)), int(rng.integers(0, 50)), time=step)
        book.check_integrity()
    bid, ask = book.best_bid_ask()
    assert bid is not None and ask is not None and bid < ask


@pytest.mark.parametrize("corrupt, message", [
    (lambda book, oid: book.orders.__setitem__((oid, O_QTY), 0), "zero"),
    (lambda book, oid: book.levels.__setitem__((0, 100, L_SIZE), 999), "sum"),
    (lambda book, oid: book.state.__setitem__(B_BEST_BID, 102), "best"),
])
def test_check_integrity_detects_corruption(book_with, corrupt, message):
    book = book_with(bids=[(100, [30])], asks=[(101, [50])])
    (oid, _), = book.level_orders(BUY, 100)
    corrupt(book, oid)
    with pytest.raises(BookIntegrityError, match=message):
        book.check_integrity()


def test_check_integrity_detects_fifo_breach(book_with):
    book = book_with(bids=[(100, [30, 40])], asks=[(101, [50])])
    first, second = [oid for oid, _ in book.level_orders(BUY, 100)]
    book.orders[first, O_TIME], book.orders[second, O_TIME] = 9, 1
    with pytest.raises(BookIntegrityError, match="arrival order"):
        book.check_integrity()


def test_check_integrity_detects_crossed_book(book_with):
    book = book_with(bids=[(100, [30])], asks=[(101, [50])])
    # Resting a bid above the ask without matching is only possible by bypassing the engine.
    oid = new_order(book.orders, book.state, BUY, 102, 5, 1)
    _rest(book.orders, book.levels, book.state, book.agent_head, oid, 99)
    with pytest.raises(BookIntegrityError, match="crossed"):
        book.check_integrity()

"""Historical LOBSTER order-book days as a market venue for the execution environment.

Files (Huang & Polak 2011; format in ``../shared/data/README.md``): a message file (time in seconds
after midnight, type, order id, size, price in USD x 10000, direction) and an order-book file whose
row k is the book after message k (ask price, ask size, bid price, bid size per level; empty levels
padded with +-9999999999 and size 0). Message types: 1 submit, 2 partial cancel, 3 delete,
4 visible execution, 5 hidden execution, 7 trading halt.

:class:`LobsterReplay` offers the same venue interface as
:class:`rlexec.market.simulator.MarketSimulator` (``run_until``, ``submit_limit``, ``submit_market``,
``cancel_all_external``, ``drain_external_fills``, ``best_bid_ask``, ``depth``, ``vwap_between``...)
so one execution environment runs on both. The replayed market does not react to the agent.

Queue-position approximation (how the agent's orders fill against history):

* A limit order that does not cross rests behind the displayed size at its price when it arrives
  (``queue_ahead``; 0 when it improves on the best price; the whole displayed side when its price is
  deeper than the file's levels).
* A visible execution (type 4) against resting orders of the agent's side at the agent's price
  first consumes ``queue_ahead``, then fills the agent. One at a *worse* price (a trade through the
  agent's level) fills the agent up to the execution's size at the agent's price.
* A cancellation (types 2, 3) at the agent's price removes ``size * queue_ahead / level size`` from
  the queue ahead: cancellations are assumed to fall evenly over the queue (an expected-value queue
  model). Hidden executions (type 5) leave the queue as it is.
* A marketable order (market, or a limit that crosses) takes the displayed opposite depth
  immediately, level by level, and anything beyond it is cancelled (immediate-or-cancel); displayed
  size the agent has already taken is not available again until the replay changes that level.
* The agent's orders take effect at once (no latency) and never alter the replayed book.

Size cap: :func:`read_lobster` refuses an archive whose CSVs uncompress to more than ``max_bytes``
(:data:`MAX_UNCOMPRESSED_BYTES` by default), so that a zip bomb fails with a clear error instead of
exhausting memory.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from rlexec.errors import ConfigError, DataFileError, OrderError
from rlexec.market.simulator import BookDepth, Fills

BUY, SELL = 1, -1
PRICE_SCALE = 10_000  # LOBSTER prices are USD x 10000
TICK_SIZE = 0.01  # USD; LOBSTER book levels of these stocks sit on whole cents
NS = 1_000_000_000
EMPTY_LEVEL = 9_999_999_999
SAMPLE_REPLAY = Path(__file__).with_name("sample") / "LOBSTER_SampleFile_AMZN_2012-06-21_1_0930-1000.zip"
SUBMIT, PARTIAL_CANCEL, DELETE, EXECUTE_VISIBLE, EXECUTE_HIDDEN, HALT = 1, 2, 3, 4, 5, 7
MESSAGE_TYPES = (SUBMIT, PARTIAL_CANCEL, DELETE, EXECUTE_VISIBLE, EXECUTE_HIDDEN, HALT)
# rlexec default, not from LOBSTER: the most a LOBSTER zip's CSVs may uncompress to, together. The shipped
# sample (AMZN, level 1) is 320 KB per 30 minutes (40 bytes a message row, 23 a book row); at level 10
# a book row is about 10 x 23 bytes, so a full 6.5-hour day of that stock is about 13 x 5,024 x 273 bytes
# = 18 MB. 1 GiB leaves over 50 times that for far busier tickers, and still stops a zip bomb.
MAX_UNCOMPRESSED_BYTES = 1 << 30
_READ_CHUNK = 1 << 20  # bytes decompressed per read: at most this much past the cap is ever held


@dataclass(frozen=True)
class LobsterDay:
    """One day of messages and the book after each; prices in ticks (``TICK_SIZE``), -1 = empty level."""

    symbol: str
    date: str
    levels: int
    time_ns: np.ndarray  # (M,) ns since midnight
    kind: np.ndarray  # (M,) message type
    order_id: np.ndarray
    size: np.ndarray  # (M,) shares
    price: np.ndarray  # (M,) float ticks (hidden executions may sit between ticks)
    direction: np.ndarray  # (M,) +1 buy order, -1 sell order (for executions: the resting order's side)
    ask_price: np.ndarray  # (M, levels) int ticks after each message, -1 if empty
    ask_size: np.ndarray
    bid_price: np.ndarray
    bid_size: np.ndarray

    def __len__(self) -> int:
        return int(self.time_ns.size)

    @property
    def is_trade(self) -> np.ndarray:
        return (self.kind == EXECUTE_VISIBLE) | (self.kind == EXECUTE_HIDDEN)


def _parse(text: str, columns: int, source: str) -> np.ndarray:
    try:
        values = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DataFileError(source, f"not a numeric LOBSTER CSV ({exc})") from None
    if values.shape[1] != columns:
        raise DataFileError(source, f"expected {columns} columns, found {values.shape[1]}")
    return values


def _first_bad(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def read_lobster(path: str | Path, *, max_bytes: int = MAX_UNCOMPRESSED_BYTES) -> LobsterDay:
    """Read a LOBSTER sample zip (``LOBSTER_SampleFile_<T>_<date>_<L>.zip``) holding one message and
    one order-book file. Errors name the file inside the zip, the line and the field.

    ``max_bytes`` caps what the two CSVs may uncompress to together (default
    :data:`MAX_UNCOMPRESSED_BYTES`, an rlexec default sized in its comment): each member's declared size
    is checked before anything is decompressed, and the decompression itself stops at the cap, so a
    member whose header understates its size cannot exceed it either.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ConfigError(f"read_lobster max_bytes must be a positive whole number of bytes, got {max_bytes!r}")
    path = Path(path)
    if not path.exists():
        raise DataFileError(str(path), "file not found")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataFileError(str(path), "not a zip file") from None
    with archive:
        names = archive.namelist()
        messages = [n for n in names if "_message_" in n and n.endswith(".csv")]
        books = [n for n in names if "_orderbook_" in n and n.endswith(".csv")]
        if len(messages) != 1 or len(books) != 1:
            raise DataFileError(str(path), f"expected one message and one orderbook CSV, found {names}")
        msg_source, book_source = f"{path}:{messages[0]}", f"{path}:{books[0]}"
        levels = int(Path(books[0]).stem.rsplit("_", 1)[-1])
        infos = [archive.getinfo(messages[0]), archive.getinfo(books[0])]
        for info in infos:
            if info.file_size > max_bytes:
                what = f"uncompresses to {info.file_size:,} bytes"
                raise DataFileError(f"{path}:{info.filename}", _over_cap(what, max_bytes))
        declared = sum(info.file_size for info in infos)
        if declared > max_bytes:
            raise DataFileError(str(path), _over_cap(f"{messages[0]} and {books[0]} uncompress to {declared:,} bytes "
                                                     "together", max_bytes))
        msg_bytes = _read_member(archive, infos[0], max_bytes, msg_source, max_bytes)
        book_bytes = _read_member(archive, infos[1], max_bytes - len(msg_bytes), book_source, max_bytes)
        msg = _parse(msg_bytes.decode(), 6, msg_source)
        book = _parse(book_bytes.decode(), 4 * levels, book_source)
    stem_parts = Path(messages[0]).stem.split("_")
    return lobster_day_from_arrays(msg, book, symbol=stem_parts[0], date=stem_parts[1],
                                   sources=(msg_source, book_source))


def _over_cap(what: str, max_bytes: int) -> str:
    return (f"{what}, over the {max_bytes:,}-byte cap on a LOBSTER archive's CSVs (a guard against zip bombs); "
            "if the file is genuine, raise it with read_lobster(path, max_bytes=...)")


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int, source: str, max_bytes: int) -> bytes:
    """The member's bytes, decompressed in chunks that stop once they pass ``budget`` (its declared
    size is only a claim: the decompressed stream is what counts)."""
    chunks, total = [], 0
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_READ_CHUNK):
                total += len(chunk)
                if total > budget:
                    raise DataFileError(source, _over_cap(f"decompresses to more than its declared {info.file_size:,} "
                                                          f"bytes, past what the cap leaves ({budget:,} bytes)",
                                                          max_bytes))
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataFileError(source, f"corrupt zip member ({exc})") from None
    return b"".join(chunks)


def lobster_day_from_arrays(msg: np.ndarray, book: np.ndarray, *, symbol: str, date: str,
                            sources: tuple[str, str] = ("messages", "orderbook")) -> LobsterDay:
    """Validate raw message (M, 6) and book (M, 4L) arrays and convert them to a :class:`LobsterDay`."""
    msg_source, book_source = sources
    if len(msg) != len(book):
        raise DataFileError(book_source, f"{len(book)} book rows for {len(msg)} messages; they must match")
    if len(msg) == 0:
        raise DataFileError(msg_source, "no messages")
    time, kind, size, price = msg[:, 0], msg[:, 1].astype(np.int64), msg[:, 3], msg[:, 4]
    if (i := _first_bad(np.diff(time) < 0)) is not None:
        raise DataFileError(msg_source, "time goes backwards", line=i + 2, field="time")
    if (i := _first_bad(~np.isin(kind, MESSAGE_TYPES))) is not None:
        raise DataFileError(msg_source, f"unknown message type {kind[i]}", line=i + 1, field="type")
    active = kind != HALT
    if (i := _first_bad(active & (size <= 0))) is not None:
        raise DataFileError(msg_source, f"non-positive size {size[i]}", line=i + 1, field="size")
    if (i := _first_bad(active & (price <= 0))) is not None:
        raise DataFileError(msg_source, f"non-positive price {price[i]}", line=i + 1, field="price")
    levels = book.shape[1] // 4
    ask_p, ask_s = book[:, 0::4], book[:, 1::4]
    bid_p, bid_s = book[:, 2::4], book[:, 3::4]
    ask_empty, bid_empty = ask_p >= EMPTY_LEVEL, bid_p <= -EMPTY_LEVEL
    crossed = ~ask_empty[:, 0] & ~bid_empty[:, 0] & (bid_p[:, 0] >= ask_p[:, 0])
    if (i := _first_bad(crossed)) is not None:
        raise DataFileError(book_source, "crossed book (bid >= ask)", line=i + 1, field="bid price 1")
    to_ticks = PRICE_SCALE * TICK_SIZE
    return LobsterDay(
        symbol=symbol, date=date, levels=levels,
        time_ns=np.rint(time * NS).astype(np.int64), kind=kind, order_id=msg[:, 2].astype(np.int64),
        size=size.astype(np.int64), price=price / to_ticks, direction=msg[:, 5].astype(np.int64),
        ask_price=np.where(ask_empty, -1, np.rint(ask_p / to_ticks)).astype(np.int64),
        ask_size=np.where(ask_empty, 0, ask_s).astype(np.int64),
        bid_price=np.where(bid_empty, -1, np.rint(bid_p / to_ticks)).astype(np.int64),
        bid_size=np.where(bid_empty, 0, bid_s).astype(np.int64),
    )


@dataclass
class _RestingOrder:
    order_id: int
    side: int
    price: int  # ticks
    remaining: int
    queue_ahead: float


class LobsterReplay:
    """A replayed LOBSTER day with one external trader; see the module docstring for the fill rules."""

    def __init__(self, day: LobsterDay):
        self.day = day
        self._next = 0  # index of the next message to replay
        self._now = int(day.time_ns[0])
        self._orders: list[_RestingOrder] = []
        self._fills: list[tuple[int, float, int, int, int]] = []
        self._taken: dict[tuple[int, int], tuple[int, int]] = {}  # (side, price) -> (level size seen, taken)
        self._order_ids = iter(range(1, 1 << 62))
        trades = day.is_trade
        self._trade_time = day.time_ns[trades]
        self._trade_price = day.price[trades]
        self._trade_size = day.size[trades]
        self._position = 0

    # ---- clock -------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self._now

    @property
    def tick_size(self) -> float:
        return TICK_SIZE

    def run_until(self, t_ns: int) -> None:
        """Replay every message with time <= ``t_ns``, filling resting agent orders on the way."""
        day = self.day
        end = int(np.searchsorted(day.time_ns, t_ns, side="right"))
        if self._orders and end > self._next:
            self._replay_against_orders(self._next, end)
        self._next = max(self._next, end)
        self._now = max(self._now, int(t_ns))

    def _replay_against_orders(self, start: int, end: int) -> None:
        day = self.day
        prices = {(o.side, o.price) for o in self._orders}
        window = slice(start, end)
        kind, direction, price = day.kind[window], day.direction[window], day.price[window]
        relevant = np.zeros(end - start, dtype=bool)
        for side, level in prices:
            mine = direction == side
            at_or_through = (price <= level) if side == BUY else (price >= level)
            relevant |= mine & at_or_through & (kind != SUBMIT) & (kind != HALT)
        for offset in np.flatnonzero(relevant):
            j = start + int(offset)
            for order in self._orders:
                if order.remaining > 0 and order.side == day.direction[j]:
                    self._apply_message(order, j)
        self._orders = [o for o in self._orders if o.remaining > 0]

    def _apply_message(self, order: _RestingOrder, j: int) -> None:
        day = self.day
        kind, size, price = int(day.kind[j]), int(day.size[j]), float(day.price[j])
        at_level = abs(price - order.price) < 1e-9
        through = (price < order.price) if order.side == BUY else (price > order.price)
        if kind == EXECUTE_VISIBLE and at_level:
            consumed_ahead = min(order.queue_ahead, size)
            order.queue_ahead -= consumed_ahead
            self._fill(order, min(order.remaining, int(size - consumed_ahead)), day.time_ns[j])
        elif kind in (EXECUTE_VISIBLE, EXECUTE_HIDDEN) and through:
            order.queue_ahead = 0.0
            self._fill(order, min(order.remaining, size), day.time_ns[j])
        elif kind in (PARTIAL_CANCEL, DELETE) and at_level and order.queue_ahead > 0:
            level_before = self._level_size(order.side, order.price, j - 1)
            if level_before > 0:
                order.queue_ahead = max(0.0, order.queue_ahead - size * order.queue_ahead / level_before)

    def _fill(self, order: _RestingOrder, qty: int, time_ns: int) -> None:
        if qty <= 0:
            return
        order.remaining -= qty
        self._fills.append((int(time_ns), float(order.price), qty, order.side, order.order_id))
        self._position += qty * order.side

    # ---- book views ----------------------------------------------------------------------------
    def _row(self) -> int:
        return max(self._next - 1, 0)

    def _level_size(self, side: int, price: int, row: int) -> int:
        row = max(row, 0)
        prices, sizes = (self.day.bid_price, self.day.bid_size) if side == BUY else (self.day.ask_price, self.day.ask_size)
        hit = np.flatnonzero(prices[row] == price)
        return int(sizes[row, hit[0]]) if hit.size else 0

    def best_bid_ask(self) -> tuple[int | None, int | None]:
        row = self._row()
        bid, ask = int(self.day.bid_price[row, 0]), int(self.day.ask_price[row, 0])
        return (bid if bid > 0 else None, ask if ask > 0 else None)

    def mid(self) -> float | None:
        bid, ask = self.best_bid_ask()
        return None if bid is None or ask is None else (bid + ask) / 2.0

    def depth(self, k: int) -> BookDepth:
        """The best ``k`` levels; levels beyond the file's depth are price -1, size 0."""
        row, day = self._row(), self.day
        out = []
        for prices, sizes in ((day.bid_price, day.bid_size), (day.ask_price, day.ask_size)):
            p = np.full(k, -1, dtype=np.int64)
            s = np.zeros(k, dtype=np.int64)
            n = min(k, day.levels)
            p[:n], s[:n] = prices[row, :n], sizes[row, :n]
            out += [p, s]
        return BookDepth(bid_prices=out[0], bid_sizes=out[1], ask_prices=out[2], ask_sizes=out[3])

    def last_trade_price(self) -> float | None:
        i = int(np.searchsorted(self._trade_time, self._now, side="right"))
        return float(self._trade_price[i - 1]) if i > 0 else None

    def _trades_between(self, t0: int, t1: int) -> slice:
        return slice(int(np.searchsorted(self._trade_time, t0, side="left")),
                     int(np.searchsorted(self._trade_time, t1, side="right")))

    def traded_volume_between(self, t0: int, t1: int) -> int:
        return int(self._trade_size[self._trades_between(t0, t1)].sum())

    def vwap_between(self, t0: int, t1: int) -> float | None:
        """Volume-weighted trade price in ticks over [t0, t1] of the historical tape."""
        window = self._trades_between(t0, t1)
        volume = self._trade_size[window].sum()
        return float((self._trade_price[window] * self._trade_size[window]).sum() / volume) if volume else None

    # ---- the external trader --------------------------------------------------------------------
    def _validate(self, side: int, qty: int) -> None:
        if side not in (BUY, SELL):
            raise OrderError(f"side must be BUY (+1) or SELL (-1), got {side}")
        if int(qty) != qty or qty <= 0:
            raise OrderError(f"order size must be a positive whole number of shares, got {qty}")

    def submit_limit(self, side: int, price_ticks: int, qty: int) -> int:
        self._validate(side, qty)
        order_id = next(self._order_ids)
        bid, ask = self.best_bid_ask()
        crosses = (side == BUY and ask is not None and price_ticks >= ask) or (
            side == SELL and bid is not None and price_ticks <= bid)
        remaining = int(qty)
        if crosses:
            remaining -= self._take_liquidity(side, remaining, order_id, limit=price_ticks)
        if remaining > 0:
            self._orders.append(_RestingOrder(order_id, side, int(price_ticks), remaining,
                                              float(self._queue_ahead(side, int(price_ticks)))))
        return order_id

    def _queue_ahead(self, side: int, price: int) -> int:
        depth = self.depth(self.day.levels)
        prices, sizes = (depth.bid_prices, depth.bid_sizes) if side == BUY else (depth.ask_prices, depth.ask_sizes)
        if prices[0] < 0 or (price > prices[0] if side == BUY else price < prices[0]):
            return 0  # a new best price: first in the queue
        hit = np.flatnonzero(prices == price)
        return int(sizes[hit[0]]) if hit.size else int(sizes.sum())

    def submit_market(self, side: int, qty: int) -> int:
        self._validate(side, qty)
        order_id = next(self._order_ids)
        self._take_liquidity(side, int(qty), order_id, limit=None)
        return order_id

    def _take_liquidity(self, side: int, qty: int, order_id: int, limit: int | None) -> int:
        depth = self.depth(self.day.levels)
        prices, sizes = (depth.ask_prices, depth.ask_sizes) if side == BUY else (depth.bid_prices, depth.bid_sizes)
        filled = 0
        for price, size in zip(prices.tolist(), sizes.tolist()):
            if price < 0 or filled >= qty:
                break
            if limit is not None and (price > limit if side == BUY else price < limit):
                break
            seen, taken = self._taken.get((side, price), (size, 0))
            available = size - taken if seen == size else size
            take = min(qty - filled, available)
            if take <= 0:
                continue
            self._taken[(side, price)] = (size, (taken if seen == size else 0) + take)
            self._fills.append((self._now, float(price), take, side, order_id))
            self._position += take * side
            filled += take
        return filled

    def cancel_all_external(self) -> None:
        self._orders.clear()

    @property
    def external_position(self) -> int:
        return self._position

    def drain_external_fills(self) -> Fills:
        fills, self._fills = self._fills, []
        if not fills:
            empty = np.zeros(0, dtype=np.int64)
            return Fills(empty, np.zeros(0), empty, empty, empty)
        t, p, q, s, o = (np.array(c) for c in zip(*fills))
        return Fills(time_ns=t.astype(np.int64), price_ticks=p.astype(np.float64), qty=q.astype(np.int64),
                     side=s.astype(np.int64), order_id=o.astype(np.int64))

    def tape(self) -> pa.Table:
        """The historical trades (visible and hidden executions)."""
        return pa.table({"time_ns": self._trade_time, "price_ticks": self._trade_price, "qty": self._trade_size})

"""Parent orders: the dataclass, reading/writing order files, and reproducible random generation.

An order file (CSV or parquet) has one row per order with the columns::

    symbol, date (YYYY-MM-DD), side (buy|sell), quantity (shares > 0), start (HH:MM, US/Eastern)

The execution window is ``[start, start + horizon)`` where the horizon comes from the environment
config (default 8 steps x 30 minutes). Checks against the market (session exists, window fits,
enough volume) happen where the market is known: :func:`rlexec.envs.engine.prepare_orders`.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rlexec.data.calendar import SESSION_MINUTES, session_clock
from rlexec.data.panel import VOLUME, MarketData
from rlexec.errors import OrderError
from rlexec.provenance import write_atomic

SIDES = {"sell": 1, "buy": -1}  # sigma: +1 sell (liquidation), -1 buy (acquisition)
ORDER_COLUMNS = ("symbol", "date", "side", "quantity", "start")


@dataclass(frozen=True, kw_only=True)
class Order:
    """A parent order: trade ``quantity`` shares of ``symbol`` on ``date`` from session minute ``start_minute``."""

    symbol: str
    date: dt.date
    side: str  # "buy" or "sell"
    quantity: float  # shares, > 0
    start_minute: int  # minutes after 09:30 ET, 0 = the 09:30 bar

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise OrderError(f"side must be 'buy' or 'sell', got {self.side!r}")
        if not np.isfinite(self.quantity) or self.quantity <= 0:
            raise OrderError(f"quantity must be a positive number of shares, got {self.quantity!r}")
        if not 0 <= self.start_minute < SESSION_MINUTES:
            raise OrderError(f"start must be inside the 09:30-16:00 session, got minute {self.start_minute}")

    @property
    def sigma(self) -> int:
        """+1 for a sell, -1 for a buy: every advantage metric is multiplied by it."""
        return SIDES[self.side]

    @property
    def start_time(self) -> str:
        return session_clock(self.start_minute)


def _parse_start(text: str) -> int:
    hours, minutes = (int(part) for part in str(text).strip().split(":")[:2])
    return hours * 60 + minutes - (9 * 60 + 30)


def read_orders(path: str | os.PathLike) -> list[Order]:
    """Read an order file; a bad order raises :class:`OrderError` naming the file and where the order is
    (see :func:`order_file_error`)."""
    path = Path(path)
    if not path.exists():
        raise OrderError("file not found", source=str(path))
    try:
        table = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise OrderError(f"unreadable order file ({str(exc).splitlines()[0]})", source=str(path)) from None
    missing = [c for c in ORDER_COLUMNS if c not in table.column_names]
    if missing:
        raise OrderError(f"missing column(s) {missing}; found {table.column_names}", source=str(path))
    orders = []
    for index, record in enumerate(table.select(list(ORDER_COLUMNS)).to_pylist()):
        try:
            if record["quantity"] is None:
                raise OrderError("field 'quantity' is empty")
            date = record["date"] if isinstance(record["date"], dt.date) else dt.date.fromisoformat(str(record["date"]))
            orders.append(
                Order(
                    symbol=str(record["symbol"]),
                    date=date,
                    side=str(record["side"]).strip().lower(),
                    quantity=float(record["quantity"]),
                    start_minute=_parse_start(record["start"]),
                )
            )
        except (OrderError, ValueError, TypeError) as exc:
            raise order_file_error(path, index, str(exc)) from None
    if not orders:
        raise OrderError("no orders in file", source=str(path))
    return orders


def order_file_error(path: str | os.PathLike, index: int, message: str) -> OrderError:
    """An error about the order at 0-based ``index`` of an order file, placed as an editor shows it:
    line ``index + 2`` of a CSV file (the header is line 1), row ``index + 1`` of a parquet file."""
    if Path(path).suffix == ".parquet":
        return OrderError(message, source=str(path), row=index + 1)
    return OrderError(message, source=str(path), line=index + 2)


def orders_table(orders: list[Order]) -> pa.Table:
    return pa.table(
        {
            "symbol": [o.symbol for o in orders],
            "date": pa.array([o.date for o in orders], pa.date32()),
            "side": [o.side for o in orders],
            "quantity": pa.array([o.quantity for o in orders], pa.float64()),
            "start": [o.start_time for o in orders],
        }
    )


def write_orders(orders: list[Order], path: str | os.PathLike) -> Path:
    path = Path(path)
    table = orders_table(orders)
    if path.suffix == ".parquet":
        return write_atomic(path, lambda tmp: pq.write_table(table, tmp))
    return write_atomic(path, lambda tmp: pacsv.write_csv(table, tmp))


@dataclass(frozen=True, kw_only=True)
class OrderGenerator:
    """Random orders on a market: size a fraction of the *previous* session's volume (no look-ahead).

    Every order has at least one earlier session of its symbol (the VWAP profile and feature
    normalisation need one) and a window of ``horizon_minutes`` that fits inside its session.
    """

    horizon_minutes: int
    size_fraction: tuple[float, float] = (0.001, 0.01)  # of the previous session's volume, uniform
    sides: tuple[str, ...] = ("buy", "sell")
    symbols: tuple[str, ...] | None = None  # None: all symbols
    sessions: frozenset[tuple[str, dt.date]] | None = None  # None: every session; else only these host orders

    def candidates(self, market: MarketData) -> list[tuple[str, dt.date, int]]:
        """(symbol, date, previous row) of every allowed session with an earlier session."""
        out = []
        for symbol in self.symbols or market.symbols:
            dates = market.sessions_of(symbol)
            out.extend(
                (symbol, date, market.row(symbol, prev)) for prev, date in zip(dates, dates[1:])
                if self.sessions is None or (symbol, date) in self.sessions
            )
        if not out:
            what = "of the allowed sessions" if self.sessions is not None else "session"
            raise OrderError(f"no {what} has an earlier session to size orders from; need at least two days of data")
        return out

    def sample(self, market: MarketData, rng: np.random.Generator, count: int) -> list[Order]:
        if not 1 <= self.horizon_minutes <= SESSION_MINUTES:
            raise OrderError(f"horizon_minutes must be in [1, 390], got {self.horizon_minutes}")
        lo, hi = self.size_fraction
        if not 0 < lo <= hi:
            raise OrderError(f"size_fraction must satisfy 0 < low <= high, got {self.size_fraction}")
        candidates = self.candidates(market)
        picks = rng.integers(len(candidates), size=count)
        sides = rng.integers(len(self.sides), size=count)
        fractions = rng.uniform(lo, hi, size=count)
        starts = rng.integers(0, SESSION_MINUTES - self.horizon_minutes + 1, size=count)
        orders = []
        for pick, side, fraction, start in zip(picks, sides, fractions, starts):
            symbol, date, prev_row = candidates[pick]
            prev_volume = float(market.bars[prev_row, :, VOLUME].sum())
            orders.append(
                Order(
                    symbol=symbol,
                    date=date,
                    side=self.sides[side],
                    quantity=max(1.0, float(np.floor(fraction * prev_volume))),
                    start_minute=int(start),
                )
            )
        return orders


def generate_orders(market: MarketData, count: int, seed: int, generator: OrderGenerator) -> list[Order]:
    """``count`` orders drawn with ``numpy.random.default_rng(seed)``: same seed, same orders."""
    return generator.sample(market, np.random.default_rng(seed), count)

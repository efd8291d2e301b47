"""Minute bars aligned to full regular sessions: the array form every environment reads.

Gap policy (documented, applied here and nowhere else):

* Bars outside 09:30-16:00 ET are dropped (counted in :attr:`MarketData.off_session_bars`).
* A missing minute inside a session becomes a *filled* bar: open = high = low = close = the previous
  bar's close (the first observed open before the day's first bar), volume 0, ``observed = False``.
  Nothing can fill in it (fills are capped by volume) and it is left out of market averages.
* A real bar with volume 0 stays as it is (``observed = True``, volume 0): it also cannot be traded.
* A (symbol, day) with fewer than ``min_observed_fraction`` of its 390 bars present is dropped
  and listed in :attr:`MarketData.dropped_days`: it is too sparse to execute against.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from rlexec.data.calendar import SESSION_MINUTES, exchange_date, minute_of_session
from rlexec.errors import BarDataError

FIELDS = ("open", "high", "low", "close", "volume")
OPEN, HIGH, LOW, CLOSE, VOLUME = range(5)


@dataclass(frozen=True, kw_only=True)
class MarketData:
    """Sessions of minute bars, one row per (symbol, date).

    ``bars[r, m, f]`` is field ``f`` (see :data:`FIELDS`) of minute ``m`` (0 = 09:30) in session row
    ``r``; ``observed[r, m]`` is False where the bar was filled in by the gap policy.
    """

    symbols: tuple[str, ...]
    dates: tuple[dt.date, ...]  # date of each session row
    row_symbols: tuple[str, ...]  # symbol of each session row
    bars: np.ndarray  # float64 (rows, 390, 5)
    observed: np.ndarray  # bool (rows, 390)
    off_session_bars: int = 0
    dropped_days: tuple[tuple[str, dt.date, str], ...] = ()
    _index: dict[tuple[str, dt.date], int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._index.update({(s, d): r for r, (s, d) in enumerate(zip(self.row_symbols, self.dates))})

    @property
    def num_sessions(self) -> int:
        return len(self.dates)

    def row(self, symbol: str, date: dt.date) -> int:
        try:
            return self._index[(symbol, date)]
        except KeyError:
            raise BarDataError("market data", f"no session for {symbol} on {date}") from None

    def has_session(self, symbol: str, date: dt.date) -> bool:
        return (symbol, date) in self._index

    def sessions_of(self, symbol: str) -> list[dt.date]:
        return sorted(d for s, d in self._index if s == symbol)

    def prior_rows(self, symbol: str, date: dt.date, count: int) -> list[int]:
        """Rows of up to ``count`` sessions of ``symbol`` strictly before ``date``, most recent last."""
        if count <= 0:
            return []
        earlier = [d for d in self.sessions_of(symbol) if d < date]
        return [self._index[(symbol, d)] for d in earlier[-count:]]

    @classmethod
    def from_table(cls, table: pa.Table, *, min_observed_fraction: float = 0.5, source: str = "bars") -> "MarketData":
        """Align a :data:`~rlexec.data.schema.BAR_SCHEMA` table to full sessions (see the gap policy)."""
        if not 0.0 <= min_observed_fraction <= 1.0:
            raise BarDataError(source, f"min_observed_fraction must be in [0, 1], got {min_observed_fraction}")
        if table.num_rows == 0:
            raise BarDataError(source, "no bars")
        symbols = np.asarray(table.column("symbol").to_pylist(), dtype=object)
        ts = table.column("ts").cast(pa.int64()).to_numpy()
        dates = exchange_date(ts)
        minutes = minute_of_session(ts, dates)
        in_session = (minutes >= 0) & (minutes < SESSION_MINUTES)
        values = np.stack([table.column(f).cast(pa.float64()).to_numpy() for f in FIELDS], axis=1)

        keys = sorted({(s, d) for s, d in zip(symbols[in_session], dates[in_session].astype(object))})
        rows, row_syms, row_dates, dropped = [], [], [], []
        obs_rows = []
        for sym, date in keys:
            sel = in_session & (symbols == sym) & (dates == np.datetime64(date))
            m = minutes[sel]
            present = np.zeros(SESSION_MINUTES, dtype=bool)
            present[m] = True
            if present.mean() < min_observed_fraction:
                dropped.append((str(sym), date, f"only {int(present.sum())} of {SESSION_MINUTES} bars"))
                continue
            day = np.empty((SESSION_MINUTES, 5))
            day[m] = values[sel]
            _fill_gaps(day, present)
            rows.append(day)
            obs_rows.append(present)
            row_syms.append(str(sym))
            row_dates.append(date)
        if not rows:
            raise BarDataError(source, f"no session has at least {min_observed_fraction:.0%} of its bars")
        return cls(
            symbols=tuple(sorted(set(row_syms))),
            dates=tuple(row_dates),
            row_symbols=tuple(row_syms),
            bars=np.stack(rows),
            observed=np.stack(obs_rows),
            off_session_bars=int((~in_session).sum()),
            dropped_days=tuple(dropped),
        )


def _fill_gaps(day: np.ndarray, present: np.ndarray) -> None:
    """Forward-fill missing minutes with the last close, back-fill the leading ones with the first open."""
    first = int(np.argmax(present))
    day[:first, :4] = day[first, OPEN]
    last_close = day[first, CLOSE]
    for m in range(first, SESSION_MINUTES):
        if present[m]:
            last_close = day[m, CLOSE]
        else:
            day[m, :4] = last_close
    day[~present, VOLUME] = 0.0

"""Minute bars aligned to full regular sessions: the array form every environment reads.

Gap policy (documented, applied here and nowhere else):

* Bars outside 09:30-16:00 ET are dropped (counted in :attr:`MarketData.off_session_bars`).
* A missing minute inside a session is a minute without trades. It becomes a *filled* bar:
  open = high = low = close = the last close before it, volume 0, ``observed = False``. Nothing can
  fill in it (fills are capped by volume) and it is left out of market averages. Minutes before a
  session's first bar carry the symbol's previous session's last close, never a later price.
* A real bar with volume 0 stays as it is (``observed = True``, volume 0): it also cannot be traded.
* Dropped and listed with the reason in :attr:`MarketData.dropped_days`:

  - a symbol's first session in the data when it lacks its 09:30 bar, since no earlier price is
    known for the minutes before its first bar (its bars still give the next session its last close);
  - a (symbol, day) with fewer than ``min_observed_fraction`` of its 390 bars present. The default,
    0, keeps sparse (illiquid) instruments; it is rlexec's own setting, not from a source.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from rlexec.data.calendar import (
    SESSION_MINUTES,
    exchange_date,
    minute_of_session,
    session_clock,
)
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
    def from_table(cls, table: pa.Table, *, min_observed_fraction: float = 0.0, source: str = "bars") -> "MarketData":
        """Align a :data:`~rlexec.data.schema.BAR_SCHEMA` table to full sessions (see the gap policy).

        ``min_observed_fraction``: drop a (symbol, day) with fewer than this share of its 390 bars
        present. Default 0 (rlexec's choice): a missing minute is a minute without trades, so
        sparse days are kept.
        """
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
        last_close: dict[str, float] = {}  # per symbol, the close carried into its next session
        for sym, date in keys:  # each symbol's sessions in date order
            sel = in_session & (symbols == sym) & (dates == np.datetime64(date))
            m = minutes[sel]
            present = np.zeros(SESSION_MINUTES, dtype=bool)
            present[m] = True
            day = np.empty((SESSION_MINUTES, 5))
            day[m] = values[sel]
            carried = last_close.get(sym)
            last_close[sym] = _fill_gaps(day, present, np.nan if carried is None else carried)
            if present.mean() < min_observed_fraction:
                dropped.append((
                    str(sym), date,
                    (f"only {int(present.sum())} of {SESSION_MINUTES} bars, under "
                     f"min_observed_fraction={min_observed_fraction:g} (lower it to keep such days)"),
                ))
                continue
            if carried is None and not present[0]:
                first = int(np.argmax(present))
                dropped.append((
                    str(sym), date,
                    (f"first session of {sym} in the data and its first bar is at {session_clock(first)} ET: "
                     f"no earlier price to carry into the {first} minute(s) before it"),
                ))
                continue
            rows.append(day)
            obs_rows.append(present)
            row_syms.append(str(sym))
            row_dates.append(date)
        if not rows:
            sym, date, reason = dropped[0]
            raise BarDataError(source, f"no session kept: all {len(dropped)} dropped, e.g. {sym} {date}: {reason}")
        return cls(
            symbols=tuple(sorted(set(row_syms))),
            dates=tuple(row_dates),
            row_symbols=tuple(row_syms),
            bars=np.stack(rows),
            observed=np.stack(obs_rows),
            off_session_bars=int((~in_session).sum()),
            dropped_days=tuple(dropped),
        )


def _fill_gaps(day: np.ndarray, present: np.ndarray, carried_close: float) -> float:
    """Fill the missing minutes of one session in place and return its last close.

    A missing minute takes the last close before it: within the session, or ``carried_close`` (the
    previous session's) for the minutes before the first bar; NaN there when none is known.
    """
    minute = np.arange(SESSION_MINUTES)
    last_seen = np.maximum.accumulate(np.where(present, minute, -1))
    price = np.where(last_seen >= 0, day[np.maximum(last_seen, 0), CLOSE], carried_close)
    day[~present, :4] = price[~present, None]
    day[~present, VOLUME] = 0.0
    return float(price[-1])

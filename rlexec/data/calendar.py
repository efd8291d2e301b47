"""The regular US equity session: 09:30-16:00 America/New_York, 390 one-minute bars.

Bars are indexed by their start minute: index 0 is the 09:30 bar, index 389 the 15:59 bar.
Daylight saving is handled by converting each date's 09:30 ET to UTC separately.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

EXCHANGE_TZ = ZoneInfo("America/New_York")
SESSION_OPEN = dt.time(9, 30)
SESSION_CLOSE = dt.time(16, 0)
SESSION_MINUTES = 390
NS_PER_MINUTE = 60_000_000_000


def session_clock(minute: int) -> str:
    """Session minute -> ``HH:MM`` US/Eastern wall-clock time (0 -> ``09:30``, 390 -> ``16:00``)."""
    total = SESSION_OPEN.hour * 60 + SESSION_OPEN.minute + int(minute)
    return f"{total // 60:02d}:{total % 60:02d}"


def session_open_utc_ns(date: dt.date) -> int:
    """Nanoseconds since the epoch (UTC) of 09:30 ET on ``date``."""
    local = dt.datetime.combine(date, SESSION_OPEN, tzinfo=EXCHANGE_TZ)
    return int(local.timestamp()) * 1_000_000_000


def session_minute_starts_ns(date: dt.date) -> np.ndarray:
    """The 390 bar-start timestamps (UTC ns) of ``date``'s regular session."""
    return session_open_utc_ns(date) + np.arange(SESSION_MINUTES, dtype=np.int64) * NS_PER_MINUTE


def exchange_date(ts_utc_ns: np.ndarray) -> np.ndarray:
    """The exchange-local calendar date of each UTC timestamp, as ``datetime64[D]``."""
    ts = np.asarray(ts_utc_ns, dtype=np.int64)
    # Offsets differ only across DST switches, so convert the distinct UTC days once each.
    out = np.empty(ts.shape, dtype="datetime64[D]")
    days = ts // (86_400 * 1_000_000_000)
    for day in np.unique(days):
        mask = days == day
        sample = dt.datetime.fromtimestamp(int(ts[mask][0]) / 1e9, tz=dt.timezone.utc)
        offset_ns = int(sample.astimezone(EXCHANGE_TZ).utcoffset().total_seconds()) * 1_000_000_000
        out[mask] = ((ts[mask] + offset_ns) // (86_400 * 1_000_000_000)).astype("datetime64[D]")
    return out


def minute_of_session(ts_utc_ns: np.ndarray, dates: np.ndarray) -> np.ndarray:
    """Bar index within its session (0 = 09:30); values outside [0, 390) are off-session bars."""
    unique_dates, inverse = np.unique(dates, return_inverse=True)
    opens = np.array([session_open_utc_ns(d) for d in unique_dates.astype(object)], dtype=np.int64)[inverse]
    return (np.asarray(ts_utc_ns, dtype=np.int64) - opens) // NS_PER_MINUTE

"""rlexec.data.calendar: session minutes in UTC across daylight saving, and the inverse mappings."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from rlexec.data.calendar import (
    NS_PER_MINUTE,
    SESSION_MINUTES,
    exchange_date,
    minute_of_session,
    session_clock,
    session_minute_starts_ns,
    session_open_utc_ns,
)

UTC = dt.timezone.utc
NEW_YORK = ZoneInfo("America/New_York")


def utc_ns(year, month, day, hour, minute) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    ("date", "open_utc", "last_utc"),
    [
        (dt.date(2024, 3, 8), (14, 30), (20, 59)),  # Friday before the spring switch: EST, UTC-5
        (dt.date(2024, 3, 11), (13, 30), (19, 59)),  # Monday after: EDT, UTC-4
        (dt.date(2024, 11, 1), (13, 30), (19, 59)),  # Friday before the autumn switch: EDT
        (dt.date(2024, 11, 4), (14, 30), (20, 59)),  # Monday after: EST
        (dt.date(2019, 2, 11), (14, 30), (20, 59)),  # the shipped sample's first day
    ],
)
def test_session_minute_starts_are_390_minutes_from_0930_eastern(date, open_utc, last_utc):
    starts = session_minute_starts_ns(date)
    assert starts.shape == (SESSION_MINUTES,) == (390,)
    assert starts.dtype == np.int64
    assert starts[0] == utc_ns(date.year, date.month, date.day, *open_utc)
    assert starts[-1] == utc_ns(date.year, date.month, date.day, *last_utc)
    assert np.all(np.diff(starts) == NS_PER_MINUTE)
    assert session_open_utc_ns(date) == starts[0]


def test_every_start_is_the_expected_eastern_wall_clock_minute():
    date = dt.date(2024, 3, 11)
    for i, ns in enumerate(session_minute_starts_ns(date)):
        local = dt.datetime.fromtimestamp(int(ns) // 1_000_000_000, tz=NEW_YORK)
        assert local.date() == date
        assert local.hour * 60 + local.minute == 9 * 60 + 30 + i


def test_utc_offset_changes_by_one_hour_across_the_spring_switch():
    before = session_minute_starts_ns(dt.date(2024, 3, 8))
    after = session_minute_starts_ns(dt.date(2024, 3, 11))
    # Three calendar days apart, but the session opens one hour earlier in UTC.
    assert after[0] - before[0] == (3 * 24 - 1) * 60 * NS_PER_MINUTE


def test_exchange_date_and_minute_of_session_invert_the_starts_across_dst():
    dates = [dt.date(2024, 3, 8), dt.date(2024, 3, 11), dt.date(2024, 11, 1), dt.date(2024, 11, 4)]
    ts = np.concatenate([session_minute_starts_ns(d) for d in dates])
    got_dates = exchange_date(ts)
    assert got_dates.dtype == np.dtype("datetime64[D]")
    assert list(got_dates.astype(object)) == [d for d in dates for _ in range(390)]
    minutes = minute_of_session(ts, got_dates)
    assert np.array_equal(minutes, np.tile(np.arange(390), len(dates)))


def test_exchange_date_is_the_eastern_date_not_the_utc_date():
    # 2024-03-08 03:00 UTC is 22:00 EST on 7 March; 2024-03-12 02:30 UTC is 22:30 EDT on 11 March.
    ts = np.array([utc_ns(2024, 3, 8, 3, 0), utc_ns(2024, 3, 12, 2, 30), utc_ns(2024, 3, 12, 4, 30)])
    assert list(exchange_date(ts).astype(object)) == [dt.date(2024, 3, 7), dt.date(2024, 3, 11), dt.date(2024, 3, 12)]


def test_minute_of_session_outside_the_session():
    date = dt.date(2024, 3, 11)
    ts = np.array(
        [
            utc_ns(2024, 3, 11, 13, 29),  # 09:29 EDT: one minute before the open
            utc_ns(2024, 3, 11, 20, 0),  # 16:00 EDT: the first minute after the session
            utc_ns(2024, 3, 11, 22, 0),  # 18:00 EDT
        ]
    )
    dates = np.array([date] * 3, dtype="datetime64[D]")
    assert list(minute_of_session(ts, dates)) == [-1, 390, 510]


@pytest.mark.parametrize(("minute", "clock"), [(0, "09:30"), (29, "09:59"), (30, "10:00"), (389, "15:59"), (390, "16:00")])
def test_session_clock_names_the_wall_clock_time_of_a_session_minute(minute, clock):
    assert session_clock(minute) == clock

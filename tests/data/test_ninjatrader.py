"""The NinjaTrader minute-bar layout (the shared SPY 2011 export): UTC end-labelled stamps, extended hours."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from rlexec.data import read_bars
from rlexec.data.calendar import EXCHANGE_TZ
from rlexec.data.panel import MarketData
from rlexec.errors import BarDataError

SPY_2011 = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "spy_1min_2011" / "nt-spy-minute-2011-01.csv.gz"


def local_starts(table: pa.Table) -> list[dt.datetime]:
    return [ts.astimezone(EXCHANGE_TZ).replace(tzinfo=None) for ts in table.column("ts").to_pylist()]


def write_nt(tmp_path: Path, lines: list[str], name: str = "nt-abc-minute-2011-03.csv", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    return path


@pytest.mark.skipif(not SPY_2011.exists(), reason="shared data not mounted")
def test_shared_spy_month_keeps_the_390_regular_bars_of_each_of_20_sessions():
    bars = read_bars(SPY_2011)
    assert set(bars.column("symbol").to_pylist()) == {"SPY"}
    starts = local_starts(bars)
    assert len(starts) == 20 * 390
    first = bars.slice(0, 1).to_pylist()[0]
    # File line "20110103 143100;126.71;126.74;126.66;126.72;2259046": the bar ending 09:31 ET starts 09:30.
    assert starts[0] == dt.datetime(2011, 1, 3, 9, 30)
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (126.71, 126.74, 126.66, 126.72, 2259046)
    assert min(s.time() for s in starts) == dt.time(9, 30) and max(s.time() for s in starts) == dt.time(15, 59)
    assert dt.date(2011, 1, 17) not in {s.date() for s in starts}  # the holiday
    assert MarketData.from_table(bars).num_sessions == 20


def test_extended_hours_and_the_closing_auction_bar_are_dropped_with_crlf_lines(tmp_path):
    path = write_nt(tmp_path, [
        "20110301 140100;10;10;10;10;5",        # 09:00-09:01 ET, pre-market
        "20110301 143100;10;11;9;10.5;100",     # 09:30-09:31 ET: first regular bar
        "20110301 210000;10.5;10.6;10.4;10.6;7",  # 15:59-16:00 ET: last regular bar
        "20110301 210100;10.6;10.6;10.6;10.6;900",  # 16:00-16:01 ET: closing auction prints, outside the session
    ], newline="\r\n")
    bars = read_bars(path)
    assert bars.column("symbol").to_pylist() == ["ABC", "ABC"]
    assert local_starts(bars) == [dt.datetime(2011, 3, 1, 9, 30), dt.datetime(2011, 3, 1, 15, 59)]
    assert bars.column("volume").to_pylist() == [100, 7]


def test_session_is_found_in_utc_across_the_daylight_saving_switch(tmp_path):
    # 2011-03-14 is the first Monday on daylight time: 09:30 ET is 13:30 UTC, not 14:30.
    path = write_nt(tmp_path, ["20110311 143100;10;10;10;10;1", "20110314 133100;11;11;11;11;2", "20110314 143100;12;12;12;12;3"])
    starts = local_starts(read_bars(path))
    assert starts == [dt.datetime(2011, 3, 11, 9, 30), dt.datetime(2011, 3, 14, 9, 30), dt.datetime(2011, 3, 14, 10, 30)]


def test_start_label_keeps_the_stamp_as_the_bar_start(tmp_path):
    path = write_nt(tmp_path, ["20110301 143000;10;10;10;10;1", "20110301 143100;10;10;10;10;2"])
    assert local_starts(read_bars(path, label="start")) == [dt.datetime(2011, 3, 1, 9, 30), dt.datetime(2011, 3, 1, 9, 31)]
    # Read as end-labelled, the first stamp is the pre-open bar 09:29-09:30 and is dropped.
    assert local_starts(read_bars(path)) == [dt.datetime(2011, 3, 1, 9, 30)]


@pytest.mark.parametrize("bad_line, field, message", [
    ("20110301 143200;10;10;10;-1;5", "close", "non-positive price"),
    ("20110301 143200;10;10;10;nan;5", "close", "NaN"),
    ("20110332 143200;10;10;10;10;5", "datetime", "unparseable timestamp"),
    ("20110301 143000;10;10;10;10;5", "datetime", "out of order"),
])
def test_bad_lines_are_named_by_their_line_number_with_no_header(tmp_path, bad_line, field, message):
    path = write_nt(tmp_path, ["20110301 143100;10;10;10;10;5", bad_line, "20110301 143300;10;10;10;10;5"])
    with pytest.raises(BarDataError) as err:
        read_bars(path)
    text = str(err.value)
    assert str(path) in text and "line 2" in text and field in text and message in text


def test_forcing_the_layout_on_another_file_says_what_was_expected(tmp_path):
    path = tmp_path / "X_1min.csv"
    path.write_text("datetime,open,high,low,close,volume\n2019-05-01 09:31:00,1,1,1,1,1\n")
    with pytest.raises(BarDataError, match="not a NinjaTrader export"):
        read_bars(path, layout="ninjatrader")
    with pytest.raises(BarDataError, match="layout must be one of"):
        read_bars(path, layout="excel")


def test_symbol_argument_overrides_a_file_name_without_one(tmp_path):
    path = write_nt(tmp_path, ["20110301 143100;10;10;10;10;5"], name="export.txt")
    assert read_bars(path, symbol="QQQ").column("symbol").to_pylist() == ["QQQ"]
    assert np.isfinite(read_bars(path, symbol="QQQ").column("close").to_numpy()).all()

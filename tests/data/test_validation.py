"""rlexec.data.validation through read_bars: every bad input raises BarDataError naming file, line/row, field."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlexec.data import SyntheticMarketConfig, generate_bars, read_bars, write_bars
from rlexec.errors import BarDataError

from .conftest import RLEXEC_HEADER

# Three good vendor rows (lines 2, 3, 4); the bad row of each case below is line 5.
GOOD = [
    "2019-02-11 09:31:00,10,11,9,10.5,100",
    "2019-02-11 09:32:00,10.5,11,10,10.2,200",
    "2019-02-11 09:33:00,10.2,10.4,10,10.1,0",
]

BAD_VALUE_CASES = [
    # id, bad line 5, field, message fragment
    ("empty_close", "2019-02-11 09:34:00,10,11,9,,100", "close", r"price is nan \(NaN or missing\)"),
    ("nan_close", "2019-02-11 09:34:00,10,11,9,nan,100", "close", r"price is nan \(NaN or missing\)"),
    ("NaN_open", "2019-02-11 09:34:00,NaN,11,9,10,100", "open", r"price is nan"),
    ("zero_open", "2019-02-11 09:34:00,0,11,9,10,100", "open", r"non-positive price 0\.0"),
    ("zero_high", "2019-02-11 09:34:00,10,0,9,10,100", "high", r"non-positive price 0\.0"),
    ("negative_low", "2019-02-11 09:34:00,10,11,-9,10,100", "low", r"non-positive price -9\.0"),
    ("negative_close", "2019-02-11 09:34:00,10,11,9,-10,100", "close", r"non-positive price -10\.0"),
    ("high_below_low", "2019-02-11 09:34:00,10,9,11,10,100", "high", r"high 9\.0 is below low 11\.0"),
    ("close_above_high", "2019-02-11 09:34:00,10,11,9,11.5,100", "close", r"close 11\.5 lies outside \[low, high\] = \[9\.0, 11\.0\]"),
    ("close_below_low", "2019-02-11 09:34:00,10,11,9,8.99,100", "close", r"close 8\.99 lies outside"),
    ("open_below_low", "2019-02-11 09:34:00,8.5,11,9,10,100", "open", r"open 8\.5 lies outside \[low, high\] = \[9\.0, 11\.0\]"),
    ("open_above_high", "2019-02-11 09:34:00,11.01,11,9,10,100", "open", r"open 11\.01 lies outside"),
    ("negative_volume", "2019-02-11 09:34:00,10,11,9,10,-5", "volume", r"negative volume -5\.0"),
    ("missing_volume", "2019-02-11 09:34:00,10,11,9,10,", "volume", r"volume is NaN or missing"),
    ("text_in_high", "2019-02-11 09:34:00,10,abc,9,10,100", "high", r"not a number: 'abc'"),
    ("text_in_volume", "2019-02-11 09:34:00,10,11,9,10,lots", "volume", r"not a number: 'lots'"),
    ("bad_timestamp", "2019-02-11 9h34,10,11,9,10,100", "datetime", r"unparseable timestamp '2019-02-11 9h34'"),
    ("hour_25", "2019-02-11 25:34:00,10,11,9,10,100", "datetime", r"unparseable timestamp '2019-02-11 25:34:00'"),
]


@pytest.mark.parametrize(("bad", "field", "message"), [c[1:] for c in BAD_VALUE_CASES], ids=[c[0] for c in BAD_VALUE_CASES])
def test_bad_row_is_reported_by_file_line_and_field(write_csv, bad, field, message):
    path = write_csv([*GOOD, bad], name="bad.csv")
    with pytest.raises(BarDataError, match=rf"bad\.csv, line 5, field '{field}': {message}") as info:
        read_bars(path)
    assert (info.value.line, info.value.row, info.value.field) == (5, None, field)
    assert info.value.source == str(path)


def test_bad_row_deep_in_a_file_is_reported_by_its_own_line(write_csv):
    rows = [f"2019-02-11 {9 + (31 + m) // 60:02d}:{(31 + m) % 60:02d}:00,10,11,9,10,100" for m in range(80)]
    rows[57] = rows[57].replace(",10,11,9,10,", ",10,11,9,12,")  # close above high on data row 58
    path = write_csv(rows, name="deep.csv")
    with pytest.raises(BarDataError, match=r"deep\.csv, line 59, field 'close': close 12\.0 lies outside"):
        read_bars(path)


def test_good_rows_pass_and_zero_volume_is_accepted(write_csv):
    table = read_bars(write_csv(GOOD, name="good.csv"), label="end")
    assert table.column("volume").to_pylist() == [100, 200, 0]
    assert table.column("close").to_pylist() == [10.5, 10.2, 10.1]


def test_missing_minutes_are_accepted_by_the_loader(write_csv):
    # Gaps are not errors here; the panel fills them.
    table = read_bars(write_csv([GOOD[0], GOOD[2]], name="gap.csv"), label="end")
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    assert list(np.diff(ts)) == [2 * 60_000_000_000]


# ---------------------------------------------------------------- timestamp order


def test_duplicated_timestamp_names_the_second_occurrence(write_csv):
    rows = [GOOD[0], GOOD[1], "2019-02-11 09:32:00,10,11,9,10,5", GOOD[2]]
    path = write_csv(rows, name="dup.csv")
    with pytest.raises(BarDataError, match=r"dup\.csv, line 4, field 'datetime': duplicated timestamp \(same as line 3\)"):
        read_bars(path)


def test_duplicated_timestamp_in_a_newest_first_file(write_csv):
    rows = [GOOD[2], GOOD[1], "2019-02-11 09:32:00,10,11,9,10,5", GOOD[0]]
    path = write_csv(rows, name="dup.csv")
    with pytest.raises(BarDataError, match=r"dup\.csv, line 4, field 'datetime': duplicated timestamp \(same as line 3\)"):
        read_bars(path)


def test_duplicate_of_one_symbol_is_found_between_rows_of_another(write_csv):
    rows = [
        "AAA,2019-02-11T14:30:00Z,10,11,9,10,1",
        "BBB,2019-02-11T14:30:00Z,10,11,9,10,2",  # same minute, other symbol: fine
        "AAA,2019-02-11T14:30:00Z,10,11,9,10,3",
    ]
    path = write_csv(rows, name="two.csv", header=RLEXEC_HEADER)
    with pytest.raises(BarDataError, match=r"two\.csv, line 4, field 'ts': duplicated timestamp \(same as line 2\)"):
        read_bars(path)


def minute_rows(minutes: list[int]) -> list[str]:
    return [f"2019-02-11 09:{m:02d}:00,10,11,9,10,5" for m in minutes]


def test_mixed_order_in_an_oldest_first_file_names_the_row_that_steps_back(write_csv):
    path = write_csv(minute_rows([31, 32, 33, 35, 34, 36, 37]), name="mixed.csv")
    # Line 6 holds 09:34, earlier than 09:35 on line 5.
    with pytest.raises(BarDataError, match=r"mixed\.csv, line 6, field 'datetime': timestamp out of order \(earlier"):
        read_bars(path)


def test_mixed_order_in_a_newest_first_file_names_the_row_that_steps_forward(write_csv):
    path = write_csv(minute_rows([37, 36, 35, 33, 34, 32, 31]), name="mixed.csv")
    # Majority is newest first; line 6 holds 09:34, later than 09:33 on line 5.
    with pytest.raises(BarDataError, match=r"mixed\.csv, line 6, field 'datetime': timestamp out of order \(later"):
        read_bars(path)


def test_mixed_order_when_the_first_step_is_the_odd_one(write_csv):
    path = write_csv(minute_rows([32, 31, 33, 34, 35]), name="mixed.csv")
    with pytest.raises(BarDataError, match=r"mixed\.csv, line 3, field 'datetime': timestamp out of order \(earlier"):
        read_bars(path)


# ---------------------------------------------------------------- whole-file problems


def test_missing_columns_are_listed(write_csv):
    path = write_csv(["2019-02-11 09:31:00,10,11,9"], name="cols.csv", header="datetime,open,high,low")
    with pytest.raises(BarDataError, match=r"cols\.csv: missing column\(s\) \['close', 'volume'\]; found"):
        read_bars(path)


def test_missing_timestamp_column_is_listed(write_csv):
    path = write_csv(["2019-02-11,10,11,9,10,1"], name="cols.csv", header="date,open,high,low,close,volume")
    with pytest.raises(BarDataError, match=r"cols\.csv: missing column\(s\) \['datetime'\]"):
        read_bars(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(BarDataError, match=r"empty\.csv: not a readable CSV file"):
        read_bars(path)


def test_header_only_file(write_csv):
    with pytest.raises(BarDataError, match=r"hdr\.csv: no rows"):
        read_bars(write_csv([], name="hdr.csv"))


def test_missing_file(tmp_path):
    with pytest.raises(BarDataError, match=r"nothere_1min\.csv: file not found"):
        read_bars(tmp_path / "nothere_1min.csv")


def test_unknown_layout(write_csv):
    with pytest.raises(BarDataError, match=r"lay\.csv: layout must be one of \('auto', 'vendor', 'rlexec', 'ninjatrader'\), got 'other'"):
        read_bars(write_csv(GOOD, name="lay.csv"), layout="other")


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "bars.parquet"
    path.write_text("this is not parquet\n")
    with pytest.raises(BarDataError, match=r"bars\.parquet: not a readable parquet file"):
        read_bars(path)


# ---------------------------------------------------------------- parquet reports rows


@pytest.fixture
def bars_table() -> pa.Table:
    return generate_bars(SyntheticMarketConfig(num_days=1), seed=3)


def replace_value(table: pa.Table, name: str, index: int, value) -> pa.Table:
    values = table.column(name).to_pylist()
    values[index] = value
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, table.schema.field(i).type))


def test_parquet_bad_value_reports_the_row(tmp_path, bars_table):
    path = write_bars(replace_value(bars_table, "volume", 2, -1), tmp_path / "bad.parquet")
    with pytest.raises(BarDataError, match=r"bad\.parquet, row 3, field 'volume': negative volume -1\.0") as info:
        read_bars(path)
    assert (info.value.line, info.value.row) == (None, 3)


def test_parquet_out_of_order_reports_the_row(tmp_path, bars_table):
    order = list(range(bars_table.num_rows))
    order[10], order[11] = order[11], order[10]  # rows 11 and 12 (1-based) swapped
    path = write_bars(bars_table.take(order), tmp_path / "swap.parquet")
    # Row 12 now holds a bar earlier than row 11's.
    with pytest.raises(BarDataError, match=r"swap\.parquet, row 12, field 'ts': timestamp out of order"):
        read_bars(path)


def test_parquet_duplicate_names_both_rows(tmp_path, bars_table):
    path = tmp_path / "dup.parquet"
    pq.write_table(bars_table.take([0, 1, 1, 2]), path)
    with pytest.raises(BarDataError, match=r"dup\.parquet, row 3, field 'ts': duplicated timestamp \(same as row 2\)"):
        read_bars(path)


def test_vendor_parquet_nan_price_reports_the_row(tmp_path):
    table = pa.table(
        {
            "datetime": ["2019-02-11 09:32:00", "2019-02-11 09:31:00"],
            "open": [10.0, 10.0], "high": [11.0, 11.0], "low": [9.0, 9.0],
            "close": [10.0, float("nan")], "volume": [1, 2],
        }
    )
    path = tmp_path / "ABC_1min.parquet"
    pq.write_table(table, path)
    with pytest.raises(BarDataError, match=r"ABC_1min\.parquet, row 2, field 'close': price is nan"):
        read_bars(path)


# ---------------------------------------------------------------- contract cases the loader gets wrong


def test_empty_timestamp_cell_is_a_bar_data_error(write_csv):
    path = write_csv([*GOOD, ",10,11,9,10,100"], name="nots.csv")
    with pytest.raises(BarDataError, match=r"nots\.csv, line 5, field 'datetime'"):
        read_bars(path)


def test_impossible_calendar_date_is_rejected(write_csv):
    # 30 February does not exist; it must not be silently rolled over to 2 March.
    path = write_csv([*GOOD, "2019-02-30 09:31:00,10,11,9,10,100"], name="feb30.csv")
    with pytest.raises(BarDataError, match=r"feb30\.csv, line 5, field 'datetime': unparseable timestamp '2019-02-30 09:31:00'"):
        read_bars(path)


def test_rlexec_layout_unparseable_timestamp_names_the_line(write_csv):
    rows = ["AAA,2019-02-11T14:30:00Z,10,11,9,10,1", "AAA,2019-02-11T14:31:00Z,10,11,9,10,1", "AAA,garbage,10,11,9,10,1"]
    path = write_csv(rows, name="r.csv", header=RLEXEC_HEADER)
    with pytest.raises(BarDataError, match=r"r\.csv, line 4, field 'ts'"):
        read_bars(path)


def test_rlexec_layout_missing_timestamp_names_the_line(write_csv):
    rows = ["AAA,2019-02-11T14:30:00Z,10,11,9,10,1", "AAA,,10,11,9,10,1"]
    path = write_csv(rows, name="r.csv", header=RLEXEC_HEADER)
    with pytest.raises(BarDataError, match=r"r\.csv, line 3, field 'ts': missing timestamp"):
        read_bars(path)


def test_nonexistent_local_time_names_the_line(write_csv):
    # 2024-03-10 02:30 does not exist in US/Eastern (clocks jump 02:00 -> 03:00).
    rows = ["2024-03-10 01:59:00,10,11,9,10,1", "2024-03-10 02:30:00,10,11,9,10,1", "2024-03-10 03:01:00,10,11,9,10,1"]
    path = write_csv(rows, name="dst.csv")
    with pytest.raises(BarDataError, match=r"dst\.csv, line 3, field 'datetime': local time 2024-03-10 02:30:00 does not exist"):
        read_bars(path)


def test_first_bad_value_in_file_order_is_reported(write_csv):
    # validate_prices_and_volume: "Raise on the first bad value, in file order". Line 2 has a missing
    # close, line 3 a missing open: the first problem in the file is line 2.
    rows = ["2019-02-11 09:31:00,10,11,9,,100", "2019-02-11 09:32:00,,11,9,10,100"]
    path = write_csv(rows, name="order.csv")
    with pytest.raises(BarDataError, match=r"order\.csv, line 2, field 'close'"):
        read_bars(path)

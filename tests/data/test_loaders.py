"""rlexec.data.loaders: reading the shipped sample and user files into BAR_SCHEMA, writing and re-reading."""

from __future__ import annotations

import datetime as dt
import gzip
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from rlexec.data import BAR_SCHEMA, SyntheticMarketConfig, generate_bars, read_bars, read_many, sample_files, write_bars
from rlexec.errors import BarDataError

from .conftest import RLEXEC_HEADER

UTC = dt.timezone.utc
NS_PER_MINUTE = 60_000_000_000


def sample_path(symbol: str) -> Path:
    (path,) = [p for p in sample_files() if p.name == f"{symbol}_1min.csv.gz"]
    return path


def sample_lines(symbol: str) -> list[str]:
    """The raw text lines of a shipped sample file, header first."""
    with gzip.open(sample_path(symbol), "rt") as fh:
        return fh.read().splitlines()


def ts_ns(year, month, day, hour, minute) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()) * 1_000_000_000


def ts_column(table: pa.Table) -> np.ndarray:
    return table.column("ts").cast(pa.int64()).to_numpy()


@pytest.fixture(scope="module")
def sample_table() -> pa.Table:
    return read_many(sample_files())


@pytest.fixture(scope="module")
def synthetic() -> pa.Table:
    return generate_bars(SyntheticMarketConfig(symbols=("AAA", "BBB"), num_days=2), seed=7)


# ---------------------------------------------------------------- the shipped sample


def test_sample_files_are_the_four_shipped_symbols():
    assert [p.name for p in sample_files()] == [
        "AAPL_1min.csv.gz", "JPM_1min.csv.gz", "MSFT_1min.csv.gz", "SPY_1min.csv.gz",
    ]


def test_sample_loads_into_bar_schema_exactly(sample_table):
    assert sample_table.schema.equals(BAR_SCHEMA)
    # equals() must also see nullability: every field of the schema is non-nullable.
    assert [f.nullable for f in sample_table.schema] == [False] * 7
    assert sample_table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")


def test_sample_is_sorted_by_symbol_then_time_without_duplicates(sample_table):
    symbols = np.asarray(sample_table.column("symbol").to_pylist())
    ts = ts_column(sample_table)
    assert np.all(symbols[1:] >= symbols[:-1])
    same_symbol = symbols[1:] == symbols[:-1]
    assert np.all(np.diff(ts)[same_symbol] > 0)


def test_sample_row_count_and_symbol_per_file_match_the_files(sample_table):
    symbols = sample_table.column("symbol").to_pylist()
    for path in sample_files():
        symbol = path.name.split("_")[0]
        data_lines = len(sample_lines(symbol)) - 1
        assert symbols.count(symbol) == data_lines
    assert sorted(set(symbols)) == ["AAPL", "JPM", "MSFT", "SPY"]


def test_first_aapl_bar_is_the_0931_end_label_line_as_a_1430_utc_start(sample_table):
    lines = sample_lines("AAPL")
    assert lines[0] == "datetime,open,high,low,close,volume"
    (line,) = [ln for ln in lines if ln.startswith("2019-02-11 09:31:00,")]
    o, h, l, c, v = (float(x) for x in line.split(",")[1:])

    aapl = sample_table.filter(pc.equal(sample_table.column("symbol"), "AAPL"))
    first = aapl.slice(0, 1).to_pylist()[0]
    assert ts_column(aapl)[0] == ts_ns(2019, 2, 11, 14, 30)  # 09:31 ET end label = 09:30 ET start = 14:30 UTC
    assert (first["open"], first["high"], first["low"], first["close"]) == (o, h, l, c)
    assert first["volume"] == int(v)


def test_last_aapl_bar_is_the_1600_end_label_line_as_a_2059_utc_start(sample_table):
    lines = sample_lines("AAPL")
    (line,) = [ln for ln in lines if ln.startswith("2019-02-15 16:00:00,")]
    close = float(line.split(",")[4])
    aapl = sample_table.filter(pc.equal(sample_table.column("symbol"), "AAPL"))
    assert ts_column(aapl)[-1] == ts_ns(2019, 2, 15, 20, 59)
    assert aapl.column("close")[-1].as_py() == close


def test_sample_bar_starts_all_lie_in_the_regular_session(sample_table):
    # February 2019 is EST (UTC-5): session bar starts run 14:30..20:59 UTC.
    ts = ts_column(sample_table)
    minute_of_day = (ts // NS_PER_MINUTE) % (24 * 60)
    assert minute_of_day.min() == 14 * 60 + 30
    assert minute_of_day.max() == 20 * 60 + 59


# ---------------------------------------------------------------- symbols, formats, layouts


def test_symbol_comes_from_the_file_name_upper_cased(tmp_path):
    path = tmp_path / "msft_1min.csv.gz"
    shutil.copy(sample_path("AAPL"), path)
    assert set(read_bars(path).column("symbol").to_pylist()) == {"MSFT"}


def test_symbol_argument_overrides_the_file_name(tmp_path):
    assert set(read_bars(sample_path("AAPL"), symbol="XYZ").column("symbol").to_pylist()) == {"XYZ"}


def test_vendor_csv_csv_gz_and_parquet_give_identical_tables(tmp_path):
    lines = sample_lines("JPM")
    csv_path = tmp_path / "JPM_1min.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    gz_path = tmp_path / "JPM_1min.csv.gz"
    with gzip.open(gz_path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    # The same rows as parquet, datetime kept as text (the vendor layout).
    raw = pacsv.read_csv(csv_path, convert_options=pacsv.ConvertOptions(column_types={"datetime": pa.string()}))
    pq_path = tmp_path / "JPM_1min.parquet"
    pq.write_table(raw, pq_path)

    from_csv = read_bars(csv_path)
    assert from_csv.num_rows == len(lines) - 1
    assert read_bars(gz_path).equals(from_csv)
    assert read_bars(pq_path).equals(from_csv)
    assert read_bars(sample_path("JPM")).equals(from_csv)


def test_vendor_parquet_with_timestamp_typed_datetime_column_loads(tmp_path):
    # A vendor-layout parquet whose 'datetime' column is a real (naive) timestamp column, as pandas or
    # pyarrow write it, holds the same wall-clock times as the CSV and must load to the same table.
    raw = pacsv.read_csv(sample_path("MSFT"))
    assert pa.types.is_timestamp(raw.schema.field("datetime").type)
    path = tmp_path / "MSFT_1min.parquet"
    pq.write_table(raw, path)
    assert read_bars(path).equals(read_bars(sample_path("MSFT")))


def test_upper_case_column_names_are_accepted(write_csv):
    path = write_csv(
        ["2019-02-11 09:31:00,10,11,9,10.5,100"], name="ABC_1min.csv", header="Datetime,Open,High,Low,Close,Volume"
    )
    row = read_bars(path, label="end").to_pylist()[0]
    assert row["symbol"] == "ABC"
    assert row["ts"] == dt.datetime(2019, 2, 11, 14, 30, tzinfo=UTC)
    assert (row["open"], row["high"], row["low"], row["close"], row["volume"]) == (10.0, 11.0, 9.0, 10.5, 100)


def test_oldest_first_vendor_file_loads_like_newest_first(tmp_path):
    lines = sample_lines("AAPL")
    assert lines[1] > lines[-1]  # the shipped file is newest first
    path = tmp_path / "AAPL_1min.csv"
    path.write_text("\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    assert read_bars(path).equals(read_bars(sample_path("AAPL")))


# ---------------------------------------------------------------- bar labelling (start or end of the bar)


def relabelled_as_start(lines: list[str]) -> list[str]:
    """A vendor file's lines with every timestamp moved one minute earlier: the same bars, start-labelled."""
    out = [lines[0]]
    for line in lines[1:]:
        stamp, rest = line.split(",", 1)
        start = dt.datetime.fromisoformat(stamp) - dt.timedelta(minutes=1)
        out.append(f"{start:%Y-%m-%d %H:%M:%S},{rest}")
    return out


def test_a_start_labelled_file_is_detected_and_loads_like_its_end_labelled_original(tmp_path):
    # Stamped 09:30 .. 15:59: under a fixed end label its 09:30 bars would fall before the session.
    lines = relabelled_as_start(sample_lines("SPY"))
    assert any(" 09:30:00," in ln for ln in lines) and not any(" 16:00:00," in ln for ln in lines)
    path = tmp_path / "SPY_1min.csv"
    path.write_text("\n".join(lines) + "\n")
    original = read_bars(sample_path("SPY"))
    assert read_bars(path).equals(original)
    assert read_bars(path, label="start").equals(original)
    assert ts_column(read_bars(path))[0] == ts_ns(2019, 2, 11, 14, 30)  # the 09:30 ET bar is kept


def test_an_end_labelled_file_is_detected_from_its_1600_bars(write_csv):
    path = write_csv(["2019-02-11 15:59:00,10,11,9,10,100", "2019-02-11 16:00:00,10,11,9,10,100"])
    expected = [ts_ns(2019, 2, 11, 20, 58), ts_ns(2019, 2, 11, 20, 59)]  # 15:58 and 15:59 ET starts
    assert list(ts_column(read_bars(path))) == expected
    assert list(ts_column(read_bars(path, label="end"))) == expected


def test_explicit_end_label_on_a_start_labelled_file_is_an_error_naming_the_option(write_csv):
    path = write_csv(["2019-02-11 09:30:00,10,11,9,10,100", "2019-02-11 09:31:00,10,11,9,10,100"])
    with pytest.raises(
        BarDataError,
        match=r"X_1min\.csv, line 2, field 'datetime': .*bar start.*stamped 09:30 ET and none 16:00 ET.*label='start'",
    ):
        read_bars(path, label="end")


def test_explicit_start_label_on_an_end_labelled_file_is_an_error_naming_the_option(write_csv):
    path = write_csv(["2019-02-11 16:00:00,10,11,9,10,100", "2019-02-11 15:59:00,10,11,9,10,100"])
    with pytest.raises(
        BarDataError,
        match=r"X_1min\.csv, line 2, field 'datetime': .*bar end.*stamped 16:00 ET and none 09:30 ET.*label='end'",
    ):
        read_bars(path, label="start")


def test_a_file_without_0930_or_1600_bars_needs_an_explicit_label(write_csv):
    path = write_csv(["2019-02-11 10:00:00,10,11,9,10,100", "2019-02-11 10:01:00,10,11,9,10,100"])
    with pytest.raises(
        BarDataError, match=r"X_1min\.csv: cannot tell .*no bar is stamped 09:30 or 16:00 ET.*label='end' or label='start'"
    ):
        read_bars(path)
    end, start = read_bars(path, label="end"), read_bars(path, label="start")
    assert list(ts_column(end)) == [ts_ns(2019, 2, 11, 14, 59), ts_ns(2019, 2, 11, 15, 0)]
    assert np.all(ts_column(start) - ts_column(end) == NS_PER_MINUTE)
    for name in ("open", "high", "low", "close", "volume"):
        assert start.column(name).equals(end.column(name))


def test_extended_hours_with_both_0930_and_1600_bars_need_an_explicit_label(write_csv):
    path = write_csv(["2019-02-11 09:30:00,10,11,9,10,100", "2019-02-11 16:00:00,10,11,9,10,100"])
    with pytest.raises(BarDataError, match=r"cannot tell .*stamped both 09:30 and 16:00 ET.*label='end' or label='start'"):
        read_bars(path)
    assert ts_column(read_bars(path, label="start"))[0] == ts_ns(2019, 2, 11, 14, 30)


def test_label_is_detected_from_a_time_zone_aware_parquet_column(tmp_path):
    # 09:30 ET written as an aware timestamp: start-labelled, and no 16:00 bar.
    stamps = [dt.datetime(2019, 2, 11, 14, 30, tzinfo=UTC), dt.datetime(2019, 2, 11, 14, 31, tzinfo=UTC)]
    table = pa.table(
        {
            "datetime": pa.array(stamps, pa.timestamp("s", tz="UTC")),
            "open": [10.0, 10.0], "high": [11.0, 11.0], "low": [9.0, 9.0], "close": [10.0, 10.0], "volume": [1, 2],
        }
    )
    path = tmp_path / "ABC_1min.parquet"
    pq.write_table(table, path)
    assert ts_column(read_bars(path))[0] == ts_ns(2019, 2, 11, 14, 30)
    with pytest.raises(BarDataError, match=r"ABC_1min\.parquet, row 1, field 'datetime': .*label='start'"):
        read_bars(path, label="end")


def test_label_other_than_auto_start_or_end_is_rejected(write_csv):
    path = write_csv(["2019-02-11 09:31:00,10,11,9,10,100"])
    with pytest.raises(BarDataError, match=r"X_1min\.csv: label must be 'auto', 'end' or 'start', got 'middle'"):
        read_bars(path, label="middle")


# ---------------------------------------------------------------- the rlexec layout


def test_rlexec_layout_with_several_symbols_is_sorted_by_symbol_then_time(write_csv):
    path = write_csv(
        [
            "ZZZ,2019-02-11T14:31:00Z,5,6,4,5,10",
            "AAA,2019-02-11T14:31:00Z,10,11,9,10,30",
            "ZZZ,2019-02-11T14:30:00Z,5,6,4,5,20",
            "AAA,2019-02-11T14:32:00Z,10,11,9,10,40",
        ],
        name="mixed.csv",
        header=RLEXEC_HEADER,
    )
    table = read_bars(path)
    assert table.schema.equals(BAR_SCHEMA)
    assert table.column("symbol").to_pylist() == ["AAA", "AAA", "ZZZ", "ZZZ"]
    assert table.column("volume").to_pylist() == [30, 40, 20, 10]
    assert list(ts_column(table)) == [
        ts_ns(2019, 2, 11, 14, 31), ts_ns(2019, 2, 11, 14, 32), ts_ns(2019, 2, 11, 14, 30), ts_ns(2019, 2, 11, 14, 31),
    ]


def test_rlexec_layout_without_time_zone_is_rejected(write_csv):
    path = write_csv(["AAA,2019-02-11 14:30:00,10,11,9,10,30"], name="naive.csv", header=RLEXEC_HEADER)
    with pytest.raises(BarDataError, match=r"naive\.csv, field 'ts': timestamps carry no time zone"):
        read_bars(path)


# ---------------------------------------------------------------- write_bars / read_bars round trips


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_write_then_read_round_trips(tmp_path, synthetic, suffix):
    path = write_bars(synthetic, tmp_path / f"bars{suffix}")
    assert path == tmp_path / f"bars{suffix}"
    back = read_bars(path)
    assert back.schema.equals(BAR_SCHEMA)
    assert back.equals(synthetic)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_write_round_trips_the_real_sample(tmp_path, sample_table, suffix):
    assert read_bars(write_bars(sample_table, tmp_path / f"sample{suffix}")).equals(sample_table)


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_write_leaves_only_the_final_file(tmp_path, synthetic, suffix):
    write_bars(synthetic, tmp_path / "sub" / f"bars{suffix}")  # also creates the folder
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == [f"bars{suffix}"]


def test_write_replaces_an_existing_file(tmp_path, synthetic):
    path = tmp_path / "bars.parquet"
    write_bars(synthetic.slice(0, 10), path)
    write_bars(synthetic, path)
    assert read_bars(path).num_rows == synthetic.num_rows


def test_write_rejects_an_unknown_extension_and_writes_nothing(tmp_path, synthetic):
    with pytest.raises(BarDataError, match=r"bars\.txt: output must end in \.parquet, \.csv or \.csv\.gz"):
        write_bars(synthetic, tmp_path / "bars.txt")
    assert list(tmp_path.iterdir()) == []


def test_csv_round_trip_keeps_a_symbol_that_looks_like_a_null_marker(tmp_path):
    # Tickers are free text; "NA" (one of Arrow's default CSV null markers) must survive
    # write_bars -> read_bars like any other symbol.
    symbol = "NA"
    table = generate_bars(SyntheticMarketConfig(symbols=(symbol,), num_days=1), seed=1)
    back = read_bars(write_bars(table, tmp_path / "bars.csv"))
    assert set(back.column("symbol").to_pylist()) == {symbol}


# ---------------------------------------------------------------- read_many


def test_read_many_concatenates_and_sorts(tmp_path, synthetic):
    aaa = synthetic.filter(pc.equal(synthetic.column("symbol"), "AAA"))
    bbb = synthetic.filter(pc.equal(synthetic.column("symbol"), "BBB"))
    paths = [write_bars(bbb, tmp_path / "b.parquet"), write_bars(aaa, tmp_path / "a.csv")]
    table = read_many(paths)
    assert table.schema.equals(BAR_SCHEMA)
    assert table.equals(synthetic)


def test_read_many_rejects_the_same_symbol_and_minute_in_two_files(write_csv):
    first = write_csv(["2019-02-11 09:31:00,10,11,9,10,100", "2019-02-11 09:32:00,10,11,9,10,100"], name="AAA_1min.csv")
    second = write_csv(["2019-02-11 09:32:00,10,11,9,10,100", "2019-02-11 09:33:00,10,11,9,10,100"], name="aaa_1min.csv")
    with pytest.raises(BarDataError, match=r"AAA_1min\.csv, .*aaa_1min\.csv: symbol AAA has two bars at 2019-02-11 14:31"):
        read_many([first, second], label="end")


def test_read_many_accepts_the_same_minute_for_different_symbols(write_csv):
    a = write_csv(["2019-02-11 09:31:00,10,11,9,10,100"], name="AAA_1min.csv")
    b = write_csv(["2019-02-11 09:31:00,20,21,19,20,200"], name="BBB_1min.csv")
    table = read_many([b, a], label="end")
    assert table.column("symbol").to_pylist() == ["AAA", "BBB"]
    assert table.column("volume").to_pylist() == [100, 200]


def test_read_many_of_no_files_is_an_error():
    with pytest.raises(BarDataError, match="no bar files given"):
        read_many([])

"""The daily S&P 500 loader: a rectangular close panel, clear errors, a chronological split."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from rlexec.data.daily import DOW30_FEB_2018, DOW30_UNIVERSE, DailySplit, default_daily_file, load_daily
from rlexec.errors import ConfigError, DataFileError

HEADER = "date,open,high,low,close,volume,Name\n"


def write(tmp_path, rows: list[str], name: str = "stocks.csv.gz"):
    path = tmp_path / name
    with gzip.open(path, "wt") as handle:
        handle.write(HEADER + "".join(r + "\n" for r in rows))
    return path


def rows_for(name: str, closes: list[float], first_day: int = 1) -> list[str]:
    return [f"2016-01-{first_day + i:02d},,,,{c},100,{name}" for i, c in enumerate(closes)]


def test_panel_is_date_by_symbol_in_the_order_asked(tmp_path):
    # the file groups by ticker; a missing open (as in 11 real rows) is no reason to reject it
    path = write(tmp_path, rows_for("BBB", [10, 11, 12]) + rows_for("AAA", [1, 2, 3]))
    panel = load_daily(path, ("BBB", "AAA"))
    assert panel.symbols == ("BBB", "AAA")
    assert panel.dates.tolist() == list(np.array(["2016-01-01", "2016-01-02", "2016-01-03"], "datetime64[D]"))
    np.testing.assert_array_equal(panel.close, [[10, 1], [11, 2], [12, 3]])
    # index = mean of close / first close: (1 + 1)/2, (1.1 + 2)/2, (1.2 + 3)/2
    np.testing.assert_allclose(panel.equal_weight_index(), [1.0, 1.55, 2.1])


@pytest.mark.parametrize("bad_row, line, field, text", [
    ("2016-01-02,,,,-1,100,AAA", 3, "close", "positive"),
    ("2016-01-02,,,,,100,AAA", 3, "close", "positive"),
    ("2016-13-02,,,,5,100,AAA", 3, "date", "not a date"),
    ("2016-01-01,,,,5,100,AAA", 3, "date", "a second row for AAA on 2016-01-01"),
])
def test_bad_rows_are_named_by_file_line_and_field(tmp_path, bad_row, line, field, text):
    path = write(tmp_path, ["2016-01-01,,,,5,100,AAA", bad_row])
    with pytest.raises(DataFileError, match=text) as info:
        load_daily(path, ("AAA",))
    assert (info.value.source, info.value.line, info.value.field) == (str(path), line, field)


def test_missing_symbol_and_missing_date_are_refused(tmp_path):
    path = write(tmp_path, rows_for("AAA", [1, 2, 3]) + rows_for("BBB", [1, 2]))
    with pytest.raises(DataFileError, match=r"no rows for symbol\(s\) \['CCC'\]"):
        load_daily(path, ("AAA", "CCC"))
    with pytest.raises(DataFileError, match="BBB has no close on 2016-01-03"):
        load_daily(path, ("AAA", "BBB"))


def test_missing_column_and_missing_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("date,price,Name\n2016-01-01,1,AAA\n")
    with pytest.raises(DataFileError, match=r"missing column\(s\) \['close'\]"):
        load_daily(path, ("AAA",))
    with pytest.raises(DataFileError, match="no such file"):
        load_daily(tmp_path / "absent.csv", ("AAA",))


def test_split_is_chronological_and_disjoint(tmp_path):
    path = write(tmp_path, rows_for("AAA", [1, 2, 3, 4, 5, 6, 7]))
    panel = load_daily(path, ("AAA",))
    split = DailySplit(validation_start="2016-01-03", test_start="2016-01-05")
    assert panel.part_bounds("train", split) == (0, 1)
    assert panel.part_bounds("validation", split) == (2, 3)
    assert panel.part_bounds("test", split) == (4, 6)
    with pytest.raises(ConfigError, match="must precede"):
        DailySplit(validation_start="2016-01-05", test_start="2016-01-03")
    with pytest.raises(ConfigError, match="holds 1 date"):
        panel.part_bounds("validation", DailySplit(validation_start="2016-01-03", test_start="2016-01-04"))


def test_universe_is_the_dow_without_dwdp():
    assert len(DOW30_FEB_2018) == 30 and len(DOW30_UNIVERSE) == 29 and "DWDP" not in DOW30_UNIVERSE


@pytest.mark.skipif(not default_daily_file().exists(), reason="the shared daily S&P 500 file is not here")
def test_shared_file_default_split():
    panel = load_daily()
    assert panel.close.shape == (1259, 29)
    split = DailySplit()
    assert [str(panel.dates[i]) for i in panel.part_bounds("test", split)] == ["2017-02-08", "2018-02-07"]
    assert [str(panel.dates[i]) for i in panel.part_bounds("train", split)] == ["2013-02-08", "2016-02-05"]

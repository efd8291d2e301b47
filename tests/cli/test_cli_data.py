"""``rlexec data validate|convert`` and the installed ``rlexec`` console script."""

from __future__ import annotations

import io
import shutil
import subprocess

import pyarrow.compute as pc
import pytest
from rich.console import Console

from rlexec.cli.main import main
from rlexec.data import MarketData, read_bars, read_many, sample_files
from rlexec.data.panel import VOLUME


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("rlexec: error: ") and "Traceback" not in err
    return lines[0]


def test_validate_the_sample_files(capsys):
    files = [str(p) for p in sample_files()]
    assert len(files) == 4
    assert main(["data", "validate", *files]) == 0
    out = capsys.readouterr().out
    for symbol in ("AAPL", "JPM", "MSFT", "SPY"):
        assert symbol in out
    assert "valid" in out


@pytest.mark.parametrize(
    "line3, where",
    [
        ("2019-02-15 10:01:00,10.0,10.5,9.5,abc,100", ("line 3", "'close'")),
        ("2019-02-15 10:01:00,10.0,9.0,9.5,9.6,100", ("line 3", "'high'")),  # high below low
        ("2019-02-15 10:01:00,10.0,10.5,9.5,10.1,-5", ("line 3", "'volume'")),
        ("2019-02-15 10:03:00,10.0,10.5,9.5,10.1,100", ("line", "'datetime'")),  # out of order
        ("2019-02-15 25:01:00,10.0,10.5,9.5,10.1,100", ("line 3", "'datetime'")),
    ],
    ids=["not-a-number", "high-below-low", "negative-volume", "out-of-order", "bad-timestamp"],
)
def test_validate_a_broken_csv_names_file_line_and_field(tmp_path, capsys, line3, where):
    path = tmp_path / "XYZ_1min.csv"
    path.write_text(
        "datetime,open,high,low,close,volume\n"
        "2019-02-15 10:02:00,10.0,10.5,9.5,10.1,100\n"
        f"{line3}\n"
        "2019-02-15 10:00:00,10.0,10.5,9.5,10.2,100\n"
    )
    assert main(["data", "validate", str(path)]) == 2
    line = _one_error_line(capsys)
    assert str(path) in line
    for part in where:
        assert part in line


def test_validate_missing_file(tmp_path, capsys):
    assert main(["data", "validate", str(tmp_path / "none.csv")]) == 2
    assert "none.csv" in _one_error_line(capsys)


@pytest.mark.parametrize("suffix", [".parquet", ".csv.gz"])
def test_convert_writes_a_file_that_reads_back_equal(tmp_path, capsys, suffix):
    sources = [p for p in sample_files() if p.name.startswith(("AAPL", "SPY"))]
    out = tmp_path / f"bars{suffix}"
    assert main(["data", "convert", *map(str, sources), "--out", str(out)]) == 0
    assert out.exists() and not list(tmp_path.glob("*.partial"))
    assert "AAPL" not in capsys.readouterr().err
    source = read_many(sources)
    back = read_bars(out)
    assert back.schema == source.schema
    assert back.num_rows == source.num_rows
    assert back.equals(source)
    assert sorted(pc.unique(back.column("symbol")).to_pylist()) == ["AAPL", "SPY"]


def test_convert_needs_label_where_a_file_cannot_tell_and_honours_it(tmp_path, capsys):
    # A part-day vendor extract: no 09:30 or 16:00 bar, so start and end labels cannot be told apart.
    path = tmp_path / "XYZ_1min.csv"
    path.write_text("datetime,open,high,low,close,volume\n2019-02-15 10:01:00,10,11,9,10,100\n")
    out = tmp_path / "bars.parquet"
    assert main(["data", "convert", str(path), "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "XYZ_1min.csv" in line and "--label" in line and not out.exists()
    assert main(["data", "convert", str(path), "--out", str(out), "--label", "start"]) == 0
    assert read_bars(out).equals(read_bars(path, label="start"))


def test_convert_rejects_an_unknown_output_format(tmp_path, capsys):
    assert main(["data", "convert", str(sample_files()[0]), "--out", str(tmp_path / "bars.xlsx")]) == 2
    assert "bars.xlsx" in _one_error_line(capsys)


def test_console_script_help():
    exe = shutil.which("rlexec")
    assert exe, "the rlexec console script is not installed"
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: rlexec" in result.stdout
    for command in ("evaluate", "data"):
        assert command in result.stdout


def test_validate_table_fits_80_columns(monkeypatch, capsys):
    import rlexec.cli.data

    out = io.StringIO()
    monkeypatch.setattr(rlexec.cli.data, "make_console", lambda: Console(file=out, width=80))
    files = sample_files()
    assert main(["data", "validate", *map(str, files)]) == 0
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    text = out.getvalue()
    assert "…" not in text  # nothing cut off
    assert lines[0].strip() == f"bar files in {files[0].parent}: valid"  # the folder they share
    for path in files:
        # each file's row, its name and figures whole: name, symbol, first day, sessions, bars, gap minutes,
        # zero-volume bars (the last day sits below the first, on the row's second line)
        bars = read_bars(path)
        market = MarketData.from_table(bars)
        at = next(i for i, line in enumerate(lines) if line.split()[:1] == [path.name])
        cells = [cell.strip() for cell in lines[at].split("│")]
        assert cells == [path.name, path.name.split("_")[0], str(min(market.dates)), str(market.num_sessions),
                         f"{bars.num_rows:,}", str(int((~market.observed).sum())),
                         str(int((market.observed & (market.bars[..., VOLUME] == 0)).sum()))]
        assert str(max(market.dates)) in lines[at + 1]

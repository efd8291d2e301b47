"""``rlexec data``: validate bar files and convert them to the normalised parquet layout."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from rlexec.cli import LABELS, make_console

LABEL_HELP = (
    "vendor-layout files: whether timestamps label the bar 'end' or 'start'; 'auto' (default) tells "
    "them apart by the bars stamped 09:30 or 16:00 ET and stops where a file cannot tell"
)
FILES_HELP = (
    "minute-bar files: CSV, CSV.gz or parquet, in the vendor layout (datetime,open,high,low,close,volume; "
    "one symbol per file, named <SYMBOL>_1min.csv[.gz]), rlexec's (symbol,ts,open,high,low,close,volume) or a "
    "NinjaTrader export (yyyymmdd HHMMSS;open;high;low;close;volume, UTC bar ends; regular hours are kept)"
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "data", help="validate and convert minute-bar files",
        description="Check minute-bar files (validate) or rewrite them in rlexec's normalised layout (convert).",
    )
    sub = p.add_subparsers(dest="data_command", required=True)
    v = sub.add_parser(
        "validate", help="check bar files; report sessions, gaps and zero-volume bars",
        description="Read each file as rlexec does and print one row per file: symbols, sessions, bars, gap minutes "
        "(minutes without a bar, filled by the gap policy) and zero-volume bars. The first bad value stops the "
        "check with an error naming the file, line and field (exit code 2).",
    )
    v.add_argument("files", nargs="+", metavar="FILE", help=FILES_HELP)
    v.add_argument("--label", choices=LABELS, default="auto", help=LABEL_HELP)
    v.set_defaults(func=validate)
    c = sub.add_parser(
        "convert", help="read bar files and write one normalised parquet/CSV file",
        description="Read bar files, validate them, and write all their bars into one file in rlexec's layout "
        "(symbol, ts = bar start in UTC, open, high, low, close, volume), sorted by symbol and time.",
    )
    c.add_argument("files", nargs="+", metavar="FILE", help=FILES_HELP)
    c.add_argument("--out", required=True, help="output file: .parquet, .csv or .csv.gz")
    c.add_argument("--label", choices=LABELS, default="auto", help=LABEL_HELP)
    c.set_defaults(func=convert)


def validate(args: argparse.Namespace) -> int:
    console = make_console()
    notes: list[str] = []
    rows = [file_summary(path, args.label, notes) for path in args.files]
    console.print(validation_table(rows))
    for note in notes:
        console.print(note, highlight=False)
    return 0


def file_summary(path: str, label: str, notes: list[str]) -> dict:
    """What ``validate`` reports for one bar file; lines that do not fit the table go into ``notes``."""
    from rlexec.data import MarketData, read_bars
    from rlexec.data.panel import VOLUME

    bars = read_bars(path, label=label)
    market = MarketData.from_table(bars, source=str(path))
    if market.off_session_bars:
        notes.append(f"{path}: {market.off_session_bars:,} bar(s) outside the 09:30-16:00 ET session left out")
    for symbol, day, reason in market.dropped_days:
        notes.append(f"{path}: {symbol} {day} left out: {reason}")
    return {
        "path": str(path),
        "symbols": ", ".join(market.symbols),
        "days": f"{min(market.dates)}\n{max(market.dates)}",
        "sessions": str(market.num_sessions),
        "bars": f"{bars.num_rows:,}",
        "gap minutes": f"{int((~market.observed).sum()):,}",
        "zero-volume bars": f"{int((market.observed & (market.bars[..., VOLUME] == 0)).sum()):,}",
    }


def validation_table(rows: list[dict]) -> Table:
    """One row per file, 80 columns wide at most: a folder shared by all files goes into the title, headers
    take two lines, and a long file name folds onto more lines instead of being cut."""
    folders = {str(Path(row["path"]).parent) for row in rows}
    shared = folders.pop() if len(folders) == 1 else None
    table = Table(title=f"bar files{f' in {shared}' if shared else ''}: valid", show_edge=False)
    table.add_column("file", overflow="fold", ratio=1)
    table.add_column("symbols", overflow="fold")
    for header in ("first day\nlast day", "sessions", "bars", "gap\nminutes", "zero-\nvolume\nbars"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        name = Path(row["path"]).name if shared else row["path"]
        table.add_row(name, row["symbols"], row["days"], row["sessions"], row["bars"], row["gap minutes"],
                      row["zero-volume bars"])
    return table


def convert(args: argparse.Namespace) -> int:
    import numpy as np

    from rlexec.data import read_many, write_bars

    table = read_many(args.files, label=args.label)
    path = write_bars(table, args.out)
    symbols = np.unique(table.column("symbol").to_numpy(zero_copy_only=False))
    make_console().print(f"wrote {table.num_rows:,} bars of {len(symbols)} symbol(s) to [bold]{path}[/bold]")
    return 0

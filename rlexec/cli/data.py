"""``rlexec data``: validate bar files and convert them to the normalised parquet layout."""

from __future__ import annotations

import argparse

import numpy as np
from rich.table import Table

from rlexec.cli import make_console
from rlexec.data import MarketData, read_bars, read_many, write_bars
from rlexec.data.loaders import LABELS
from rlexec.data.panel import VOLUME

LABEL_HELP = (
    "vendor-layout files: whether timestamps label the bar 'end' or 'start'; 'auto' (default) tells "
    "them apart by the bars stamped 09:30 or 16:00 ET and stops where a file cannot tell"
)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("data", help="validate and convert minute-bar files")
    sub = p.add_subparsers(dest="data_command", required=True)
    v = sub.add_parser("validate", help="check bar files; report sessions, gaps and zero-volume bars")
    v.add_argument("files", nargs="+")
    v.add_argument("--label", choices=LABELS, default="auto", help=LABEL_HELP)
    v.set_defaults(func=validate)
    c = sub.add_parser("convert", help="read bar files and write one normalised parquet/CSV file")
    c.add_argument("files", nargs="+")
    c.add_argument("--out", required=True, help="output file: .parquet, .csv or .csv.gz")
    c.add_argument("--label", choices=LABELS, default="auto", help=LABEL_HELP)
    c.set_defaults(func=convert)


def validate(args: argparse.Namespace) -> int:
    console = make_console()
    table = Table(title="bar files: valid")
    for column in ("file", "symbols", "bars", "first", "last", "sessions", "gap minutes", "zero-volume bars",
                   "off-session", "dropped days"):
        table.add_column(column, justify="left" if column == "file" else "right")
    for path in args.files:
        bars = read_bars(path, label=args.label)
        market = MarketData.from_table(bars, source=str(path))
        gaps = int((~market.observed).sum())
        zero = int((market.observed & (market.bars[..., VOLUME] == 0)).sum())
        ts = bars.column("ts")
        table.add_row(
            str(path), ",".join(market.symbols), f"{bars.num_rows:,}", str(ts[0]), str(ts[-1]),
            str(market.num_sessions), f"{gaps:,}", f"{zero:,}", f"{market.off_session_bars:,}",
            str(len(market.dropped_days)),
        )
    console.print(table)
    return 0


def convert(args: argparse.Namespace) -> int:
    table = read_many(args.files, label=args.label)
    path = write_bars(table, args.out)
    symbols = np.unique(table.column("symbol").to_numpy(zero_copy_only=False))
    make_console().print(f"wrote {table.num_rows:,} bars of {len(symbols)} symbol(s) to [bold]{path}[/bold]")
    return 0

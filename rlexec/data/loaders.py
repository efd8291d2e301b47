"""Read minute bars from CSV, CSV.gz or parquet into the one schema of ``rlexec.data.schema``.

Three layouts are recognised (``ninjatrader`` by its first line, the others by their timestamp column):

* ``vendor`` (the shared ``us_equity_1min`` files): ``datetime,open,high,low,close,volume``,
  naive **US/Eastern** wall-clock times, rows newest first, one symbol per file named
  ``<SYMBOL>_1min.csv[.gz]``. The times label either the **end** of each bar (the shared files:
  09:31 .. 16:00) or its **start** (09:30 .. 15:59); see :func:`detect_label`.
* ``rlexec`` (what :func:`write_bars` produces): ``symbol, ts, open, high, low, close, volume`` with
  ``ts`` the bar **start** in UTC.

* ``ninjatrader`` (the shared ``spy_1min_2011`` export): no header, ``;``-separated
  ``yyyymmdd HHMMSS;open;high;low;close;volume``, **UTC** stamps labelling the **end** of each bar
  (NinjaTrader's convention; checked on the SPY file: the opening-auction volume lands in the bar
  stamped 09:31 ET), extended hours included. Only the regular session's 390 bars are kept, so the
  closing-auction prints stamped 16:01 ET are dropped. The symbol comes from a ``nt-<symbol>-minute``
  file name or the ``symbol`` argument.

All end up as :data:`~rlexec.data.schema.BAR_SCHEMA`: bar start in UTC, sorted by (symbol, ts).
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from rlexec.data.calendar import EXCHANGE_TZ, NS_PER_MINUTE, SESSION_MINUTES, exchange_date, minute_of_session
from rlexec.data.schema import BAR_SCHEMA, PRICE_COLUMNS
from rlexec.data.validation import RowLocator, require_columns, sort_order, validate_prices_and_volume
from rlexec.errors import BarDataError

VALUE_COLUMNS = (*PRICE_COLUMNS, "volume")
LABELS = ("auto", "end", "start")
LAYOUTS = ("auto", "vendor", "rlexec", "ninjatrader")
NINJATRADER_LINE = re.compile(rb"^\d{8} \d{6};")
NINJATRADER_NAME = re.compile(r"^nt-([A-Za-z0-9.]+)-minute", re.IGNORECASE)
SAMPLE_DIR = Path(__file__).with_name("sample")


def sample_files() -> list[Path]:
    """The real minute-bar files shipped inside the package (see ``sample/ATTRIBUTION.md``)."""
    return sorted(SAMPLE_DIR.glob("*_1min.csv.gz"))


def symbol_from_filename(path: Path) -> str:
    """``AAPL_1min.csv.gz`` -> ``AAPL``; ``nt-spy-minute-2011-01.csv.gz`` -> ``SPY``."""
    if match := NINJATRADER_NAME.match(path.name):
        return match.group(1).upper()
    name = path.name.split(".")[0]
    return name.split("_")[0].upper()


def is_ninjatrader(path: Path) -> bool:
    """Whether a text file's first line is a NinjaTrader minute bar (``yyyymmdd HHMMSS;...``)."""
    if path.suffix == ".parquet":
        return False
    try:
        with (gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")) as fh:
            return bool(NINJATRADER_LINE.match(fh.readline(256)))
    except (OSError, EOFError):
        return False


def _read_ninjatrader(path: Path, locator: RowLocator) -> pa.Table:
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=["datetime", *VALUE_COLUMNS]),
            parse_options=pacsv.ParseOptions(delimiter=";"),
            convert_options=pacsv.ConvertOptions(column_types={"datetime": pa.string()}),
        )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise locator.error(f"not a readable NinjaTrader export ({str(exc).splitlines()[0]})") from None


def _ninjatrader_timestamps(table: pa.Table, locator: RowLocator) -> np.ndarray:
    """The UTC stamps as written (the bar end), in nanoseconds."""
    strings = table.column("datetime").cast(pa.string())
    fmt = "%Y%m%d %H%M%S"
    stamps = pc.strptime(strings, format=fmt, unit="ns", error_is_null=True)
    bad = pc.or_kleene(pc.is_null(stamps), pc.not_equal(pc.strftime(stamps.cast(pa.timestamp("s")), format=fmt), strings))
    bad = pc.fill_null(bad, True).to_numpy(zero_copy_only=False)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise locator.error(f"unparseable timestamp {strings[i].as_py()!r} (want yyyymmdd HHMMSS, UTC)",
                            index=i, field="datetime")
    return stamps.cast(pa.int64()).to_numpy(zero_copy_only=False)


def _read_raw(path: Path, locator: RowLocator) -> pa.Table:
    if path.suffix == ".parquet":
        try:
            return pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise locator.error(f"not a readable parquet file ({exc})") from None
    try:
        # Empty numeric cells read as null; text columns keep literal "NA"/"NULL" (valid symbols).
        return pacsv.read_csv(
            path,
            convert_options=pacsv.ConvertOptions(strings_can_be_null=False, column_types={"symbol": pa.string()}),
        )
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise locator.error(f"not a readable CSV file ({str(exc).splitlines()[0]})") from None


def _numeric(table: pa.Table, name: str, locator: RowLocator) -> np.ndarray:
    column = table.column(name)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.cast(pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_null(column.type):
        return np.full(len(table), np.nan)
    # Text in a numeric column: find the first cell that does not parse, for the message.
    cells = column.to_pylist()
    out = np.empty(len(cells))
    for i, cell in enumerate(cells):
        try:
            out[i] = float(cell) if cell is not None else np.nan
        except ValueError:
            raise locator.error(f"not a number: {cell!r}", index=i, field=name) from None
    return out


def _first_failing_cell(cells: list, parses) -> int:
    """Index of the first cell that ``parses`` rejects (slow path, used only to word an error)."""
    for i, cell in enumerate(cells):
        try:
            if cell is None or not parses(cell):
                return i
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            return i
    return 0


def _vendor_timestamps(table: pa.Table, column: str, locator: RowLocator) -> np.ndarray:
    """The vendor stamps as UTC nanoseconds, as written (not yet moved to the bar start)."""
    col = table.column(column)
    if col.null_count:
        i = int(np.flatnonzero(pc.is_null(col).to_numpy(zero_copy_only=False))[0])
        raise locator.error("missing timestamp", index=i, field=column)
    if pa.types.is_timestamp(col.type):  # e.g. a parquet file with a typed wall-clock column
        if col.type.tz is not None:
            return pc.cast(col, pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_numpy(zero_copy_only=False)
        naive = pc.cast(col, pa.timestamp("ns"))
    else:
        strings = col.cast(pa.string())
        fmt = "%Y-%m-%d %H:%M:%S"
        naive = pc.strptime(strings, format=fmt, unit="ns", error_is_null=True)
        # strptime rolls impossible dates over (Feb 30 -> Mar 2): formatting back must give the input.
        bad = pc.or_kleene(pc.is_null(naive), pc.not_equal(pc.strftime(naive.cast(pa.timestamp("s")), format=fmt), strings))
        bad = pc.fill_null(bad, True).to_numpy(zero_copy_only=False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise locator.error(
                f"unparseable timestamp {strings[i].as_py()!r} (want YYYY-MM-DD HH:MM:SS)", index=i, field=column
            )
    try:
        aware = pc.assume_timezone(naive, timezone=str(EXCHANGE_TZ), ambiguous="raise", nonexistent="raise")
    except pa.ArrowInvalid:
        i = _first_failing_cell(
            naive.to_pylist(),
            lambda cell: pc.assume_timezone(
                pa.array([cell], pa.timestamp("ns")), timezone=str(EXCHANGE_TZ), ambiguous="raise", nonexistent="raise"
            ) is not None,
        )
        raise locator.error(
            f"local time {naive[i].as_py()} does not exist or is ambiguous in US/Eastern (daylight saving switch)",
            index=i, field=column,
        ) from None
    return aware.cast(pa.int64()).to_numpy(zero_copy_only=False)


def detect_label(stamps_utc_ns: np.ndarray) -> tuple[str | None, str, int | None]:
    """Whether vendor stamps label the bar ``"start"`` or ``"end"``, from the session's edges.

    Over regular hours, end labels run 09:31 .. 16:00 ET and start labels 09:30 .. 15:59, so a bar
    stamped 09:30 with none at 16:00 means start labels, and the reverse means end labels. Returns
    ``(label, evidence, index)``: ``label`` is None when the file cannot tell (no bar at either
    edge, as in a part-day extract, or bars at both, as with extended hours, where either labelling
    has both); ``evidence`` says why in words; ``index`` is the first stamp at the deciding edge.
    """
    minutes = minute_of_session(stamps_utc_ns, exchange_date(stamps_utc_ns))
    at_open, at_close = np.flatnonzero(minutes == 0), np.flatnonzero(minutes == SESSION_MINUTES)
    if at_open.size and not at_close.size:
        return "start", "a bar is stamped 09:30 ET and none 16:00 ET", int(at_open[0])
    if at_close.size and not at_open.size:
        return "end", "a bar is stamped 16:00 ET and none 09:30 ET", int(at_close[0])
    if at_open.size:
        return None, "bars are stamped both 09:30 and 16:00 ET, as with extended hours", None
    return None, "no bar is stamped 09:30 or 16:00 ET", None


def _resolve_label(stamps_utc_ns: np.ndarray, label: str, locator: RowLocator, field: str) -> str:
    """The label to apply: ``label`` itself if the stamps do not contradict it, else a clear error."""
    detected, evidence, index = detect_label(stamps_utc_ns)
    if label == "auto":
        if detected is None:
            raise locator.error(
                f"cannot tell whether the timestamps label the start or the end of each bar ({evidence}); "
                "pass label='end' or label='start' (rlexec data convert --label end|start)"
            )
        return detected
    if detected is not None and detected != label:
        raise locator.error(
            f"label={label!r} but the timestamps label the bar {detected}: {evidence}; "
            f"use label='{detected}' or label='auto' (rlexec data convert --label {detected})",
            index=index, field=field,
        )
    return label


def _rlexec_timestamps(table: pa.Table, column: str, locator: RowLocator) -> np.ndarray:
    col = table.column(column)
    utc = pa.timestamp("ns", tz="UTC")
    if pa.types.is_timestamp(col.type):
        if col.type.tz is None:
            raise locator.error("timestamps carry no time zone; rlexec files store UTC", field=column)
        ts = pc.cast(col, utc)
    else:
        strings = col.cast(pa.string())
        try:
            ts = pc.cast(strings, utc)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cells = strings.to_pylist()
            i = _first_failing_cell(cells, lambda cell: pc.cast(pa.array([cell]), utc) is not None)
            raise locator.error(f"unparseable timestamp {cells[i]!r} (want ISO 8601 UTC)", index=i, field=column) from None
    if ts.null_count:
        i = int(np.flatnonzero(pc.is_null(ts).to_numpy(zero_copy_only=False))[0])
        raise locator.error("missing timestamp", index=i, field=column)
    return ts.cast(pa.int64()).to_numpy(zero_copy_only=False)


def read_bars(
    path: str | os.PathLike,
    *,
    symbol: str | None = None,
    layout: str = "auto",
    label: str = "auto",
) -> pa.Table:
    """Read, validate and normalise one bar file.

    Args:
        path: ``.csv``, ``.csv.gz`` or ``.parquet``.
        symbol: ticker for files without a ``symbol`` column; default from the file name.
        layout: ``"auto"`` (a NinjaTrader first line, else by column names), ``"vendor"``, ``"rlexec"``
            or ``"ninjatrader"``.
        label: for the vendor layout, whether its timestamps label the bar ``"end"`` or ``"start"``;
            ``"auto"`` (default) tells them apart by :func:`detect_label` and raises where the file
            cannot tell. An explicit label that the file's 09:30/16:00 bars contradict also raises.
            Ignored for the rlexec layout, whose ``ts`` is always the bar start. NinjaTrader exports
            carry extended hours, which defeat the detection: ``"auto"`` means ``"end"`` there.

    Raises:
        BarDataError: naming the file, line/row and field of the first problem found.
    """
    path = Path(path)
    text_file = path.suffix != ".parquet"
    locator = RowLocator(source=str(path), text_file=text_file)
    if not path.exists():
        raise locator.error("file not found")
    if label not in LABELS:
        raise locator.error(f"label must be 'auto', 'end' or 'start', got {label!r}")
    if layout not in LAYOUTS:
        raise locator.error(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if layout in ("auto", "ninjatrader") and is_ninjatrader(path):
        layout = "ninjatrader"
        locator = RowLocator(source=str(path), text_file=True, header_lines=0)
        table = _read_ninjatrader(path, locator)
    elif layout == "ninjatrader":
        raise locator.error("not a NinjaTrader export: the first line is not 'yyyymmdd HHMMSS;open;high;low;close;volume'")
    else:
        table = _read_raw(path, locator)
    columns = [c.lower() for c in table.column_names]
    table = table.rename_columns(columns)
    if layout == "auto":
        layout = "rlexec" if "ts" in columns else "vendor"
    ts_field = "ts" if layout == "rlexec" else "datetime"
    require_columns(columns, (ts_field, *VALUE_COLUMNS), locator)
    if len(table) == 0:
        raise locator.error("no rows")

    values = {name: _numeric(table, name, locator) for name in VALUE_COLUMNS}
    validate_prices_and_volume(
        open_=values["open"], high=values["high"], low=values["low"], close=values["close"],
        volume=values["volume"], locator=locator,
    )
    if layout == "vendor":
        ts = _vendor_timestamps(table, ts_field, locator)
    elif layout == "ninjatrader":
        ts = _ninjatrader_timestamps(table, locator)
    else:
        ts = _rlexec_timestamps(table, ts_field, locator)
    if "symbol" in columns:
        symbols = np.asarray(table.column("symbol").cast(pa.string()).to_pylist(), dtype=object)
        if (missing := np.flatnonzero(symbols == None)).size:  # noqa: E711 (elementwise)
            raise locator.error("missing symbol", index=int(missing[0]), field="symbol")
    else:
        symbols = np.full(len(table), symbol or symbol_from_filename(path), dtype=object)
    order = sort_order(ts, symbols.astype(str), locator, ts_field)
    # After the order checks, so a duplicated or misplaced line is reported as such first.
    if layout == "vendor" and _resolve_label(ts, label, locator, ts_field) == "end":
        ts = ts - NS_PER_MINUTE
    if layout == "ninjatrader":
        # Extended hours defeat detect_label (bars at both 09:30 and 16:00): NinjaTrader stamps the bar end.
        if label in ("auto", "end"):
            ts = ts - NS_PER_MINUTE
        minute = minute_of_session(ts[order], exchange_date(ts[order]))
        order = order[(minute >= 0) & (minute < SESSION_MINUTES)]
        if order.size == 0:
            raise locator.error("no bar inside the regular session 09:30-16:00 ET")
    return pa.table(
        {
            "symbol": pa.array(symbols[order].astype(str), pa.string()),
            "ts": pa.array(ts[order], pa.timestamp("ns", tz="UTC")),
            **{name: pa.array(values[name][order], pa.float64()) for name in PRICE_COLUMNS},
            "volume": pa.array(np.rint(values["volume"][order]).astype(np.int64), pa.int64()),
        },
        schema=BAR_SCHEMA,
    )


def read_many(paths: list[str | os.PathLike], **kwargs) -> pa.Table:
    """Read several files and concatenate them; a symbol may not appear in two files at the same minute."""
    if not paths:
        raise BarDataError("<no files>", "no bar files given")
    tables = [read_bars(p, **kwargs) for p in paths]
    table = pa.concat_tables(tables)
    order = pc.sort_indices(table, sort_keys=[("symbol", "ascending"), ("ts", "ascending")])
    table = table.take(order)
    sym = table.column("symbol").to_numpy(zero_copy_only=False)
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    dup = np.flatnonzero((sym[1:] == sym[:-1]) & (ts[1:] == ts[:-1]))
    if dup.size:
        i = int(dup[0])
        raise BarDataError(
            ", ".join(str(p) for p in paths), f"symbol {sym[i]} has two bars at {table.column('ts')[i]} across files"
        )
    return table


def write_bars(table: pa.Table, path: str | os.PathLike) -> Path:
    """Write a normalised table as parquet (``.parquet``) or CSV (``.csv``/``.csv.gz``), atomically.

    The file appears only once fully written, so an interrupted write never replaces good data.
    """
    path = Path(path)
    table = table.cast(BAR_SCHEMA)
    tmp = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(table, tmp)
    elif path.name.endswith((".csv", ".csv.gz")):
        out = table.set_column(1, "ts", pc.strftime(table.column("ts"), format="%Y-%m-%dT%H:%M:%SZ"))
        if path.name.endswith(".gz"):
            with pa.CompressedOutputStream(str(tmp), "gzip") as sink:
                pacsv.write_csv(out, sink)
        else:
            pacsv.write_csv(out, tmp)
    else:
        raise BarDataError(str(path), "output must end in .parquet, .csv or .csv.gz")
    os.replace(tmp, path)
    return path

"""Daily closes of a stock universe: the S&P 500 2013-2018 set, validated, as a (date x symbol) panel.

The file (``shared/data/daily_sp500_2013_2018/all_stocks_5yr.csv.gz``, see the shared data README)
has the header ``date,open,high,low,close,volume,Name`` and one row per ticker and date. Only
``date``, ``close`` and ``Name`` are read: the portfolio env trades at the close, and the open, high
and low columns have known gaps (11 rows lack the open) that must not reject the file.

Universe (rlexec's default, configurable): the 30 Dow Jones members of February 2018 that have the
set's whole history, i.e. :data:`DOW30_FEB_2018` without DWDP, which was listed on 2017-09-01 (109
rows) and would leave too little history for training. 29 stocks.

Split (rlexec's default, configurable in :class:`DailySplit`): chronological, by date.
train 2013-02-08 .. 2016-02-05 (3 years), validation 2016-02-08 .. 2017-02-07, test 2017-02-08 ..
2018-02-07 (the last year). Every part keeps the earlier dates as history (observation windows and
trend features look back), but no part decides on a date of another part.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rlexec.data.validation import RowLocator, require_columns
from rlexec.errors import ConfigError, DataFileError

PARTS = ("train", "validation", "test")
COLUMNS = ("date", "close", "Name")
DAILY_FILE_PARTS = ("shared", "data", "daily_sp500_2013_2018", "all_stocks_5yr.csv.gz")

DOW30_FEB_2018 = (
    "AAPL", "AXP", "BA", "CAT", "CSCO", "CVX", "DIS", "DWDP", "GE", "GS", "HD", "IBM", "INTC", "JNJ", "JPM",
    "KO", "MCD", "MMM", "MRK", "MSFT", "NKE", "PFE", "PG", "TRV", "UNH", "UTX", "V", "VZ", "WMT", "XOM",
)
# DWDP (DowDuPont) starts on 2017-09-01 in the set: it has no train or validation history
DOW30_UNIVERSE = tuple(s for s in DOW30_FEB_2018 if s != "DWDP")


def default_daily_file() -> Path:
    """The shared file next to the checkout holding this package (``<repo>/../shared``); a git worktree
    one folder deeper (``<worktrees>/<name>``) finds it one level further up."""
    repo = Path(__file__).resolve().parents[2]
    candidates = [repo.parent.joinpath(*DAILY_FILE_PARTS), repo.parent.parent.joinpath(*DAILY_FILE_PARTS)]
    return next((c for c in candidates if c.exists()), candidates[0])


@dataclass(frozen=True, kw_only=True)
class DailySplit:
    """Chronological split: a date belongs to validation from ``validation_start``, to test from
    ``test_start`` (ISO dates; rlexec's defaults, see the module docstring)."""

    validation_start: str = "2016-02-08"
    test_start: str = "2017-02-08"

    def __post_init__(self) -> None:
        starts = [_parse_date(self.validation_start, "validation_start"), _parse_date(self.test_start, "test_start")]
        if not starts[0] < starts[1]:
            raise ConfigError(f"DailySplit: validation_start {self.validation_start} must precede test_start "
                              f"{self.test_start}")

    @classmethod
    def from_dict(cls, data: dict | None) -> DailySplit:
        data = dict(data or {})
        unknown = set(data) - {"validation_start", "test_start"}
        if unknown:
            raise ConfigError(f"split: unknown key(s) {sorted(unknown)}; use validation_start and test_start")
        return cls(**{k: str(v) for k, v in data.items()})


def _parse_date(text: str, field: str) -> np.datetime64:
    try:
        return np.datetime64(dt.date.fromisoformat(str(text)), "D")
    except ValueError:
        raise ConfigError(f"DailySplit.{field}: {text!r} is not an ISO date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class DailyPanel:
    """Closes of ``symbols`` on ``dates`` (ascending): ``close[t, i]`` is symbol i's close on dates[t]."""

    source: str
    dates: np.ndarray  # datetime64[D]
    symbols: tuple[str, ...]
    close: np.ndarray  # (T, N) float64

    def part_bounds(self, part: str, split: DailySplit) -> tuple[int, int]:
        """[first, last] date index of a part (inclusive both ends)."""
        if part not in PARTS:
            raise ConfigError(f"part must be one of {PARTS}, got {part!r}")
        validation_start = np.datetime64(split.validation_start, "D")
        test_start = np.datetime64(split.test_start, "D")
        lower = {"train": None, "validation": validation_start, "test": test_start}[part]
        upper = {"train": validation_start, "validation": test_start, "test": None}[part]
        inside = np.ones(len(self.dates), bool)
        if lower is not None:
            inside &= self.dates >= lower
        if upper is not None:
            inside &= self.dates < upper
        index = np.flatnonzero(inside)
        if index.size < 2:
            raise ConfigError(f"{self.source}: the {part} part ({split}) holds {index.size} date(s) of "
                              f"{self.dates[0]} .. {self.dates[-1]}; it needs at least 2")
        return int(index[0]), int(index[-1])

    def equal_weight_index(self) -> np.ndarray:
        """The market series the trend sketch reads: the mean of each stock's close relative to its
        first close (an equal-weight, buy-at-the-first-date index, 1.0 on dates[0]); day t uses only
        closes up to t and the first date, which is in every part's past."""
        return (self.close / self.close[0]).mean(axis=1)


def load_daily(path: str | os.PathLike | None = None, symbols: tuple[str, ...] | list[str] = DOW30_UNIVERSE) -> DailyPanel:
    """The validated panel of ``symbols`` from a file in the layout above (``None``: the shared file).

    Raises :class:`~rlexec.errors.DataFileError` naming the file, line and field of the first bad
    date or close, a duplicated (Name, date), a symbol the file lacks, or a symbol missing a date that
    another symbol of the universe has (the panel must be rectangular: no forward filling).
    """
    return _load_daily(str(Path(path) if path is not None else default_daily_file()), tuple(symbols))


@functools.lru_cache(maxsize=4)
def _load_daily(path: str, symbols: tuple[str, ...]) -> DailyPanel:
    import pandas as pd

    if not symbols:
        raise ConfigError("symbols: the universe is empty")
    if len(set(symbols)) != len(symbols):
        raise ConfigError(f"symbols: repeated ticker(s) in {list(symbols)}")
    locator = RowLocator(source=path, text_file=True)
    if not Path(path).is_file():
        raise DataFileError(path, "no such file (the daily S&P 500 set: shared/data/daily_sp500_2013_2018/)")
    try:
        # tickers such as "NA" must stay text; missing closes read as NaN and are reported below
        frame = pd.read_csv(path, usecols=lambda column: column in COLUMNS, dtype={"Name": str, "date": str},
                            keep_default_na=False, na_values={"close": [""]})
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(path, f"not a readable CSV file ({str(exc).splitlines()[0]})") from None
    require_columns(list(frame.columns), COLUMNS, locator)

    close = pd.to_numeric(frame["close"], errors="coerce").to_numpy(float)
    bad_number = np.flatnonzero(~np.isfinite(close) | (close <= 0))
    dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    bad_date = np.flatnonzero(dates.isna().to_numpy())
    if bad_date.size and (not bad_number.size or bad_date[0] <= bad_number[0]):
        i = int(bad_date[0])
        raise locator.error(f"not a date (YYYY-MM-DD): {frame['date'].iloc[i]!r}", index=i, field="date")
    if bad_number.size:
        i = int(bad_number[0])
        raise locator.error(f"close must be a positive number, got {frame['close'].iloc[i]!r}", index=i,
                            field="close")

    wanted = frame["Name"].isin(symbols).to_numpy()
    missing = [s for s in symbols if s not in set(frame["Name"][wanted])]
    if missing:
        raise DataFileError(path, f"no rows for symbol(s) {missing}", field="Name")
    table = pd.DataFrame({"date": dates.to_numpy()[wanted].astype("datetime64[D]"),
                          "Name": frame["Name"].to_numpy()[wanted], "close": close[wanted]},
                         index=np.flatnonzero(wanted))
    repeated = np.flatnonzero(table.duplicated(["Name", "date"]).to_numpy())
    if repeated.size:
        i = int(table.index[repeated[0]])
        raise locator.error(f"a second row for {frame['Name'].iloc[i]} on {frame['date'].iloc[i]}", index=i,
                            field="date")
    wide = table.pivot(index="date", columns="Name", values="close")[list(symbols)].sort_index()
    holes = wide.isna().to_numpy()
    if holes.any():
        t, j = np.argwhere(holes)[0]
        raise DataFileError(path, f"symbol {symbols[j]} has no close on {wide.index[t].date()}, a date other "
                            f"symbols of the universe have; drop it from symbols or fix the file", field="Name")
    return DailyPanel(source=path, dates=wide.index.to_numpy().astype("datetime64[D]"), symbols=symbols,
                      close=wide.to_numpy(float))

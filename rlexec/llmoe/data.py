"""LLMoE data: daily prices, news text aligned to trading days with no look-ahead, 5-day windows, splits.

Text alignment convention (one rule for the stocknet tweets and for a user's own headlines): the text
of session D is every item published at or after the previous session's close and **strictly
before** D's close (16:00 America/New_York; 13:00 on the early-close days of :func:`close_time`).
The decision of day D is taken at D's close, so all of D's text is known then; an item stamped
exactly at the close belongs to the next session. Weekend and holiday items go to the next session.
A day without text has an empty list (shown to a router as :data:`NO_NEWS`).

Stocknet tweets are re-aligned from their ``created_utc`` stamps with this rule (their ``date`` field
follows the same convention; the stamps are used so the user-headline path and the tests share one
code path). A user's headline file is CSV or parquet with a ``text`` (or ``headline``) column, a
``timestamp`` (ISO 8601; without an offset it is read as America/New_York) or a ``date`` column, and
optionally ``ticker``. A date-only row carries no time of day, so by default it is taken as known at
the close of the first session strictly after that date (``date_only="next_session"``, rlexec's
[DEFAULT], the only choice that cannot look ahead); ``"same_session"`` asserts the rows of a date
were published before that date's close.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from rlexec.errors import ConfigError, DataFileError
from rlexec.llmoe.features import FIRST_WINDOW_DAY, WINDOW_DAYS, daily_features, window_features

EXCHANGE_TZ = ZoneInfo("America/New_York")
REGULAR_CLOSE = dt.time(16, 0)
EARLY_CLOSE = dt.time(13, 0)
NO_NEWS = "No news"
PRICE_COLUMNS = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
DATE_ONLY_RULES = ("next_session", "same_session")


@dataclass(eq=False)
class DayWindow:
    """What a router sees for the decision at ``date``'s close: days ``dates[0] .. dates[4] == date``.

    ``features`` [5, 11] are the spec §4.2 features of those days (oldest first, columns in
    :data:`rlexec.llmoe.features.FEATURE_NAMES`); ``texts[i]`` is the text of ``dates[i]`` under the
    module's alignment rule (an empty list = no news that day).
    """

    ticker: str
    date: dt.date
    features: np.ndarray
    texts: list[list[str]]
    dates: tuple[dt.date, ...]

    def day_texts(self, i: int) -> list[str]:
        """Day ``i``'s texts, or ``[NO_NEWS]`` when it has none."""
        return self.texts[i] or [NO_NEWS]


@dataclass(eq=False)
class Prices:
    """One ticker's daily bars, oldest first (``dates`` as ``datetime64[D]``)."""

    ticker: str
    dates: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    adj_close: np.ndarray
    volume: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.dates)


def default_data_dir() -> Path:
    """The nearest ``shared/data/text_stocknet`` above this checkout (the project's data layout)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "data" / "text_stocknet"
        if candidate.is_dir():
            return candidate
    raise ConfigError("data.dir: no shared/data/text_stocknet above the rlexec checkout; set data.dir in the config")


def _open_text(path: Path):
    return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def load_prices(path: str | os.PathLike, ticker: str | None = None) -> Prices:
    """A Yahoo daily CSV (``Date,Open,High,Low,Close,Adj Close,Volume``, optionally gzipped).

    All-``null`` rows (a few stocknet files have one) are skipped; any other missing or non-positive
    price, or dates that do not increase, raise :class:`DataFileError` naming the line and field.
    """
    path = Path(path)
    ticker = ticker or path.name.split(".")[0]
    rows: list[tuple] = []
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:7]] != list(PRICE_COLUMNS):
            raise DataFileError(str(path), f"header must start with {','.join(PRICE_COLUMNS)}, got {header}", line=1)
        last = None
        for line, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) < 7:
                raise DataFileError(str(path), f"expected 7 fields, got {len(record)}", line=line)
            if all(value.strip() == "null" for value in record[1:7]):
                continue
            try:
                day = np.datetime64(record[0].strip(), "D")
            except ValueError:
                raise DataFileError(str(path), f"not a date: {record[0]!r}", line=line, field="Date") from None
            if last is not None and day <= last:
                raise DataFileError(str(path), f"dates must increase ({day} after {last})", line=line, field="Date")
            last = day
            values = []
            for name, value in zip(PRICE_COLUMNS[1:], record[1:7]):
                try:
                    number = float(value)
                except ValueError:
                    raise DataFileError(str(path), f"not a number: {value!r}", line=line, field=name) from None
                if name != "Volume" and not number > 0:
                    raise DataFileError(str(path), f"price must be > 0, got {value!r}", line=line, field=name)
                values.append(number)
            rows.append((day, *values))
    if not rows:
        raise DataFileError(str(path), "no price rows")
    columns = list(zip(*rows))
    return Prices(ticker, np.array(columns[0], dtype="datetime64[D]"),
                  *(np.array(c, dtype=np.float64) for c in columns[1:]), source=str(path))


# ---------------------------------------------------------------- session closes and text alignment

def _fourth_thursday_of_november(year: int) -> dt.date:
    first = dt.date(year, 11, 1)
    return first + dt.timedelta(days=(3 - first.weekday()) % 7 + 21)


def close_time(day: dt.date) -> dt.time:
    """The session's close: 13:00 ET on the NYSE early-close days (July 3, the day after Thanksgiving,
    December 24, when they are sessions), else 16:00 ET."""
    early = (day.month == 7 and day.day == 3) or (day.month == 12 and day.day == 24) or (
        day == _fourth_thursday_of_november(day.year) + dt.timedelta(days=1))
    return EARLY_CLOSE if early else REGULAR_CLOSE


def session_close_utc_ns(day: dt.date) -> int:
    local = dt.datetime.combine(day, close_time(day), tzinfo=EXCHANGE_TZ)
    return int(local.timestamp()) * 1_000_000_000


def align_texts(sessions: np.ndarray, stamps_utc_ns: np.ndarray, texts: list[str]) -> list[list[str]]:
    """Per session D: the texts stamped in [close of the session before D, close of D).

    ``sessions`` are the ticker's trading dates (``datetime64[D]``, increasing). Items at or after the
    last session's close are dropped (nothing in the data can use them); items before the first
    session's close go to the first session. Within a session, texts keep their time order.
    """
    sessions = np.asarray(sessions, dtype="datetime64[D]")
    closes = np.array([session_close_utc_ns(d.astype(dt.date)) for d in sessions], dtype=np.int64)
    stamps = np.asarray(stamps_utc_ns, dtype=np.int64)
    # side="right": a stamp equal to D's close lands after D, i.e. in the next session
    owner = np.searchsorted(closes, stamps, side="right")
    order = np.argsort(stamps, kind="stable")
    aligned: list[list[str]] = [[] for _ in sessions]
    for i in order:
        if owner[i] < len(sessions):
            aligned[owner[i]].append(texts[i])
    return aligned


def _utc_ns(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=EXCHANGE_TZ)
    return int(moment.timestamp() * 1_000_000) * 1_000


def load_stocknet_tweets(path: str | os.PathLike, ticker: str) -> tuple[np.ndarray, list[str]]:
    """(UTC stamps in ns, texts) of one ticker from the stocknet digest ``tweets_*.jsonl.gz``."""
    path = Path(path)
    stamps: list[int] = []
    texts: list[str] = []
    with _open_text(path) as f:
        for line, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DataFileError(str(path), f"invalid JSON ({exc.msg})", line=line) from None
            if record.get("ticker") != ticker:
                continue
            day_texts, created = record.get("texts"), record.get("created_utc")
            if not isinstance(day_texts, list) or not isinstance(created, list) or len(day_texts) != len(created):
                raise DataFileError(str(path), "'texts' and 'created_utc' must be lists of equal length", line=line,
                                    field="created_utc")
            for text, stamp in zip(day_texts, created):
                try:
                    moment = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                except (AttributeError, ValueError):
                    raise DataFileError(str(path), f"not an ISO time: {stamp!r}", line=line, field="created_utc") from None
                if moment.tzinfo is None:
                    raise DataFileError(str(path), f"time without a UTC offset: {stamp!r}", line=line, field="created_utc")
                stamps.append(_utc_ns(moment))
                texts.append(str(text))
    return np.array(stamps, dtype=np.int64), texts


def _headline_rows(path: Path) -> tuple[list[dict], str, int]:
    """Rows as dicts, the location word ('line' for CSV, 'row' for parquet) and the first row's number."""
    suffixes = "".join(path.suffixes[-2:])
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist(), "row", 1
    if suffixes.endswith(".csv") or suffixes.endswith(".csv.gz"):
        with _open_text(path) as f:
            return list(csv.DictReader(f)), "line", 2
    raise DataFileError(str(path), "headline files must be .csv, .csv.gz or .parquet")


def load_headlines(path: str | os.PathLike, ticker: str | None = None,
                   date_only: str = "next_session") -> tuple[np.ndarray, list[str]]:
    """(UTC stamps in ns, texts) from a user's CSV/parquet of dated headlines (see the module docstring).

    With a ``ticker`` column, only ``ticker``'s rows are kept. A date-only row is stamped at midnight
    ET after its date (``next_session``) or at midnight ET starting it (``same_session``).
    """
    if date_only not in DATE_ONLY_RULES:
        raise ConfigError(f"text.date_only: {date_only!r} is not one of {DATE_ONLY_RULES}")
    path = Path(path)
    rows, where, first = _headline_rows(path)
    if not rows:
        return np.zeros(0, dtype=np.int64), []
    columns = set(rows[0])
    text_column = "text" if "text" in columns else "headline" if "headline" in columns else None
    time_column = "timestamp" if "timestamp" in columns else "date" if "date" in columns else None
    if text_column is None or time_column is None:
        raise DataFileError(str(path), f"needs a 'text' (or 'headline') and a 'timestamp' (or 'date') column; "
                                       f"has {sorted(columns)}", line=1 if where == "line" else None)
    stamps: list[int] = []
    texts: list[str] = []
    for number, row in enumerate(rows, start=first):
        at = {where: number}
        if ticker is not None and "ticker" in columns and str(row["ticker"]).strip() != ticker:
            continue
        text = row[text_column]
        if text is None or not str(text).strip():
            raise DataFileError(str(path), "empty text", field=text_column, **at)
        value = row[time_column]
        try:
            moment = _parse_moment(value, date_only)
        except ValueError:
            raise DataFileError(str(path), f"not a date or ISO time: {value!r}", field=time_column, **at) from None
        stamps.append(_utc_ns(moment))
        texts.append(str(text).strip())
    return np.array(stamps, dtype=np.int64), texts


def _parse_moment(value, date_only: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        day = value
    else:
        text = str(value).strip()
        if len(text) > 10:
            return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        day = dt.date.fromisoformat(text)
    start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=EXCHANGE_TZ)
    return start + dt.timedelta(days=1) if date_only == "next_session" else start


# ---------------------------------------------------------------- windows and splits

@dataclass(eq=False)
class TickerData:
    """Everything the pipeline needs for one ticker over the study period.

    ``windows[i]`` is the decision at the close of ``dates[i]``; ``next_return[i]`` the total return
    (adjusted close, dividends included) from that close to the next session's close, the return an
    all-in position held from decision i earns; ``up[i] = 1[close_{t+1} > close_t]`` the experts'
    label (spec §4.2). ``split`` maps train / validation / test to index arrays into ``windows``.
    """

    ticker: str
    windows: list[DayWindow]
    next_return: np.ndarray
    up: np.ndarray
    close: np.ndarray  # close of each decision day, and of the following day at [len(windows)]
    split: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def dates(self) -> list[dt.date]:
        return [w.date for w in self.windows]

    @property
    def features(self) -> np.ndarray:
        """[n, 5, 11]."""
        return np.stack([w.features for w in self.windows])


def chronological_split(n: int, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, np.ndarray]:
    """Index arrays of the first 80%, the next 10% and the last 10% of ``n`` days (rounded down, the
    test part takes the remainder) [spec §4.3 DEFAULT]."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise ConfigError(f"data.split: three positive fractions summing to 1, got {fractions}")
    n_train = int(n * fractions[0])
    n_validation = int(n * fractions[1])
    if n_train < 1 or n_validation < 1 or n - n_train - n_validation < 1:
        raise ConfigError(f"data.split: {n} days are too few for a {fractions} split")
    return {"train": np.arange(n_train), "validation": np.arange(n_train, n_train + n_validation),
            "test": np.arange(n_train + n_validation, n)}


def build_ticker_data(prices: Prices, texts: list[list[str]], start: str | None = None, end: str | None = None,
                      fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> TickerData:
    """Windows for the decision days in [start, end] that have a full feature window and a next session.

    ``texts`` is aligned with ``prices.dates`` (see :func:`align_texts`).
    """
    if len(texts) != len(prices):
        raise ValueError(f"build_ticker_data: {len(texts)} text days for {len(prices)} price days")
    daily = daily_features(prices.open, prices.high, prices.low, prices.close, prices.adj_close)
    first = FIRST_WINDOW_DAY
    last = len(prices) - 2  # the last decision needs the next session's close
    lo = int(np.searchsorted(prices.dates, np.datetime64(start, "D"))) if start else 0
    hi = int(np.searchsorted(prices.dates, np.datetime64(end, "D"), side="right")) - 1 if end else last
    days = range(max(first, lo), min(last, hi) + 1)
    if len(days) == 0:
        raise ConfigError(f"data: no decision day for {prices.ticker} between {start} and {end} "
                          f"(prices {prices.dates[0]}..{prices.dates[-1]}, {first} days of history needed)")
    windows = []
    for t in days:
        span = range(t - WINDOW_DAYS + 1, t + 1)
        windows.append(DayWindow(
            ticker=prices.ticker, date=prices.dates[t].astype(dt.date),
            features=window_features(daily, t).astype(np.float32),
            texts=[list(texts[i]) for i in span],
            dates=tuple(prices.dates[i].astype(dt.date) for i in span)))
    index = np.array(days)
    next_return = prices.adj_close[index + 1] / prices.adj_close[index] - 1.0
    up = (prices.close[index + 1] > prices.close[index]).astype(np.int64)
    close = prices.close[np.append(index, index[-1] + 1)]
    return TickerData(prices.ticker, windows, next_return, up, close, chronological_split(len(windows), fractions))


def load_ticker(ticker: str, data_dir: str | os.PathLike | None = None, *, text: str | os.PathLike | None = "stocknet",
                start: str | None = None, end: str | None = None,
                fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), date_only: str = "next_session") -> TickerData:
    """One ticker's :class:`TickerData` from ``data_dir`` (default :func:`default_data_dir`).

    ``text``: ``"stocknet"`` (the ``tweets_*.jsonl.gz`` digest holding the ticker), a path to a user's
    headline CSV/parquet, or None (no text: every day is "No news").
    """
    root = Path(data_dir) if data_dir else default_data_dir()
    price_path = next((p for p in (root / "price" / f"{ticker}.csv.gz", root / "price" / f"{ticker}.csv",
                                   root / f"{ticker}.csv.gz", root / f"{ticker}.csv") if p.is_file()), None)
    if price_path is None:
        raise ConfigError(f"data.tickers: no price file for {ticker!r} under {root} (price/{ticker}.csv[.gz])")
    prices = load_prices(price_path, ticker)
    if text is None:
        stamps, items = np.zeros(0, dtype=np.int64), []
    elif text == "stocknet":
        digests = sorted(p for p in root.glob("tweets_*.jsonl.gz") if ticker in p.name.removesuffix(".jsonl.gz").split("_")[1:])
        if not digests:
            raise ConfigError(f"data.text: no stocknet tweets_*.jsonl.gz for {ticker!r} under {root}")
        stamps, items = load_stocknet_tweets(digests[0], ticker)
    else:
        stamps, items = load_headlines(text, ticker, date_only=date_only)
    return build_ticker_data(prices, align_texts(prices.dates, stamps, items), start, end, fractions)

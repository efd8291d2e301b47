"""Train / validation / test splits of minute-bar data by day and by ticker.

A split says which (symbol, day) sessions may *host* parent orders in each part. Every session
stays loaded, because an order needs its earlier sessions for history (feature normalisation, the
VWAP profile, order sizing): a test order on Friday reads Thursday's bars, but no training order
ever starts on Friday. Tickers in ``test_only_symbols`` host no training or validation order at all,
so the test part also measures generalisation to tickers the policy never traded.

Presets (rlexec's choices, documented in the README):

* ``us_equity_1min``: the 16 tickers of ``shared/data/us_equity_1min`` (2019-02-11..15). The 11th
  is history only; train on the 12th and 13th, validate on the 14th, test on the 15th. Held-out
  tickers: every fourth in alphabetical order from the fourth (GLD, MU, SLV, V).
* ``sample``: the package's shipped AAPL, JPM, MSFT, SPY sample with the same days; SPY is held out.
* ``spy_2011``: SPY alone, ``shared/data/spy_1min_2011`` (20 sessions, 2011-01-03..31). The 3rd is
  history only; train on the 13 sessions Jan 4..21, validate on Jan 24, 25, 26, test on Jan 27, 28,
  31. One ticker, so nothing is held out by ticker.

Walk-forward (:func:`walk_forward_folds`, :meth:`DataSplit.walk_forward`): over days d_1..d_n, fold k
trains on the days up to d_k and tests on d_{k+1} alone, so an evaluation reports one result per
test day, each from a policy that saw only earlier days.

Data under a folder named ``eval`` is refused: it is held out from everything the project fits.

Synthetic data instead of files: ``synthetic: {seed: 7, num_days: 30, volatility: 0.005, ...}`` (the
fields of :class:`rlexec.data.synthetic.SyntheticMarketConfig`, plus ``seed``) generates the bars in
memory, the same bars for the same mapping, so a YAML config can train on a market whose optimal
schedule is known (docs/synthetic_check.md). The split's days are then days of that market.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from rlexec.configs import config_from_dict
from rlexec.data.loaders import read_many, sample_files
from rlexec.data.orders import Order, OrderGenerator
from rlexec.data.panel import MarketData
from rlexec.errors import ConfigError

PARTS = ("train", "validation", "test")
BAR_SUFFIXES = (".csv", ".csv.gz", ".parquet")

_FEB_2019 = {
    "train_days": ("2019-02-12", "2019-02-13"),
    "validation_days": ("2019-02-14",),
    "test_days": ("2019-02-15",),
}
# relative to the repository root (the checkout holding this package), where ../shared sits
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
PRESETS: dict[str, dict] = {
    "us_equity_1min": {"data": (str(SHARED_DATA / "us_equity_1min"),), "test_only_symbols": ("GLD", "MU", "SLV", "V"),
                       **_FEB_2019},
    "sample": {"data": (), "test_only_symbols": ("SPY",), **_FEB_2019},
    "spy_2011": {
        "data": (str(SHARED_DATA / "spy_1min_2011"),),
        "test_only_symbols": (),
        "train_days": ("2011-01-04", "2011-01-05", "2011-01-06", "2011-01-07", "2011-01-10", "2011-01-11",
                       "2011-01-12", "2011-01-13", "2011-01-14", "2011-01-18", "2011-01-19", "2011-01-20",
                       "2011-01-21"),
        "validation_days": ("2011-01-24", "2011-01-25", "2011-01-26"),
        "test_days": ("2011-01-27", "2011-01-28", "2011-01-31"),
    },
}


@dataclass(frozen=True, kw_only=True)
class DataSplit:
    """Which sessions host orders in each part. ``data`` = bar files or folders; empty = shipped sample."""

    data: tuple[str, ...] = ()
    train_days: tuple[str, ...] = ()
    validation_days: tuple[str, ...] = ()
    test_days: tuple[str, ...] = ()
    test_only_symbols: tuple[str, ...] = ()
    # SyntheticMarketConfig fields + "seed": generated bars instead of ``data``. Left out of the hash (a
    # mapping has none), so a split stays hashable; equality still compares it.
    synthetic: dict | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        for name in ("train_days", "validation_days", "test_days"):
            for day in getattr(self, name):
                _parse_day(day, name)
        parts = [set(self.train_days), set(self.validation_days), set(self.test_days)]
        if (parts[0] & parts[1]) or (parts[0] & parts[2]) or (parts[1] & parts[2]):
            raise ConfigError(f"DataSplit: a day appears in more than one part: {self.train_days}, "
                              f"{self.validation_days}, {self.test_days}")
        if self.synthetic is not None:
            if self.data:
                raise ConfigError("DataSplit: give data (bar files) or synthetic (generated bars), not both")
            _synthetic_market_config(self.synthetic)  # a bad field fails here, naming it
        for path in self.files():
            if "eval" in Path(path).resolve().parts:
                raise ConfigError(f"DataSplit.data: {path} is under an 'eval' folder, which is held out from training, "
                                  "validation and tuning")

    @classmethod
    def from_dict(cls, data: dict) -> "DataSplit":
        """A mapping of fields, or ``{"preset": name, ...overrides}``."""
        data = dict(data or {})
        preset = data.pop("preset", None)
        if preset is not None:
            if preset not in PRESETS:
                raise ConfigError(f"DataSplit.preset must be one of {sorted(PRESETS)}, got {preset!r}")
            data = {**PRESETS[preset], **data}
        tuples = {k: _string_tuple(k) for k in ("data", "train_days", "validation_days", "test_days", "test_only_symbols")}
        return config_from_dict(cls, data, converters=tuples)

    def to_dict(self) -> dict:
        return asdict(self)

    def files(self) -> list[Path]:
        if not self.data:
            return sample_files()
        out: list[Path] = []
        for entry in self.data:
            path = Path(entry).expanduser()
            if path.is_dir():
                found = sorted(p for p in path.iterdir() if p.name.endswith(BAR_SUFFIXES))
                if not found:
                    raise ConfigError(f"DataSplit.data: {path} holds no bar files ({', '.join(BAR_SUFFIXES)})")
                out.extend(found)
            elif path.exists():
                out.append(path)
            else:
                raise ConfigError(f"DataSplit.data: {path} does not exist")
        return out

    def market(self) -> MarketData:
        if self.synthetic is not None:
            return _synthetic_market(tuple(sorted((k, _hashable(v)) for k, v in self.synthetic.items())))
        return _load_market(tuple(str(p.resolve()) for p in self.files()))

    def days(self, part: str) -> tuple[dt.date, ...]:
        if part not in PARTS:
            raise ConfigError(f"split part must be one of {PARTS}, got {part!r}")
        return tuple(_parse_day(d, f"{part}_days") for d in getattr(self, f"{part}_days"))

    def walk_forward(self, *, min_train_days: int = 1, max_train_days: int | None = None) -> tuple["DataSplit", ...]:
        """One split per walk-forward fold over all of this split's days (train, validation and test,
        in date order): train on the days up to d, test on the next day alone, no validation part.
        Data and held-out tickers stay as they are. See :func:`walk_forward_folds` for the arguments."""
        days = self.train_days + self.validation_days + self.test_days
        return tuple(
            DataSplit(data=self.data, train_days=fold.train_days, test_days=(fold.test_day,),
                      test_only_symbols=self.test_only_symbols, synthetic=self.synthetic)
            for fold in walk_forward_folds(days, min_train_days=min_train_days, max_train_days=max_train_days)
        )

    def sessions(self, market: MarketData, part: str) -> frozenset[tuple[str, dt.date]]:
        """The (symbol, date) sessions that host orders in ``part``."""
        days = set(self.days(part))
        unknown = set(self.test_only_symbols) - set(market.symbols)
        if unknown:
            raise ConfigError(f"DataSplit.test_only_symbols: {sorted(unknown)} not in the data ({list(market.symbols)})")
        hosts = frozenset(
            (s, d) for s, d in zip(market.row_symbols, market.dates)
            if d in days and (part == "test" or s not in self.test_only_symbols)
        )
        if not hosts:
            raise ConfigError(f"split part {part!r} has no session in the data (days {sorted(map(str, days))})")
        return hosts

    def order_generator(self, market: MarketData, part: str, horizon_minutes: int,
                        size_fraction: tuple[float, float] = (0.001, 0.01)) -> OrderGenerator:
        return OrderGenerator(horizon_minutes=horizon_minutes, size_fraction=size_fraction,
                              sessions=self.sessions(market, part))

    def orders(self, market: MarketData, part: str, count: int, seed: int, horizon_minutes: int) -> list[Order]:
        return self.order_generator(market, part, horizon_minutes).sample(market, np.random.default_rng(seed), count)


@dataclass(frozen=True)
class WalkForwardFold:
    """Fold ``index`` (0-based): train on ``train_days``, test on ``test_day``, the day after the last of them."""

    index: int
    train_days: tuple[str, ...]
    test_day: str


def walk_forward_folds(days, *, min_train_days: int = 1, max_train_days: int | None = None) -> tuple[WalkForwardFold, ...]:
    """Walk-forward folds over ``days`` (YYYY-MM-DD, any order; sorted here): fold k trains on the
    days up to d_k and tests on d_{k+1}.

    ``min_train_days`` (rlexec default 1): days the first fold trains on. ``max_train_days`` (default
    None: every earlier day, an expanding window): at most this many most recent days, a rolling window.
    """
    for name, value in (("min_train_days", min_train_days), ("max_train_days", max_train_days)):
        if value is None and name == "max_train_days":
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"walk_forward.{name} must be an integer >= 1, got {value!r}")
    if max_train_days is not None and max_train_days < min_train_days:
        raise ConfigError(f"walk_forward.max_train_days ({max_train_days}) must be >= min_train_days ({min_train_days})")
    parsed = sorted(_parse_day(d, "walk_forward days") for d in days)
    repeated = sorted({str(a) for a, b in zip(parsed, parsed[1:]) if a == b})
    if repeated:
        raise ConfigError(f"walk_forward days: {repeated} appear more than once")
    if len(parsed) <= min_train_days:
        raise ConfigError(f"walk_forward needs more than min_train_days={min_train_days} days to test on; "
                          f"got {len(parsed)}")
    text = [d.isoformat() for d in parsed]
    folds = []
    for k in range(min_train_days, len(text)):
        first = 0 if max_train_days is None else max(0, k - max_train_days)
        folds.append(WalkForwardFold(index=len(folds), train_days=tuple(text[first:k]), test_day=text[k]))
    return tuple(folds)


@functools.lru_cache(maxsize=4)
def _load_market(files: tuple[str, ...]) -> MarketData:
    """One parse per process: every env of an EnvRunner shares the same arrays."""
    return MarketData.from_table(read_many(list(files)), source=", ".join(os.path.basename(f) for f in files[:3])
                                 + (" ..." if len(files) > 3 else ""))


def _synthetic_market_config(mapping) -> tuple:
    """(SyntheticMarketConfig, seed) from a ``synthetic`` mapping; errors name the field."""
    from rlexec.data.synthetic import SyntheticMarketConfig

    if not isinstance(mapping, dict):
        raise ConfigError(f"DataSplit.synthetic must be a mapping of SyntheticMarketConfig fields, got {mapping!r}")
    fields = dict(mapping)
    seed = fields.pop("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"DataSplit.synthetic.seed must be an integer, got {seed!r}")
    if "start_date" in fields:
        fields["start_date"] = _parse_day(fields["start_date"], "synthetic.start_date")
    if "symbols" in fields:
        fields["symbols"] = _string_tuple("synthetic.symbols")(fields["symbols"])
    return config_from_dict(SyntheticMarketConfig, fields), seed


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


@functools.lru_cache(maxsize=4)
def _synthetic_market(items: tuple) -> MarketData:
    """One generation per process, like :func:`_load_market`."""
    from rlexec.data.synthetic import generate_bars

    config, seed = _synthetic_market_config(dict(items))
    return MarketData.from_table(generate_bars(config, seed), source=f"synthetic (seed {seed})")


def _parse_day(text: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text))
    except ValueError:
        raise ConfigError(f"DataSplit.{field}: {text!r} is not a YYYY-MM-DD date") from None


def _string_tuple(field: str):
    def convert(value) -> tuple[str, ...]:
        if isinstance(value, (str, os.PathLike, dt.date)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"DataSplit.{field} must be a list, got {value!r}")
        return tuple(str(v) for v in value)

    return convert

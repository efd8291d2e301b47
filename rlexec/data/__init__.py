"""Market data: load, validate and normalise minute bars; align them to sessions; synthesise them."""

from rlexec.data.loaders import read_bars, read_many, sample_files, write_bars
from rlexec.data.panel import FIELDS, MarketData
from rlexec.data.schema import BAR_SCHEMA
from rlexec.data.synthetic import SyntheticMarketConfig, generate_bars

__all__ = [
    "BAR_SCHEMA", "FIELDS", "MarketData", "SyntheticMarketConfig",
    "generate_bars", "read_bars", "read_many", "sample_files", "write_bars",
]


def load_sample() -> MarketData:
    """The shipped real sample (AAPL, JPM, MSFT, SPY; 2019-02-11..15) as aligned sessions."""
    return MarketData.from_table(read_many(sample_files()), source="shipped sample")

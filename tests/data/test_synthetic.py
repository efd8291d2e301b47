"""rlexec.data.synthetic: reproducible jump-diffusion bars with a U-shaped volume profile."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from rlexec.data import BAR_SCHEMA, SyntheticMarketConfig, generate_bars, read_bars, write_bars
from rlexec.data.calendar import exchange_date, minute_of_session
from rlexec.data.synthetic import intraday_volume_profile, trading_days
from rlexec.errors import ConfigError


def column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


def session_matrix(table: pa.Table, name: str) -> np.ndarray:
    """(symbol-days, 390) array of one column; generate_bars emits rows symbol by symbol, day by day."""
    return column(table, name).reshape(-1, 390)


def minute_log_returns(config: SyntheticMarketConfig, seed: int) -> np.ndarray:
    """Close-to-close 1-minute log returns within each session."""
    close = session_matrix(generate_bars(config, seed), "close")
    return np.diff(np.log(close), axis=1).ravel()


def excess_kurtosis(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x**4).mean() / (x**2).mean() ** 2 - 3.0)


def test_same_seed_same_table_and_different_seed_different_table():
    cfg = SyntheticMarketConfig(symbols=("A", "B"), num_days=2, jump_intensity=5.0)
    a, b = generate_bars(cfg, seed=42), generate_bars(cfg, seed=42)
    assert a.equals(b)
    c = generate_bars(cfg, seed=43)
    assert not c.equals(a)
    assert not np.array_equal(column(a, "close"), column(c, "close"))
    assert not np.array_equal(column(a, "volume"), column(c, "volume"))
    assert c.column("ts").equals(a.column("ts"))  # same calendar, different prices


def test_schema_shape_and_calendar():
    cfg = SyntheticMarketConfig(symbols=("A", "B"), start_date=dt.date(2024, 1, 5), num_days=3)
    table = generate_bars(cfg, seed=0)
    assert table.schema.equals(BAR_SCHEMA)
    assert table.num_rows == 2 * 3 * 390
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    dates = exchange_date(ts)
    # 2024-01-05 is a Friday: the weekend is skipped.
    expected_days = [dt.date(2024, 1, 5), dt.date(2024, 1, 8), dt.date(2024, 1, 9)]
    assert list(dates.astype(object)) == [d for _ in range(2) for d in expected_days for _ in range(390)]
    assert np.array_equal(minute_of_session(ts, dates), np.tile(np.arange(390), 6))
    for symbol in ("A", "B"):
        assert table.column("symbol").to_pylist().count(symbol) == 3 * 390


def test_trading_days_skip_weekends():
    assert trading_days(dt.date(2024, 1, 6), 3) == [dt.date(2024, 1, 8), dt.date(2024, 1, 9), dt.date(2024, 1, 10)]
    assert trading_days(dt.date(2024, 1, 5), 1) == [dt.date(2024, 1, 5)]


def test_bars_are_consistent_and_each_open_is_the_previous_close():
    cfg = SyntheticMarketConfig(symbols=("A",), num_days=4, volatility=0.05, jump_intensity=10.0, jump_std=0.02)
    table = generate_bars(cfg, seed=9)
    o, h, l, c = (column(table, f) for f in ("open", "high", "low", "close"))
    assert np.all(h >= np.maximum(o, c))
    assert np.all(l <= np.minimum(o, c))
    assert np.all(l > 0)
    assert np.all(column(table, "volume") >= 0)
    # Prices are rounded to cents.
    assert np.allclose(c * 100, np.round(c * 100), rtol=0, atol=1e-6)
    # Continuous path: every open is the close before it, across days too; the first opens at the initial price.
    assert o[0] == cfg.initial_price
    assert np.array_equal(o[1:], c[:-1])


@pytest.mark.parametrize("suffix", [".parquet", ".csv.gz"])
def test_output_passes_the_loaders_validation(tmp_path, suffix):
    table = generate_bars(SyntheticMarketConfig(symbols=("A", "B"), num_days=2, jump_intensity=20.0), seed=4)
    back = read_bars(write_bars(table, tmp_path / f"syn{suffix}"))
    assert back.equals(table)


def test_intraday_volume_profile_is_u_shaped_and_sums_to_one():
    u = 3.0
    profile = intraday_volume_profile(u)
    assert profile.shape == (390,)
    assert profile.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.allclose(profile, profile[::-1])  # symmetric about mid-session
    assert np.argmin(profile) in (194, 195)
    # u(m) ∝ 1 + u * x^2 with x = ±1 at the ends and ≈ 0 mid-session.
    assert profile[0] / profile.min() == pytest.approx(1 + u, rel=1e-4)
    flat = intraday_volume_profile(0.0)
    assert np.allclose(flat, 1 / 390)


def test_generated_volume_is_u_shaped():
    table = generate_bars(SyntheticMarketConfig(num_days=10), seed=1)
    mean_by_minute = session_matrix(table, "volume").mean(axis=0)
    first, middle, last = mean_by_minute[:30].mean(), mean_by_minute[180:210].mean(), mean_by_minute[-30:].mean()
    assert first > 2 * middle
    assert last > 2 * middle
    # The total is about daily_volume per day (log-normal noise has mean exp(0.3^2 / 2) ≈ 1.046).
    daily = session_matrix(table, "volume").sum(axis=1)
    assert np.all(np.abs(daily / 5_000_000 - 1.046) < 0.05)


def test_jumps_fatten_the_tails_of_minute_returns():
    base = SyntheticMarketConfig(num_days=5)
    jumpy = SyntheticMarketConfig(num_days=5, jump_intensity=20.0, jump_std=0.01)
    for seed in (0, 1, 2):
        plain = excess_kurtosis(minute_log_returns(base, seed))
        fat = excess_kurtosis(minute_log_returns(jumpy, seed))
        assert abs(plain) < 1.0  # Gaussian: excess kurtosis near 0
        assert fat > 10.0


@pytest.mark.parametrize("volatility", [0.01, 0.05])
def test_volatility_sets_the_std_of_minute_returns(volatility):
    cfg = SyntheticMarketConfig(num_days=20, volatility=volatility)
    returns = minute_log_returns(cfg, seed=3)
    assert returns.std() == pytest.approx(volatility / np.sqrt(390), rel=0.10)


def test_zero_volatility_without_jumps_is_flat():
    table = generate_bars(SyntheticMarketConfig(num_days=1, volatility=0.0, initial_price=50.0), seed=0)
    for name in ("open", "high", "low", "close"):
        assert np.all(column(table, name) == 50.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("num_days", 0),
        ("initial_price", 0.0),
        ("initial_price", -1.0),
        ("volatility", -0.01),
        ("volatility", float("nan")),
        ("jump_intensity", -1.0),
        ("jump_std", -0.1),
        ("daily_volume", 0.0),
        ("u_shape", -0.5),
        ("volume_noise", -0.1),
        ("ticks_per_minute", 0),
        ("symbols", ()),
    ],
)
def test_invalid_parameters_raise_config_error_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"SyntheticMarketConfig\.{field}: invalid value"):
        SyntheticMarketConfig(**{field: value})

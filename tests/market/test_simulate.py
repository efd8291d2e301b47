"""Stylised facts of a simulated day, and the tables simulate_day returns."""

from __future__ import annotations

import numpy as np
import pytest

from rlexec.market.book import BUY, TAPE_COLUMNS
from rlexec.market.config import MarketConfig, clock_ns
from rlexec.market.regimes import regime_config
from rlexec.market.simulator import MarketSimulator


def _minute_returns(day):
    mid = day.minute_bars.column("mid_close").to_numpy(zero_copy_only=False).astype(float)
    returns = np.diff(np.log(mid))
    return returns[~np.isnan(returns)]


def test_tables_have_documented_shape(baseline_day):
    assert baseline_day.tape.column_names == list(TAPE_COLUMNS)
    assert baseline_day.book.num_rows == 6 * 3600 + 1800 + 1
    assert baseline_day.minute_bars.num_rows == 390
    bars = baseline_day.minute_bars
    assert sum(bars.column("volume").to_pylist()) == sum(baseline_day.tape.column("qty").to_pylist())
    high = bars.column("high").to_numpy(zero_copy_only=False)
    low = bars.column("low").to_numpy(zero_copy_only=False)
    assert np.all(high >= low)


def test_day_has_realistic_magnitudes(baseline_day):
    assert baseline_day.tape.num_rows > 20_000
    spread = baseline_day.book.column("spread").to_numpy(zero_copy_only=False).astype(float)
    assert 1.0 <= np.nanmedian(spread) <= 5.0
    mid = baseline_day.book.column("mid").to_numpy(zero_copy_only=False).astype(float)
    fundamental = baseline_day.book.column("fundamental").to_numpy()
    assert np.nanmean(np.abs(mid - fundamental)) < 25  # the market tracks the fundamental
    assert 9_000 < np.nanmin(mid) and np.nanmax(mid) < 11_000


def test_spread_is_positive_whenever_both_sides_exist(baseline_day):
    spread = baseline_day.book.column("spread").to_numpy(zero_copy_only=False).astype(float)
    two_sided = ~np.isnan(spread)
    assert two_sided.mean() > 0.99
    assert np.all(spread[two_sided] > 0)


def test_one_minute_returns_are_heavy_tailed(baseline_day):
    returns = _minute_returns(baseline_day)
    centred = returns - returns.mean()
    excess_kurtosis = np.mean(centred**4) / np.mean(centred**2) ** 2 - 3.0
    assert excess_kurtosis > 1.0


def test_absolute_returns_cluster(baseline_day):
    magnitude = np.abs(_minute_returns(baseline_day))
    autocorrelations = [np.corrcoef(magnitude[:-lag], magnitude[lag:])[0, 1] for lag in range(1, 6)]
    assert autocorrelations[0] > 0.1
    assert np.mean(autocorrelations) > 0.02


def test_intraday_volume_is_u_shaped(baseline_day):
    volume = baseline_day.minute_bars.column("volume").to_numpy()
    open_rate, middle_rate, close_rate = volume[:30].mean(), volume[30:-30].mean(), volume[-30:].mean()
    assert open_rate > 1.1 * middle_rate
    assert close_rate > 1.1 * middle_rate


def _impact(seed, qty):
    sim = MarketSimulator(MarketConfig(), seed)
    sim.run_until(clock_ns(10, 30))
    before = sim.mid()
    sim.submit_market(BUY, qty)
    sim.run_until(clock_ns(10, 30) + 1_000_000)
    return sim.mid() - before


def test_price_impact_is_concave_in_size():
    seeds = range(10)
    small = np.mean([_impact(seed, 400) for seed in seeds])
    large = np.mean([_impact(seed, 800) for seed in seeds])
    assert small > 0
    assert small < large < 2 * small


def test_simulation_result_reports_work_done(baseline_day):
    assert baseline_day.events > baseline_day.tape.num_rows
    assert baseline_day.wall_seconds > 0


@pytest.mark.parametrize("regime", ["bullish", "bearish", "illiquid", "liquid", "volatility_ramp"])
def test_every_market_regime_stays_orderly_and_tracks_its_fundamental(regime):
    config = regime_config(regime)
    sim = MarketSimulator(config, 21)
    gaps = []
    for hour in range(10, 17):
        sim.run_until(clock_ns(hour))
        bid, ask = sim.best_bid_ask()
        assert bid is not None and ask is not None and 0 < ask - bid < 20
        gaps.append(abs(sim.mid() - sim.fundamental_at(sim.now)))
    sim.check_integrity()
    assert np.mean(gaps) < 25

"""Synthetic minute bars for tests and stress runs: jump-diffusion prices, U-shaped volume.

Per minute, log price follows ``d log S = (mu - sigma^2/2) dt + sigma dW + J dN`` (Merton jumps,
``N`` Poisson with ``jump_intensity`` per day, ``J ~ Normal(jump_mean, jump_std)``); ``jump_intensity = 0``
is plain geometric Brownian motion. Each bar's open is the previous close, close the end of the
minute, high/low the extremes of ``ticks_per_minute`` sub-steps. Volume per minute is
``daily_volume * u(m) * LogNormal(0, volume_noise)`` with the U-shaped intraday profile
``u(m) ∝ 1 + u_shape * ((2m/389 - 1)^2)`` normalised to sum to 1.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rlexec.data.calendar import SESSION_MINUTES, session_minute_starts_ns
from rlexec.data.schema import BAR_SCHEMA
from rlexec.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class SyntheticMarketConfig:
    """Parameters of :func:`generate_bars`. Rates are per trading day of 390 minutes."""

    symbols: tuple[str, ...] = ("SYNA",)
    start_date: dt.date = dt.date(2024, 1, 2)
    num_days: int = 5
    initial_price: float = 100.0  # USD
    drift: float = 0.0  # mu, log-return per day
    volatility: float = 0.02  # sigma, per sqrt(day)
    jump_intensity: float = 0.0  # expected jumps per day
    jump_mean: float = 0.0  # mean log jump size
    jump_std: float = 0.01  # std of log jump size
    daily_volume: float = 5_000_000.0  # shares per day (liquidity)
    u_shape: float = 3.0  # open/close volume relative to mid-day is about 1 + u_shape
    volume_noise: float = 0.3  # std of the per-minute log-normal volume noise
    ticks_per_minute: int = 6  # sub-steps used for high/low

    def __post_init__(self) -> None:
        checks = {
            "num_days": self.num_days >= 1,
            "initial_price": self.initial_price > 0,
            "volatility": self.volatility >= 0,
            "jump_intensity": self.jump_intensity >= 0,
            "jump_std": self.jump_std >= 0,
            "daily_volume": self.daily_volume > 0,
            "u_shape": self.u_shape >= 0,
            "volume_noise": self.volume_noise >= 0,
            "ticks_per_minute": self.ticks_per_minute >= 1,
            "symbols": len(self.symbols) >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"SyntheticMarketConfig.{name}: invalid value {getattr(self, name)!r}")


def intraday_volume_profile(u_shape: float) -> np.ndarray:
    """U-shaped share of daily volume per session minute (sums to 1)."""
    x = 2.0 * np.arange(SESSION_MINUTES) / (SESSION_MINUTES - 1) - 1.0
    profile = 1.0 + u_shape * x**2
    return profile / profile.sum()


def trading_days(start: dt.date, count: int) -> list[dt.date]:
    """``count`` weekdays from ``start`` on (holidays are not modelled for synthetic data)."""
    days, day = [], start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += dt.timedelta(days=1)
    return days


def generate_bars(config: SyntheticMarketConfig, seed: int) -> pa.Table:
    """Bars in :data:`BAR_SCHEMA` for every symbol and trading day of ``config``; same seed, same bars."""
    rng = np.random.default_rng(seed)
    k = config.ticks_per_minute
    dt_sub = 1.0 / (SESSION_MINUTES * k)
    profile = intraday_volume_profile(config.u_shape)
    days = trading_days(config.start_date, config.num_days)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in BAR_SCHEMA.names}
    for symbol in config.symbols:
        log_price = np.log(config.initial_price)
        for day in days:
            steps = (config.drift - 0.5 * config.volatility**2) * dt_sub + config.volatility * np.sqrt(
                dt_sub
            ) * rng.standard_normal((SESSION_MINUTES, k))
            jumps = rng.poisson(config.jump_intensity * dt_sub, (SESSION_MINUTES, k))
            steps += jumps * rng.normal(config.jump_mean, config.jump_std, (SESSION_MINUTES, k))
            path = log_price + np.cumsum(steps.ravel()).reshape(SESSION_MINUTES, k)
            opens = np.concatenate([[log_price], path[:-1, -1]])
            log_price = path[-1, -1]
            # Prices are rounded to cents like real quotes; keep high/low consistent after rounding.
            open_ = np.round(np.exp(opens), 2)
            close = np.round(np.exp(path[:, -1]), 2)
            high = np.maximum(np.round(np.exp(path.max(axis=1)), 2), np.maximum(open_, close))
            low = np.minimum(np.round(np.exp(path.min(axis=1)), 2), np.minimum(open_, close))
            noise = rng.lognormal(0.0, config.volume_noise, SESSION_MINUTES)
            volume = np.rint(config.daily_volume * profile * noise).astype(np.int64)
            columns["symbol"].append(np.full(SESSION_MINUTES, symbol, dtype=object))
            columns["ts"].append(session_minute_starts_ns(day))
            for name, arr in (("open", open_), ("high", high), ("low", low), ("close", close), ("volume", volume)):
                columns[name].append(arr)
    return pa.table(
        {name: pa.array(np.concatenate(parts), BAR_SCHEMA.field(name).type) for name, parts in columns.items()},
        schema=BAR_SCHEMA,
    )

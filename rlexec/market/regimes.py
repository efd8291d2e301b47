"""Named market regimes: each is a complete :class:`MarketConfig` to copy and change.

``regime_config(name)`` returns a fresh config; ``REGIMES`` lists the names:

* ``baseline`` - the default population on a calm day; execution window = whole session;
* ``open`` / ``close`` - baseline market, execution window = first / last 30 minutes;
* ``midday`` - baseline market, execution window = 12:00-13:00;
* ``bullish`` / ``bearish`` - the fundamental's long-run mean drifts +1% / -1% over the day;
* ``illiquid`` / ``liquid`` - market makers and noise agents x0.25 / x4 (thin / thick book); with 2
  makers in the baseline, ``illiquid`` keeps 1 maker quoting half the baseline sizes;
* ``volatility_ramp`` - fundamental volatility and megashock intensity rise x1 -> x4 over the day.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

from rlexec.errors import ConfigError
from rlexec.market.config import MarketConfig, clock_ns

HALF_HOUR_NS = clock_ns(0, 30)


def _baseline() -> MarketConfig:
    return MarketConfig(regime="baseline")


def _window(name: str, start_ns: int, end_ns: int) -> MarketConfig:
    return replace(_baseline(), regime=name, execution_window=(start_ns, end_ns))


def _open() -> MarketConfig:
    session = _baseline().session
    return _window("open", session.start_ns, session.start_ns + HALF_HOUR_NS)


def _close() -> MarketConfig:
    session = _baseline().session
    return _window("close", session.end_ns - HALF_HOUR_NS, session.end_ns)


def _midday() -> MarketConfig:
    return _window("midday", clock_ns(12), clock_ns(13))


def _trending(name: str, drift: float) -> MarketConfig:
    base = _baseline()
    return replace(base, regime=name, fundamental=replace(base.fundamental, drift=drift))


def _scaled_liquidity(name: str, factor: float) -> MarketConfig:
    """Market makers and noise agents x factor; quote sizes make up for a count that cannot drop below 1."""
    base = _baseline()
    makers = base.market_maker
    count = max(1, round(makers.count * factor))
    size_factor = makers.count * factor / count
    return replace(base, regime=name,
                   market_maker=replace(makers, count=count,
                                        min_size=max(1, round(makers.min_size * size_factor)),
                                        max_size=max(1, round(makers.max_size * size_factor))),
                   noise=replace(base.noise, count=round(base.noise.count * factor)))


def _volatility_ramp() -> MarketConfig:
    base = _baseline()
    return replace(base, regime="volatility_ramp", fundamental=replace(base.fundamental, vol_ramp=4.0))


_BUILDERS: dict[str, Callable[[], MarketConfig]] = {
    "baseline": _baseline,
    "open": _open,
    "close": _close,
    "midday": _midday,
    "bullish": lambda: _trending("bullish", 0.01),
    "bearish": lambda: _trending("bearish", -0.01),
    "illiquid": lambda: _scaled_liquidity("illiquid", 0.25),
    "liquid": lambda: _scaled_liquidity("liquid", 4.0),
    "volatility_ramp": _volatility_ramp,
}

REGIMES: tuple[str, ...] = tuple(_BUILDERS)


def regime_config(name: str) -> MarketConfig:
    """The preset called ``name`` (one of ``REGIMES``)."""
    try:
        return _BUILDERS[name]()
    except KeyError:
        raise ConfigError(f"regime: unknown regime {name!r}; choose one of {', '.join(REGIMES)}") from None

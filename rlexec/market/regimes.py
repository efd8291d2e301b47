"""Named market regimes: each is a complete :class:`MarketConfig` to copy and change.

``regime_config(name)`` returns a fresh config; ``REGIMES`` lists the names:

* ``baseline`` - the default population on a calm day; execution window = whole session;
* ``open`` / ``close`` - baseline market, execution window = first / last 30 minutes;
* ``midday`` - baseline market, execution window = 12:00-13:00;
* ``bullish`` / ``bearish`` - the fundamental's long-run mean drifts +1% / -1% over the day;
* ``illiquid`` / ``liquid`` - market makers and noise agents x0.25 / x4 (thin / thick book); with 2
  makers in the baseline, ``illiquid`` keeps 1 maker quoting half the baseline sizes;
* ``volatility_ramp`` - fundamental volatility and megashock intensity rise x1 -> x4 over the day.

A regime that takes a *level* is named ``<regime>@<level>`` (:data:`LEVELLED_REGIMES`):
``volatility_ramp@L`` ramps x1 -> x(1 + 3 L) over the day, so ``volatility_ramp@1`` is exactly
``volatility_ramp``, ``@0`` never ramps and ``@2``, ``@3`` end the day at x7, x10 (the issue-10 sweep
of profit and cost under increasing volatility). :func:`regime_family` strips the level: what was
trained on a regime (experts, SIP weights, the MoE-DPO gate's regime one-hot) serves all its levels.
"""

from __future__ import annotations

import math
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


LEVEL_SEPARATOR = "@"
VOLATILITY_RAMP_PER_LEVEL = 3.0  # rlexec default: level 1 ends the day at x4, the volatility_ramp preset


def _volatility_ramp(level: float = 1.0, name: str = "volatility_ramp") -> MarketConfig:
    base = _baseline()
    return replace(base, regime=name, fundamental=replace(
        base.fundamental, vol_ramp=1.0 + VOLATILITY_RAMP_PER_LEVEL * level))


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
# Regimes that take a level (``name@level``): builder(level, full name) -> config; level 1 = the plain preset.
_LEVELLED: dict[str, Callable[[float, str], MarketConfig]] = {"volatility_ramp": _volatility_ramp}
LEVELLED_REGIMES: tuple[str, ...] = tuple(_LEVELLED)


def split_regime(name: str) -> tuple[str, float | None]:
    """``"volatility_ramp@2"`` -> ``("volatility_ramp", 2.0)``; a plain name -> ``(name, None)``.

    A bad name is a one-line ConfigError naming it (unknown regime, a level on a regime without
    levels, a level that is not a number >= 0)."""
    if not isinstance(name, str):
        raise ConfigError(f"regime: a regime is a name, got {name!r}")
    family, separator, text = name.partition(LEVEL_SEPARATOR)
    if family not in _BUILDERS:
        raise ConfigError(f"regime: unknown regime {name!r}; choose one of {', '.join(REGIMES)}"
                          f" (with a level: {', '.join(f'{r}@<level>' for r in LEVELLED_REGIMES)})")
    if not separator:
        return family, None
    if family not in _LEVELLED:
        raise ConfigError(f"regime: {name!r}: only {', '.join(LEVELLED_REGIMES)} take a level (@<level>)")
    try:
        level = float(text)
    except ValueError:
        level = float("nan")
    if not (level >= 0 and math.isfinite(level)):
        raise ConfigError(f"regime: {name!r}: the level after '{LEVEL_SEPARATOR}' must be a number >= 0, got {text!r}")
    return family, level


def regime_family(name: str) -> str:
    """The regime without its level: ``"volatility_ramp@2"`` -> ``"volatility_ramp"``."""
    return split_regime(name)[0]


def regime_level(name: str) -> float | None:
    """The level of a levelled regime name (``volatility_ramp`` alone is level 1), else None."""
    family, level = split_regime(name)
    if level is None and family in _LEVELLED:
        return 1.0
    return level


def is_regime(name: object) -> bool:
    """Whether ``name`` is a preset of ``REGIMES`` or a levelled one (``volatility_ramp@2``)."""
    try:
        split_regime(name)  # type: ignore[arg-type]
    except ConfigError:
        return False
    return True


def regime_config(name: str) -> MarketConfig:
    """The preset called ``name`` (one of ``REGIMES``, or ``<regime>@<level>`` of ``LEVELLED_REGIMES``)."""
    family, level = split_regime(name)
    if level is None:
        return _BUILDERS[family]()
    return _LEVELLED[family](level, name)

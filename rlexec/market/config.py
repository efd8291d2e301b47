"""Market configuration: one frozen, keyword-only dataclass per component.

Units are in every field's docstring. Prices are integer *ticks* (``SessionConfig.tick_size``
dollars each), sizes are integer *shares*, times are integer *nanoseconds since midnight*
unless a field name ends in ``_s`` (seconds). ``MarketConfig.to_dict()`` /
``MarketConfig.from_dict()`` round-trip through plain dicts (YAML-ready); unknown keys and
invalid values raise :class:`rlexec.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from rlexec.errors import ConfigError

NS_PER_SECOND = 1_000_000_000


def clock_ns(hours: int, minutes: int = 0, seconds: int = 0) -> int:
    """Nanoseconds since midnight for a wall-clock time."""
    return ((hours * 60 + minutes) * 60 + seconds) * NS_PER_SECOND


def _require(condition: bool, name: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"{name}: {message}")


@dataclass(frozen=True, kw_only=True)
class SessionConfig:
    """Trading session and price grid."""

    start_ns: int = clock_ns(9, 30)
    """Session open, ns since midnight (default 09:30)."""
    end_ns: int = clock_ns(16, 0)
    """Session close, ns since midnight (default 16:00)."""
    tick_size: float = 0.01
    """Dollars per price tick."""
    price_levels: int = 20_000
    """Size of the price grid: valid limit prices are 1 .. price_levels-1 ticks."""
    collar_ticks: int = 10
    """Price protection of background agents' market orders: they trade at most this many ticks
    through the opposite best (the rest is cancelled), so a thin book cannot be swept away."""

    def __post_init__(self) -> None:
        _require(0 <= self.start_ns < self.end_ns, "session.end_ns", "must be after session.start_ns >= 0")
        _require(self.tick_size > 0, "session.tick_size", "must be > 0 dollars")
        _require(self.price_levels >= 16, "session.price_levels", "must be >= 16")
        _require(self.collar_ticks >= 0, "session.collar_ticks", "must be >= 0 ticks")


@dataclass(frozen=True, kw_only=True)
class FundamentalConfig:
    """Exogenous fundamental value: discretised Ornstein-Uhlenbeck with Poisson megashocks.

    Like ABIDES' SparseMeanRevertingOracle, but on a fixed grid: every ``step_s`` seconds
    ``r <- m + (r - m) e^{-kappa dt} + N(0, sigma^2 (1 - e^{-2 kappa dt}) / (2 kappa))``
    where the mean ``m`` drifts linearly by ``drift`` (a fraction of ``r_bar``) over the session
    and ``sigma`` is fund_vol times a log-normal stochastic-volatility factor of mean square 1.
    """

    r_bar: float = 10_000.0
    """Long-run mean at the open, ticks (10,000 ticks = $100 at $0.01)."""
    kappa: float = 1e-4
    """Mean-reversion speed, 1/second."""
    fund_vol: float = 0.6
    """Diffusion volatility, ticks per sqrt(second)."""
    megashock_rate: float = 1.2e-4
    """Poisson intensity of megashocks, 1/second (about 3 per day)."""
    megashock_mean: float = 0.0
    """Mean megashock size, ticks (the sign of each shock is random)."""
    megashock_std: float = 25.0
    """Standard deviation of megashock size, ticks."""
    vol_of_vol: float = 0.035
    """Diffusion of the log of fund_vol, per sqrt(second): stochastic volatility (0 = constant)."""
    vol_mean_reversion: float = 1.0 / 1200.0
    """Mean-reversion speed of the log-volatility, 1/second (1/1200 = 20-minute memory)."""
    drift: float = 0.0
    """Change of the long-run mean over the session as a fraction of r_bar (0.01 = +1%)."""
    vol_ramp: float = 1.0
    """Multiplier on fund_vol and megashock_rate reached at the close, ramping linearly from 1."""
    step_s: float = 1.0
    """Grid step of the fundamental path, seconds."""

    def __post_init__(self) -> None:
        _require(self.r_bar > 0, "fundamental.r_bar", "must be > 0 ticks")
        _require(self.kappa > 0, "fundamental.kappa", "must be > 0 per second")
        _require(self.fund_vol >= 0, "fundamental.fund_vol", "must be >= 0")
        _require(self.megashock_rate >= 0, "fundamental.megashock_rate", "must be >= 0")
        _require(self.megashock_std >= 0, "fundamental.megashock_std", "must be >= 0")
        _require(self.drift > -1, "fundamental.drift", "must be > -1")
        _require(self.vol_of_vol >= 0, "fundamental.vol_of_vol", "must be >= 0")
        _require(self.vol_mean_reversion > 0, "fundamental.vol_mean_reversion", "must be > 0 per second")
        _require(self.vol_ramp > 0, "fundamental.vol_ramp", "must be > 0")
        _require(self.step_s > 0, "fundamental.step_s", "must be > 0 seconds")


@dataclass(frozen=True, kw_only=True)
class LatencyConfig:
    """Decision-to-exchange delay: a per-agent constant plus exponential jitter per message."""

    base_ns: int = 50_000
    """Median per-agent constant delay, ns (agents draw theirs uniformly in [0.5, 1.5] x base)."""
    jitter_mean_ns: float = 20_000.0
    """Mean of the exponential per-message jitter, ns."""

    def __post_init__(self) -> None:
        _require(self.base_ns >= 0, "latency.base_ns", "must be >= 0 ns")
        _require(self.jitter_mean_ns >= 0, "latency.jitter_mean_ns", "must be >= 0 ns")


@dataclass(frozen=True, kw_only=True)
class ValueAgentConfig:
    """Agents trading on noisy observations of the fundamental (ABIDES ValueAgent)."""

    count: int = 102
    """Number of value agents."""
    wake_mean_s: float = 20.0
    """Mean of the exponential time between wake-ups, seconds."""
    obs_noise_std: float = 20.0
    """Standard deviation of one observation of the fundamental, ticks."""
    size_min: int = 20
    """Smallest order, shares."""
    size_max: int = 100
    """Largest order, shares."""
    aggressive_prob: float = 0.1
    """Probability of crossing the spread (taking the opposite best) instead of resting."""
    depth_ticks: int = 4
    """A resting order sits a uniform 0..depth_ticks ticks behind the touch (never past the estimate)."""
    max_join_spread: int = 5
    """Spreads up to this many ticks are joined; a wider spread is improved: a resting sell goes
    at most this far above the best bid (a buy below the best ask), never past the estimate."""
    take_threshold: float = 20.0
    """Take the opposite best whenever it is this many ticks better than the estimate (a buy
    below it or a sell above it): value traders stop the price from running away from value."""

    def __post_init__(self) -> None:
        _require(self.count >= 0, "value.count", "must be >= 0")
        _require(self.wake_mean_s > 0, "value.wake_mean_s", "must be > 0 seconds")
        _require(self.obs_noise_std > 0, "value.obs_noise_std", "must be > 0 ticks")
        _require(1 <= self.size_min <= self.size_max, "value.size_max", "need 1 <= size_min <= size_max")
        _require(0 <= self.aggressive_prob <= 1, "value.aggressive_prob", "must be in [0, 1]")
        _require(self.depth_ticks >= 0, "value.depth_ticks", "must be >= 0 ticks")
        _require(self.max_join_spread >= 1, "value.max_join_spread", "must be >= 1 tick")
        _require(self.take_threshold >= 0, "value.take_threshold", "must be >= 0 ticks")


@dataclass(frozen=True, kw_only=True)
class MarketMakerConfig:
    """Adaptive market makers quoting ladders on both sides (ABIDES AdaptiveMarketMaker)."""

    count: int = 2
    """Number of market makers."""
    wake_interval_s: float = 5.0
    """Time between quote refreshes, seconds (each maker has a random phase)."""
    n_levels: int = 5
    """Quote levels per side."""
    level_spacing: int = 1
    """Distance between ladder levels, ticks."""
    pov: float = 0.05
    """Size at the touch as a share of the volume traded since the previous refresh."""
    min_size: int = 100
    """Smallest quote size at the touch, shares."""
    max_size: int = 2_000
    """Largest quote size at the touch, shares."""
    depth_growth: float = 0.5
    """Level i of the ladder carries (1 + depth_growth * i) x the touch size."""
    min_half_spread: int = 1
    """Smallest distance from the quote centre to the touch, ticks."""
    max_half_spread: int = 10
    """Largest distance from the quote centre to the touch, ticks (caps volatility widening)."""
    vol_coef: float = 1.0
    """Half-spread widening per tick of recent mid-price volatility (std of mid changes)."""
    imbalance_coef: float = 1.0
    """Quote-centre shift towards the side of recent aggressive flow, ticks per unit imbalance."""
    inventory_coef: float = 0.5
    """Quote-centre shift against inventory, ticks per max_size shares held."""
    vol_smoothing: float = 0.03
    """Weight of the newest squared mid change in the volatility average (0..1]."""

    def __post_init__(self) -> None:
        _require(self.count >= 0, "market_maker.count", "must be >= 0")
        _require(self.wake_interval_s > 0, "market_maker.wake_interval_s", "must be > 0 seconds")
        _require(1 <= self.n_levels <= 64, "market_maker.n_levels", "must be in 1..64")
        _require(self.level_spacing >= 1, "market_maker.level_spacing", "must be >= 1 tick")
        _require(self.pov >= 0, "market_maker.pov", "must be >= 0")
        _require(1 <= self.min_size <= self.max_size, "market_maker.max_size", "need 1 <= min_size <= max_size")
        _require(self.depth_growth >= 0, "market_maker.depth_growth", "must be >= 0")
        _require(self.min_half_spread >= 1, "market_maker.min_half_spread", "must be >= 1 tick")
        _require(self.max_half_spread >= self.min_half_spread, "market_maker.max_half_spread",
                 "must be >= min_half_spread")
        _require(0 < self.vol_smoothing <= 1, "market_maker.vol_smoothing", "must be in (0, 1]")


@dataclass(frozen=True, kw_only=True)
class MomentumAgentConfig:
    """Moving-average crossover traders sending market orders (ABIDES MomentumAgent)."""

    count: int = 12
    """Number of momentum agents."""
    wake_mean_s: float = 20.0
    """Mean of the exponential time between wake-ups, seconds."""
    short_window: int = 5
    """Mid prices (one per wake-up) in the short moving average."""
    long_window: int = 20
    """Mid prices (one per wake-up) in the long moving average."""
    threshold: float = 1.0
    """Minimum |short MA - long MA| that triggers a trade, ticks."""
    size_min: int = 20
    """Smallest order, shares."""
    size_max: int = 100
    """Largest order, shares."""

    def __post_init__(self) -> None:
        _require(self.count >= 0, "momentum.count", "must be >= 0")
        _require(self.wake_mean_s > 0, "momentum.wake_mean_s", "must be > 0 seconds")
        _require(1 <= self.short_window < self.long_window <= 256, "momentum.long_window",
                 "need 1 <= short_window < long_window <= 256")
        _require(self.threshold >= 0, "momentum.threshold", "must be >= 0 ticks")
        _require(1 <= self.size_min <= self.size_max, "momentum.size_max", "need 1 <= size_min <= size_max")


@dataclass(frozen=True, kw_only=True)
class NoiseAgentConfig:
    """Agents placing one market order each, at a Beta(a, a) time over the session (U-shaped)."""

    count: int = 1_000
    """Number of noise agents (one order each)."""
    beta_a: float = 0.35
    """Shape of the Beta(a, a) arrival-time law; a < 1 concentrates orders at open and close."""
    size_min: int = 50
    """Smallest order, shares."""
    size_max: int = 300
    """Largest order, shares."""

    def __post_init__(self) -> None:
        _require(self.count >= 0, "noise.count", "must be >= 0")
        _require(self.beta_a > 0, "noise.beta_a", "must be > 0")
        _require(1 <= self.size_min <= self.size_max, "noise.size_max", "need 1 <= size_min <= size_max")


@dataclass(frozen=True, kw_only=True)
class VolatilityAgentConfig:
    """Agents that trade harder when realised volatility exceeds its running average."""

    count: int = 10
    """Number of volatility agents."""
    wake_mean_s: float = 30.0
    """Mean time between wake-ups in calm markets, seconds (shrinks as volatility rises)."""
    fast_weight: float = 0.3
    """Weight of the newest squared mid return in the fast volatility average (0..1]."""
    slow_weight: float = 0.02
    """Weight of the newest squared mid return in the slow (running) average (0..1]."""
    trigger_ratio: float = 1.5
    """Trade only when fast variance > trigger_ratio x slow variance."""
    base_size: int = 50
    """Market order size at the trigger, shares; grows with the variance ratio."""
    max_size: int = 500
    """Largest order, shares."""

    def __post_init__(self) -> None:
        _require(self.count >= 0, "volatility.count", "must be >= 0")
        _require(self.wake_mean_s > 0, "volatility.wake_mean_s", "must be > 0 seconds")
        _require(0 < self.fast_weight <= 1, "volatility.fast_weight", "must be in (0, 1]")
        _require(0 < self.slow_weight <= 1, "volatility.slow_weight", "must be in (0, 1]")
        _require(self.trigger_ratio > 0, "volatility.trigger_ratio", "must be > 0")
        _require(1 <= self.base_size <= self.max_size, "volatility.max_size", "need 1 <= base_size <= max_size")


@dataclass(frozen=True, kw_only=True)
class MarketConfig:
    """A full market: session, fundamental, latency and the background population."""

    regime: str = "baseline"
    """Name of the preset this config came from (informational, used in report titles)."""
    session: SessionConfig = field(default_factory=SessionConfig)
    fundamental: FundamentalConfig = field(default_factory=FundamentalConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    value: ValueAgentConfig = field(default_factory=ValueAgentConfig)
    market_maker: MarketMakerConfig = field(default_factory=MarketMakerConfig)
    momentum: MomentumAgentConfig = field(default_factory=MomentumAgentConfig)
    noise: NoiseAgentConfig = field(default_factory=NoiseAgentConfig)
    volatility: VolatilityAgentConfig = field(default_factory=VolatilityAgentConfig)
    execution_window: tuple[int, int] | None = None
    """(start_ns, end_ns) the execution environment trades in; None = the whole session."""
    snapshot_interval_s: float = 1.0
    """Book snapshots recorded by simulate_day, seconds between snapshots."""

    def __post_init__(self) -> None:
        _require(isinstance(self.regime, str) and bool(self.regime), "regime", "must be a non-empty name")
        if self.execution_window is not None:
            start, end = (int(v) for v in self.execution_window)
            _require(self.session.start_ns <= start < end <= self.session.end_ns, "execution_window",
                     "must satisfy session.start_ns <= start < end <= session.end_ns")
            object.__setattr__(self, "execution_window", (start, end))
        _require(self.snapshot_interval_s > 0, "snapshot_interval_s", "must be > 0 seconds")

    @property
    def window_ns(self) -> tuple[int, int]:
        """The execution window, defaulting to the whole session."""
        return self.execution_window or (self.session.start_ns, self.session.end_ns)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples become lists), ready for YAML."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarketConfig:
        """Inverse of :meth:`to_dict`; missing keys take defaults, unknown keys raise ConfigError."""
        return _from_plain(cls, data, prefix="")


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


_SECTIONS = {
    "session": SessionConfig,
    "fundamental": FundamentalConfig,
    "latency": LatencyConfig,
    "value": ValueAgentConfig,
    "market_maker": MarketMakerConfig,
    "momentum": MomentumAgentConfig,
    "noise": NoiseAgentConfig,
    "volatility": VolatilityAgentConfig,
}


def _from_plain(cls: type, data: Any, prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown field")
    kwargs = {}
    for name, value in data.items():
        section = _SECTIONS.get(name) if cls is MarketConfig else None
        if section is not None:
            kwargs[name] = _from_plain(section, value, prefix=f"{name}.")
        elif name == "execution_window" and value is not None:
            if len(value) != 2:
                raise ConfigError("execution_window: expected [start_ns, end_ns]")
            kwargs[name] = (int(value[0]), int(value[1]))
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: {exc}") from exc

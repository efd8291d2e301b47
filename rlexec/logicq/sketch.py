"""The Logic-Q program sketch (spec 3.2): market-trend conditionals with numeric holes.

::

    if   vol >  t.rapid_descend_vol  and dr > t.rapid_descend_dr:  RAPID_DESCEND    # cnd1
    elif vol <= t.steady_descend_vol and dr > t.steady_descend_dr: STEADY_DESCEND   # cnd2
    elif vol <  t.steady_ascend_vol  and gr > t.steady_ascend_gr:  STEADY_ASCEND    # cnd3 (the seed's)
    elif vol >= t.rapid_ascend_vol   and gr > t.rapid_ascend_gr:   RAPID_ASCEND     # cnd4
    else:                                                          OSCILLATION

The order of the four conditionals is :data:`DEFAULT_ORDER` (the spec's; the paper's Figure 3 was
not retrievable) and is configurable; OSCILLATION is always the ``else``, so every step gets exactly
one trend. An empty order is the "w/o sketch" ablation: every step is OSCILLATION and only its
parameter is a hole.

Holes: 2 thresholds per conditional, plus one parameter per reachable trend: a temperature
(single model: 8 + 5 = **13**) or k ensemble weights (k = 3: 8 + 15 = **23**). :class:`Hole` gives
each its name and search bounds (spec 3.4, from training-data quantiles via :class:`ThresholdBounds`);
:class:`TemperatureHoles` and :class:`EnsembleHoles` are a filled-in assignment with named fields.
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Generic, Mapping, TypeVar

import numpy as np

from rlexec.errors import ConfigError
from rlexec.logicq.features import TrendFeatures


class Trend(enum.IntEnum):
    """The seed's five market trends, in the seed's order."""

    STEADY_DESCEND = 0
    STEADY_ASCEND = 1
    RAPID_DESCEND = 2
    RAPID_ASCEND = 3
    OSCILLATION = 4

    @property
    def key(self) -> str:
        return self.name.lower()


CONDITIONAL_TRENDS = (Trend.RAPID_DESCEND, Trend.STEADY_DESCEND, Trend.STEADY_ASCEND, Trend.RAPID_ASCEND)
DEFAULT_ORDER = CONDITIONAL_TRENDS  # spec 3.2's order (a DEFAULT: the paper's was not verified)

# trend -> (vol comparison, second feature): vol compared with <trend>_vol, the second feature > <trend>_<feature>
CONDITIONS: dict[Trend, tuple[str, str]] = {
    Trend.RAPID_DESCEND: (">", "dr"),
    Trend.STEADY_DESCEND: ("<=", "dr"),
    Trend.STEADY_ASCEND: ("<", "gr"),
    Trend.RAPID_ASCEND: (">=", "gr"),
}
_COMPARE = {">": np.greater, "<=": np.less_equal, "<": np.less, ">=": np.greater_equal}


@dataclass(frozen=True)
class Thresholds:
    """The eight threshold holes; NaN for a conditional the sketch's order leaves out."""

    rapid_descend_vol: float
    rapid_descend_dr: float
    steady_descend_vol: float
    steady_descend_dr: float
    steady_ascend_vol: float
    steady_ascend_gr: float
    rapid_ascend_vol: float
    rapid_ascend_gr: float

    def of(self, trend: Trend) -> tuple[float, float]:
        """(vol threshold, second-feature threshold) of ``trend``'s conditional."""
        return getattr(self, f"{trend.key}_vol"), getattr(self, f"{trend.key}_{CONDITIONS[trend][1]}")


T = TypeVar("T")


@dataclass(frozen=True)
class PerTrend(Generic[T]):
    """One value per trend (a temperature, or a vector of ensemble weights)."""

    steady_descend: T
    steady_ascend: T
    rapid_descend: T
    rapid_ascend: T
    oscillation: T

    def __getitem__(self, trend: Trend) -> T:
        return getattr(self, Trend(trend).key)

    def stack(self) -> np.ndarray:
        """Values indexed by :class:`Trend` value: (5,) or (5, k)."""
        return np.asarray([self[t] for t in Trend], dtype=np.float64)


@dataclass(frozen=True)
class Hole:
    """One tunable number: its flat name (the Tune parameter), and its search range."""

    name: str
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True, kw_only=True)
class ThresholdBounds:
    """Search ranges of the thresholds, per feature (spec 3.4): vol in [q05, q95] of the training
    data's vol; dr and gr in [0, q99] of theirs. Quantiles are configurable (rlexec keeps the spec's)."""

    vol: tuple[float, float]
    dr: tuple[float, float]
    gr: tuple[float, float]

    @classmethod
    def from_features(cls, train: TrendFeatures, *, vol_quantiles: tuple[float, float] = (0.05, 0.95),
                      upper_quantile: float = 0.99) -> "ThresholdBounds":
        finite = {name: np.asarray(getattr(train, name))[np.isfinite(getattr(train, name))] for name in ("vol", "dr", "gr")}
        for name, values in finite.items():
            if values.size == 0:
                raise ConfigError(f"ThresholdBounds: no finite {name} value in the training features")
        vol = tuple(float(q) for q in np.quantile(finite["vol"], vol_quantiles))
        return cls(vol=_widened(vol), dr=_widened((0.0, float(np.quantile(finite["dr"], upper_quantile)))),
                   gr=_widened((0.0, float(np.quantile(finite["gr"], upper_quantile)))))

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ThresholdBounds":
        try:
            return cls(**{k: (float(data[k][0]), float(data[k][1])) for k in ("vol", "dr", "gr")})
        except (KeyError, TypeError, IndexError, ValueError):
            raise ConfigError(f"ThresholdBounds: need vol, dr and gr as [low, high], got {data!r}") from None


def _widened(bounds: tuple[float, float]) -> tuple[float, float]:
    """A degenerate range (e.g. no growth in the training data) made searchable; why: a searcher needs low < high."""
    low, high = bounds
    return (low, high) if high > low else (low, low + max(abs(low) * 1e-6, 1e-12))


TEMPERATURE_BOUNDS = (0.1, 10.0)  # spec 3.4: log phi in [log 0.1, log 10]
WEIGHT_BOUNDS = (0.0, 1.0)  # spec 3.4


@dataclass(frozen=True)
class TemperatureHoles:
    thresholds: Thresholds
    temperature: PerTrend[float]


@dataclass(frozen=True)
class EnsembleHoles:
    thresholds: Thresholds
    weights: PerTrend[tuple[float, ...]]  # raw; the adjustment normalises them onto the simplex


@dataclass(frozen=True, kw_only=True)
class Sketch:
    """The conditional program: which conditionals, in which order, and what a trend's hole is."""

    order: tuple[Trend, ...] = DEFAULT_ORDER

    def __post_init__(self) -> None:
        order = tuple(_trend(t) for t in self.order)
        if any(t not in CONDITIONAL_TRENDS for t in order) or len(set(order)) != len(order):
            raise ConfigError(f"Sketch.order must list distinct trends of {[t.key for t in CONDITIONAL_TRENDS]} "
                              f"(oscillation is the else), got {[getattr(t, 'key', t) for t in self.order]}")
        object.__setattr__(self, "order", order)

    @property
    def trends(self) -> tuple[Trend, ...]:
        """The trends this sketch can return, in :class:`Trend` order."""
        return tuple(t for t in Trend if t in self.order or t == Trend.OSCILLATION)

    def classify(self, features: TrendFeatures, thresholds: Thresholds) -> np.ndarray:
        """(N,) :class:`Trend` values: the first satisfied conditional in ``order``, else OSCILLATION."""
        trend = np.full(len(features), int(Trend.OSCILLATION), dtype=np.int64)
        open_ = np.ones(len(features), dtype=bool)
        for t in self.order:
            compare, second = CONDITIONS[t]
            vol_threshold, second_threshold = thresholds.of(t)
            hit = open_ & _COMPARE[compare](features.vol, vol_threshold) & (getattr(features, second) > second_threshold)
            trend[hit] = int(t)
            open_ &= ~hit
        return trend

    # -- the holes -------------------------------------------------------------------------------------------
    def threshold_holes(self, bounds: ThresholdBounds) -> list[Hole]:
        holes = []
        for t in self.order:
            second = CONDITIONS[t][1]
            holes.append(Hole(f"threshold.{t.key}_vol", *bounds.vol))
            holes.append(Hole(f"threshold.{t.key}_{second}", *getattr(bounds, second)))
        return holes

    def temperature_holes(self, bounds: ThresholdBounds, temperature: tuple[float, float] = TEMPERATURE_BOUNDS) -> list[Hole]:
        return self.threshold_holes(bounds) + [Hole(f"temperature.{t.key}", *temperature, log=True) for t in self.trends]

    def ensemble_holes(self, k: int, bounds: ThresholdBounds, weight: tuple[float, float] = WEIGHT_BOUNDS) -> list[Hole]:
        if k < 1:
            raise ConfigError(f"ensemble_holes: k must be >= 1, got {k}")
        return self.threshold_holes(bounds) + [
            Hole(f"weight.{t.key}.{i}", *weight) for t in self.trends for i in range(k)]

    def temperature_assignment(self, values: Mapping[str, float]) -> TemperatureHoles:
        """Typed holes from flat names; a trend the sketch cannot return takes the oscillation value."""
        fallback = _value(values, f"temperature.{Trend.OSCILLATION.key}")
        temperature = PerTrend(**{t.key: _value(values, f"temperature.{t.key}") if t in self.trends else fallback
                                  for t in Trend})
        return TemperatureHoles(self._thresholds(values), temperature)

    def ensemble_assignment(self, values: Mapping[str, float], k: int) -> EnsembleHoles:
        def vector(t: Trend) -> tuple[float, ...]:
            return tuple(_value(values, f"weight.{t.key}.{i}") for i in range(k))

        fallback = vector(Trend.OSCILLATION)
        weights = PerTrend(**{t.key: vector(t) if t in self.trends else fallback for t in Trend})
        return EnsembleHoles(self._thresholds(values), weights)

    def _thresholds(self, values: Mapping[str, float]) -> Thresholds:
        used = {h.name.split(".", 1)[1] for h in self.threshold_holes(ThresholdBounds(vol=(0, 1), dr=(0, 1), gr=(0, 1)))}
        return Thresholds(**{f.name: _value(values, f"threshold.{f.name}") if f.name in used else math.nan
                             for f in fields(Thresholds)})

    def to_dict(self) -> dict[str, Any]:
        return {"order": [t.key for t in self.order]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "Sketch":
        data = dict(data or {})
        unknown = set(data) - {"order"}
        if unknown:
            raise ConfigError(f"sketch: unknown key(s) {sorted(unknown)}; known: ['order']")
        order = data.get("order", [t.key for t in DEFAULT_ORDER])
        if not isinstance(order, (list, tuple)):
            raise ConfigError(f"sketch.order must be a list of trend names, got {order!r}")
        return cls(order=tuple(order))


def temperature_holes(sketch: Sketch | None = None, bounds: ThresholdBounds | None = None) -> list[Hole]:
    """The single-model holes (13 for the default sketch); unit threshold ranges unless ``bounds`` are given."""
    return (sketch or Sketch()).temperature_holes(bounds or _UNIT_BOUNDS)


def ensemble_holes(k: int = 3, sketch: Sketch | None = None, bounds: ThresholdBounds | None = None) -> list[Hole]:
    """The ensemble holes (23 for the default sketch and k = 3)."""
    return (sketch or Sketch()).ensemble_holes(k, bounds or _UNIT_BOUNDS)


_UNIT_BOUNDS = ThresholdBounds(vol=(0.0, 1.0), dr=(0.0, 1.0), gr=(0.0, 1.0))


def _trend(value: Any) -> Trend:
    if isinstance(value, Trend):
        return value
    try:
        return Trend[str(value).upper()]
    except KeyError:
        raise ConfigError(f"unknown trend {value!r}; trends: {[t.key for t in Trend]}") from None


def _value(values: Mapping[str, float], name: str) -> float:
    if name not in values:
        raise ConfigError(f"hole assignment: missing {name!r}")
    value = values[name]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
        raise ConfigError(f"hole assignment: {name} must be a finite number, got {value!r}")
    return float(value)

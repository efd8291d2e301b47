"""Configuration of the bar-level execution environment (the OPD formulation, spec section 2.1).

Every field is a documented rlexec default unless its comment cites the source.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from rlexec.configs import config_from_dict
from rlexec.errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class FillModel:
    """How a child quantity turns into fills on minute bars.

    A step's quantity is split evenly over the step's minutes. In minute ``m`` at most
    ``max_participation * volume_m`` shares fill (``max_participation=None``, YAML ``null``: no cap,
    the OPD setting and Qlib's uncapped simulator); a minute with no volume gets no fill either way.
    The fill price is the minute's ``price_field`` moved against the trader by the temporary impact
    ``impact_bps = impact_coefficient_bps * (fill_m / volume_m) ** impact_exponent + half_spread_bps``
    (square root in participation by default). Shares the cap leaves unfilled stay in the order.

    End of horizon: in the last step, if ``force_remainder`` is set, whatever is still unfilled after
    the capped spread trades in the horizon's last minute, above the cap, at that minute's price plus
    the impact of its (possibly large) participation; otherwise it stays unfilled and the fill rate
    is below 1. rlexec's own rule for that forced fill (not from a source paper): its participation
    is measured against ``max(volume_last, forced_volume_floor * mean volume of the horizon's traded
    minutes)``, so an empty or nearly empty last bar (a halt, a data gap) is charged as a thin but
    real minute instead of as one share of volume, which made the impact explode. The default floor
    0.25 binds only on the thinnest minutes (on the shipped sample, about 3% of 240-minute horizons
    end in a minute below it), so an ordinary last minute keeps its own volume; it is configurable
    (larger: the forced block is priced against more typical liquidity; tiny: the bare last-minute
    volume).
    """

    price_field: str = "typical"  # "typical" = (high + low + close) / 3, the minute-VWAP proxy; or "close"
    max_participation: float | None = 0.2  # fraction of each bar's volume the order may take; None = no cap
    impact_coefficient_bps: float = 10.0  # impact at 100% participation, basis points
    impact_exponent: float = 0.5  # 0.5 = square-root law; 1.0 = linear
    half_spread_bps: float = 0.0  # optional crossing cost per share, basis points
    force_remainder: bool = True  # OPD code: the remainder is forced out at the last minute
    forced_volume_floor: float = 0.25  # rlexec default: forced fill's volume >= this x horizon mean minute volume

    def __post_init__(self) -> None:
        _check_types(self, numbers=("impact_coefficient_bps", "impact_exponent", "half_spread_bps",
                                    "forced_volume_floor"),
                     flags=("force_remainder",))
        if self.max_participation is not None:
            _check_types(self, numbers=("max_participation",))
        _check(self, "price_field", self.price_field in ("typical", "close"), "must be 'typical' or 'close'")
        _check(self, "max_participation", self.max_participation is None or 0 < self.max_participation <= 1,
               "must be in (0, 1], or null for no cap")
        _check(self, "impact_coefficient_bps", self.impact_coefficient_bps >= 0, "must be >= 0")
        _check(self, "impact_exponent", self.impact_exponent > 0, "must be > 0")
        _check(self, "half_spread_bps", self.half_spread_bps >= 0, "must be >= 0")
        _check(self, "forced_volume_floor", 0 < self.forced_volume_floor < math.inf, "must be > 0 and finite")

    @property
    def participation_cap(self) -> float:
        """``max_participation`` as the fill kernel takes it: ``inf`` when there is no cap."""
        return math.inf if self.max_participation is None else float(self.max_participation)


@dataclass(frozen=True, kw_only=True)
class RewardConfig:
    """Per-step reward ``scale * (PA_t - alpha * concentration_t)`` (spec 2.1).

    ``PA_t = sigma * (p_t / p_twap - 1) * 1e4 * q_t / Q`` is the step's price advantage in basis points
    against the horizon's average market price ``p_twap``, weighted by the step's share of the order;
    it sums over an episode to the order's PA times its fill rate. ``concentration_t`` is
    ``sum_m (fill_m / Q)^2`` over the step's minutes (``basis="minute"``, the OPD code's
    ``VP_Penalty``) or ``(q_t / Q)^2`` (``basis="step"``, the paper's formula).
    """

    alpha: float = 100.0  # spec 2.6: the OPD code's penalty 100 on the bps scale
    scale: float = 0.01  # spec 2.6: the code divides by 100
    basis: str = "minute"  # "minute" (OPD code) or "step" (paper formula)

    def __post_init__(self) -> None:
        _check_types(self, numbers=("alpha", "scale"))
        _check(self, "alpha", self.alpha >= 0, "must be >= 0")
        _check(self, "scale", self.scale > 0, "must be > 0")
        _check(self, "basis", self.basis in ("minute", "step"), "must be 'minute' or 'step'")


ACTION_INTERPRETERS = ("fraction", "twap_relative")
DEFAULT_ACTION_VALUES = {
    "fraction": (0.0, 0.25, 0.5, 0.75, 1.0),  # OPD code action_map, fractions of Q
    # rlexec's default multipliers of the TWAP pace (Qlib's TwapRelativeActionInterpreter takes them as
    # given): pause, half pace, TWAP, one and a half, double. Configurable through ``action_values``.
    "twap_relative": (0.0, 0.5, 1.0, 1.5, 2.0),
}


@dataclass(frozen=True, kw_only=True)
class ExecutionConfig:
    """The parent-order MDP: T decision steps of ``step_minutes`` each, starting at the order's start.

    ``action_interpreter`` says what a discrete action ``a`` means (see :mod:`rlexec.envs.interpreters`):

    * ``"fraction"`` (OPD, spec 2.1): trade ``action_values[a] * Q``, capped by what remains; values in [0, 1].
    * ``"twap_relative"`` (as Qlib's ``TwapRelativeActionInterpreter``): trade
      ``action_values[a] * remaining / steps_left``, a multiple of the TWAP pace of what remains, so
      the value 1.0 every step is TWAP; values >= 0 and finite.

    ``action_values`` left out (``None``) takes the interpreter's default from :data:`DEFAULT_ACTION_VALUES`
    and is stored resolved, so ``to_dict`` and every reader see the actual values.
    """

    n_steps: int = 8  # OPD code: interval_num 8
    step_minutes: int = 30  # OPD code: time_interval 30
    action_interpreter: str = "fraction"  # OPD's fractions of Q; "twap_relative": multiples of the TWAP pace
    action_values: tuple[float, ...] | None = None  # None: DEFAULT_ACTION_VALUES[action_interpreter]
    lookback_minutes: int = 30  # public bars before the start that every observation includes
    profile_days: int = 5  # earlier sessions averaged for the VWAP volume profile
    fill: FillModel = field(default_factory=FillModel)
    reward: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        _check_types(self, integers=("n_steps", "step_minutes", "lookback_minutes", "profile_days"))
        _check(self, "fill", isinstance(self.fill, FillModel), "must be a FillModel (or a mapping in from_dict)")
        _check(self, "reward", isinstance(self.reward, RewardConfig), "must be a RewardConfig (or a mapping in from_dict)")
        _check(self, "n_steps", self.n_steps >= 1, "must be >= 1")
        _check(self, "step_minutes", self.step_minutes >= 1, "must be >= 1")
        _check(self, "horizon_minutes", self.horizon_minutes <= 390, "n_steps * step_minutes must fit in 390")
        _check(self, "action_interpreter", self.action_interpreter in ACTION_INTERPRETERS,
               f"must be one of {ACTION_INTERPRETERS}")
        if self.action_values is None:
            object.__setattr__(self, "action_values", DEFAULT_ACTION_VALUES[self.action_interpreter])
        _check(self, "action_values", isinstance(self.action_values, (tuple, list)) and all(
            isinstance(a, (int, float)) and not isinstance(a, bool) for a in self.action_values),
            "must be a sequence of numbers")
        object.__setattr__(self, "action_values", tuple(float(a) for a in self.action_values))
        _check(self, "action_values", len(self.action_values) >= 2, "needs at least two values")
        if self.action_interpreter == "fraction":
            _check(self, "action_values", all(0 <= a <= 1 for a in self.action_values),
                   "must lie in [0, 1] (fractions of Q, action_interpreter 'fraction')")
        else:
            _check(self, "action_values", all(0 <= a < math.inf for a in self.action_values),
                   "must be >= 0 and finite (multiples of the TWAP pace, action_interpreter 'twap_relative')")
        _check(self, "lookback_minutes", 0 <= self.lookback_minutes <= 390, "must be in [0, 390]")
        _check(self, "profile_days", self.profile_days >= 1, "must be >= 1")

    @property
    def horizon_minutes(self) -> int:
        return self.n_steps * self.step_minutes

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ExecutionConfig":
        """Build from a plain dict (e.g. YAML); unknown keys raise naming the key."""
        return config_from_dict(
            cls, data, sections={"fill": FillModel, "reward": RewardConfig},
            converters={"action_values": _action_values},
        )


def _action_values(values) -> tuple[float, ...] | None:
    if values is None:  # YAML null: the interpreter's default
        return None
    if not isinstance(values, (list, tuple)) or not all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in values
    ):
        raise ConfigError(f"ExecutionConfig.action_values must be a list of numbers; got {values!r}")
    return tuple(float(a) for a in values)


def _check(obj, name: str, ok: bool, why: str) -> None:
    if not ok:
        raise ConfigError(f"{type(obj).__name__}.{name} {why}; got {getattr(obj, name, None)!r}")


def _check_types(obj, integers: tuple[str, ...] = (), numbers: tuple[str, ...] = (), flags: tuple[str, ...] = ()) -> None:
    """Type checks first, so that a YAML typo (``n_steps: eight``) is a ConfigError naming the field."""
    for name in integers:
        value = getattr(obj, name)
        _check(obj, name, isinstance(value, int) and not isinstance(value, bool), "must be an integer")
    for name in numbers:
        value = getattr(obj, name)
        _check(obj, name, isinstance(value, (int, float)) and not isinstance(value, bool), "must be a number")
        _check(obj, name, value == value, "must not be NaN")
    for name in flags:
        _check(obj, name, isinstance(getattr(obj, name), bool), "must be true or false")

"""Execution environment over the limit-order-book simulator or a replayed LOBSTER day (spec 1.1).

Composed of named pieces, like the bar env (Qlib's order-execution split):

* the venue (:class:`rlexec.envs.venue.Venue`): the simulator or a replay, used only through that protocol;
* the broker (:mod:`rlexec.strategies`, the same classes as the bar env's): sizes each child order;
* the placement interpreter (:class:`~rlexec.envs.lob_interpreters.PlacementInterpreter`): action -> orders;
* the observation interpreter (:class:`~rlexec.envs.lob_interpreters.LOBObservationInterpreter`);
* the reward (:class:`rlexec.envs.reward.ArrivalSlippageReward`).
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rlexec.configs import config_from_dict
from rlexec.envs.lob_interpreters import (
    ACTION_NAMES,
    HOLD,
    LIMIT,
    MARKET,
    NUM_RETURNS,
    OBSERVATION_NAMES,
    SIZE_MULTIPLIERS,
    LOBObservationInterpreter,
    LOBOrderState,
    PlacementInterpreter,
    SharedActionInterpreter,
    bucket_shares,
    decode_shared_action,
    pace,
    size_bucket,
)
from rlexec.envs.reward import ArrivalSlippageReward, DecisionPriceReward
from rlexec.envs.venue import Venue, price_ticks
from rlexec.errors import ConfigError
from rlexec.strategies import (
    VWAP,
    Broker,
    ImplementationShortfall,
    OrderContext,
    PercentOfVolume,
    make_strategy,
    strategy_names,
    u_shaped_volume_profile,
)

__all__ = [
    "ACTION_NAMES", "ACTION_SPACES", "BROKERS", "BUCKET_NAMES", "HOLD", "LIMIT", "MARKET", "NUM_RETURNS",
    "OBSERVATION_NAMES", "SHARED_OBSERVATION_NAMES", "TRAINING_REWARDS", "VWAP_PROFILES",
    "BrokerConfig", "LOBExecutionConfig", "LOBExecutionEnv", "execution_window", "expected_volume_profile",
    "expected_window_volume",
]

NS = 1_000_000_000
BROKERS = tuple(strategy_names())  # twap, vwap, is, pov: the bar env's brokers
VWAP_PROFILES = ("auto", "calibrated", "u_shape")
# placement: 3 actions at config.broker's raw size (the Stage-1 code's); shared: the 1 + 2 S actions of
# every expert (lob_interpreters); shared_placement: 3 placements at config.broker's bucketed size with
# the shared observation, i.e. shared action (bucket_broker(s), placement): what a Q-expert learns on.
ACTION_SPACES = ("placement", "shared", "shared_placement")
TRAINING_REWARDS = ("arrival", "decision_price")
BUCKET_NAMES = tuple(f"bucket_{name}" for name in BROKERS)
SHARED_OBSERVATION_NAMES = (*OBSERVATION_NAMES, *BUCKET_NAMES)


@dataclass(frozen=True, kw_only=True)
class BrokerConfig:
    """The broker that sizes the child orders: its name and the parameters of each broker.

    Every broker reads only its own fields, so switching ``name`` (``dataclasses.replace``) keeps a
    valid config. ``vwap_profile`` is where VWAP's expected volume curve comes from: ``calibrated``,
    the regime's mean per-interval share of window volume over ``LOBExecutionConfig.calibration_days``
    simulated days; ``u_shape``, the closed form ``(2 / pi) arcsin(sqrt(x))`` (spec 1.1 CORRECTION);
    ``auto``, calibrated on the simulator and the closed form on a replay (one day, no earlier sessions).
    """

    name: str = "twap"
    is_exponent: float = 0.6  # spec 1.1: IS X(x) = x^0.6 (the power-law shape; the LOB env measures no volatility for AC)
    participation: float = 0.10  # spec 1.1: POV child = 0.10 x observed volume
    vwap_profile: str = "auto"  # rlexec default, see the docstring

    def __post_init__(self) -> None:
        if self.name not in BROKERS:
            raise ConfigError(f"broker must be one of {BROKERS}, got {self.name!r}")
        if self.vwap_profile not in VWAP_PROFILES:
            raise ConfigError(f"broker.vwap_profile must be one of {VWAP_PROFILES}, got {self.vwap_profile!r}")
        for name, field_name in (("is", "is_exponent"), ("pov", "participation")):
            value = getattr(self, field_name)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"broker.{field_name} must be a number, got {value!r}")
            try:
                self.strategy(name)
            except ConfigError as exc:
                raise ConfigError(f"broker.{field_name}: {exc}") from None

    def strategy(self, name: str | None = None) -> Broker:
        """The broker ``name`` (default: this config's) with this config's parameters."""
        name = name or self.name
        if name == "is":
            return ImplementationShortfall(shape="power", exponent=self.is_exponent)
        if name == "pov":
            return PercentOfVolume(participation=self.participation)
        return make_strategy(name)


@dataclass(frozen=True, kw_only=True)
class LOBExecutionConfig:
    """The parent order and decision grid of :class:`LOBExecutionEnv`; rlexec defaults unless cited."""

    regime: str = "baseline"  # market preset, rlexec.market.REGIMES (ignored in replay)
    replay: str | None = None  # path of a LOBSTER zip: replay that day instead of simulating
    replay_window_minutes: int = 30  # replay: window length, started at a random time each episode
    side: str = "buy"  # "buy", "sell" or "random" (drawn each episode); the Stage-1 code uses BUY
    volume_fraction: float = 0.05  # Q as a share of the expected market volume in the window
    quantity: int | None = None  # fixed Q in shares (overrides volume_fraction)
    decision_interval_s: float = 30.0  # issue default 30-60 s of simulated time
    max_child_fraction: float = 0.2  # spec 1.1: max_order_size 100 for Q = 500
    unfilled_penalty_bps: float = 50.0  # terminal penalty per unit of |Q - executed| / Q (spec 1.4 lambda_F)
    warmup_intervals: int = NUM_RETURNS + 1  # intervals observed before the window for the return history
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    calibration_seed: int = 12345  # the simulated day that sets the expected window volume
    calibration_days: int = 5  # simulated days (seeds calibration_seed, +1, ...) VWAP's volume profile averages
    # Issue 9 (rlexec defaults, all optional; None / the first choice keep the old behaviour):
    action_space: str = "placement"  # one of ACTION_SPACES
    size_multipliers: tuple[float, ...] = SIZE_MULTIPLIERS  # shared size buckets, multiples of the pace
    window_start: str | None = None  # "HH:MM[:SS]" start of the execution window; None: the regime's window start
    window_minutes: float | None = None  # execution window length; None: to the regime's window end
    training_reward: str = "arrival"  # "decision_price": fills against the price at their decision (less drift)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size_multipliers", tuple(float(m) for m in self.size_multipliers))
        if self.action_space not in ACTION_SPACES:
            raise ConfigError(f"LOBExecutionConfig.action_space must be one of {ACTION_SPACES}, got {self.action_space!r}")
        if self.training_reward not in TRAINING_REWARDS:
            raise ConfigError(f"LOBExecutionConfig.training_reward must be one of {TRAINING_REWARDS}, "
                              f"got {self.training_reward!r}")
        if self.window_start is not None:
            parse_clock(self.window_start)
        mults = self.size_multipliers
        checks = {
            "size_multipliers": len(mults) >= 1 and all(m > 0 for m in mults)
            and all(b > a for a, b in zip(mults, mults[1:])),
            "window_minutes": self.window_minutes is None or self.window_minutes > 0,
            "side": self.side in ("buy", "sell", "random"),
            "volume_fraction": 0 < self.volume_fraction <= 1,
            "quantity": self.quantity is None or self.quantity >= 1,
            "decision_interval_s": self.decision_interval_s > 0,
            "max_child_fraction": 0 < self.max_child_fraction <= 1,
            "unfilled_penalty_bps": self.unfilled_penalty_bps >= 0,
            "warmup_intervals": self.warmup_intervals >= 1,
            "replay_window_minutes": self.replay_window_minutes >= 1,
            "calibration_days": self.calibration_days >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"LOBExecutionConfig.{name}: invalid value {getattr(self, name)!r}")

    @property
    def shared(self) -> bool:
        """Whether the observation carries the brokers' size buckets (the shared action space's modes)."""
        return self.action_space != "placement"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LOBExecutionConfig:
        """Build from a plain dict; ``broker`` may be a name (``"vwap"``) or a mapping of BrokerConfig fields."""
        return config_from_dict(
            cls, data, sections={"broker": BrokerConfig},
            converters={"broker": lambda b: BrokerConfig(name=b) if isinstance(b, str) else b},
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def vwap_profile(self) -> str:
        """Where VWAP's volume curve comes from here: ``calibrated`` or ``u_shape`` (``auto`` resolved)."""
        source = self.broker.vwap_profile
        if source == "auto":
            return "u_shape" if self.replay else "calibrated"
        if source == "calibrated" and self.replay:
            raise ConfigError("broker.vwap_profile: a replayed day has no earlier sessions to calibrate a volume "
                              "profile on; use 'u_shape' (or 'auto')")
        return source


def parse_clock(text: str) -> int:
    """``"HH:MM"`` or ``"HH:MM:SS"`` -> ns since midnight; ConfigError naming the field otherwise."""
    from rlexec.market.config import clock_ns

    try:
        parts = [int(p) for p in str(text).split(":")]
        if len(parts) not in (2, 3) or not (0 <= parts[0] < 24 and all(0 <= p < 60 for p in parts[1:])):
            raise ValueError
    except ValueError:
        raise ConfigError(f"LOBExecutionConfig.window_start must be 'HH:MM' or 'HH:MM:SS', got {text!r}") from None
    return clock_ns(*parts)


def execution_window(regime: str, window_start: str | None = None, window_minutes: float | None = None) -> tuple[int, int]:
    """(start, end) ns of the execution window: inside the regime's window, from ``window_start`` (default its
    start) for ``window_minutes`` (default to its end); the end never passes the regime's window end."""
    from rlexec.market import regime_config

    lo, hi = regime_config(regime).window_ns
    start = lo if window_start is None else parse_clock(window_start)
    if not lo <= start < hi:
        raise ConfigError(f"LOBExecutionConfig.window_start {window_start!r} lies outside regime {regime!r}'s "
                          f"window ({lo / 3.6e12:.2f} h to {hi / 3.6e12:.2f} h)")
    end = hi if window_minutes is None else min(hi, start + int(round(window_minutes * 60 * NS)))
    return start, end


@functools.lru_cache(maxsize=64)
def _window_trades(regime: str, seed: int, window: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Times and sizes of the trades inside ``window`` (default: the regime's execution window) on simulated
    day ``seed`` (cached)."""
    from rlexec.market import MarketSimulator, regime_config
    from rlexec.market.book import T_QTY, T_TIME

    config = regime_config(regime)
    sim = MarketSimulator(config, seed)
    start, end = window or config.window_ns
    sim.run_until(end)
    tape = sim.tape_arrays()
    inside = (tape[:, T_TIME] >= start) & (tape[:, T_TIME] < end)
    times, sizes = tape[inside, T_TIME].copy(), tape[inside, T_QTY].copy()
    times.flags.writeable = sizes.flags.writeable = False
    return times, sizes


def expected_window_volume(regime: str, seed: int, window: tuple[int, int] | None = None) -> int:
    """Market volume traded in the execution window (default the regime's) on one calibration day (cached)."""
    return max(1, int(_window_trades(regime, seed, window)[1].sum()))


@functools.lru_cache(maxsize=64)
def expected_volume_profile(regime: str, first_seed: int, days: int, interval_ns: int,
                            window: tuple[int, int] | None = None) -> np.ndarray:
    """(B,) the regime's expected share of window volume per decision interval (B = ceil(window / interval)).

    The mean over simulated days ``first_seed .. first_seed + days - 1`` of each day's shares: the
    intraday volume smile a VWAP broker follows, measured on days other than the ones it trades.
    """
    from rlexec.market import regime_config

    start, end = window or regime_config(regime).window_ns
    bins = -(-(end - start) // interval_ns)
    shares = np.zeros(bins)
    for seed in range(first_seed, first_seed + days):
        times, sizes = _window_trades(regime, seed, window)
        volume = np.bincount((times - start) // interval_ns, weights=sizes, minlength=bins)
        shares += volume / volume.sum() if volume.sum() > 0 else np.full(bins, 1.0 / bins)
    profile = shares / days
    profile.flags.writeable = False
    return profile


def _order_field(name: str) -> property:
    return property(lambda env: getattr(env.state, name), doc=f"``{name}`` of the current order (:class:`LOBOrderState`).")


class LOBExecutionEnv(gym.Env):
    """Execute one parent order on the LOB: the broker sizes each child order, the agent places it.

    ## Action Space
    ``Discrete(3)``: 0 market order, 1 limit order at the near touch (best bid to buy, best ask to
    sell), 2 hold. Every action first cancels the agent's resting orders. The child size comes from
    the broker (``config.broker``): ``clip(floor(Q X(x_next) - executed), 1, max_child)`` for the
    schedules (TWAP ``X = x``, VWAP the expected volume curve, IS ``x^0.6``), ``participation`` x the
    last interval's market volume for POV; never more than what remains.

    ``action_space="shared"`` (issue 9): ``Discrete(1 + 2 S)``, the broker experts' shared actions
    (:mod:`rlexec.envs.lob_interpreters`): 0 hold, ``1 + 2 b`` market and ``2 + 2 b`` limit of
    ``round(size_multipliers[b] * pace)`` shares, pace = remaining shares / remaining decisions.
    ``action_space="shared_placement"``: ``Discrete(3)`` placements as above, sized at
    ``config.broker``'s bucket, i.e. the shared action ``(bucket_broker(s), placement)``
    (``last_shared_action``): what a Q-expert is trained on.

    ## Observation Space
    ``Box(-inf, inf, (16,), float32)``, names in :data:`OBSERVATION_NAMES`: executed / Q, elapsed
    fraction, their difference, book imbalance ``(bid - ask) / (bid + ask)`` at 1 and 5 levels, the
    log mid move since arrival in bp oriented so that positive is adverse to the trader, the spread
    in bp of the mid, and the last 9 mid-price returns between decisions (bp). In the shared modes
    ``Box(20)``: then, per broker in ``BROKERS`` order, the size bucket of the child that broker would
    send now (``bucket_twap``, ``bucket_vwap``, ``bucket_is``, ``bucket_pov``; ``observation_names``).

    ## Reward
    Per fill, ``sigma (fill price - p0) / p0 * 1e4 * qty / Q`` (arrival-price slippage in bp, positive
    good; sigma +1 sell, -1 buy), with ``p0`` the mid at the start of *this* episode; at the end,
    ``-unfilled_penalty_bps * |Q - executed| / Q``, the same for buys and sells. With
    ``training_reward="decision_price"`` a fill is measured against the price at the decision that
    sent it instead of ``p0`` (:class:`rlexec.envs.reward.DecisionPriceReward`).

    ## Episode End
    The window is the regime's, or from ``window_start`` for ``window_minutes`` inside it.
    Terminates at the end of the window after ``ceil(window / decision_interval)`` decisions, the
    last one possibly shorter. A window that opens with the session on an empty book starts at the
    first second with a price; the decision count is that of the window so moved.
    """

    metadata = {"render_modes": []}
    observation_names = OBSERVATION_NAMES  # what each observation entry means, for state binning by name

    def __init__(self, config: dict[str, Any] | LOBExecutionConfig | None = None):
        self.config = config if isinstance(config, LOBExecutionConfig) else LOBExecutionConfig.from_dict(config or {})
        cfg = self.config
        self.interval_ns = int(cfg.decision_interval_s * NS)
        self.broker = cfg.broker.strategy()
        self.shared = cfg.shared
        # In the shared modes every broker sizes at every decision (the observation's buckets), so each
        # needs its own context; VWAP's volume profile is then needed whatever config.broker is.
        self.brokers = {name: cfg.broker.strategy(name) for name in (BROKERS if self.shared else (cfg.broker.name,))}
        self._vwap_profile = cfg.vwap_profile if any(isinstance(b, VWAP) for b in self.brokers.values()) else None
        self.place = PlacementInterpreter()
        self.shared_place = SharedActionInterpreter(cfg.size_multipliers) if cfg.action_space == "shared" else None
        self.observe = LOBObservationInterpreter()
        reward_class = DecisionPriceReward if cfg.training_reward == "decision_price" else ArrivalSlippageReward
        self.reward = reward_class(cfg.unfilled_penalty_bps)
        if self.shared:
            self.observation_names = SHARED_OBSERVATION_NAMES
        self.action_space = (self.shared_place or self.place).space()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(len(self.observation_names),), dtype=np.float32)
        self._replay_day = None
        self._window = None
        if cfg.replay:
            from rlexec.market.lobster import read_lobster

            self._replay_day = read_lobster(cfg.replay)
        elif cfg.window_start is not None or cfg.window_minutes is not None:
            self._window = execution_window(cfg.regime, cfg.window_start, cfg.window_minutes)
        self.venue: Venue | None = None
        self.state: LOBOrderState | None = None
        self.context: OrderContext | None = None
        self.max_child: int | None = None
        self.contexts: dict[str, OrderContext] = {}
        self.broker_children: dict[str, int] = {}  # each broker's child size at the current decision (shared modes)
        self.last_child = 0
        self.last_shared_action: int | None = None  # the shared action id of the last step (shared modes)

    # ---- the current order, for callers (evaluation reads these after an episode) -------------------
    sigma = _order_field("sigma")
    quantity = _order_field("quantity")
    executed = _order_field("executed")
    cash = _order_field("cash")
    arrival_price = _order_field("arrival_price")
    window_start = _order_field("window_start")
    window_end = _order_field("window_end")
    n_decisions = _order_field("n_decisions")
    t = _order_field("t")

    # ---- episode set-up ------------------------------------------------------------------------
    def _new_venue(self) -> tuple[Venue, tuple[int, int]]:
        """A venue positioned at the start of the warm-up, and the execution window."""
        cfg = self.config
        if self._replay_day is not None:
            from rlexec.market.lobster import LobsterReplay

            day = self._replay_day
            length = cfg.replay_window_minutes * 60 * NS
            first = int(day.time_ns[0]) + cfg.warmup_intervals * self.interval_ns
            last = int(day.time_ns[-1]) - length
            if last <= first:
                span = (int(day.time_ns[-1]) - int(day.time_ns[0])) / 60e9
                raise ConfigError(
                    f"replay_window_minutes={cfg.replay_window_minutes} plus {cfg.warmup_intervals} warm-up intervals of "
                    f"{cfg.decision_interval_s:g} s does not fit in the {span:.1f} minutes of replayed data"
                )
            start = int(self.np_random.integers(first, last))
            return LobsterReplay(day), (start, start + length)
        from rlexec.market import MarketSimulator, regime_config

        market_config = regime_config(cfg.regime)
        venue = MarketSimulator(market_config, seed=int(self.np_random.integers(2**63 - 1)))
        return venue, self._window or market_config.window_ns

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        cfg = self.config
        venue, (window_start, window_end) = self._new_venue()
        self.venue = venue
        side = cfg.side if cfg.side != "random" else ("buy", "sell")[int(self.np_random.integers(2))]

        warmup_start = max(window_start - cfg.warmup_intervals * self.interval_ns, 0)
        prices: deque[float] = deque(maxlen=NUM_RETURNS + 1)
        for k in range(cfg.warmup_intervals):
            venue.run_until(warmup_start + k * self.interval_ns)
            self._record_price(prices)
        venue.run_until(window_start)
        # A window that opens with the session may meet an empty book: start it at the first second
        # the market has a price, so that the arrival price is a real one.
        while price_ticks(venue) is None and window_start + NS < window_end:
            window_start += NS
            venue.run_until(window_start)
        if price_ticks(venue) is None:
            raise ConfigError("the market never had a price inside the execution window")
        self._record_price(prices)
        venue.drain_external_fills()  # nothing of this episode's yet; clears any leftovers
        n_decisions = max(1, -(-(window_end - window_start) // self.interval_ns))  # of the window as moved
        quantity = cfg.quantity or self._size_order(window_start, window_end)
        self.state = LOBOrderState(
            quantity=quantity, sigma=1 if side == "sell" else -1, window_start=window_start, window_end=window_end,
            n_decisions=n_decisions, arrival_price=float(price_ticks(venue)) * venue.tick_size,  # reset every episode
            prices=prices,
        )
        self.state.decision_price = self.state.arrival_price
        self.max_child = max(1, int(cfg.max_child_fraction * quantity))
        self.contexts = {name: self._order_context(broker) for name, broker in self.brokers.items()}
        self.context = self.contexts[cfg.broker.name]
        return self._observe(), self._info()

    def _size_order(self, window_start: int, window_end: int) -> int:
        cfg = self.config
        if self._replay_day is not None:
            volume = self.venue.traded_volume_between(window_start, window_end)
        else:
            volume = expected_window_volume(cfg.regime, cfg.calibration_seed, self._window)
        return max(1, int(cfg.volume_fraction * volume))

    def _order_context(self, broker: Broker) -> OrderContext:
        """What ``broker`` knows at the order's start; VWAP's volume profile only for VWAP."""
        cfg, state = self.config, self.state
        profile = None
        if not isinstance(broker, VWAP):
            pass
        elif self._vwap_profile == "calibrated":
            profile = expected_volume_profile(cfg.regime, cfg.calibration_seed, cfg.calibration_days, self.interval_ns,
                                              self._window)
        elif self._vwap_profile == "u_shape":
            profile = u_shaped_volume_profile(state.n_decisions)
        return OrderContext(
            quantity=np.array([state.quantity], dtype=np.float64),
            horizon_minutes=(state.window_end - state.window_start) / 60e9,
            interval_minutes=cfg.decision_interval_s / 60.0,
            volume_profile=None if profile is None else profile[None, :],
        )

    # ---- stepping ------------------------------------------------------------------------------
    def child_shares(self, broker: str | None = None) -> int:
        """The size of the child order ``broker`` (default config.broker) asks for at the current decision."""
        name = broker or self.config.broker.name
        state, venue = self.state, self.venue
        now = venue.now
        return self.brokers[name].child_shares(
            self.contexts[name], executed=state.executed, x_next=(state.t + 1) / state.n_decisions,
            last_interval_volume=venue.traded_volume_between(now - self.interval_ns, now), max_child=self.max_child,
        )

    # ---- the shared action space ------------------------------------------------------------------
    @property
    def pace(self) -> float:
        """Remaining shares / remaining decisions (at least 1; 0 once the order is complete)."""
        state = self.state
        return pace(state.quantity - state.executed, state.n_decisions - state.t)

    def bucket_shares(self, bucket: int) -> int:
        """Child size of size bucket ``bucket`` at the current decision."""
        state = self.state
        return bucket_shares(bucket, self.pace, state.quantity - state.executed, self.max_child,
                             self.config.size_multipliers)

    def broker_bucket(self, broker: str) -> int:
        """The size bucket of ``broker``'s child at the current decision (what the observation shows)."""
        return size_bucket(self.broker_children[broker], self.pace, self.config.size_multipliers)

    def _observe(self) -> np.ndarray:
        obs = self.observe(self.state, self.venue)
        if not self.shared:
            return obs
        self.broker_children = {name: self.child_shares(name) for name in BROKERS}
        buckets = [self.broker_bucket(name) for name in BROKERS]
        return np.concatenate([obs, np.asarray(buckets, dtype=np.float32)])

    def _child_order(self, action: int) -> tuple[int, int]:
        """(placement, shares) of ``action`` in this env's action space; sets last_child / last_shared_action."""
        from rlexec.envs.lob_interpreters import shared_action

        mode = self.config.action_space
        if mode == "placement":
            placement = self.place.check(action)
            return placement, self.child_shares()
        if mode == "shared":
            bucket, placement = decode_shared_action(self.shared_place.check(action))
            self.last_shared_action = int(action)
            return placement, 0 if bucket is None else self.bucket_shares(bucket)
        placement = self.place.check(action)
        bucket = self.broker_bucket(self.config.broker.name)
        self.last_shared_action = shared_action(bucket, placement)
        return placement, self.bucket_shares(bucket)

    def step(self, action):
        state, venue = self.state, self.venue
        if state is None or state.done:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        placement, shares = self._child_order(action)
        self.last_child = shares  # what was sized, placed or held: the trajectory recorder reads it
        price = price_ticks(venue)
        state.decision_price = state.decision_price if price is None else float(price) * venue.tick_size
        self.place(placement, venue, state.agent_side, shares)
        state.t += 1
        venue.run_until(min(state.window_start + state.t * self.interval_ns, state.window_end))
        reward = self._collect_fills()
        self._record_price(state.prices)
        terminated = state.done
        if terminated:
            venue.cancel_all_external()
            reward += self._collect_fills()  # fills that raced the final cancel
            reward -= self.reward.unfilled_penalty(state)
        return self._observe(), float(reward), terminated, False, self._info()

    def _collect_fills(self) -> float:
        """Book the agent's new fills into the order state; their reward."""
        fills = self.venue.drain_external_fills()
        if len(fills) == 0:
            return 0.0
        prices = fills.price_ticks * self.venue.tick_size
        qty = fills.qty.astype(np.float64)
        self.state.executed += int(fills.qty.sum())
        self.state.cash += float((prices * qty).sum())
        return self.reward.fills(self.state, prices, qty)

    def _record_price(self, prices: deque) -> None:
        """Append the venue's current price (dollars); during a warm-up before the market has one, nothing."""
        price = price_ticks(self.venue)
        if price is not None:
            prices.append(float(price) * self.venue.tick_size)

    def _info(self) -> dict[str, Any]:
        state, venue = self.state, self.venue
        vwap = venue.vwap_between(state.window_start, venue.now)
        return {
            "executed": state.executed,
            "fill_rate": state.executed / state.quantity,
            "average_price": state.cash / state.executed if state.executed else 0.0,
            "arrival_price": state.arrival_price,
            "market_vwap": vwap * venue.tick_size if vwap is not None else 0.0,
            "quantity": state.quantity,
            "step": state.t,
        }

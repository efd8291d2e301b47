"""Execution environment over the limit-order-book simulator or a replayed LOBSTER day (spec 1.1).

A venue is anything with the interface of :class:`rlexec.market.simulator.MarketSimulator`:
``run_until``, ``now``, ``tick_size``, ``submit_market``, ``submit_limit``, ``cancel_all_external``,
``drain_external_fills``, ``best_bid_ask``, ``mid``, ``depth``, ``traded_volume_between``,
``vwap_between``. :class:`rlexec.market.lobster.LobsterReplay` is the other one.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from rlexec.configs import config_from_dict
from rlexec.envs.lob_brokers import BROKERS, BrokerRule  # noqa: F401  (BROKERS: re-exported)
from rlexec.errors import ConfigError

NS = 1_000_000_000
MARKET, LIMIT, HOLD = 0, 1, 2
ACTION_NAMES = ("market", "limit at near touch", "hold")
NUM_RETURNS = 9  # spec 1.1: state_history_length L = 10 -> L - 1 mid-price returns
OBSERVATION_NAMES = (
    "holdings_pct", "time_pct", "diff_pct", "imbalance_1", "imbalance_5", "price_move_bps", "spread_bps",
    *(f"mid_return_{k}_bps" for k in range(NUM_RETURNS, 0, -1)),
)


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
    broker: BrokerRule = field(default_factory=BrokerRule)
    calibration_seed: int = 12345  # the simulated day that sets the expected window volume

    def __post_init__(self) -> None:
        checks = {
            "side": self.side in ("buy", "sell", "random"),
            "volume_fraction": 0 < self.volume_fraction <= 1,
            "quantity": self.quantity is None or self.quantity >= 1,
            "decision_interval_s": self.decision_interval_s > 0,
            "max_child_fraction": 0 < self.max_child_fraction <= 1,
            "unfilled_penalty_bps": self.unfilled_penalty_bps >= 0,
            "warmup_intervals": self.warmup_intervals >= 1,
            "replay_window_minutes": self.replay_window_minutes >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"LOBExecutionConfig.{name}: invalid value {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LOBExecutionConfig":
        """Build from a plain dict; ``broker`` may be a name (``"vwap"``) or a mapping of BrokerRule fields."""
        return config_from_dict(
            cls, data, sections={"broker": BrokerRule},
            converters={"broker": lambda b: BrokerRule(name=b) if isinstance(b, str) else b},
        )

    def to_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=32)
def expected_window_volume(regime: str, seed: int) -> int:
    """Market volume traded in the regime's execution window on one calibration day (cached)."""
    from rlexec.market import MarketSimulator, regime_config

    config = regime_config(regime)
    sim = MarketSimulator(config, seed)
    start, end = config.window_ns
    sim.run_until(end)
    return max(1, sim.traded_volume_between(start, end))


class LOBExecutionEnv(gym.Env):
    """Execute one parent order on the LOB: the broker sizes each child order, the agent places it.

    ## Action Space
    ``Discrete(3)``: 0 market order, 1 limit order at the near touch (best bid to buy, best ask to
    sell), 2 hold. Every action first cancels the agent's resting orders. The child size comes from
    the broker rule (``config.broker``).

    ## Observation Space
    ``Box(-inf, inf, (16,), float32)``, names in :data:`OBSERVATION_NAMES`: executed / Q, elapsed
    fraction, their difference, book imbalance ``(bid - ask) / (bid + ask)`` at 1 and 5 levels, the
    log mid move since arrival in bp oriented so that positive is adverse to the trader, the spread
    in bp of the mid, and the last 9 mid-price returns between decisions (bp).

    ## Reward
    Per fill, ``sigma (fill price - p0) / p0 * 1e4 * qty / Q`` (arrival-price slippage in bp, positive
    good; sigma +1 sell, -1 buy), with ``p0`` the mid at the start of *this* episode; at the end,
    ``-unfilled_penalty_bps * |Q - executed| / Q``, the same for buys and sells.

    ## Episode End
    Terminates at the end of the window (``window / decision_interval`` decisions).
    """

    metadata = {"render_modes": []}
    observation_names = OBSERVATION_NAMES  # what each observation entry means, for state binning by name

    def __init__(self, config: dict[str, Any] | LOBExecutionConfig | None = None):
        self.config = config if isinstance(config, LOBExecutionConfig) else LOBExecutionConfig.from_dict(config or {})
        self.action_space = gym.spaces.Discrete(3)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(len(OBSERVATION_NAMES),), dtype=np.float32)
        self.interval_ns = int(self.config.decision_interval_s * NS)
        self._replay_day = None
        if self.config.replay:
            from rlexec.market.lobster import read_lobster

            self._replay_day = read_lobster(self.config.replay)
        self.venue = None

    # ---- episode set-up ------------------------------------------------------------------------
    def _new_venue(self):
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
        return venue, market_config.window_ns

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        cfg = self.config
        self.venue, (self.window_start, self.window_end) = self._new_venue()
        self.n_decisions = max(1, int(np.ceil((self.window_end - self.window_start) / self.interval_ns)))
        side = cfg.side if cfg.side != "random" else ("buy", "sell")[int(self.np_random.integers(2))]
        self.sigma = 1 if side == "sell" else -1
        self.agent_side = -self.sigma  # venue convention: BUY = +1
        self.quantity = cfg.quantity or self._size_order()
        self.max_child = max(1, int(cfg.max_child_fraction * self.quantity))

        warmup_start = max(self.window_start - cfg.warmup_intervals * self.interval_ns, 0)
        self.mids: deque[float] = deque(maxlen=NUM_RETURNS + 1)
        for k in range(cfg.warmup_intervals):
            self.venue.run_until(warmup_start + k * self.interval_ns)
            self._record_mid()
        self.venue.run_until(self.window_start)
        # A window that opens with the session may meet an empty book: start it at the first second
        # the market has a price, so that the arrival price is a real one.
        while self._price_ticks() is None and self.window_start + NS < self.window_end:
            self.window_start += NS
            self.venue.run_until(self.window_start)
        if self._price_ticks() is None:
            raise ConfigError("the market never had a price inside the execution window")
        self._record_mid()
        self.venue.drain_external_fills()  # nothing of this episode's yet; clears any leftovers
        self.arrival_price = self._mid_dollars()  # reset every episode (ABIDES never resets it)
        self.t = 0
        self.executed = 0
        self.cash = 0.0
        return self._observe(), self._info()

    def _size_order(self) -> int:
        cfg = self.config
        if self._replay_day is not None:
            volume = self.venue.traded_volume_between(self.window_start, self.window_end)
        else:
            volume = expected_window_volume(cfg.regime, cfg.calibration_seed)
        return max(1, int(cfg.volume_fraction * volume))

    # ---- stepping ------------------------------------------------------------------------------
    def step(self, action):
        if self.venue is None or self.t >= self.n_decisions:
            raise RuntimeError("step() called on a finished episode; call reset() first")
        action = int(action)
        if not 0 <= action < 3:
            raise ValueError(f"action must be 0 (market), 1 (limit) or 2 (hold), got {action}")
        venue = self.venue
        venue.cancel_all_external()
        decision_time = venue.now
        child = self.config.broker.child_size(
            quantity=self.quantity, executed=self.executed, x_next=(self.t + 1) / self.n_decisions,
            last_interval_volume=venue.traded_volume_between(decision_time - self.interval_ns, decision_time),
            max_child=self.max_child,
        )
        if child > 0 and action == MARKET:
            venue.submit_market(self.agent_side, child)
        elif child > 0 and action == LIMIT:
            bid, ask = venue.best_bid_ask()
            near_touch = bid if self.agent_side == 1 else ask
            if near_touch is not None:
                venue.submit_limit(self.agent_side, near_touch, child)
        self.t += 1
        venue.run_until(min(self.window_start + self.t * self.interval_ns, self.window_end))
        reward = self._collect_fills()
        self._record_mid()
        terminated = self.t >= self.n_decisions
        if terminated:
            venue.cancel_all_external()
            reward += self._collect_fills()  # fills that raced the final cancel
            reward -= self.config.unfilled_penalty_bps * abs(self.quantity - self.executed) / self.quantity
        return self._observe(), float(reward), terminated, False, self._info()

    def _collect_fills(self) -> float:
        fills = self.venue.drain_external_fills()
        if len(fills) == 0:
            return 0.0
        prices = fills.price_ticks * self.venue.tick_size
        qty = fills.qty.astype(np.float64)
        self.executed += int(fills.qty.sum())
        self.cash += float((prices * qty).sum())
        p0 = self.arrival_price
        return float((self.sigma * (prices - p0) / p0 * 1e4 * qty).sum() / self.quantity)

    # ---- observation ---------------------------------------------------------------------------
    def _price_ticks(self) -> float | None:
        """The mid, or the last trade when one side of the book is empty; None before any price."""
        mid = self.venue.mid()
        return mid if mid is not None else self.venue.last_trade_price()

    def _mid_dollars(self) -> float:
        return float(self._price_ticks()) * self.venue.tick_size

    def _record_mid(self) -> None:
        """Append the current price; during a warm-up before the market has one, repeat the first."""
        price = self._price_ticks()
        if price is not None:
            self.mids.append(float(price) * self.venue.tick_size)

    def _observe(self) -> np.ndarray:
        depth = self.venue.depth(5)
        bids, asks = depth.bid_sizes.astype(np.float64), depth.ask_sizes.astype(np.float64)

        def imbalance(b: float, a: float) -> float:
            return (b - a) / (b + a) if b + a > 0 else 0.0

        mid = self.mids[-1] if self.mids else self.arrival_price
        bid, ask = self.venue.best_bid_ask()
        spread_bps = (ask - bid) * self.venue.tick_size / mid * 1e4 if bid is not None and ask is not None and mid else 0.0
        mids = np.asarray(self.mids)
        returns = np.zeros(NUM_RETURNS)
        if mids.size > 1:
            r = np.diff(mids) / mids[:-1] * 1e4
            returns[NUM_RETURNS - r.size :] = r
        holdings = self.executed / self.quantity
        elapsed = self.t / self.n_decisions
        move = -self.sigma * np.log(mid / self.arrival_price) * 1e4 if mid > 0 else 0.0
        obs = np.array(
            [holdings, elapsed, holdings - elapsed, imbalance(bids[0], asks[0]), imbalance(bids.sum(), asks.sum()),
             move, spread_bps, *returns],
            dtype=np.float32,
        )
        return obs

    def _info(self) -> dict[str, Any]:
        vwap = self.venue.vwap_between(self.window_start, self.venue.now)
        return {
            "executed": self.executed,
            "fill_rate": self.executed / self.quantity,
            "average_price": self.cash / self.executed if self.executed else 0.0,
            "arrival_price": self.arrival_price,
            "market_vwap": vwap * self.venue.tick_size if vwap is not None else 0.0,
            "quantity": self.quantity,
            "step": self.t,
        }

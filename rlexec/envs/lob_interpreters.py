"""The LOB env's interpreters: its order state, the observation (state interpreter) and the placement
(action interpreter), the counterparts of :mod:`rlexec.envs.interpreters` for the bar env.

Observation (float32, :data:`OBSERVATION_NAMES`, spec 1.1's state without ``direction``)::

    [0] executed / Q     [1] elapsed fraction t / n_decisions     [2] [0] - [1]
    [3] imbalance (bid - ask) / (bid + ask) at the best level     [4] the same over 5 levels
    [5] log move of the price since arrival, bp, positive = adverse to the trader
    [6] spread in bp of the price     [7:16] the last 9 price returns between decisions, bp, oldest first

"Price" is the venue's mid, or its last trade while one side of the book is empty
(:func:`rlexec.envs.venue.price_ticks`).

The shared action space of the broker experts (issue 9, ``LOBExecutionConfig.action_space = "shared"``):
``0`` hold, ``1 + 2 b`` a market order and ``2 + 2 b`` a limit order at the near touch of
``round(SIZE_MULTIPLIERS[b] * pace)`` shares, ``pace`` = remaining shares / remaining decisions (at
least 1). Every expert is then a distribution over the same ``1 + 2 S`` actions, so any trajectory
has a likelihood under every expert. The shared observation appends, per broker, the bucket of the
child size that broker would send now (:func:`size_bucket`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from rlexec.envs.venue import Venue
from rlexec.market.book import BUY

MARKET, LIMIT, HOLD = 0, 1, 2
ACTION_NAMES = ("market", "limit at near touch", "hold")
PLACEMENTS = (MARKET, LIMIT, HOLD)  # the placement of a shared action; index = the placement id above
# rlexec default (issue 9 contract): child sizes as multiples of the pace, a factor 2 apart so that
# the four brokers' sizes (TWAP ~1x, POV ~2x, IS front-loaded, VWAP on the smile) fall in distinct buckets.
SIZE_MULTIPLIERS = (0.25, 0.5, 1.0, 2.0, 4.0)
NUM_RETURNS = 9  # spec 1.1: state_history_length L = 10 -> L - 1 mid-price returns
OBSERVATION_NAMES = (
    "holdings_pct", "time_pct", "diff_pct", "imbalance_1", "imbalance_5", "price_move_bps", "spread_bps",
    *(f"mid_return_{k}_bps" for k in range(NUM_RETURNS, 0, -1)),
)


@dataclass(kw_only=True)
class LOBOrderState:
    """The parent order on the LOB at a decision time: what the interpreters and the reward read.

    The env changes it only in ``reset`` and ``step``.
    """

    quantity: int  # Q, shares
    sigma: int  # +1 sell, -1 buy (spec 0)
    window_start: int  # ns since midnight; moved past an empty book at the session open
    window_end: int
    n_decisions: int
    arrival_price: float  # dollars: the price at the window start of *this* episode
    prices: deque  # the price (dollars) at the last NUM_RETURNS + 1 decision times, oldest first
    t: int = 0  # decisions taken
    executed: int = 0  # shares filled
    cash: float = 0.0  # sum of fill price (dollars) x shares
    decision_price: float = 0.0  # dollars: the price at the last decision (the decision_price reward's reference)

    @property
    def agent_side(self) -> int:
        """The venue's side convention: BUY = +1."""
        return -self.sigma

    @property
    def done(self) -> bool:
        return self.t >= self.n_decisions


class LOBObservationInterpreter:
    """(order state, venue) -> the 16 features of :data:`OBSERVATION_NAMES`; a function of both, nothing else."""

    names = OBSERVATION_NAMES

    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-np.inf, np.inf, shape=(len(OBSERVATION_NAMES),), dtype=np.float32)

    def __call__(self, state: LOBOrderState, venue: Venue) -> np.ndarray:
        depth = venue.depth(5)
        bids, asks = depth.bid_sizes.astype(np.float64), depth.ask_sizes.astype(np.float64)
        price = state.prices[-1] if state.prices else state.arrival_price
        bid, ask = venue.best_bid_ask()
        spread_bps = (ask - bid) * venue.tick_size / price * 1e4 if bid is not None and ask is not None and price else 0.0
        prices = np.asarray(state.prices)
        returns = np.zeros(NUM_RETURNS)
        if prices.size > 1:
            r = np.diff(prices) / prices[:-1] * 1e4
            returns[NUM_RETURNS - r.size :] = r
        holdings = state.executed / state.quantity
        elapsed = state.t / state.n_decisions
        move = -state.sigma * np.log(price / state.arrival_price) * 1e4 if price > 0 else 0.0
        return np.array(
            [holdings, elapsed, holdings - elapsed, _imbalance(bids[0], asks[0]), _imbalance(bids.sum(), asks.sum()),
             move, spread_bps, *returns],
            dtype=np.float32,
        )


def _imbalance(bid_size: float, ask_size: float) -> float:
    return (bid_size - ask_size) / (bid_size + ask_size) if bid_size + ask_size > 0 else 0.0


class PlacementInterpreter:
    """Action -> venue orders (spec 1.1): 0 a market order, 1 a limit order at the near touch (best bid
    to buy, best ask to sell), 2 hold. Every action first cancels the agent's resting orders; the
    child size comes from the broker. A limit order meets no near touch on an empty side: it is not sent.
    """

    names = ACTION_NAMES

    def space(self) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(len(ACTION_NAMES))

    @staticmethod
    def check(action) -> int:
        action = int(action)
        if not 0 <= action < len(ACTION_NAMES):
            raise ValueError(f"action must be 0 (market), 1 (limit) or 2 (hold), got {action}")
        return action

    def __call__(self, action: int, venue: Venue, side: int, shares: int) -> None:
        venue.cancel_all_external()
        if shares <= 0 or action == HOLD:
            return
        if action == MARKET:
            venue.submit_market(side, shares)
            return
        bid, ask = venue.best_bid_ask()
        near_touch = bid if side == BUY else ask
        if near_touch is not None:
            venue.submit_limit(side, near_touch, shares)


# ---- the shared action space ----------------------------------------------------------------------
def num_shared_actions(num_buckets: int = len(SIZE_MULTIPLIERS)) -> int:
    """``1 + 2 S``: hold, then (market, limit) per size bucket."""
    return 1 + 2 * num_buckets


def shared_action(bucket: int | None, placement: int) -> int:
    """The shared action id of ``placement`` (MARKET, LIMIT or HOLD) at size ``bucket`` (ignored for HOLD)."""
    if placement == HOLD:
        return 0
    if placement not in (MARKET, LIMIT) or bucket is None or bucket < 0:
        raise ValueError(f"shared_action: placement must be MARKET or LIMIT with a bucket >= 0, got {placement}, {bucket}")
    return 1 + 2 * int(bucket) + int(placement)


def decode_shared_action(action: int) -> tuple[int | None, int]:
    """``(bucket, placement)`` of a shared action id; ``(None, HOLD)`` for 0."""
    action = int(action)
    if action < 0:
        raise ValueError(f"shared action ids are >= 0, got {action}")
    if action == 0:
        return None, HOLD
    bucket, placement = divmod(action - 1, 2)
    return bucket, placement


def shared_action_names(multipliers=SIZE_MULTIPLIERS) -> tuple[str, ...]:
    names = ["hold"]
    for m in multipliers:
        names += [f"market {m:g}x pace", f"limit {m:g}x pace"]
    return tuple(names)


def pace(remaining_shares: int, remaining_decisions: int) -> float:
    """TWAP of what remains: remaining shares / remaining decisions, at least 1 share (0 once nothing remains)."""
    if remaining_shares <= 0:
        return 0.0
    return max(1.0, remaining_shares / max(1, remaining_decisions))


def size_bucket(shares: float, pace_shares: float, multipliers=SIZE_MULTIPLIERS) -> int:
    """The bucket whose multiplier is nearest to ``shares / pace`` in log space (0 for no shares)."""
    if shares <= 0 or pace_shares <= 0:
        return 0
    logs = np.log(np.asarray(multipliers, dtype=np.float64))
    return int(np.argmin(np.abs(logs - np.log(shares / pace_shares))))


def bucket_shares(bucket: int, pace_shares: float, remaining_shares: int, max_child: int,
                  multipliers=SIZE_MULTIPLIERS) -> int:
    """Child size of ``bucket``: ``round(multiplier * pace)``, at least 1, at most what remains and ``max_child``."""
    if remaining_shares <= 0:
        return 0
    wanted = max(1, int(round(multipliers[bucket] * pace_shares)))
    return int(min(wanted, remaining_shares, max_child))


class SharedActionInterpreter:
    """Shared action id -> (child size, placement) -> venue orders, through :class:`PlacementInterpreter`."""

    def __init__(self, multipliers=SIZE_MULTIPLIERS):
        self.multipliers = tuple(float(m) for m in multipliers)
        self.names = shared_action_names(self.multipliers)
        self.placement = PlacementInterpreter()

    def space(self) -> gym.spaces.Discrete:
        return gym.spaces.Discrete(num_shared_actions(len(self.multipliers)))

    def check(self, action) -> int:
        action = int(action)
        if not 0 <= action < len(self.names):
            raise ValueError(f"shared action must be in 0..{len(self.names) - 1} (0 hold, 1 + 2b market, "
                             f"2 + 2b limit of size bucket b), got {action}")
        return action

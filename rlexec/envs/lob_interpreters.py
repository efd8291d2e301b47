"""The LOB env's interpreters: its order state, the observation (state interpreter) and the placement
(action interpreter), the counterparts of :mod:`rlexec.envs.interpreters` for the bar env.

Observation (float32, :data:`OBSERVATION_NAMES`, spec 1.1's state without ``direction``)::

    [0] executed / Q     [1] elapsed fraction t / n_decisions     [2] [0] - [1]
    [3] imbalance (bid - ask) / (bid + ask) at the best level     [4] the same over 5 levels
    [5] log move of the price since arrival, bp, positive = adverse to the trader
    [6] spread in bp of the price     [7:16] the last 9 price returns between decisions, bp, oldest first

"Price" is the venue's mid, or its last trade while one side of the book is empty
(:func:`rlexec.envs.venue.price_ticks`).
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

"""Rewards: functions of one step's outcome, kept apart from the simulators so they can be swapped."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rlexec.envs.config import RewardConfig
from rlexec.envs.engine import StepOutcome

if TYPE_CHECKING:
    from rlexec.envs.lob_interpreters import LOBOrderState


class PriceAdvantagePenaltyReward:
    """Bar env: ``scale * (PA_t - alpha * concentration_t)`` (spec 2.1; see :class:`RewardConfig`)."""

    def __init__(self, config: RewardConfig):
        self.config = config

    def __call__(self, outcome: StepOutcome, quantity: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.basis == "minute":
            concentration = outcome.minute_concentration
        else:
            concentration = (outcome.quantity / quantity) ** 2
        return cfg.scale * (outcome.pa_bps - cfg.alpha * concentration)


class ArrivalSlippageReward:
    """LOB env, in bp (spec 1.1's dense reward, per share of Q).

    Per fill ``sigma (fill price - p0) / p0 * 1e4 * qty / Q``: arrival-price slippage, positive good
    (sigma +1 sell, -1 buy), ``p0`` the price at the start of *this* episode. At the end
    ``-unfilled_penalty_bps * |Q - executed| / Q``, the same for buys and sells (default 50, spec 1.4's
    lambda_F; ``LOBExecutionConfig.unfilled_penalty_bps``).
    """

    def __init__(self, unfilled_penalty_bps: float):
        self.unfilled_penalty_bps = unfilled_penalty_bps

    def fills(self, state: LOBOrderState, prices: np.ndarray, qty: np.ndarray) -> float:
        """Reward of fills at ``prices`` (dollars) for ``qty`` shares."""
        p0 = state.arrival_price
        return float((state.sigma * (prices - p0) / p0 * 1e4 * qty).sum() / state.quantity)

    def unfilled_penalty(self, state: LOBOrderState) -> float:
        """What the end of the episode costs (subtracted from the last step's reward)."""
        return self.unfilled_penalty_bps * abs(state.quantity - state.executed) / state.quantity


class DecisionPriceReward(ArrivalSlippageReward):
    """LOB env, training only (``LOBExecutionConfig.training_reward = "decision_price"``), in bp.

    Per fill ``sigma (fill price - p_d) / p0 * 1e4 * qty / Q`` with ``p_d`` the price at the decision
    that sent the order (every decision cancels the previous orders, so each fill has one). The
    market's drift between the arrival and the decision, ~20 bp of noise against a ~1.5 bp
    placement edge (issue 9), is left out; what a placement earns or pays against the price it
    met is kept. The terminal unfilled penalty is the arrival reward's. Evaluation still reports
    arrival slippage (recomputed from the fills).
    """

    def fills(self, state: LOBOrderState, prices: np.ndarray, qty: np.ndarray) -> float:
        return float((state.sigma * (prices - state.decision_price) / state.arrival_price * 1e4 * qty).sum()
                     / state.quantity)

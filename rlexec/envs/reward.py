"""Rewards: functions of one step's outcome, kept apart from the simulator so they can be swapped."""

from __future__ import annotations

import numpy as np

from rlexec.envs.config import RewardConfig
from rlexec.envs.engine import StepOutcome


class PriceAdvantagePenaltyReward:
    """``scale * (PA_t - alpha * concentration_t)`` (spec 2.1; see :class:`RewardConfig`)."""

    def __init__(self, config: RewardConfig):
        self.config = config

    def __call__(self, outcome: StepOutcome, quantity: np.ndarray) -> np.ndarray:
        cfg = self.config
        if cfg.basis == "minute":
            concentration = outcome.minute_concentration
        else:
            concentration = (outcome.quantity / quantity) ** 2
        return cfg.scale * (outcome.pa_bps - cfg.alpha * concentration)

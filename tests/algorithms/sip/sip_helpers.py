"""Hand-built experts over the shared LOB action space (the contract's ExpertPolicy interface, numpy in and out)."""

from __future__ import annotations

import numpy as np


class TableExpert:
    """pi(a | s) = table[int(s[0])]: a fixed distribution per state index in the first observation column."""

    def __init__(self, table, name: str = "expert"):
        self.table = np.asarray(table, dtype=np.float64)
        self.table /= self.table.sum(axis=-1, keepdims=True)
        self.name = name

    def probabilities(self, observations):
        return self.table[np.asarray(observations)[:, 0].astype(int)]

    def log_probs(self, observations, actions):
        probs = self.probabilities(observations)
        return np.log(probs[np.arange(len(probs)), np.asarray(actions, dtype=np.int64)])

    def greedy(self, observations):
        return self.probabilities(observations).argmax(axis=1)


def one_hot_ish(action: int, num_actions: int = 11, mass: float = 0.9) -> np.ndarray:
    """``mass`` on ``action``, the rest spread evenly: every action keeps positive probability."""
    row = np.full(num_actions, (1.0 - mass) / (num_actions - 1))
    row[action] = mass
    return row

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


class OneStepEpisodes:
    """Episodes of one decision each (sell 100 shares, arrival price 100): the shared action sets the fill.

    ``advantage_bps[a]`` is what action ``a`` earns against arrival, plus seeded per-episode noise common
    to every policy (the market of seed s); ``fill[a]`` is its fill rate. Hold fills nothing.
    """

    observation_names = ("holdings_pct", "time_pct", "diff_pct", "imbalance_1", "imbalance_5", "price_move_bps",
                         "spread_bps", *(f"mid_return_{k}_bps" for k in range(9, 0, -1)))

    def __init__(self, advantage_bps, fill, *, episodes: int, seed: int, noise_bps: float = 1.0):
        self.advantage, self.fill = np.asarray(advantage_bps, float), np.asarray(fill, float)
        self.seeds = np.arange(seed, seed + episodes)
        self.noise = np.array([np.random.default_rng(s).normal(0, noise_bps) for s in self.seeds])
        self._done = False

    @property
    def done(self):
        return self._done

    state = None

    def reset(self):
        self._done = False
        obs = np.zeros((len(self.seeds), len(self.observation_names)))
        obs[:, 6] = 1.0 + (self.seeds % 3)  # spread_bps
        obs[:, 3] = np.sin(self.seeds)  # imbalance_1
        return obs

    def step(self, actions):
        from rlexec.evaluation.episodes import StepRecord

        actions = np.asarray(actions, dtype=np.int64)
        n = len(self.seeds)
        filled = 100.0 * self.fill[actions]
        price = 100.0 * (1.0 + (self.advantage[actions] + self.noise) / 1e4)  # a sell (sigma = +1): higher is better
        self._filled, self._cash = filled, filled * price
        self._done = True
        record = StepRecord(np.ones(n, bool), np.full(n, 100.0), filled, self._cash, np.zeros(n), filled / 100.0)
        return np.zeros((n, len(self.observation_names))), record

    def outcomes(self):
        from rlexec.evaluation.metrics import OrderOutcomes

        n = len(self.seeds)
        return OrderOutcomes(sigma=np.ones(n), quantity=np.full(n, 100.0), executed=self._filled, cash=self._cash,
                             reference_price=np.full(n, 100.0), twap_price=np.full(n, 100.0),
                             market_vwap=np.full(n, 100.0), reward=np.zeros(n))

    def identity(self):
        import pyarrow as pa

        n = len(self.seeds)
        return pa.table({"episode": np.arange(n), "seed": self.seeds, "side": ["sell"] * n,
                         "quantity": np.full(n, 100.0), "window_start_s": np.full(n, 12 * 3600.0)})

    def curve_minutes(self, steps):
        return np.arange(1, steps + 1, dtype=float)

    def fill_curve(self, records):
        return np.stack([r.fill_rate for r in records], axis=1)

    def decision_minutes(self, steps):
        return np.arange(steps, dtype=float)

"""Latency between an agent's decision and its message reaching the exchange.

The event loop is compiled, so a latency model describes itself as numbers the loop can use:
a fixed delay per agent plus a per-message exponential jitter. Messages from one agent always
arrive in the order they were sent (one connection per agent), whatever the jitter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rlexec.market.config import LatencyConfig


class LatencyModel(Protocol):
    """What the event loop needs to delay messages."""

    def agent_delays_ns(self, n_agents: int, rng: np.random.Generator) -> np.ndarray:
        """Fixed delay of each agent, int64 ns."""

    @property
    def jitter_mean_ns(self) -> float:
        """Mean of the exponential jitter added to every message, ns (0 = none)."""


@dataclass(frozen=True)
class ConstantPlusJitterLatency:
    """Each agent sits at a fixed distance ``U[0.5, 1.5] x base_ns``; each message adds jitter."""

    base_ns: int
    jitter_mean_ns: float

    @classmethod
    def from_config(cls, config: LatencyConfig) -> ConstantPlusJitterLatency:
        return cls(base_ns=config.base_ns, jitter_mean_ns=config.jitter_mean_ns)

    def agent_delays_ns(self, n_agents: int, rng: np.random.Generator) -> np.ndarray:
        return np.round(self.base_ns * rng.uniform(0.5, 1.5, n_agents)).astype(np.int64)

"""The strategy interface and the registry that maps names to strategies."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from rlexec.envs.engine import ExecState
from rlexec.errors import ConfigError


@runtime_checkable
class Strategy(Protocol):
    """A policy over parent orders: fractions of Q to trade in the next interval, one per order."""

    name: str

    def fractions(self, state: ExecState) -> np.ndarray: ...


class CumulativeSchedule:
    """A strategy given by a target cumulative fill fraction at the end of each interval.

    Each step trades what brings the order back onto its schedule: ``target(t + 1) - fill_rate``,
    so shares the volume cap left unfilled earlier are caught up on later.
    """

    name = "schedule"

    def target(self, state: ExecState) -> np.ndarray:
        """(N,) cumulative fraction of Q that should be filled by the end of interval ``state.t``."""
        raise NotImplementedError

    def fractions(self, state: ExecState) -> np.ndarray:
        return np.maximum(self.target(state) - state.fill_rate, 0.0)


SCHEDULE_STRATEGIES: dict[str, type] = {}


def register(name: str):
    def decorate(cls):
        cls.name = name
        SCHEDULE_STRATEGIES[name] = cls
        return cls

    return decorate


def strategy_names() -> list[str]:
    return list(SCHEDULE_STRATEGIES)


def make_strategy(name: str, **params) -> Strategy:
    """Build a strategy by name (``twap``, ``vwap``, ``is``, ``pov``) with its keyword parameters."""
    try:
        cls = SCHEDULE_STRATEGIES[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown strategy {name!r}; choose from {strategy_names()}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise ConfigError(f"strategy {name!r}: {exc}") from None

"""Broker strategies: TWAP, VWAP, Implementation Shortfall (Almgren-Chriss) and POV.

Every strategy answers one question through :meth:`Strategy.fractions`: given the state of N
orders at a decision time, which fraction of each order's Q to trade in the next interval. They
read only :class:`~rlexec.envs.engine.ExecState` accessors, which expose past bars only, so the
same object drives the batch engine in evaluation and the gymnasium env (``continuous=True``:
pass ``strategy.fractions(env.state)`` as the action).
"""

from rlexec.strategies.base import SCHEDULE_STRATEGIES, Strategy, make_strategy, strategy_names
from rlexec.strategies.schedules import (
    ImplementationShortfall,
    PercentOfVolume,
    TWAP,
    VWAP,
    almgren_chriss_holdings,
    almgren_chriss_kappa,
)

__all__ = [
    "ImplementationShortfall", "PercentOfVolume", "SCHEDULE_STRATEGIES", "Strategy", "TWAP", "VWAP",
    "almgren_chriss_holdings", "almgren_chriss_kappa", "make_strategy", "strategy_names",
]

"""Broker strategies: TWAP, VWAP, Implementation Shortfall and POV, defined once for both envs.

Every broker answers the bar engine through :meth:`Broker.fractions` (given the state of N orders
at a decision time, which fraction of each order's Q to trade in the next interval; it reads only
state accessors that expose past bars) and the LOB env through :meth:`Broker.child_shares` (the
size of the next child order). The same object drives the batch engine in evaluation and the
gymnasium bar env (``continuous=True``: pass ``strategy.fractions(env.state)`` as the action).
"""

from rlexec.strategies.base import (
    SCHEDULE_STRATEGIES,
    Broker,
    CumulativeSchedule,
    OrderContext,
    Strategy,
    make_strategy,
    strategy_names,
)
from rlexec.strategies.schedules import (
    IS_SHAPES,
    TWAP,
    VWAP,
    ImplementationShortfall,
    PercentOfVolume,
    almgren_chriss_holdings,
    almgren_chriss_kappa,
    cumulative_share,
    u_shaped_volume_profile,
)

__all__ = [
    "IS_SHAPES",
    "SCHEDULE_STRATEGIES",
    "TWAP",
    "VWAP",
    "Broker",
    "CumulativeSchedule",
    "ImplementationShortfall",
    "OrderContext",
    "PercentOfVolume",
    "Strategy",
    "almgren_chriss_holdings",
    "almgren_chriss_kappa",
    "cumulative_share",
    "make_strategy",
    "strategy_names",
    "u_shaped_volume_profile",
]

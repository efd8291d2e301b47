"""A fast multi-agent limit-order-book market simulator (the class of ABIDES, compiled with numba).

What it models
--------------
* One exchange: a price-time-priority limit order book in integer ticks and whole shares with
  limit, market (and price-protected immediate-or-cancel), cancel, cancel-all and modify orders
  (a size-down keeps time priority, any other change loses it), partial fills and a trade tape.
* An event-driven kernel: per-agent wake-ups and a latency model (per-agent constant plus
  exponential jitter; each agent's messages arrive in the order sent).
* An exogenous fundamental value (mean-reverting Ornstein-Uhlenbeck in ticks with stochastic
  volatility, Poisson megashocks, optional drift and a volatility ramp) and a background
  population: adaptive
  market makers, value agents, momentum agents, noise agents with a U-shaped arrival profile and
  volatility-chasing agents (:mod:`rlexec.market.agents`).
* One external agent driven by the caller (the execution environment) through the same
  latency model (:class:`MarketSimulator`).
* Regime presets (:func:`regime_config`, :data:`REGIMES`) and whole-day summaries
  (:func:`simulate_day`, :func:`write_simulation`).

Everything random comes from the seed given to :class:`MarketSimulator` / :func:`simulate_day`:
the same seed gives the same event stream bit for bit.

What it does NOT model
----------------------
Opening/closing auctions and trading halts; hidden, iceberg, pegged, stop and other conditional
order types (apart from the collar on background market orders); multiple venues, routing and
a consolidated tape; fees, rebates and tick-size regimes that vary with price; short-selling or
position/credit limits (agents' inventories are tracked but unconstrained, except market-maker
skew); the information content of news beyond the fundamental's jumps; cross-asset effects; the
exchange's own processing time (messages are applied instantly on arrival); overnight dynamics
(every session starts from an empty book at the fundamental's long-run mean).

Public API (for rlexec.envs)
----------------------------
``MarketSimulator(config, seed)`` with ``run_until(t_ns)``, ``now``, ``external_agent_id``,
``submit_limit(side, price_ticks, qty) -> order_id``, ``submit_market(side, qty)``,
``cancel(order_id)``, ``modify(order_id, price_ticks, qty)``, ``cancel_all_external()``,
``drain_external_fills() -> Fills``, ``order_remaining(order_id)``, ``external_position``,
``best_bid_ask()``, ``depth(k) -> BookDepth``, ``mid()``, ``last_trade_price()``,
``traded_volume_between(t0, t1)``, ``vwap_between(t0, t1)``, ``tape()``, ``tape_arrays()``,
``fundamental_at(t_ns)`` and ``tick_size`` (dollars per tick). Sides are ``BUY`` = +1 and
``SELL`` = -1; times are ns since midnight; ``config.window_ns`` is the execution window.
"""

from rlexec.market.book import BUY, SELL, BookIntegrityError, OrderBook
from rlexec.market.config import (FundamentalConfig, LatencyConfig, MarketConfig, MarketMakerConfig,
                                  MomentumAgentConfig, NoiseAgentConfig, SessionConfig, ValueAgentConfig,
                                  VolatilityAgentConfig, clock_ns)
from rlexec.market.jit_cache import drop_stale_cache
from rlexec.market.latency import ConstantPlusJitterLatency, LatencyModel
from rlexec.market.regimes import REGIMES, regime_config
from rlexec.market.report import write_simulation
from rlexec.market.simulate import SimulationResult, simulate_day
from rlexec.market.simulator import BookDepth, Fills, MarketSimulator

# numba loads cached machine code at a function's first call, so this still runs in time.
drop_stale_cache()

__all__ = [
    "BUY", "SELL", "BookDepth", "BookIntegrityError", "ConstantPlusJitterLatency", "Fills", "FundamentalConfig",
    "LatencyConfig", "LatencyModel", "MarketConfig", "MarketMakerConfig", "MarketSimulator", "MomentumAgentConfig",
    "NoiseAgentConfig", "OrderBook", "REGIMES", "SessionConfig", "SimulationResult", "ValueAgentConfig",
    "VolatilityAgentConfig", "clock_ns", "regime_config", "simulate_day", "write_simulation",
]

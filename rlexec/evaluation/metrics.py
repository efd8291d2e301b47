"""Execution metrics (spec 0, 1.2 and 2.4): a new metric is one decorated function.

Sign convention: sigma = +1 sell, -1 buy; every ``*_advantage*`` and ``profit`` is positive when good
for the trader, every ``cost``/``slippage`` positive when bad.

Per order (:func:`order_metric`; each takes the :class:`OrderOutcomes` of N orders, returns (N,)):

=========================  =====  =================================================================
name                       unit   definition
=========================  =====  =================================================================
fill_rate                  1      executed / Q
average_price              USD    P̄ = sum q p / sum q
price_advantage_bps        bp     PA = sigma (P̄ / p_twap - 1) 1e4; p_twap the horizon's mean minute price
arrival_advantage_bps      bp     sigma (P̄ / p_0 - 1) 1e4, p_0 the arrival price
implementation_shortfall   bp     -arrival_advantage_bps (Perold IS on the filled part)
slippage_vwap_bps          bp     -sigma (P̄ / VWAP_window - 1) 1e4 against the window's market VWAP
profit_usd                 USD    sigma sum_j q_j (p_j - p_0) = sigma (cash - executed p_0)
execution_cost_usd         USD    -profit_usd
reward                     env    the environment's episode return: bar env scale × bp (scale 0.01 by
                                  default: 1 = 100 bp), LOB env bp; :mod:`rlexec.evaluation.tables` names it
=========================  =====  =================================================================

Orders with no fill have no price: their price metrics are NaN and are left out of every mean and
of GLR and POS alike (the ``n`` of each figure says how many orders it covers).

Across orders (:func:`across_orders`; each takes the per-order metrics, returns one number):
GLR = E[PA | PA > 0] / E[-PA | PA < 0] and POS = share of priced orders with PA > 0 (spec 2.4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from rlexec.evaluation.stats import MeanSE, mean_se


@dataclass(frozen=True)
class OrderOutcomes:
    """What N executed orders came to: arrays of shape (N,), prices in USD."""

    sigma: np.ndarray
    quantity: np.ndarray
    executed: np.ndarray
    cash: np.ndarray
    reference_price: np.ndarray  # p_0, the arrival price
    twap_price: np.ndarray  # the horizon's average market price
    market_vwap: np.ndarray  # the window's market VWAP
    reward: np.ndarray  # the environment's episode return

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, np.asarray(getattr(self, f.name), dtype=np.float64))

    @property
    def average_price(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.executed > 0, self.cash / self.executed, np.nan)


@dataclass(frozen=True)
class OrderMetric:
    name: str
    unit: str
    compute: Callable[[OrderOutcomes], np.ndarray]
    header: str  # table column title
    digits: int = 2  # table precision
    in_table: bool = True  # shown in the printed results table (every metric is in the files)
    legend: str = ""  # one clause of the table's legend: what the column means, its unit and sign


@dataclass(frozen=True)
class AcrossOrders:
    name: str
    compute: Callable[[dict[str, np.ndarray]], float]
    header: str
    legend: str = ""


ORDER_METRICS: dict[str, OrderMetric] = {}
ACROSS_ORDERS: dict[str, AcrossOrders] = {}


def order_metric(name: str, unit: str, header: str | None = None, *, digits: int = 2, in_table: bool = True,
                 legend: str = ""):
    """Register ``f(outcomes) -> (N,) array`` as the per-order metric ``name``."""
    def register(compute: Callable[[OrderOutcomes], np.ndarray]):
        ORDER_METRICS[name] = OrderMetric(name, unit, compute, header or name, digits, in_table, legend)
        return compute
    return register


def across_orders(name: str, header: str | None = None, *, legend: str = ""):
    """Register ``f(per-order metrics) -> float`` as a figure over all orders."""
    def register(compute: Callable[[dict[str, np.ndarray]], float]):
        ACROSS_ORDERS[name] = AcrossOrders(name, compute, header or name, legend)
        return compute
    return register


# ---- per order ---------------------------------------------------------------------------------------
@order_metric("price_advantage_bps", "bp", "PA (bp)",
              legend="PA = price advantage vs the horizon's average market price, bp, + = better")
def price_advantage(o: OrderOutcomes) -> np.ndarray:
    return o.sigma * (o.average_price / o.twap_price - 1.0) * 1e4


@order_metric("fill_rate", "1", "fill rate", digits=3, legend="fill rate = executed / ordered shares (1 = all)")
def fill_rate(o: OrderOutcomes) -> np.ndarray:
    return o.executed / o.quantity


@order_metric("average_price", "USD", "avg price", in_table=False)
def average_price(o: OrderOutcomes) -> np.ndarray:
    return o.average_price


@order_metric("arrival_advantage_bps", "bp", "vs arrival (bp)", in_table=False)
def arrival_advantage(o: OrderOutcomes) -> np.ndarray:
    return o.sigma * (o.average_price / o.reference_price - 1.0) * 1e4


@order_metric("implementation_shortfall_bps", "bp", "IS cost (bp)",
              legend="IS cost = implementation shortfall vs the arrival price, bp, + = worse")
def implementation_shortfall(o: OrderOutcomes) -> np.ndarray:
    return -arrival_advantage(o)


@order_metric("slippage_vwap_bps", "bp", "VWAP slip. (bp)",
              legend="VWAP slip. = slippage vs the window's market VWAP, bp, + = worse")
def slippage_vwap(o: OrderOutcomes) -> np.ndarray:
    return -o.sigma * (o.average_price / o.market_vwap - 1.0) * 1e4


@order_metric("profit_usd", "USD", "profit ($)", in_table=False)
def profit(o: OrderOutcomes) -> np.ndarray:
    return o.sigma * (o.cash - o.executed * o.reference_price)


@order_metric("execution_cost_usd", "USD", "cost ($)", in_table=False)
def execution_cost(o: OrderOutcomes) -> np.ndarray:
    return -profit(o)


@order_metric("reward", "env", "reward", digits=3, legend="reward = the environment's episode return")
def reward(o: OrderOutcomes) -> np.ndarray:
    return o.reward


# ---- across orders -----------------------------------------------------------------------------------
def _priced(pa: np.ndarray) -> np.ndarray:
    pa = np.asarray(pa, dtype=np.float64)
    return pa[np.isfinite(pa)]


def gain_loss_ratio(pa: np.ndarray) -> float:
    """GLR = E[PA | PA > 0] / E[-PA | PA < 0]; 0 with no gains, inf with gains and no losses."""
    pa = _priced(pa)
    gains, losses = pa[pa > 0], -pa[pa < 0]
    if gains.size == 0:
        return 0.0
    if losses.size == 0:
        return float("inf")
    return float(gains.mean() / losses.mean())


def positive_rate(pa: np.ndarray) -> float:
    """POS = share of priced orders with PA > 0; orders with no fill (NaN PA) are left out, as from the PA mean."""
    pa = _priced(pa)
    return float(np.mean(pa > 0)) if pa.size else float("nan")


@across_orders("glr", "GLR", legend="GLR = mean PA gain / mean PA loss")
def _glr(metrics: dict[str, np.ndarray]) -> float:
    return gain_loss_ratio(metrics["price_advantage_bps"])


@across_orders("pos", "POS", legend="POS = share of orders with PA > 0")
def _pos(metrics: dict[str, np.ndarray]) -> float:
    return positive_rate(metrics["price_advantage_bps"])


# ---- evaluation of N orders --------------------------------------------------------------------------
def order_metrics(outcomes: OrderOutcomes | None = None, **arrays: np.ndarray) -> dict[str, np.ndarray]:
    """Every registered per-order metric: pass an :class:`OrderOutcomes` or its fields as keywords."""
    outcomes = outcomes if outcomes is not None else OrderOutcomes(**arrays)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {name: np.asarray(m.compute(outcomes), dtype=np.float64) for name, m in ORDER_METRICS.items()}


@dataclass(frozen=True)
class Aggregate:
    """One strategy's row of the results table: mean ± SE of every per-order metric, and the
    across-order figures; both readable as attributes (``agg.price_advantage_bps.mean``, ``agg.glr``)."""

    n_orders: int
    means: dict[str, MeanSE] = field(default_factory=dict)
    figures: dict[str, float] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        for table in ("means", "figures"):
            values = self.__dict__.get(table, {})
            if name in values:
                return values[name]
        raise AttributeError(name)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"n_orders": self.n_orders, **self.figures}
        for name, value in self.means.items():
            out[name] = {"mean": value.mean, "se": value.se, "n": value.n}
        return out


def aggregate(metrics: dict[str, np.ndarray]) -> Aggregate:
    return Aggregate(
        n_orders=int(next(iter(metrics.values())).size),
        means={name: mean_se(metrics[name]) for name in ORDER_METRICS if name in metrics},
        figures={name: a.compute(metrics) for name, a in ACROSS_ORDERS.items()},
    )

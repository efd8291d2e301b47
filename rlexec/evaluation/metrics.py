"""Execution metrics (spec 0, 1.2 and 2.4). Sign convention: sigma = +1 sell, -1 buy; every
``*_advantage*`` and ``profit`` is positive when good for the trader, every ``cost``/``slippage``
positive when bad.

Per order:

=========================  =====  =================================================================
name                       unit   definition
=========================  =====  =================================================================
fill_rate                  1      executed / Q
average_price              USD    P̄ = sum q p / sum q
price_advantage_bps        bp     PA = sigma (P̄ / p_twap - 1) 1e4; p_twap the horizon's mean minute price
arrival_advantage_bps      bp     sigma (P̄ / p_0 - 1) 1e4, p_0 the last close before the start
implementation_shortfall   bp     -arrival_advantage_bps (Perold IS on the filled part)
slippage_vwap_bps          bp     -sigma (P̄ / VWAP_window - 1) 1e4 against the window's market VWAP
profit_usd                 USD    sigma sum_j q_j (p_j - p_0) = sigma (cash - executed p_0)
execution_cost_usd         USD    -profit_usd
reward                     1      the environment's episode return
=========================  =====  =================================================================

Across orders: means ± standard errors, GLR = E[PA | PA > 0] / E[-PA | PA < 0] and POS = share of
orders with PA > 0 (spec 2.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlexec.evaluation.stats import MeanSE, mean_se

ORDER_METRICS = (
    "fill_rate", "price_advantage_bps", "arrival_advantage_bps", "implementation_shortfall_bps",
    "slippage_vwap_bps", "profit_usd", "execution_cost_usd", "reward",
)


def order_metrics(
    *,
    sigma: np.ndarray,
    quantity: np.ndarray,
    executed: np.ndarray,
    cash: np.ndarray,
    reference_price: np.ndarray,
    twap_price: np.ndarray,
    market_vwap: np.ndarray,
    reward: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-order metrics; orders with no fill get NaN prices and advantages (they still count in fill rate)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        average = np.where(executed > 0, cash / executed, np.nan)
    arrival = sigma * (average / reference_price - 1.0) * 1e4
    profit = sigma * (cash - executed * reference_price)
    return {
        "fill_rate": executed / quantity,
        "average_price": average,
        "price_advantage_bps": sigma * (average / twap_price - 1.0) * 1e4,
        "arrival_advantage_bps": arrival,
        "implementation_shortfall_bps": -arrival,
        "slippage_vwap_bps": -sigma * (average / market_vwap - 1.0) * 1e4,
        "profit_usd": profit,
        "execution_cost_usd": -profit,
        "reward": reward,
    }


def gain_loss_ratio(pa: np.ndarray) -> float:
    """GLR = E[PA | PA > 0] / E[-PA | PA < 0]; 0 with no gains, inf with gains and no losses."""
    pa = np.asarray(pa, dtype=np.float64)
    pa = pa[np.isfinite(pa)]
    gains, losses = pa[pa > 0], -pa[pa < 0]
    if gains.size == 0:
        return 0.0
    if losses.size == 0:
        return float("inf")
    return float(gains.mean() / losses.mean())


def positive_rate(pa: np.ndarray) -> float:
    """POS = share of orders with PA > 0 (NaN-PA orders count as not positive)."""
    pa = np.asarray(pa, dtype=np.float64)
    return float(np.mean(np.nan_to_num(pa, nan=0.0) > 0)) if pa.size else float("nan")


@dataclass(frozen=True)
class Aggregate:
    """One strategy's row of the results table."""

    n_orders: int
    price_advantage_bps: MeanSE
    glr: float
    pos: float
    fill_rate: MeanSE
    implementation_shortfall_bps: MeanSE
    slippage_vwap_bps: MeanSE
    profit_usd: MeanSE
    reward: MeanSE

    def to_dict(self) -> dict:
        out = {"n_orders": self.n_orders, "glr": self.glr, "pos": self.pos}
        for name in ("price_advantage_bps", "fill_rate", "implementation_shortfall_bps", "slippage_vwap_bps",
                     "profit_usd", "reward"):
            value: MeanSE = getattr(self, name)
            out[name] = {"mean": value.mean, "se": value.se, "n": value.n}
        return out


def aggregate(metrics: dict[str, np.ndarray]) -> Aggregate:
    pa = metrics["price_advantage_bps"]
    return Aggregate(
        n_orders=int(pa.size),
        price_advantage_bps=mean_se(pa),
        glr=gain_loss_ratio(pa),
        pos=positive_rate(pa),
        fill_rate=mean_se(metrics["fill_rate"]),
        implementation_shortfall_bps=mean_se(metrics["implementation_shortfall_bps"]),
        slippage_vwap_bps=mean_se(metrics["slippage_vwap_bps"]),
        profit_usd=mean_se(metrics["profit_usd"]),
        reward=mean_se(metrics["reward"]),
    )

"""Run strategies over a batch of orders and collect per-order metrics and fill curves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from rlexec.data.orders import orders_table
from rlexec.envs.config import ExecutionConfig
from rlexec.envs.engine import BatchExecutionEngine, OrderBatch
from rlexec.envs.reward import PriceAdvantagePenaltyReward
from rlexec.evaluation.metrics import Aggregate, aggregate, order_metrics
from rlexec.evaluation.stats import PairedDifference, paired_difference
from rlexec.strategies.base import Strategy


@dataclass(frozen=True)
class StrategyResult:
    name: str
    metrics: dict[str, np.ndarray]  # per order, see rlexec.evaluation.metrics
    fill_curve: np.ndarray  # (N, K) fraction of Q filled by each point of Evaluation.curve_minutes
    summary: Aggregate


def run_strategy(
    batch: OrderBatch,
    config: ExecutionConfig,
    strategy: Strategy,
    on_step: Callable[[], None] | None = None,
) -> StrategyResult:
    """Execute every order of ``batch`` with ``strategy`` on the batch engine."""
    engine = BatchExecutionEngine(config)
    reward_fn = PriceAdvantagePenaltyReward(config.reward)
    state = engine.reset(batch)
    episode_reward = np.zeros(len(batch))
    while not state.done:
        outcome = engine.step(strategy.fractions(state))
        episode_reward += reward_fn(outcome, batch.quantity)
        if on_step is not None:
            on_step()
    metrics = order_metrics(
        sigma=batch.sigma, quantity=batch.quantity, executed=state.executed, cash=state.cash,
        reference_price=batch.reference_price, twap_price=batch.twap_price, market_vwap=batch.market_vwap,
        reward=episode_reward,
    )
    fill_curve = np.cumsum(state.minute_fills, axis=1) / batch.quantity[:, None]
    return StrategyResult(strategy.name, metrics, fill_curve, aggregate(metrics))


@dataclass(frozen=True)
class Evaluation:
    """Results of several strategies on the same orders (or the same simulated episodes)."""

    orders: pa.Table  # one row per order: its identity (symbol, date, side, quantity, start, ...)
    results: list[StrategyResult]
    baseline: str
    curve_minutes: np.ndarray  # (K,) minutes since the order start of each fill-curve point
    decision_minutes: np.ndarray  # minutes since the order start of the decision times, for the plots

    def __len__(self) -> int:
        return self.orders.num_rows

    def comparisons(self, metric: str = "price_advantage_bps") -> dict[str, PairedDifference]:
        """Each strategy minus the baseline on the same orders."""
        base = self.result(self.baseline).metrics[metric]
        return {r.name: paired_difference(r.metrics[metric], base) for r in self.results if r.name != self.baseline}

    def result(self, name: str) -> StrategyResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no result for strategy {name!r}")

    def per_order_table(self) -> pa.Table:
        """One row per (strategy, order): the order's identity columns, then every metric."""
        parts = []
        for r in self.results:
            table = self.orders.add_column(0, "strategy", pa.array([r.name] * len(self), pa.string()))
            table = table.add_column(1, "order_index", pa.array(np.arange(len(self)), pa.int64()))
            for name, values in r.metrics.items():
                table = table.append_column(name, pa.array(values, pa.float64()))
            parts.append(table)
        return pa.concat_tables(parts)


def evaluate(
    batch: OrderBatch,
    config: ExecutionConfig,
    strategies: list[Strategy],
    *,
    baseline: str | None = None,
    on_step: Callable[[], None] | None = None,
) -> Evaluation:
    results = [run_strategy(batch, config, s, on_step) for s in strategies]
    return Evaluation(
        orders=orders_table(list(batch.orders)),
        results=results,
        baseline=baseline or strategies[0].name,
        curve_minutes=np.arange(1, config.horizon_minutes + 1, dtype=np.float64),
        decision_minutes=np.arange(config.n_steps, dtype=np.float64) * config.step_minutes,
    )

"""Run strategies over a batch of orders and collect per-order metrics and fill curves."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

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
    fill_curve: np.ndarray  # (N, H) fraction of Q filled by the end of each horizon minute
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
    batch: OrderBatch
    results: list[StrategyResult]
    baseline: str

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
        """One row per (strategy, order) with the order's identity and every metric."""
        orders = self.batch.orders
        n = len(orders)
        columns: dict[str, list] = {
            "strategy": [], "order_index": [], "symbol": [], "date": [], "side": [], "quantity": [], "start": []
        }
        metric_names = list(self.results[0].metrics)
        metric_columns: dict[str, list[np.ndarray]] = {m: [] for m in metric_names}
        for r in self.results:
            columns["strategy"] += [r.name] * n
            columns["order_index"] += list(range(n))
            columns["symbol"] += [o.symbol for o in orders]
            columns["date"] += [o.date for o in orders]
            columns["side"] += [o.side for o in orders]
            columns["quantity"] += [o.quantity for o in orders]
            columns["start"] += [o.start_time for o in orders]
            for m in metric_names:
                metric_columns[m].append(r.metrics[m])
        table = pa.table(columns)
        for m in metric_names:
            table = table.append_column(m, pa.array(np.concatenate(metric_columns[m]), pa.float64()))
        return table


def evaluate(
    batch: OrderBatch,
    config: ExecutionConfig,
    strategies: list[Strategy],
    *,
    baseline: str | None = None,
    on_step: Callable[[], None] | None = None,
) -> Evaluation:
    results = [run_strategy(batch, config, s, on_step) for s in strategies]
    return Evaluation(batch, results, baseline or strategies[0].name)

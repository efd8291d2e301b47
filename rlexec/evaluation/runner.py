"""The one evaluation loop: any strategy or actor, on any venue's :class:`~rlexec.evaluation.episodes.Episodes`.

Each step the loop asks the acting object for one decision per order:

* a broker :class:`~rlexec.strategies.base.Strategy` reads the venue's execution state and answers
  fractions of Q (``fractions(state)``);
* an :class:`~rlexec.policies.actors.Actor` (a trained policy, a fixed placement, ...) reads the
  observations and answers actions.

Every run of an :class:`Evaluation` builds its episodes from the same orders or seeds, so the
per-order differences between strategies are paired (common random numbers on the LOB).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from rlexec.envs.config import ExecutionConfig
from rlexec.envs.engine import OrderBatch
from rlexec.evaluation.episodes import BarEpisodes, Episodes, StepRecord
from rlexec.evaluation.metrics import Aggregate, aggregate, order_metrics
from rlexec.evaluation.recorder import TrajectoryRecorder
from rlexec.evaluation.stats import PairedDifference, paired_difference

if TYPE_CHECKING:
    from rlexec.policies.trained import TrainedPolicy


@dataclass(frozen=True)
class StrategyResult:
    name: str
    metrics: dict[str, np.ndarray]  # per order, see rlexec.evaluation.metrics
    fill_curve: np.ndarray  # (N, K) fraction of Q filled by each point of Evaluation.curve_minutes
    summary: Aggregate


@dataclass(frozen=True)
class FixedAction:
    """The same action for every order at every step (e.g. always a market order on the LOB)."""

    name: str
    action: int

    def actions(self, observations: np.ndarray) -> np.ndarray:
        return np.full(len(observations), self.action, dtype=np.int64)


def decide(acting: Any, observations: np.ndarray, episodes: Episodes) -> np.ndarray:
    if hasattr(acting, "fractions"):
        if episodes.state is None:
            raise TypeError(f"{acting.name}: a broker strategy needs a venue whose state it can read; on the LOB "
                            "env the broker is part of the env (pass a placement instead)")
        return np.asarray(acting.fractions(episodes.state), dtype=np.float64)
    return np.asarray(acting.actions(observations))


def run_episodes(
    episodes: Episodes,
    acting: Any,
    *,
    name: str | None = None,
    recorder: TrajectoryRecorder | None = None,
    on_step: Callable[[], None] | None = None,
) -> tuple[StrategyResult, int]:
    """Run every episode to its end; returns the result and the number of decision steps taken."""
    observations = episodes.reset()
    rewards = None
    records: list[StepRecord] = []
    if recorder is not None:
        recorder.start()
    while not episodes.done:
        actions = decide(acting, observations, episodes)
        next_observations, record = episodes.step(actions)
        if recorder is not None:
            recorder.record(observations, actions, record)
        rewards = record.reward * record.active if rewards is None else rewards + record.reward * record.active
        records.append(record)
        observations = next_observations
        if on_step is not None:
            on_step()
    outcomes = episodes.outcomes()
    metrics = order_metrics(**{**vars(outcomes), "reward": rewards})
    result = StrategyResult(name or acting.name, metrics, episodes.fill_curve(records), aggregate(metrics))
    return result, len(records)


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


@dataclass(frozen=True)
class Run:
    """One row of an evaluation: who acts, and the episodes it acts on (built fresh for it)."""

    name: str
    acting: Any  # a Strategy (fractions of state) or an Actor (actions of observations)
    make_episodes: Callable[[], Episodes]


def evaluate_runs(
    runs: list[Run],
    *,
    baseline: str | None = None,
    recorders: dict[str, TrajectoryRecorder] | None = None,
    on_step: Callable[[], None] | None = None,
) -> Evaluation:
    """Every run over its own fresh episodes of the same orders/seeds; the first run is the default baseline."""
    results, orders, curve, decisions = [], None, None, None
    for run in runs:
        episodes = run.make_episodes()
        recorder = (recorders or {}).get(run.name)
        result, steps = run_episodes(episodes, run.acting, name=run.name, recorder=recorder, on_step=on_step)
        results.append(result)
        if orders is None or steps > len(curve):
            orders, curve, decisions = episodes.identity(), episodes.curve_minutes(steps), episodes.decision_minutes(steps)
    return Evaluation(orders=orders, results=results, baseline=baseline or runs[0].name, curve_minutes=curve,
                      decision_minutes=decisions)


def evaluate(
    batch: OrderBatch,
    config: ExecutionConfig,
    strategies: list[Any],
    *,
    baseline: str | None = None,
    on_step: Callable[[], None] | None = None,
    recorders: dict[str, TrajectoryRecorder] | None = None,
) -> Evaluation:
    """Broker strategies over one batch of orders on minute bars (the same orders for each)."""
    return evaluate_runs(bar_runs(batch, config, strategies), baseline=baseline, recorders=recorders, on_step=on_step)


def bar_runs(batch: OrderBatch, config: ExecutionConfig, strategies: Sequence[Any],
             policies: Sequence[TrainedPolicy] = (), *, actor: str = "greedy", seed: int = 0) -> list[Run]:
    """The strategies, then the trained policies acting as ``actor`` (seeded by ``seed``), each on fresh
    episodes of the same orders; a policy that reads the oracle view (the OPD teacher) gets it."""
    runs = [Run(s.name, s, lambda s=s: BarEpisodes(batch, config, oracle=bool(getattr(s, "oracle", False))))
            for s in strategies]
    runs += [Run(p.name, p.actor(actor, seed=seed), lambda p=p: BarEpisodes(batch, config, oracle=p.oracle))
             for p in policies]
    return runs

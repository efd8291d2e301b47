"""Evaluation: one loop over any venue's episodes, the trajectory recorder, metrics, statistics, plots."""

from rlexec.evaluation.episodes import BarEpisodes, Episodes, LOBEpisodes, StepRecord
from rlexec.evaluation.metrics import (
    ACROSS_ORDERS, ORDER_METRICS, OrderOutcomes, across_orders, aggregate, gain_loss_ratio, order_metric,
    order_metrics, positive_rate,
)
from rlexec.evaluation.recorder import TrajectoryRecorder
from rlexec.evaluation.runner import Evaluation, FixedAction, Run, StrategyResult, evaluate, evaluate_runs, run_episodes
from rlexec.evaluation.stats import mean_se, paired_difference

__all__ = [
    "ACROSS_ORDERS", "ORDER_METRICS", "BarEpisodes", "Episodes", "Evaluation", "FixedAction", "LOBEpisodes",
    "OrderOutcomes", "Run", "StepRecord", "StrategyResult", "TrajectoryRecorder", "across_orders", "aggregate",
    "evaluate", "evaluate_runs", "gain_loss_ratio", "mean_se", "order_metric", "order_metrics", "paired_difference",
    "positive_rate", "run_episodes",
]

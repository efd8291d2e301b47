"""Evaluation: metrics, statistics, the strategy runner, plots and the evaluate pipeline."""

from rlexec.evaluation.metrics import ORDER_METRICS, aggregate, gain_loss_ratio, order_metrics, positive_rate
from rlexec.evaluation.runner import Evaluation, StrategyResult, evaluate, run_strategy
from rlexec.evaluation.stats import mean_se, paired_difference

__all__ = [
    "ORDER_METRICS", "Evaluation", "StrategyResult", "aggregate", "evaluate", "gain_loss_ratio", "mean_se",
    "order_metrics", "paired_difference", "positive_rate", "run_strategy",
]

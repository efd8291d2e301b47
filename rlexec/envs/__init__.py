"""Execution environments: the bar-level OPD env and its batch engine; the daily portfolio env (stock trading)."""

from rlexec.envs.bar_env import BarExecutionEnv
from rlexec.envs.config import ExecutionConfig, FillModel, RewardConfig
from rlexec.envs.engine import BatchExecutionEngine, ExecState, OrderBatch, prepare_orders
from rlexec.envs.portfolio_env import PortfolioEnv

__all__ = [
    "BarExecutionEnv", "BatchExecutionEngine", "ExecState", "ExecutionConfig", "FillModel",
    "OrderBatch", "PortfolioEnv", "RewardConfig", "prepare_orders",
]

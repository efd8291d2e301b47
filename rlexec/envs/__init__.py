"""Execution environments: the bar-level OPD env and its batch engine."""

from rlexec.envs.bar_env import BarExecutionEnv
from rlexec.envs.config import ExecutionConfig, FillModel, RewardConfig
from rlexec.envs.engine import BatchExecutionEngine, ExecState, OrderBatch, prepare_orders

__all__ = [
    "BarExecutionEnv", "BatchExecutionEngine", "ExecState", "ExecutionConfig", "FillModel",
    "OrderBatch", "RewardConfig", "prepare_orders",
]

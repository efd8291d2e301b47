"""rlexec: reinforcement learning for optimal trade execution.

Layers, each depending only on the ones before it::

    rlexec.data -> rlexec.market -> rlexec.strategies -> rlexec.envs
                -> rlexec.algorithms / rlexec.logicq -> rlexec.evaluation -> rlexec.cli

(rlexec.strategies reads the bar engine's state by duck typing, so the LOB env can size its child
orders with the same brokers.)
"""

__version__ = "0.1.0"

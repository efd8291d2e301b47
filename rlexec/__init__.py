"""rlexec: reinforcement learning for optimal trade execution.

Layers, each depending only on the ones before it::

    rlexec.data -> rlexec.market -> rlexec.envs -> rlexec.strategies
                -> rlexec.algorithms / rlexec.logicq -> rlexec.evaluation -> rlexec.cli
"""

__version__ = "0.1.0"

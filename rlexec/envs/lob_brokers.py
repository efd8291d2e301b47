"""Compatibility only: the LOB brokers are now :mod:`rlexec.strategies` (shared with the bar env) and
their config is :class:`rlexec.envs.lob_env.BrokerConfig`. Import ``BROKERS`` from
:mod:`rlexec.envs.lob_env`; this module goes once rlexec.evaluation.lob and rlexec.cli.evaluate do.
"""

from rlexec.envs.lob_env import BROKERS

__all__ = ["BROKERS"]

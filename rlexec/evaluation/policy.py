"""A trained policy (an RLlib checkpoint of the bar env) as a :class:`~rlexec.strategies.base.Strategy`.

It runs through exactly the metrics path of TWAP and VWAP: the batch engine executes every order,
the policy's RLModule picks each step's action greedily (argmax of its action logits) from the
observation the training env would have produced, and the action index maps to a fraction of Q
through the same :class:`~rlexec.envs.interpreters.DiscreteActionInterpreter`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rlexec.envs.config import ExecutionConfig
from rlexec.envs.engine import ExecState
from rlexec.envs.interpreters import DiscreteActionInterpreter, ObservationInterpreter
from rlexec.errors import ConfigError
from rlexec.training.checkpoints import load_module, trained_run


class PolicyStrategy:
    """Greedy actions of a trained RLModule over the batch engine's states."""

    def __init__(self, module, execution: ExecutionConfig, *, name: str, oracle: bool = False):
        self.module, self.execution, self.name, self.oracle = module, execution, name, oracle
        self.observe = ObservationInterpreter(execution, oracle=oracle)
        self.to_fraction = DiscreteActionInterpreter(execution)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, name: str | None = None) -> "PolicyStrategy":
        """``path``: a run folder, a folder of runs, or a checkpoint; the env settings come from the run's config."""
        checkpoint, run_config = trained_run(path)
        environment = run_config.get("environment") or {}
        if environment.get("env", "bar") != "bar":
            raise ConfigError(f"{path}: --policy evaluates bar-env policies; this run trained on {environment.get('env')!r}")
        env_config = environment.get("env_config") or {}
        if env_config.get("continuous"):
            raise ConfigError(f"{path}: continuous-action policies are not supported by --policy yet")
        execution = ExecutionConfig.from_dict(env_config.get("execution", {}))
        return cls(load_module(checkpoint), execution, name=name or str(run_config.get("name") or Path(path).name),
                   oracle=bool(env_config.get("oracle", False)))

    def actions(self, state: ExecState) -> np.ndarray:
        return greedy_actions(self.module, self.observe(state))

    def fractions(self, state: ExecState) -> np.ndarray:
        return self.to_fraction(self.actions(state))


def greedy_actions(module, observations: np.ndarray) -> np.ndarray:
    """(N,) actions for (N, obs) observations: the module's own ``actions`` output if it has one, else argmax."""
    import torch
    from ray.rllib.core.columns import Columns

    obs = torch.from_numpy(np.ascontiguousarray(observations, dtype=np.float32))
    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: obs})
    if Columns.ACTIONS in out:
        return np.asarray(out[Columns.ACTIONS]).reshape(-1)
    return out[Columns.ACTION_DIST_INPUTS].argmax(-1).numpy()


def greedy_actor(module):
    """``observation -> action`` for one env."""
    return lambda observation: int(greedy_actions(module, np.asarray(observation)[None])[0])


def lob_policy_from_checkpoint(path: str | os.PathLike) -> tuple[str, str, object, dict]:
    """(name, broker, actor, env_config) of an LOB-env run (e.g. a Q-learned broker expert)."""
    checkpoint, run_config = trained_run(path)
    environment = run_config.get("environment") or {}
    if environment.get("env") != "lob":
        raise ConfigError(f"{path}: --env lob --policy needs a policy trained on the LOB env, "
                          f"this run used {environment.get('env', 'bar')!r}")
    env_config = environment.get("env_config") or {}
    broker = env_config.get("broker", "twap")
    broker = broker.get("name", "twap") if isinstance(broker, dict) else broker
    name = str(run_config.get("name") or Path(path).name)
    return name, broker, greedy_actor(load_module(checkpoint)), env_config

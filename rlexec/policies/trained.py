"""What a training run leaves behind, loaded as one object: the model, and the env it was trained on.

``TrainedPolicy.load(path)`` accepts what ``rlexec evaluate --policy`` accepts: a run folder, a folder
of runs (``runs/train/<name>``: the newest), or a checkpoint. A Q-learning run that exported a
differentiable expert (``<run>/expert``) can be loaded as that expert with ``prefer_expert=True``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlexec.errors import ConfigError
from rlexec.policies.actors import Actor, make_actor
from rlexec.policies.checkpoints import load_module, trained_run


@dataclass
class TrainedPolicy:
    name: str
    model: Any  # an RLModule (Learner copy) or an ExpertPolicy
    env: str  # "bar", "lob" or "package.module:Class", as in the run's config
    env_config: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None  # the checkpoint or expert folder it came from

    @classmethod
    def load(cls, path: str | os.PathLike, *, name: str | None = None, prefer_expert: bool = False,
             trusted: bool = False) -> "TrainedPolicy":
        """Weights only, unless ``trusted`` (see :func:`~rlexec.policies.checkpoints.load_module`)."""
        checkpoint, run_config = trained_run(path)
        environment = run_config.get("environment") or {}
        name = name or str(run_config.get("name") or Path(path).name)
        env, env_config = str(environment.get("env", "bar")), dict(environment.get("env_config") or {})
        expert_dir = checkpoint.parent.parent / "expert"
        if prefer_expert and (expert_dir / "policy.json").exists():
            from rlexec.policies.expert import ExpertPolicy

            return cls(name, ExpertPolicy.load(expert_dir), env, env_config, expert_dir)
        return cls(name, load_module(checkpoint, trusted=trusted), env, env_config, checkpoint)

    def require_env(self, env: str) -> "TrainedPolicy":
        if self.env != env:
            raise ConfigError(f"{self.source}: policy {self.name!r} was trained on env {self.env!r}, "
                              f"not {env!r}; evaluate it with --env {self.env}")
        return self

    @property
    def run_folder(self) -> Path | None:
        """The training run folder the policy came from (``<run>/checkpoints/iter_N`` or ``<run>/expert``)."""
        if self.source is None:
            return None
        return self.source.parent if self.source.name == "expert" else self.source.parent.parent

    @property
    def oracle(self) -> bool:
        """True for a policy that reads the oracle (future-including) view: the OPD teacher."""
        return bool(self.env_config.get("oracle", False))

    @property
    def execution(self):
        """The bar env's execution settings the policy was trained with (its MDP)."""
        from rlexec.envs.config import ExecutionConfig

        if self.env_config.get("continuous"):
            raise ConfigError(f"{self.source}: continuous-action bar policies are not supported yet")
        return ExecutionConfig.from_dict(self.env_config.get("execution", {}))

    def actor(self, kind: str = "greedy", *, seed: int = 0, temperature: float = 1.0) -> Actor:
        values = self.execution.action_values if kind == "expected" else None
        if kind == "expected" and self.execution.action_interpreter != "fraction":
            # the expected action value is a fraction of Q only under the fraction interpreter
            raise ConfigError(f"{self.source}: the 'expected' actor needs action_interpreter 'fraction'; this policy "
                              f"was trained with {self.execution.action_interpreter!r}")
        return make_actor(self.model, kind, seed=seed, temperature=temperature, action_values=values, name=self.name)

"""A training YAML -> an RLlib ``AlgorithmConfig``.

The file's sections are named after the ``AlgorithmConfig`` builder methods and passed to them as
keyword arguments, so RLlib's own documentation is the reference for every key::

    algorithm: opd                 # ppo | opd | qlearning        (rlexec.algorithms)
    name: opd_student              # run folder name
    seed: 42
    stop: {training_iterations: 50}        # and/or env_steps, time_s
    checkpoint_frequency: 10               # iterations between checkpoints (0: only at the end)
    keep_checkpoints: 3
    environment: {env: bar, env_config: {...}}     # env: bar | lob | "package.module:Class"
    env_runners: {num_env_runners: 2, num_envs_per_env_runner: 8}
    training: {lr: 1.0e-4, ...}
    learners: {...}
    rl_module: {module: opd, model_config: {...}}  # module: opd | default (RLlib's MLP)
    fault_tolerance: {restart_failed_env_runners: true}
    evaluation: {...}

Unknown sections or keys raise :class:`~rlexec.errors.ConfigError` naming the file and the key.
Relative paths inside ``env_config`` and ``training.teacher_checkpoint`` are made absolute against
the directory the command runs in, because EnvRunner processes may run elsewhere.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlexec.configs import read_yaml_mapping
from rlexec.errors import ConfigError

ALGORITHMS = {
    "ppo": "rlexec.algorithms.ppo",
    "opd": "rlexec.algorithms.opd",
    "qlearning": "rlexec.algorithms.qlearning",
}
RLLIB_SECTIONS = ("environment", "env_runners", "training", "learners", "rl_module", "fault_tolerance",
                  "evaluation", "reporting", "resources")
TOP_LEVEL = ("algorithm", "name", "seed", "stop", "checkpoint_frequency", "keep_checkpoints", *RLLIB_SECTIONS)
STOP_KEYS = ("training_iterations", "env_steps", "time_s")
PATH_KEYS = ("data", "orders", "replay", "teacher_checkpoint")


@dataclass(frozen=True, kw_only=True)
class TrainSpec:
    algorithm: str
    name: str
    seed: int = 0
    stop: dict[str, float] = field(default_factory=lambda: {"training_iterations": 10})
    checkpoint_frequency: int = 10
    keep_checkpoints: int = 3
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = "<dict>"

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "TrainSpec":
        return cls.from_dict(read_yaml_mapping(path), source=str(path))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "TrainSpec":
        unknown = set(data) - set(TOP_LEVEL)
        if unknown:
            raise ConfigError(f"{source}: unknown top-level key(s) {sorted(unknown)}; known: {list(TOP_LEVEL)}")
        algorithm = data.get("algorithm")
        if algorithm not in ALGORITHMS:
            raise ConfigError(f"{source}: algorithm must be one of {sorted(ALGORITHMS)}, got {algorithm!r}")
        sections = {}
        for name in RLLIB_SECTIONS:
            value = data.get(name) or {}
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: section {name!r} must be a mapping of keyword arguments")
            sections[name] = _absolute_paths(copy.deepcopy(value))
        stop = data.get("stop") or {"training_iterations": 10}
        if not isinstance(stop, dict) or not stop or set(stop) - set(STOP_KEYS):
            raise ConfigError(f"{source}: stop must map some of {list(STOP_KEYS)} to numbers, got {stop!r}")
        for key, value in stop.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{source}: stop.{key} must be a positive number, got {value!r}")
        for key in ("seed", "checkpoint_frequency", "keep_checkpoints"):
            value = data.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{source}: {key} must be a non-negative integer, got {value!r}")
        return cls(
            algorithm=algorithm, name=str(data.get("name") or algorithm), seed=int(data.get("seed", 0)), stop=stop,
            checkpoint_frequency=int(data.get("checkpoint_frequency", 10)),
            keep_checkpoints=int(data.get("keep_checkpoints", 3)) or 1, sections=sections, source=source,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "name": self.name, "seed": self.seed, "stop": dict(self.stop),
                "checkpoint_frequency": self.checkpoint_frequency, "keep_checkpoints": self.keep_checkpoints,
                **{k: v for k, v in self.sections.items() if v}}

    def with_overrides(self, overrides: dict[str, Any]) -> "TrainSpec":
        """Dotted-key overrides (``training.lr``, ``environment.env_config.oracle``) on a copy."""
        data = copy.deepcopy(self.to_dict())
        for dotted, value in overrides.items():
            node = data
            *parents, last = dotted.split(".")
            for key in parents:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{self.source}: override {dotted!r} goes through a non-mapping")
            node[last] = value
        return TrainSpec.from_dict(data, source=self.source)

    def algorithm_module(self):
        return importlib.import_module(ALGORITHMS[self.algorithm])


def build_algorithm_config(spec: TrainSpec, *, local: bool = False):
    """The RLlib config object the spec describes (new API stack), seeded, ready for ``build_algo()``."""
    module = spec.algorithm_module()
    config = module.CONFIG_CLASS()
    sections = copy.deepcopy(spec.sections)

    environment = sections.pop("environment")
    environment["env"] = resolve_env(environment.get("env", "bar"), spec.source)
    env_config = environment.setdefault("env_config", {})
    _call(config, "environment", environment, spec.source)

    rl_module = sections.pop("rl_module")
    if rl_module:
        _call(config, "rl_module", {"rl_module_spec": module_spec(rl_module, env_config, spec.source)}, spec.source)
    for name, kwargs in sections.items():
        if kwargs:
            _call(config, name, kwargs, spec.source)
    if local:  # one process: sampling in the driver, breakpoints work
        config.env_runners(num_env_runners=0)
        config.evaluation(evaluation_num_env_runners=0)
    config.debugging(seed=spec.seed)
    return config


def resolve_env(name: str, source: str):
    from rlexec.envs.bar_env import BarExecutionEnv
    from rlexec.envs.lob_env import LOBExecutionEnv

    named = {"bar": BarExecutionEnv, "lob": LOBExecutionEnv}
    if name in named:
        return named[name]
    if isinstance(name, str) and ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"{source}: environment.env {name!r} cannot be imported ({exc})") from None
    raise ConfigError(f"{source}: environment.env must be 'bar', 'lob' or 'package.module:Class', got {name!r}")


def module_spec(rl_module: dict[str, Any], env_config: dict[str, Any], source: str):
    """``{module: opd|default, model_config: {...}}`` -> RLModuleSpec; the OPD network gets the env's shape."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    unknown = set(rl_module) - {"module", "model_config"}
    if unknown:
        raise ConfigError(f"{source}: rl_module: unknown key(s) {sorted(unknown)}; use 'module' and 'model_config'")
    kind = rl_module.get("module", "default")
    model_config = dict(rl_module.get("model_config") or {})
    if kind == "default":
        return RLModuleSpec(model_config=model_config)
    if kind == "opd":
        from rlexec.algorithms.opd_network import OPDRecurrentModule
        from rlexec.envs.config import ExecutionConfig

        execution = ExecutionConfig.from_dict(env_config.get("execution", {}))
        for key, value in (("n_steps", execution.n_steps), ("step_minutes", execution.step_minutes),
                           ("lookback_minutes", execution.lookback_minutes),
                           ("oracle", bool(env_config.get("oracle", False)))):
            model_config.setdefault(key, value)
        return RLModuleSpec(module_class=OPDRecurrentModule, model_config=model_config)
    raise ConfigError(f"{source}: rl_module.module must be 'opd' or 'default', got {kind!r}")


def _call(config, method: str, kwargs: dict[str, Any], source: str) -> None:
    builder = getattr(config, method)
    params = inspect.signature(builder).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        unknown = set(kwargs) - set(params)
        if unknown:
            raise ConfigError(f"{source}: {method}: unknown key(s) {sorted(unknown)} for "
                              f"{type(config).__name__}.{method}()")
    try:
        builder(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {method}: {exc}") from None


def _absolute_paths(node: Any) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in PATH_KEYS and isinstance(value, str) and value and "://" not in value:
                node[key] = str(Path(value).expanduser().resolve())
            elif key in PATH_KEYS and isinstance(value, list):
                node[key] = [str(Path(v).expanduser().resolve()) if isinstance(v, str) else v for v in value]
            else:
                _absolute_paths(value)
    return node

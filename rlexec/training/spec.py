"""A training YAML -> an RLlib ``AlgorithmConfig``.

The file's sections are named after the ``AlgorithmConfig`` builder methods and passed to them as
keyword arguments, so RLlib's own documentation is the reference for every key::

    algorithm: opd                 # a name in rlexec.algorithms.registry, or "package.module:ConfigClass"
    name: opd_student              # run folder name: letters, digits, . _ - (no path)
    seed: 42
    stop: {training_iterations: 50}        # and/or env_steps, time_s
    checkpoint_frequency: 10               # iterations between checkpoints (0: only at the end)
    keep_checkpoints: 3
    environment: {env: bar, env_config: {...}}     # env: bar | lob | portfolio | "package.module:Class"
    env_runners: {num_env_runners: 2, num_envs_per_env_runner: 8}  # + batched: true (bar env, see below)
    training: {lr: 1.0e-4, ...}
    learners: {...}
    rl_module: {module: opd, model_config: {...}}  # module: default (RLlib's MLP) or a registered module
    fault_tolerance: {restart_failed_env_runners: true}
    evaluation: {...}

``env_runners.batched: true`` (rlexec's own key, default false) samples the bar env through
:class:`rlexec.training.batched_runner.BatchedBarEnvRunner`: every ``sample()`` steps all its orders at
once in the batch engine and runs the RLModule on the whole batch (docs/fast_rollouts.md).

Unknown sections or keys raise :class:`~rlexec.errors.ConfigError` naming the file and the key.
Relative paths inside ``env_config`` and ``training.teacher_checkpoint`` are made absolute against
the directory the command runs in, because EnvRunner processes may run elsewhere.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlexec.algorithms.registry import (
    AlgorithmEntry,
    get_algorithm,
    get_module,
    resolve,
)
from rlexec.configs import read_yaml_mapping
from rlexec.errors import ConfigError
from rlexec.provenance import PLAIN_NAME_RULE, is_plain_name

RLLIB_SECTIONS = ("environment", "env_runners", "training", "learners", "rl_module", "fault_tolerance",
                  "evaluation", "reporting", "resources")
TOP_LEVEL = ("algorithm", "name", "seed", "stop", "checkpoint_frequency", "keep_checkpoints", "validation",
             *RLLIB_SECTIONS)
STOP_KEYS = ("training_iterations", "env_steps", "time_s")
RL_MODULE_KEYS = ("module", "model_config")
RUNNER_SWITCHES = ("batched",)  # env_runners keys rlexec reads itself; the rest go to config.env_runners()
PATH_KEYS = ("data", "orders", "replay", "teacher_checkpoint", "preferences", "validation_preferences", "experts", "gate_init")


@dataclass(frozen=True, kw_only=True)
class TrainSpec:
    algorithm: str
    name: str
    seed: int = 0
    stop: dict[str, float] = field(default_factory=lambda: {"training_iterations": 10})
    checkpoint_frequency: int = 10
    keep_checkpoints: int = 3
    sections: dict[str, dict[str, Any]] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)  # rlexec.training.validation.ValidationSpec; {}: off
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
        get_algorithm(algorithm, source)  # a clear error now, not when the run starts
        sections = {}
        for name in RLLIB_SECTIONS:
            value = data.get(name) or {}
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: section {name!r} must be a mapping of keyword arguments")
            sections[name] = _absolute_paths(copy.deepcopy(value))
        batched = sections["env_runners"].get("batched", False)
        if not isinstance(batched, bool):
            raise ConfigError(f"{source}: env_runners.batched must be true or false, got {batched!r}")
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
            algorithm=algorithm, name=run_name(data.get("name"), _default_name(algorithm), source), seed=int(data.get("seed", 0)), stop=stop,
            checkpoint_frequency=int(data.get("checkpoint_frequency", 10)),
            keep_checkpoints=int(data.get("keep_checkpoints", 3)) or 1, sections=sections, source=source,
            validation=_validation(data.get("validation"), source),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "name": self.name, "seed": self.seed, "stop": dict(self.stop),
                "checkpoint_frequency": self.checkpoint_frequency, "keep_checkpoints": self.keep_checkpoints,
                **({"validation": dict(self.validation)} if self.validation else {}),
                **{k: v for k, v in self.sections.items() if v}}

    def with_overrides(self, overrides: dict[str, Any], *, origin: str | None = None) -> "TrainSpec":
        """Dotted-key overrides (``training.lr``, ``environment.env_config.oracle``) on a copy.

        ``origin`` names where the overrides come from (the CLI passes ``"--set"``): each key is then
        checked here, and one that does not exist is reported as that flag's, with the keys its section
        takes. Without it, :meth:`from_dict` and the RLlib builders report bad keys against the file.
        """
        data = copy.deepcopy(self.to_dict())
        for dotted, value in overrides.items():
            where = f"{origin} {dotted}" if origin else f"{self.source}: override {dotted!r}"
            if origin:
                self._check_override_key(dotted, where)
            node = data
            *parents, last = dotted.split(".")
            for key in parents:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{where} goes through a non-mapping ({key!r} is not a section)")
            node[last] = value
        try:
            return TrainSpec.from_dict(data, source=self.source)
        except ConfigError as exc:
            if not origin:
                raise
            raise ConfigError(f"{exc} (with {origin} {', '.join(overrides)})") from None

    def _check_override_key(self, dotted: str, where: str) -> None:
        """Raise naming ``where`` if the first two parts of ``dotted`` are not keys the spec takes."""
        section, *rest = dotted.split(".")
        if section not in TOP_LEVEL:
            raise ConfigError(f"{where}: unknown top-level key {section!r}; known: {list(TOP_LEVEL)}")
        if not rest:
            return
        if section == "stop":
            keys = STOP_KEYS
        elif section == "rl_module":
            keys = RL_MODULE_KEYS
        elif section in RLLIB_SECTIONS:
            keys = builder_keys(self.algorithm_entry().load_config_class(), section)
            if keys is not None and section == "env_runners":
                keys = (*keys, *RUNNER_SWITCHES)
        else:
            return  # a scalar: the walk in with_overrides reports it
        if keys is not None and rest[0] not in keys:
            close = difflib.get_close_matches(rest[0], keys, n=3)
            known = f"did you mean {close}?" if close and len(keys) > 12 else f"{section} takes {sorted(keys)}"
            raise ConfigError(f"{where}: unknown key {rest[0]!r} in {section!r}; {known}")

    def algorithm_entry(self) -> AlgorithmEntry:
        return get_algorithm(self.algorithm, self.source)


def _validation(value: Any, source: str) -> dict[str, Any]:
    if value is None:
        return {}
    from rlexec.training.validation import ValidationSpec

    return ValidationSpec.from_dict(value, source).to_dict()


def run_name(name: Any, default: str, source: str, key: str = "name") -> str:
    """A run or sweep name (a folder under the output root): ``default`` if unset, else a plain name."""
    if name is None or name == "":
        name = default
    if isinstance(name, int) and not isinstance(name, bool):  # YAML reads `name: 2024` as a number
        name = str(name)
    if not is_plain_name(name):
        raise ConfigError(f"{source}: {key} must be a plain name ({PLAIN_NAME_RULE}), got {name!r}")
    return name


def _default_name(algorithm: str) -> str:
    # "package.module:ConfigClass" names its run after the class
    return algorithm.rpartition(":")[2]


def build_algorithm_config(spec: TrainSpec, *, local: bool = False):
    """The RLlib config object the spec describes (new API stack), seeded, ready for ``build_algo()``."""
    config = spec.algorithm_entry().load_config_class()()
    sections = copy.deepcopy(spec.sections)

    environment = sections.pop("environment")
    environment["env"] = resolve_env(environment.get("env", "bar"), spec.source)
    env_config = environment.setdefault("env_config", {})
    _call(config, "environment", environment, spec.source)

    if sections["env_runners"].pop("batched", False):
        from rlexec.envs.bar_env import BarExecutionEnv
        from rlexec.training.batched_runner import BatchedBarEnvRunner

        if not (isinstance(environment["env"], type) and issubclass(environment["env"], BarExecutionEnv)):
            raise ConfigError(f"{spec.source}: env_runners.batched: true needs environment.env: bar")
        sections["env_runners"]["env_runner_cls"] = BatchedBarEnvRunner

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
    from rlexec.envs.portfolio_env import PortfolioEnv

    named = {"bar": BarExecutionEnv, "lob": LOBExecutionEnv, "portfolio": PortfolioEnv}
    if name in named:
        return named[name]
    if isinstance(name, str) and ":" in name:
        return resolve(name, f"{source}: environment.env")
    raise ConfigError(f"{source}: environment.env must be 'bar', 'lob', 'portfolio' or 'package.module:Class', got {name!r}")


def module_spec(rl_module: dict[str, Any], env_config: dict[str, Any], source: str):
    """``{module: default|<registered>, model_config: {...}}`` -> RLModuleSpec."""
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    unknown = set(rl_module) - set(RL_MODULE_KEYS)
    if unknown:
        raise ConfigError(f"{source}: rl_module: unknown key(s) {sorted(unknown)}; use 'module' and 'model_config'")
    kind = rl_module.get("module", "default")
    model_config = dict(rl_module.get("model_config") or {})
    if kind == "default":
        return RLModuleSpec(model_config=model_config)
    return get_module(kind, source).build_spec(model_config, env_config)


def builder_keys(config_class: type, method: str) -> tuple[str, ...] | None:
    """The keyword arguments RLlib's ``config_class.method()`` takes; None where any is accepted.

    RLlib's subclasses take their own keys and pass ``**kwargs`` on to ``super()``: the keys are
    collected up the class hierarchy until a definition without ``**kwargs``.
    """
    keys: set[str] = set()
    for klass in config_class.__mro__:
        if method not in vars(klass):
            continue
        params = inspect.signature(vars(klass)[method]).parameters
        keys.update(name for name, p in params.items()
                    if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return tuple(sorted(keys))
    return None


def _call(config, method: str, kwargs: dict[str, Any], source: str) -> None:
    keys = builder_keys(type(config), method)
    if keys is not None:
        unknown = set(kwargs) - set(keys)
        if unknown:
            raise ConfigError(f"{source}: {method}: unknown key(s) {sorted(unknown)} for "
                              f"{type(config).__name__}.{method}()")
    try:
        getattr(config, method)(**kwargs)
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

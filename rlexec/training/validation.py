"""Periodic validation of a bar-env policy while it trains: the learning curve of issue 11.

A training YAML may carry::

    validation: {every: 1, orders: 200, seed: 0, actor: greedy}

Every ``every`` iterations the current policy (the Learner's weights) executes the same ``orders``
parent orders drawn (with ``seed``) from the validation part of the env's split, through the one
evaluation loop (:func:`rlexec.evaluation.runner.run_episodes`), and the iteration's line in
``progress.jsonl`` gets ``validation_pa_bps`` (mean PA), ``validation_pa_se``, ``validation_fill_rate``
and ``validation_reward``. The orders are fixed for the whole run, so the curve moves only with the
policy. The defaults (every iteration, 200 orders, seed 0, greedy) are rlexec's, chosen to cost well
under a second per iteration next to a PPO iteration on the bar env.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from rlexec.configs import config_from_dict
from rlexec.errors import ConfigError

if TYPE_CHECKING:
    from rlexec.training.spec import TrainSpec

PREFIX = "validation_"


@dataclass(frozen=True, kw_only=True)
class ValidationSpec:
    every: int = 1
    orders: int = 200
    seed: int = 0
    actor: str = "greedy"

    def __post_init__(self) -> None:
        from rlexec.policies.actors import ACTOR_KINDS

        for name in ("every", "orders"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"validation.{name} must be an integer >= 1, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise ConfigError(f"validation.seed must be a non-negative integer, got {self.seed!r}")
        if self.actor not in ACTOR_KINDS:
            raise ConfigError(f"validation.actor must be one of {ACTOR_KINDS}, got {self.actor!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> "ValidationSpec":
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: validation must be a mapping (every, orders, seed, actor), got {data!r}")
        try:
            return config_from_dict(cls, data)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Validator:
    """The validation orders of a bar-env run, drawn once (a sweep's
    :class:`~rlexec.training.sweep.Scorer` on the split's validation part); ``validator(algo)``
    scores the current policy."""

    def __init__(self, spec: ValidationSpec, train: TrainSpec):
        from rlexec.data.splits import DataSplit
        from rlexec.training.sweep import Scorer, ScoreSpec

        environment = train.sections.get("environment") or {}
        env_config = environment.get("env_config") or {}
        if environment.get("env", "bar") != "bar" or not env_config.get("split"):
            raise ConfigError(f"{train.source}: validation needs the bar env with a split "
                              "(environment.env_config.split), whose validation days host the orders")
        if not DataSplit.from_dict(env_config["split"]).validation_days:
            raise ConfigError(f"{train.source}: validation: the split has no validation days")
        self.spec = spec
        self.oracle = bool(env_config.get("oracle", False))
        self.scorer = Scorer(ScoreSpec(split=env_config["split"], part="validation", num_orders=spec.orders,
                                       seed=spec.seed), train)
        self._module = None  # fetched once: with remote EnvRunners only, a copy comes over the network

    def due(self, iteration: int) -> bool:
        return iteration % self.spec.every == 0

    def __call__(self, algo) -> dict[str, float]:
        from rlexec.policies.actors import make_actor

        self._module = current_module(algo, self._module)
        execution = self.scorer.execution
        values = execution.action_values if self.spec.actor == "expected" else None
        actor = make_actor(self._module, self.spec.actor, seed=self.spec.seed, action_values=values)
        means = self.scorer.run(self._module, oracle=self.oracle, actor=actor).summary.means
        return {f"{PREFIX}pa_bps": means["price_advantage_bps"].mean, f"{PREFIX}pa_se": means["price_advantage_bps"].se,
                f"{PREFIX}fill_rate": means["fill_rate"].mean, f"{PREFIX}reward": means["reward"].mean}


def current_module(algo, module=None, module_id: str = "default_policy"):
    """``module`` (default: the algorithm's inference module, :meth:`Algorithm.get_module`) given the
    Learner's current weights, so the figure never lags behind a weight sync that was dropped or not
    yet made. With ``num_env_runners: 0`` it is the sampling module, which every iteration's weight
    sync sets to these same weights."""
    from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE

    module = module if module is not None else algo.get_module(module_id)
    state = algo.learner_group.get_state(components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}/{module_id}",
                                         inference_only=True)
    module.set_state(state[COMPONENT_LEARNER][COMPONENT_RL_MODULE][module_id])
    return module

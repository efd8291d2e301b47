"""Logic-Q on the bar execution env: trend features of the order's own past closes, the adjusted
policy as an acting object of the evaluation loop, and the (Aug) env.

Decision time ``t`` of an order sees the closes of the bars that have closed (its lookback bars and
the horizon's minutes so far, :attr:`~rlexec.envs.engine.ExecState.visible_minutes`); the trend
features read the last ``window`` of them through :class:`~rlexec.logicq.features.PastCloses`
(default: 30 one-minute bars, one decision interval, spec 3.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rlexec.data.panel import CLOSE
from rlexec.envs.bar_env import BarExecutionEnv
from rlexec.envs.config import ExecutionConfig
from rlexec.envs.engine import ExecState, OrderBatch
from rlexec.envs.interpreters import ObservationInterpreter
from rlexec.errors import ConfigError
from rlexec.logicq.adjust import AdjustedModel
from rlexec.logicq.features import PastCloses, TrendFeatureConfig, TrendFeatures
from rlexec.logicq.sketch import EnsembleHoles, Sketch, TemperatureHoles

ACT_MODES = ("sampled", "expected")
AUG_KEY = "trend_features"  # env_config key of the (Aug) env: a TrendFeatureConfig mapping
NUM_AUG_INPUTS = 3


def state_closes(state: ExecState) -> PastCloses:
    """The closes each order of ``state`` has seen at its decision time (none after it)."""
    return batch_closes(state.batch, state.visible_minutes)


def batch_closes(batch: OrderBatch, visible_minutes: int) -> PastCloses:
    if visible_minutes < 1:
        raise ConfigError("Logic-Q trend features need at least one closed bar at the first decision: "
                          "set execution.lookback_minutes >= 1")
    return PastCloses(batch.window_bars[:, :, CLOSE], visible_minutes - 1)


def decision_features(batch: OrderBatch, execution: ExecutionConfig, config: TrendFeatureConfig) -> TrendFeatures:
    """Features at every decision time of every order (the pool the threshold bounds are drawn from)."""
    return TrendFeatures.concatenate([
        config(batch_closes(batch, batch.lookback_minutes + t * execution.step_minutes))
        for t in range(execution.n_steps)])


def aug_inputs(features: TrendFeatures) -> np.ndarray:
    """(N, 3) float32 inputs of the (Aug) policy: sqrt(vol) and dr in percent of the window's first close
    (with ``relative`` features), gr in percent. Why the square root and the percent: inputs of order 1."""
    return np.stack([np.sqrt(features.vol) * 100.0, features.dr * 100.0, features.gr], axis=1).astype(np.float32)


def aug_config(env_config: dict[str, Any]) -> TrendFeatureConfig | None:
    data = env_config.get(AUG_KEY)
    if data is None:
        return None
    if not isinstance(data, dict) or set(data) - {"window", "relative"}:
        raise ConfigError(f"env_config.{AUG_KEY} must be a mapping of window and relative, got {data!r}")
    return TrendFeatureConfig(**data)


class TrendAugmentedBarEnv(BarExecutionEnv):
    """(Aug): the bar env whose observation ends with :func:`aug_inputs` of the order's past closes.

    ``env_config`` is the bar env's plus ``trend_features: {window, relative}`` (default 30, true).
    Everything else (orders, fills, reward) is the bar env's.
    """

    def __init__(self, config: dict[str, Any] | None = None, **kwargs):
        config = dict(config or {})
        config.setdefault(AUG_KEY, {"window": 30, "relative": True})
        super().__init__(config, **kwargs)
        self.trend_config = aug_config(config)
        base = self.observation_space
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(base.shape[0] + NUM_AUG_INPUTS,),
                                                dtype=np.float32)

    def _augment(self, obs: np.ndarray) -> np.ndarray:
        extra = aug_inputs(self.trend_config(state_closes(self.state)))[0]
        return np.concatenate([obs, extra]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return self._augment(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return self._augment(obs), reward, terminated, truncated, info


class AdjustedExecution:
    """An acting object of :func:`~rlexec.evaluation.runner.run_episodes` (``fractions(state)``): the
    frozen model(s) adjusted by the sketch's holes of each order's current trend, executed by seeded
    sampling or by the expected fraction of Q.

    ``augment``: the models read the (Aug) observation (their env had ``trend_features``).
    """

    def __init__(self, name: str, models: Sequence[Any], holes: TemperatureHoles | EnsembleHoles, *,
                 sketch: Sketch, features: TrendFeatureConfig, execution: ExecutionConfig, act: str = "expected",
                 seed: int = 0, augment: TrendFeatureConfig | None = None):
        from rlexec.policies.actors import ExpectedFractionActor, SampledActor

        if act not in ACT_MODES:
            raise ConfigError(f"act must be one of {ACT_MODES} (a greedy argmax ignores the temperature), got {act!r}")
        if execution.action_interpreter != "fraction":  # both modes read action_values as fractions of Q
            raise ConfigError("Logic-Q execution needs execution.action_interpreter: fraction (its actions are "
                              f"fractions of Q), got {execution.action_interpreter!r}")
        self.name, self.sketch, self.holes, self.features, self.augment = name, sketch, holes, features, augment
        self.values = np.asarray(execution.action_values, dtype=np.float64)
        self.observe = ObservationInterpreter(execution)
        self.model = AdjustedModel(models, holes)
        self.act = act
        self.actor = (SampledActor(self.model, seed=seed) if act == "sampled"
                      else ExpectedFractionActor(self.model, self.values))
        self.trend_log: list[np.ndarray] = []  # the trend of every decision, for the study's statistics

    def fractions(self, state: ExecState) -> np.ndarray:
        closes = state_closes(state)
        trends = self.sketch.classify(self.features(closes), self.holes.thresholds)
        self.trend_log.append(trends)
        obs = self.observe(state)
        if self.augment is not None:
            obs = np.concatenate([obs, aug_inputs(self.augment(closes))], axis=1)
        self.model.set_trends(trends)
        actions = self.actor.actions(obs)
        return self.values[actions] if self.act == "sampled" else actions[:, 0]

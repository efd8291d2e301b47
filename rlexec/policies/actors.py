"""How anything acts with a policy: action distributions of a trained model, turned into actions.

A *model* is whatever maps a batch of observations to action logits: a trained RLlib RLModule
(``forward_inference``) or an exported :class:`~rlexec.policies.expert.ExpertPolicy`. Three ways of
acting on those logits, all batched over N observations:

* :class:`GreedyActor`: the argmax (a module that returns its own ``actions``, e.g. a Q-table's
  greedy lookup, is taken at its word);
* :class:`SampledActor`: a draw from the categorical distribution, from its own seeded generator,
  so two runs with one seed act identically whatever else draws random numbers;
* :class:`ExpectedFractionActor`: the expectation of the action's value, ``sum_a pi(a|s) v_a``, for
  discrete actions that stand for numbers (the bar env's fractions of Q); a temperature reshapes
  ``pi`` first, which is what post-hoc tuning such as Logic-Q adjusts (a greedy argmax ignores it).

:func:`log_probs` gives ``log pi(a|s)`` of given actions under any model: the trajectory recorder
stores it for every policy passed in. Nothing here needs a running Ray.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from rlexec.errors import ConfigError


@runtime_checkable
class Actor(Protocol):
    """``observations (N, obs_dim) -> actions (N,)`` (or ``(N, 1)`` fractions for continuous actions)."""

    name: str

    def actions(self, observations: np.ndarray) -> np.ndarray: ...


def action_logits(model: Any, observations: np.ndarray) -> torch.Tensor:
    """(N, num_actions) logits of ``model`` for (N, obs_dim) observations, without gradients."""
    obs = torch.from_numpy(np.ascontiguousarray(observations, dtype=np.float32))
    with torch.no_grad():
        if hasattr(model, "forward_inference"):  # an RLlib RLModule
            from ray.rllib.core.columns import Columns

            out = model.forward_inference({Columns.OBS: obs})
            if Columns.ACTION_DIST_INPUTS not in out:  # e.g. a Q-network: its inference output is argmax Q
                raise ConfigError(f"{type(model).__name__} outputs greedy actions only, no action distribution: "
                                  "act with the greedy actor (--actor greedy)")
            return out[Columns.ACTION_DIST_INPUTS]
        return model.logits(obs)


def log_probs(model: Any, observations: np.ndarray, actions: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N,) ``log pi(a_n | s_n)`` under ``softmax(logits / temperature)``."""
    logits = action_logits(model, observations) / temperature
    index = torch.as_tensor(np.asarray(actions, dtype=np.int64).reshape(-1, 1))
    return torch.log_softmax(logits, dim=-1).gather(-1, index).squeeze(-1).numpy().astype(np.float64)


def greedy_actions(model: Any, observations: np.ndarray) -> np.ndarray:
    """(N,) argmax actions; a module that outputs ``actions`` itself (a greedy Q lookup) is used as is, and so
    is a model with its own ``greedy(obs)`` rule (a shared-action expert: its mode of each factor, not the
    joint argmax, which would favour hold)."""
    if callable(getattr(model, "greedy", None)):
        return np.asarray(model.greedy(observations), dtype=np.int64).reshape(-1)
    if hasattr(model, "forward_inference"):
        from ray.rllib.core.columns import Columns

        obs = torch.from_numpy(np.ascontiguousarray(observations, dtype=np.float32))
        with torch.no_grad():
            out = model.forward_inference({Columns.OBS: obs})
        if Columns.ACTIONS in out:
            return np.asarray(out[Columns.ACTIONS]).reshape(-1)
        return out[Columns.ACTION_DIST_INPUTS].argmax(-1).numpy()
    return action_logits(model, observations).argmax(-1).numpy()


def draw_categories(probabilities: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """(N,) inverse-CDF draw of one category per row of ``probabilities`` (N, A) from ``uniforms`` (N,); one
    uniform per row, so a stream depends only on its seed and the row count (rounding can leave the last
    cumulative sum just below 1: the last category then takes the remainder)."""
    cumulative = np.cumsum(probabilities, axis=1)
    return np.minimum((cumulative < np.asarray(uniforms)[:, None]).sum(axis=1), probabilities.shape[1] - 1)


class GreedyActor:
    def __init__(self, model: Any, name: str = "greedy"):
        self.model, self.name = model, name

    def actions(self, observations: np.ndarray) -> np.ndarray:
        return greedy_actions(self.model, observations)


class SampledActor:
    """Draws from ``softmax(logits / temperature)`` with its own generator (seeded: reproducible)."""

    def __init__(self, model: Any, *, seed: int, temperature: float = 1.0, name: str = "sampled"):
        if not temperature > 0:
            raise ConfigError(f"SampledActor: temperature must be > 0, got {temperature}")
        self.model, self.name, self.temperature = model, name, float(temperature)
        self.rng = np.random.default_rng(seed)

    def probabilities(self, observations: np.ndarray) -> np.ndarray:
        return torch.softmax(action_logits(self.model, observations) / self.temperature, dim=-1).numpy()

    def actions(self, observations: np.ndarray) -> np.ndarray:
        probs = self.probabilities(observations).astype(np.float64)
        return draw_categories(probs, self.rng.random(len(probs)))


class ExpectedFractionActor:
    """``sum_a pi(a|s) v_a`` for discrete actions with values ``v`` (e.g. fractions of Q): shape (N, 1)."""

    def __init__(self, model: Any, action_values: Sequence[float], *, temperature: float = 1.0,
                 name: str = "expected"):
        if not temperature > 0:
            raise ConfigError(f"ExpectedFractionActor: temperature must be > 0, got {temperature}")
        self.model, self.name, self.temperature = model, name, float(temperature)
        self.values = np.asarray(action_values, dtype=np.float64)

    def actions(self, observations: np.ndarray) -> np.ndarray:
        probs = torch.softmax(action_logits(self.model, observations) / self.temperature, dim=-1).numpy()
        if probs.shape[1] != self.values.size:
            raise ConfigError(f"ExpectedFractionActor: the model has {probs.shape[1]} actions, "
                              f"{self.values.size} action values were given")
        return (probs.astype(np.float64) @ self.values)[:, None]


ACTOR_KINDS = ("greedy", "sampled", "expected")


def make_actor(model: Any, kind: str = "greedy", *, seed: int = 0, temperature: float = 1.0,
               action_values: Sequence[float] | None = None, name: str | None = None) -> Actor:
    """One of :data:`ACTOR_KINDS` over ``model``."""
    if kind == "greedy":
        return GreedyActor(model, name or "greedy")
    if kind == "sampled":
        return SampledActor(model, seed=seed, temperature=temperature, name=name or "sampled")
    if kind == "expected":
        if action_values is None:
            raise ConfigError("the 'expected' actor needs the action values (fractions of Q) of the env")
        return ExpectedFractionActor(model, action_values, temperature=temperature, name=name or "expected")
    raise ConfigError(f"actor must be one of {ACTOR_KINDS}, got {kind!r}")

"""What the trend's hole does to frozen policies (spec 3.3), batched over N decisions.

* Single model: ``pi'(a|s) = softmax(z(s) / phi_tau)``, the frozen logits ``z`` at the trend's
  temperature. phi = 1 is the frozen policy; phi -> inf tends to uniform; phi -> 0 to the argmax.
* Ensemble of k models: ``pi~(s) = sum_i w_tau,i pi_i(s)`` with the trend's weights put on the simplex
  (:func:`simplex`). The same :func:`mix` mixes continuous actions (daily trading: target weights).

A greedy argmax ignores the temperature, so the adjusted policy is executed by seeded sampling or by
the expected action value: :class:`AdjustedModel` exposes ``logits`` (``log pi'``) so the existing
:class:`~rlexec.policies.actors.SampledActor` and :class:`~rlexec.policies.actors.ExpectedFractionActor`
act on it unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rlexec.errors import ConfigError
from rlexec.logicq.sketch import EnsembleHoles, TemperatureHoles


def tempered_probabilities(logits: np.ndarray, temperature: np.ndarray | float) -> np.ndarray:
    """(N, A) ``softmax(logits / temperature)``; ``temperature`` a scalar or one per row, each > 0."""
    z = np.asarray(logits, dtype=np.float64)
    phi = np.broadcast_to(np.asarray(temperature, dtype=np.float64), z.shape[:1])
    if not np.all(phi > 0):
        raise ConfigError(f"temperature must be > 0, got {phi[~(phi > 0)][0]!r}")
    scaled = z / phi[:, None]
    scaled -= scaled.max(axis=1, keepdims=True)  # why: exp of large logits / small phi overflows
    p = np.exp(scaled)
    return p / p.sum(axis=1, keepdims=True)


def simplex(weights: np.ndarray) -> np.ndarray:
    """Rows of non-negative raw weights scaled to sum 1 (``||w||_1 = 1``); an all-zero row becomes uniform."""
    w = np.asarray(weights, dtype=np.float64)
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ConfigError(f"ensemble weights must be finite and >= 0, got {w.tolist()}")
    total = w.sum(axis=-1, keepdims=True)
    uniform = np.full_like(w, 1.0 / w.shape[-1])
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), uniform)


def mix(components: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``sum_i w_{n,i} c_{i,n,...}``: components (k, N, ...) (probabilities or actions), weights (N, k) on the simplex."""
    c = np.asarray(components, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (c.shape[1], c.shape[0]):
        raise ConfigError(f"mix: weights must be (N, k) = {(c.shape[1], c.shape[0])}, got {w.shape}")
    return np.einsum("nk,kn...->n...", w, c)


def model_probabilities(model: Any, observations: np.ndarray) -> np.ndarray:
    """(N, A) the frozen model's own action probabilities (temperature 1)."""
    from rlexec.policies.actors import action_logits

    return tempered_probabilities(action_logits(model, observations).numpy(), 1.0)


class AdjustedModel:
    """The frozen model(s) under the holes of the trends set by :meth:`set_trends`: a model whose
    ``logits`` are ``log pi'`` (softmax of them is ``pi'``), for the actors of :mod:`rlexec.policies.actors`.

    ``holes``: :class:`TemperatureHoles` (one model) or :class:`EnsembleHoles` (one model per weight).
    """

    def __init__(self, models: Sequence[Any], holes: TemperatureHoles | EnsembleHoles):
        self.models, self.holes = list(models), holes
        if isinstance(holes, TemperatureHoles):
            if len(self.models) != 1:
                raise ConfigError(f"temperature holes adjust one model, got {len(self.models)}")
            self._per_trend = holes.temperature.stack()  # (5,)
        elif isinstance(holes, EnsembleHoles):
            self._per_trend = simplex(holes.weights.stack())  # (5, k)
            if self._per_trend.shape[1] != len(self.models):
                raise ConfigError(f"ensemble holes carry {self._per_trend.shape[1]} weights per trend, "
                                  f"{len(self.models)} models were given")
        else:
            raise ConfigError(f"holes must be TemperatureHoles or EnsembleHoles, got {type(holes).__name__}")
        self.trends: np.ndarray | None = None

    def set_trends(self, trends: np.ndarray) -> None:
        self.trends = np.asarray(trends, dtype=np.int64).reshape(-1)

    def probabilities(self, observations: np.ndarray) -> np.ndarray:
        from rlexec.policies.actors import action_logits

        obs = np.asarray(observations)
        if self.trends is None or len(self.trends) != len(obs):
            raise ConfigError(f"AdjustedModel: set_trends() with one trend per observation ({len(obs)}) first")
        if isinstance(self.holes, TemperatureHoles):
            return tempered_probabilities(action_logits(self.models[0], obs).numpy(), self._per_trend[self.trends])
        components = np.stack([model_probabilities(m, obs) for m in self.models])
        return mix(components, self._per_trend[self.trends])

    def logits(self, observations) -> torch.Tensor:
        obs = observations.numpy() if isinstance(observations, torch.Tensor) else observations
        with np.errstate(divide="ignore"):
            return torch.from_numpy(np.log(self.probabilities(obs)))

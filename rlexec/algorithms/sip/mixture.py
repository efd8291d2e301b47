"""Three ways to act with a weighted mixture of experts over the shared LOB action space (spec 1.3).

Each is an :class:`~rlexec.policies.actors.Actor` (``actions(observations)``, one row per episode, as
:func:`rlexec.evaluation.run_episodes` calls it), built from weights ``w`` (K,) and K experts that
follow the shared-action contract (:class:`rlexec.policies.expert.ExpertPolicy`: ``probabilities(obs)``
(T, A), ``log_probs(obs, actions)`` (T,), ``greedy(obs)`` (T,), numpy in and out):

* :class:`EpisodeDrawMixture` (a): each episode draws one expert ``k ~ w`` and follows it for the
  whole episode: a mixture of trajectories, ``pi(tau) = sum_k w_k pi_k(tau)``. Spec 1.3's [DEFAULT]
  for data collection.
* :class:`StepMixture` (b): every step draws ``a ~ sum_k w_k pi_k(. | s)``; its ``log_probs`` is
  ``log sum_k w_k pi_k(a | s)``.
* :class:`BlendMixture` (c), deterministic: the child size is ``sum_k w_k n_k`` over the experts'
  greedy actions (a holding expert contributes size 0), mapped to the nearest size bucket in log
  space, and the placement (market / limit / hold) is the weighted vote of the experts' greedy
  placements. Spec 1.3's [DEFAULT] for reporting.

Every random draw comes from the actor's own generator seeded at construction, so one seed gives
one sequence of actions whatever else draws random numbers. (a) draws the expert of episode row
``i`` from ``(seed, i)`` alone, so an episode keeps its expert at every step and across runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rlexec.envs.lob_interpreters import HOLD, LIMIT, MARKET, decode_shared_action, shared_action, size_bucket
from rlexec.errors import ConfigError
from rlexec.policies.actors import draw_categories

PLACEMENT_VOTES = (MARKET, LIMIT, HOLD)  # the order also breaks exact ties


def _check_mixture(weights, experts: Sequence[Any], who: str) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if len(experts) < 1 or w.shape != (len(experts),):
        raise ConfigError(f"{who}: one weight per expert needed, got {w.shape[0] if w.ndim else 0} weights "
                          f"for {len(experts)} experts")
    if np.any(w < 0) or not np.all(np.isfinite(w)) or abs(w.sum() - 1.0) > 1e-6:
        raise ConfigError(f"{who}: weights must be a probability vector, got {w.tolist()}")
    return w


def expert_probabilities(experts: Sequence[Any], observations: np.ndarray) -> np.ndarray:
    """(K, N, A) ``pi_k(a | s_n)`` of every expert."""
    return np.stack([np.asarray(e.probabilities(observations), dtype=np.float64) for e in experts])


def mixture_log_probs(weights, experts: Sequence[Any], observations: np.ndarray, actions) -> np.ndarray:
    """(N,) ``log sum_k w_k pi_k(a_n | s_n)``, summed in log space from each expert's ``log_probs``."""
    w = _check_mixture(weights, experts, "mixture_log_probs")
    per_expert = np.stack([np.asarray(e.log_probs(observations, actions), dtype=np.float64) for e in experts])
    with np.errstate(divide="ignore"):
        return _logsumexp(np.log(w)[:, None] + per_expert, axis=0)


def trajectory_log_prob(weights, experts: Sequence[Any], observations: np.ndarray, actions) -> float:
    """``log sum_k w_k prod_t pi_k(a_t | s_t)``: one trajectory under the episode-draw mixture (a)."""
    w = _check_mixture(weights, experts, "trajectory_log_prob")
    per_expert = np.array([float(np.sum(e.log_probs(observations, actions))) for e in experts])
    with np.errstate(divide="ignore"):
        return float(_logsumexp(np.log(w) + per_expert, axis=0))


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(x - top), axis=axis))


class EpisodeDrawMixture:
    """(a) Episode row ``i`` follows expert ``k_i ~ w`` throughout; ``within`` is how that expert acts.

    ``within="sampled"`` (default) draws from ``pi_k`` so the trajectories are distributed as the
    mixture ``sum_k w_k pi_k(tau)``; ``"greedy"`` takes the expert's mode.
    """

    def __init__(self, weights, experts: Sequence[Any], *, seed: int, within: str = "sampled",
                 name: str = "sip_episode"):
        if within not in ("sampled", "greedy"):
            raise ConfigError(f"EpisodeDrawMixture: within must be 'sampled' or 'greedy', got {within!r}")
        self.weights, self.experts = _check_mixture(weights, experts, "EpisodeDrawMixture"), list(experts)
        self.seed, self.within, self.name = int(seed), within, name
        self.rng = np.random.default_rng([self.seed, 1])  # the within-expert draws; stream 0 picks experts
        self._assignments: dict[int, np.ndarray] = {}

    def assignments(self, rows: int) -> np.ndarray:
        """(rows,) the expert each episode row follows: a function of ``(seed, row)`` only."""
        if rows not in self._assignments:  # asked at every step: draw once per batch size
            uniforms = np.array([np.random.default_rng([self.seed, 0, i]).random() for i in range(rows)])
            weights = np.broadcast_to(self.weights, (rows, self.weights.size))
            self._assignments[rows] = draw_categories(weights, uniforms)
        return self._assignments[rows]

    def actions(self, observations: np.ndarray) -> np.ndarray:
        observations = np.asarray(observations)
        chosen = self.assignments(len(observations))
        uniforms = self.rng.random(len(observations))  # drawn for every row, so the stream depends on N only
        actions = np.zeros(len(observations), dtype=np.int64)
        for k, expert in enumerate(self.experts):
            rows = np.flatnonzero(chosen == k)
            if rows.size == 0:
                continue
            if self.within == "greedy":
                actions[rows] = np.asarray(expert.greedy(observations[rows])).reshape(-1)
            else:
                actions[rows] = draw_categories(np.asarray(expert.probabilities(observations[rows]), dtype=np.float64),
                                      uniforms[rows])
        return actions

    def trajectory_log_prob(self, observations: np.ndarray, actions) -> float:
        return trajectory_log_prob(self.weights, self.experts, observations, actions)


class StepMixture:
    """(b) Every step ``a ~ sum_k w_k pi_k(. | s)``, from a generator seeded at construction."""

    def __init__(self, weights, experts: Sequence[Any], *, seed: int, name: str = "sip_step"):
        self.weights, self.experts = _check_mixture(weights, experts, "StepMixture"), list(experts)
        self.name = name
        self.rng = np.random.default_rng(seed)

    def probabilities(self, observations: np.ndarray) -> np.ndarray:
        """(N, A) ``sum_k w_k pi_k(. | s_n)``."""
        return np.einsum("k,kna->na", self.weights, expert_probabilities(self.experts, observations))

    def actions(self, observations: np.ndarray) -> np.ndarray:
        probs = self.probabilities(observations)
        return draw_categories(probs, self.rng.random(len(probs)))

    def log_probs(self, observations: np.ndarray, actions) -> np.ndarray:
        return mixture_log_probs(self.weights, self.experts, observations, actions)


class BlendMixture:
    """(c) Deterministic: size ``sum_k w_k n_k`` on the nearest bucket, placement by weighted vote.

    ``size_multipliers`` must be the env's (``LOBExecutionConfig.size_multipliers``): bucket b asks for
    ``size_multipliers[b]`` times the pace, so the blended multiplier ``sum_k w_k m_k`` is the blended
    child size in units of the pace, which all experts share at one state.
    """

    def __init__(self, weights, experts: Sequence[Any], *, size_multipliers: Sequence[float],
                 name: str = "sip_blend"):
        self.weights, self.experts = _check_mixture(weights, experts, "BlendMixture"), list(experts)
        self.multipliers = np.asarray(size_multipliers, dtype=np.float64)
        if self.multipliers.ndim != 1 or self.multipliers.size < 1 or np.any(self.multipliers <= 0):
            raise ConfigError(f"BlendMixture: size_multipliers must be positive, got {list(size_multipliers)}")
        self.name = name

    def decisions(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N,) blended size multiplier (0 = hold) and (N,) winning placement index in PLACEMENT_VOTES."""
        n = len(observations)
        multiplier = np.zeros(n)
        votes = np.zeros((n, len(PLACEMENT_VOTES)))
        for w, expert in zip(self.weights, self.experts):
            for row, action in enumerate(np.asarray(expert.greedy(observations)).reshape(-1)):
                bucket, placement = decode_shared_action(int(action))
                if bucket is not None:
                    multiplier[row] += w * self.multipliers[bucket]
                votes[row, PLACEMENT_VOTES.index(placement)] += w
        return multiplier, votes.argmax(axis=1)

    def actions(self, observations: np.ndarray) -> np.ndarray:
        multiplier, winner = self.decisions(np.asarray(observations))
        actions = np.full(len(multiplier), shared_action(None, HOLD), dtype=np.int64)
        for row, (m, vote) in enumerate(zip(multiplier, winner)):
            placement = PLACEMENT_VOTES[vote]
            if placement != HOLD and m > 0:
                # the multiplier is the blended size in units of the pace: its bucket is size_bucket(m, pace = 1)
                actions[row] = shared_action(size_bucket(m, 1.0, self.multipliers), placement)
        return actions


MIXTURE_KINDS = ("episode", "step", "blend")


def make_mixture(kind: str, weights, experts: Sequence[Any], *, seed: int = 0,
                 size_multipliers: Sequence[float] | None = None, name: str | None = None):
    """One of :data:`MIXTURE_KINDS`: ``episode`` (a), ``step`` (b) or ``blend`` (c, needs the env's size_multipliers)."""
    if kind == "episode":
        return EpisodeDrawMixture(weights, experts, seed=seed, name=name or "sip_episode")
    if kind == "step":
        return StepMixture(weights, experts, seed=seed, name=name or "sip_step")
    if kind == "blend":
        if size_multipliers is None:
            raise ConfigError("the blend mixture needs the env's size_multipliers")
        return BlendMixture(weights, experts, size_multipliers=size_multipliers, name=name or "sip_blend")
    raise ConfigError(f"mixture must be one of {MIXTURE_KINDS}, got {kind!r}")

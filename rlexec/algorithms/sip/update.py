"""The SIP weight update (spec 1.3): a KL I-projection of the previous weights onto a quality constraint.

Spec 1.3 is rlexec's proposal, not the paper's (no definition of SIP was found). Each episode n gives
every expert k a utility ``u_k = A_k - lambda_F (1 - FR_k)`` (A in bp, FR the fill rate), standardised
across the experts into a score ``s_k``. The new weights are the I-projection

    w^(n) = argmin_{w in simplex} KL(w || w^(n-1))   subject to   sum_k w_k s_k >= c^(n)

whose solution is exponential tilting, ``w_k(lambda) ~ w_k^(n-1) exp(lambda s_k)``, with ``lambda = 0`` if
the previous weights already meet the target and otherwise the root of ``sum_k w_k(lambda) s_k = c``
(found by bisection: the left side is non-decreasing in lambda, its derivative being the variance of s
under ``w(lambda)``). The target is ``c = m + kappa (max_k s_k - m)`` with ``m`` the previous weights'
mean score, lambda is capped at ``lambda_max``, and a fixed-share step ``w <- (1 - alpha) w + alpha / K``
keeps every expert alive for non-stationary markets. ``mode: hedge`` (the ablation) replaces the
projection by a fixed ``lambda = eta``: exponential weights.

Pure numpy; nothing here imports torch or Ray.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rlexec.configs import config_from_dict
from rlexec.errors import ConfigError

MODES = ("sip", "hedge")


@dataclass(frozen=True, kw_only=True)
class SIPConfig:
    """Every value is spec 1.3's [DEFAULT] (rlexec's choice, not the paper's) unless marked otherwise."""

    mode: str = "sip"  # "sip": I-projection with bisection; "hedge": fixed lambda = eta (the ablation)
    fill_penalty_bps: float = 50.0  # [DEFAULT] lambda_F: a fully unfilled order scores -50 bp
    kappa: float = 0.5  # [DEFAULT] share of the gap to the best score the target asks for, in (0, 1)
    lambda_max: float = 10.0  # [DEFAULT] cap on the tilt
    fixed_share: float = 0.01  # [DEFAULT] alpha_fs of the fixed-share step (0 switches it off)
    eta: float = 1.0  # [DEFAULT] Hedge's learning rate (mode "hedge" only)
    score_epsilon: float = 1e-8  # [DEFAULT] added to the std when standardising scores
    tolerance: float = 1e-12  # rlexec: bisection stops when the lambda bracket is this narrow
    max_bisections: int = 200  # rlexec: at most this many halvings (~1e-60 of lambda_max: never the limit)

    def __post_init__(self) -> None:
        checks = {
            "mode": self.mode in MODES,
            "fill_penalty_bps": self.fill_penalty_bps >= 0,
            "kappa": 0 < self.kappa < 1,
            "lambda_max": self.lambda_max > 0,
            "fixed_share": 0 <= self.fixed_share < 1,
            "eta": self.eta >= 0,
            "score_epsilon": self.score_epsilon > 0,
            "tolerance": self.tolerance > 0,
            "max_bisections": self.max_bisections >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"sip.{name}: invalid value {getattr(self, name)!r}"
                                  + (f" (one of {MODES})" if name == "mode" else ""))

    @classmethod
    def from_dict(cls, data: dict | None) -> SIPConfig:
        return config_from_dict(cls, data or {})

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Step:
    """One episode's update: the scores, the target, the tilt, and the weights before and after."""

    scores: np.ndarray  # (K,) standardised s_k
    target: float  # c^(n)
    lam: float  # the tilt used (0 when the constraint already held; eta in hedge mode)
    tilted: np.ndarray  # (K,) w(lambda), before the fixed-share step
    weights: np.ndarray  # (K,) after the fixed-share step
    constraint_met: bool  # sum w(lambda) s >= c (False only when lambda hit lambda_max first)


def utilities(advantage_bps, fill_rate, fill_penalty_bps: float) -> np.ndarray:
    """``u = A - lambda_F (1 - FR)``, elementwise (any matching shapes)."""
    advantage, fill = np.asarray(advantage_bps, dtype=np.float64), np.asarray(fill_rate, dtype=np.float64)
    if advantage.shape != fill.shape:
        raise ValueError(f"advantage {advantage.shape} and fill rate {fill.shape} must have one shape")
    return advantage - fill_penalty_bps * (1.0 - fill)


def standardise(utility, epsilon: float = 1e-8) -> np.ndarray:
    """``(u - mean u) / (std u + epsilon)`` across the experts (the last axis)."""
    u = np.asarray(utility, dtype=np.float64)
    return (u - u.mean(axis=-1, keepdims=True)) / (u.std(axis=-1, keepdims=True) + epsilon)


def tilt(weights, scores, lam: float) -> np.ndarray:
    """``w_k exp(lam s_k) / sum_j w_j exp(lam s_j)``, computed in log space (zero weights stay zero)."""
    w, s = _check_simplex(weights), np.asarray(scores, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logits = np.log(w) + lam * s
    logits -= logits.max()
    tilted = np.exp(logits)
    return tilted / tilted.sum()


def mean_score(weights, scores, lam: float = 0.0) -> float:
    """``sum_k w_k(lam) s_k``: non-decreasing in ``lam`` (its derivative is the variance of s under w(lam))."""
    return float(tilt(weights, scores, lam) @ np.asarray(scores, dtype=np.float64))


def target(weights, scores, kappa: float) -> float:
    """``c = m + kappa (max_k s_k - m)`` with ``m`` the weights' mean score."""
    m = mean_score(weights, scores)
    return m + kappa * (float(np.max(scores)) - m)


def solve_lambda(weights, scores, c: float, *, lambda_max: float, tolerance: float = 1e-12,
                 max_bisections: int = 200) -> tuple[float, bool]:
    """The smallest ``lam`` in [0, lambda_max] with ``sum_k w_k(lam) s_k >= c``; ``(lam, met)``.

    ``lam = 0`` when the weights already meet ``c``; ``(lambda_max, False)`` when even the cap does not.
    Between, bisection on the monotone mean score returns the upper end of a bracket narrower than
    ``tolerance``, so the constraint holds (up to rounding) with equality.
    """
    if mean_score(weights, scores, 0.0) >= c:
        return 0.0, True
    if mean_score(weights, scores, lambda_max) < c:
        return float(lambda_max), False
    low, high = 0.0, float(lambda_max)
    for _ in range(max_bisections):
        if high - low <= tolerance:
            break
        middle = 0.5 * (low + high)
        if mean_score(weights, scores, middle) >= c:
            high = middle
        else:
            low = middle
    return high, True


def fixed_share(weights, alpha: float) -> np.ndarray:
    """``(1 - alpha) w + alpha / K``: every weight at least ``alpha / K`` afterwards."""
    w = np.asarray(weights, dtype=np.float64)
    return (1.0 - alpha) * w + alpha / w.size


def update(weights, utility, config: SIPConfig) -> Step:
    """One SIP (or Hedge) step from the previous weights and this episode's utilities ``u_k``."""
    w = _check_simplex(weights)
    u = np.asarray(utility, dtype=np.float64)
    if u.shape != w.shape:
        raise ValueError(f"utilities {u.shape} must match the weights {w.shape}")
    if not np.all(np.isfinite(u)):
        raise ValueError(f"utilities must be finite, got {u.tolist()}")
    s = standardise(u, config.score_epsilon)
    c = target(w, s, config.kappa)
    if config.mode == "hedge":
        lam, met = config.eta, None
    else:
        lam, met = solve_lambda(w, s, c, lambda_max=config.lambda_max, tolerance=config.tolerance,
                                max_bisections=config.max_bisections)
    tilted = tilt(w, s, lam)
    met = bool(tilted @ s >= c - 1e-9) if met is None else met
    return Step(scores=s, target=c, lam=float(lam), tilted=tilted, weights=fixed_share(tilted, config.fixed_share),
                constraint_met=met)


@dataclass(frozen=True)
class History:
    """A sequence of SIP steps over the episodes of one regime; ``weights[0]`` is the prior."""

    weights: np.ndarray  # (N + 1, K)
    scores: np.ndarray  # (N, K)
    targets: np.ndarray  # (N,)
    lambdas: np.ndarray  # (N,)
    constraint_met: np.ndarray  # (N,) bool

    @property
    def final(self) -> np.ndarray:
        return self.weights[-1]


def run(utility, config: SIPConfig, prior=None) -> History:
    """SIP over the rows of ``utility`` (N episodes x K experts), from ``prior`` (default uniform)."""
    u = np.asarray(utility, dtype=np.float64)
    if u.ndim != 2 or u.shape[1] < 2:
        raise ValueError(f"utilities must be (episodes, experts >= 2), got shape {u.shape}")
    w = np.full(u.shape[1], 1.0 / u.shape[1]) if prior is None else _check_simplex(prior)
    steps = []
    weights = [w]
    for row in u:
        step = update(weights[-1], row, config)
        steps.append(step)
        weights.append(step.weights)
    return History(
        weights=np.stack(weights),
        scores=np.stack([s.scores for s in steps]) if steps else np.zeros((0, u.shape[1])),
        targets=np.array([s.target for s in steps]), lambdas=np.array([s.lam for s in steps]),
        constraint_met=np.array([s.constraint_met for s in steps], dtype=bool),
    )


def _check_simplex(weights) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or w.size < 1 or np.any(w < 0) or not np.all(np.isfinite(w)) or abs(w.sum() - 1.0) > 1e-6:
        raise ValueError(f"weights must be a probability vector, got {w.tolist()}")
    return w

"""Small-sample statistics for result tables: mean ± standard error, paired differences with CIs."""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np


def t_cdf(t: float, dof: int) -> float:
    """Student-t CDF for integer ``dof``, exact, by the classical finite series in theta = atan(t / sqrt(dof))."""
    theta = math.atan(t / math.sqrt(dof))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if dof % 2 == 1:  # odd: (2/pi)(theta + sin cos (1 + 2/3 c^2 + 2*4/(3*5) c^4 + ...))
        term, total = 1.0, 1.0 if dof > 1 else 0.0
        for k in range(1, (dof - 1) // 2):
            term *= c2 * (2 * k) / (2 * k + 1)
            total += term
        inside = (2 / math.pi) * (theta + s * math.cos(theta) * total)
    else:  # even: sin (1 + c^2/2 + 1*3/(2*4) c^4 + ...)
        term, total = 1.0, 1.0
        for k in range(1, dof // 2):
            term *= c2 * (2 * k - 1) / (2 * k)
            total += term
        inside = s * total
    return 0.5 + 0.5 * inside


def t_quantile(p: float, dof: int) -> float:
    """Student-t quantile for integer ``dof`` by bisection on :func:`t_cdf` (no scipy needed for one number)."""
    if dof <= 0 or not 0 < p < 1:
        return float("nan")
    lo, hi = -1e6, 1e6
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, dof) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class MeanSE:
    mean: float
    se: float
    n: int

    def format(self, digits: int = 2) -> str:
        if not np.isfinite(self.mean):
            return "n/a"
        return f"{self.mean:.{digits}f} ± {self.se:.{digits}f}"


def mean_se(values: np.ndarray) -> MeanSE:
    """Mean and standard error (ddof = 1) over the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return MeanSE(float("nan"), float("nan"), 0)
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return MeanSE(float(v.mean()), se, int(v.size))


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` on the same orders: mean, standard error and a two-sided confidence interval."""

    mean: float
    se: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_difference(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> PairedDifference:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same orders: shapes {a.shape} and {b.shape}")
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    if d.size < 2:
        return PairedDifference(float("nan"), float("nan"), float("nan"), float("nan"), int(d.size), confidence)
    m, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(d.size))
    half = t_quantile(0.5 + confidence / 2, d.size - 1) * se
    return PairedDifference(m, se, m - half, m + half, int(d.size), confidence)

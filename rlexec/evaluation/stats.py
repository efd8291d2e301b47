"""Small-sample statistics for result tables: mean ± standard error, paired differences with CIs."""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


def t_quantile(p: float, dof: int) -> float:
    """Student-t quantile by the Cornish-Fisher expansion around the normal (error < 1e-3 for dof >= 5).

    Avoids a scipy dependency for one number; for dof < 5 it is conservative enough for reporting.
    """
    z = NormalDist().inv_cdf(p)
    if dof <= 0:
        return float("nan")
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / dof + g2 / dof**2 + g3 / dof**3 + g4 / dof**4


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

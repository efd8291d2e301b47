"""Market-trend inputs of the Logic-Q sketch (spec 3.1), computed from past closes only.

Every feature of decision time ``t`` is read through :class:`PastCloses`, which holds a *copy* of
the closes up to and including ``t``: nothing after ``t`` is even referenced, so a feature cannot
look ahead however it is written.

Over the window of the last ``G`` closes ``x_1..x_G`` (``x_G`` the close at ``t``):

* volatility ``vol = (1/G) sum_i (x_i - mean)^2`` (population variance of the closes);
* downside risk ``dr = sqrt((1/n) sum_{x_i < mean} (mean - x_i)^2)``, ``n`` the closes below the
  mean (0 when none is);
* growth rate ``gr = (x_G - x_1) / x_1 * 100`` when ``x_G > x_1``, else 0 (percent).

Before ``G`` closes exist the window holds those that do. ``relative=True`` divides the window by its
first close before vol and dr (gr is scale-free anyway): rlexec's option, not the paper's, so that
one threshold means the same for a $20 and a $200 stock; the spec's formula is ``relative=False``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rlexec.errors import ConfigError


class PastCloses:
    """Closes of N series known at position ``t`` (inclusive); later positions are not kept."""

    def __init__(self, closes: np.ndarray, t: int):
        closes = np.asarray(closes, dtype=np.float64)
        if closes.ndim == 1:
            closes = closes[None, :]
        if closes.ndim != 2:
            raise ConfigError(f"PastCloses: closes must be (T,) or (N, T), got shape {closes.shape}")
        if not 0 <= t < closes.shape[1]:
            raise ConfigError(f"PastCloses: position t={t} is outside the {closes.shape[1]} closes")
        self._known = closes[:, : t + 1].copy()
        self._known.setflags(write=False)

    @property
    def t(self) -> int:
        return self._known.shape[1] - 1

    def last(self, count: int) -> np.ndarray:
        """(N, min(count, t + 1)) the latest ``count`` closes up to ``t``, oldest first (read-only)."""
        if count < 1:
            raise ConfigError(f"PastCloses.last: count must be >= 1, got {count}")
        return self._known[:, -count:]


@dataclass(frozen=True)
class TrendFeatures:
    """``I_mar(t)`` of N series: arrays of shape (N,)."""

    vol: np.ndarray
    dr: np.ndarray
    gr: np.ndarray

    def __len__(self) -> int:
        return len(self.vol)

    @classmethod
    def concatenate(cls, parts: list["TrendFeatures"]) -> "TrendFeatures":
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("vol", "dr", "gr")))


@dataclass(frozen=True, kw_only=True)
class TrendFeatureConfig:
    """``window``: G, closes per window (execution: 30 one-minute bars = one decision interval; daily
    trading: 20 days, spec 3.4). ``relative``: see the module docstring (rlexec's option; default off)."""

    window: int = 30
    relative: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.window, int) or isinstance(self.window, bool) or self.window < 2:
            raise ConfigError(f"TrendFeatureConfig.window must be an integer >= 2, got {self.window!r}")
        if not isinstance(self.relative, bool):
            raise ConfigError(f"TrendFeatureConfig.relative must be true or false, got {self.relative!r}")

    def __call__(self, closes: PastCloses) -> TrendFeatures:
        return window_features(closes.last(self.window), relative=self.relative)


def window_features(window: np.ndarray, *, relative: bool = False) -> TrendFeatures:
    """vol, dr, gr of each row of an (N, G) window of closes, oldest first."""
    x = np.asarray(window, dtype=np.float64)
    start, end = x[:, 0], x[:, -1]
    if relative:
        x = x / start[:, None]
    mean = x.mean(axis=1, keepdims=True)
    vol = ((x - mean) ** 2).mean(axis=1)
    below = x < mean
    shortfall = np.where(below, (mean - x) ** 2, 0.0).sum(axis=1)
    count = below.sum(axis=1)
    dr = np.sqrt(np.divide(shortfall, count, out=np.zeros_like(shortfall), where=count > 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        gr = np.where(end > start, (end - start) / start * 100.0, 0.0)
    return TrendFeatures(vol=vol, dr=dr, gr=gr)


def feature_series(closes: np.ndarray, config: TrendFeatureConfig, start: int = 0) -> TrendFeatures:
    """Features of one series at every position from ``start`` on, each read through :class:`PastCloses`."""
    closes = np.asarray(closes, dtype=np.float64).reshape(-1)
    return TrendFeatures.concatenate([config(PastCloses(closes, t)) for t in range(start, len(closes))])

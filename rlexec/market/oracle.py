"""The exogenous fundamental value: a mean-reverting path with jumps, drawn once per session.

Drawing the path up front on a fixed grid (rather than lazily at observation times, as ABIDES'
SparseMeanRevertingOracle does) makes the path independent of who looks at it, so the same
seed gives the same fundamental whatever the agents or the external trader do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from rlexec.market.config import NS_PER_SECOND, FundamentalConfig, SessionConfig


@dataclass(frozen=True)
class FundamentalPath:
    """Fundamental value in ticks at ``start_ns + i * step_ns``; constant between grid points."""

    start_ns: int
    step_ns: int
    values: np.ndarray

    def times_ns(self) -> np.ndarray:
        return self.start_ns + self.step_ns * np.arange(self.values.size, dtype=np.int64)

    def at(self, t_ns: int) -> float:
        return float(self.at_many(np.array([t_ns]))[0])

    def at_many(self, t_ns: np.ndarray) -> np.ndarray:
        i = np.clip((np.asarray(t_ns, dtype=np.int64) - self.start_ns) // self.step_ns, 0, self.values.size - 1)
        return self.values[i]


@njit(cache=True)
def _ou_with_jumps(r0, means, vols, shock_rates, kappa, dt, shock_mean, shock_std, rng):
    """Exact OU transition per step with a time-varying mean and volatility, plus jumps."""
    n = means.size
    out = np.empty(n)
    decay = np.exp(-kappa * dt)
    var_scale = (1.0 - decay * decay) / (2.0 * kappa)
    r = r0
    for i in range(n):
        if i > 0:
            r = means[i] + (r - means[i]) * decay + vols[i] * np.sqrt(var_scale) * rng.standard_normal()
            # A megashock moves the value, and mean reversion pulls it back over ~1/kappa.
            for _ in range(rng.poisson(shock_rates[i] * dt)):
                size = rng.normal(shock_mean, shock_std)
                r += size if rng.random() < 0.5 else -size
        out[i] = r
    return out


@njit(cache=True)
def _log_volatility_path(n, reversion, vol_of_vol, dt, rng):
    """Stationary OU log-volatility multiplier with E[multiplier^2] = 1 (exact transitions)."""
    out = np.ones(n)
    if vol_of_vol == 0.0:
        return out
    stationary_var = vol_of_vol * vol_of_vol / (2.0 * reversion)
    decay = np.exp(-reversion * dt)
    step_std = np.sqrt(stationary_var * (1.0 - decay * decay))
    h = np.sqrt(stationary_var) * rng.standard_normal()
    for i in range(n):
        if i > 0:
            h = h * decay + step_std * rng.standard_normal()
        out[i] = np.exp(h - stationary_var)
    return out


def draw_fundamental(fundamental: FundamentalConfig, session: SessionConfig,
                     rng: np.random.Generator) -> FundamentalPath:
    """One session of the fundamental, from the open to the close inclusive."""
    step_ns = int(round(fundamental.step_s * NS_PER_SECOND))
    n = (session.end_ns - session.start_ns) // step_ns + 1
    progress = np.linspace(0.0, 1.0, n)
    means = fundamental.r_bar * (1.0 + fundamental.drift * progress)
    ramp = 1.0 + (fundamental.vol_ramp - 1.0) * progress
    # Stochastic volatility: news arrives in bursts, which gives the market volatility clusters.
    clustering = _log_volatility_path(n, fundamental.vol_mean_reversion, fundamental.vol_of_vol,
                                      fundamental.step_s, rng)
    values = _ou_with_jumps(fundamental.r_bar, means, fundamental.fund_vol * ramp * clustering,
                            fundamental.megashock_rate * ramp, fundamental.kappa, fundamental.step_s,
                            fundamental.megashock_mean, fundamental.megashock_std, rng)
    return FundamentalPath(start_ns=session.start_ns, step_ns=step_ns, values=values)

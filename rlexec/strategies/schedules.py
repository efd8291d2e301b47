"""The four broker strategies of the seed papers (spec 1.1 smooth schedules and 2.5 baselines)."""

from __future__ import annotations

import numpy as np

from rlexec.envs.engine import ExecState
from rlexec.errors import ConfigError
from rlexec.strategies.base import CumulativeSchedule, register


@register("twap")
class TWAP(CumulativeSchedule):
    """Equal slices: ``(t + 1) / T`` of Q filled by the end of interval t."""

    def target(self, state: ExecState) -> np.ndarray:
        return np.full(len(state.batch), (state.t + 1) / state.n_steps)


@register("vwap")
class VWAP(CumulativeSchedule):
    """Follow the intraday volume curve of earlier sessions (never the order's own day).

    The cumulative target is the share of the window's volume that earlier sessions traded, on
    average, by the end of interval t (``OrderBatch.volume_profile``: the mean share of day volume per
    minute over up to ``ExecutionConfig.profile_days`` earlier sessions, restricted to the window).
    """

    def target(self, state: ExecState) -> np.ndarray:
        end_minute = (state.t + 1) * state.config.step_minutes
        return state.batch.volume_profile[:, :end_minute].sum(axis=1)


def almgren_chriss_kappa(risk_aversion: float, sigma, temporary_impact: float, tau: float) -> np.ndarray:
    """The AC trading-urgency kappa of the discrete-time solution (Almgren & Chriss 2000, eq. for kappa).

    ``cosh(kappa * tau) = 1 + kappa_tilde^2 * tau^2 / 2`` with ``kappa_tilde^2 = lambda * sigma^2 / eta``
    (permanent impact gamma = 0). Units: time in minutes, holdings in fractions of Q, ``sigma`` the
    std of 1-minute returns, ``eta`` the price move (fraction) per unit of Q traded per minute.
    """
    kappa_tilde_sq = risk_aversion * np.asarray(sigma, dtype=np.float64) ** 2 / temporary_impact
    return np.arccosh(1.0 + 0.5 * kappa_tilde_sq * tau**2) / tau


def almgren_chriss_holdings(total: float, horizon: float, n_intervals: int, kappa) -> np.ndarray:
    """Optimal holdings ``x_j = X sinh(kappa (T - t_j)) / sinh(kappa T)`` at ``t_j = j T / N``, j = 0..N.

    ``kappa`` may be an array (one per order): the result is then (len(kappa), N + 1). As
    kappa -> 0 the trajectory becomes linear (TWAP); below 1e-9 that limit is used directly.
    """
    kappa = np.atleast_1d(np.asarray(kappa, dtype=np.float64))[:, None]
    t = np.linspace(0.0, horizon, n_intervals + 1)[None, :]
    linear = total * (1.0 - t / horizon)
    safe = np.where(kappa < 1e-9, 1.0, kappa)
    # sinh(k(T-t)) / sinh(kT) = e^{-kt} (1 - e^{-2k(T-t)}) / (1 - e^{-2kT}): no overflow for large kT.
    curved = total * np.exp(-safe * t) * -np.expm1(-2 * safe * (horizon - t)) / -np.expm1(-2 * safe * horizon)
    holdings = np.where(kappa < 1e-9, linear, curved)
    return holdings[0] if holdings.shape[0] == 1 else holdings


@register("is")
class ImplementationShortfall(CumulativeSchedule):
    """Almgren-Chriss optimal trajectory: front-loaded by risk aversion; lambda -> 0 gives TWAP.

    ``sigma`` is each order's 1-minute return volatility over its previous session. Defaults are
    rlexec's: with eta = 0.01 and lambda = 1, kappa * T is about 1.2 for a 5 bp/minute stock over 240
    minutes, a moderate front-loading.
    """

    def __init__(self, risk_aversion: float = 1.0, temporary_impact: float = 0.01):
        if risk_aversion < 0:
            raise ConfigError(f"is.risk_aversion must be >= 0, got {risk_aversion}")
        if temporary_impact <= 0:
            raise ConfigError(f"is.temporary_impact must be > 0, got {temporary_impact}")
        self.risk_aversion = risk_aversion
        self.temporary_impact = temporary_impact

    def target(self, state: ExecState) -> np.ndarray:
        cfg = state.config
        kappa = almgren_chriss_kappa(
            self.risk_aversion, state.batch.minute_volatility, self.temporary_impact, cfg.step_minutes
        )
        holdings = almgren_chriss_holdings(1.0, cfg.horizon_minutes, cfg.n_steps, kappa)
        holdings = np.atleast_2d(holdings)
        return 1.0 - holdings[:, state.t + 1]


@register("pov")
class PercentOfVolume(CumulativeSchedule):
    """Trade a target share of observed market volume (spec 1.1: 0.10 of the last window's volume).

    At bar granularity the volume of the coming interval is unknown, so each interval trades
    ``participation`` times the volume of the interval just closed (the lookback bars before the
    first step). What is left at the end follows the engine's end-of-horizon rule.
    """

    def __init__(self, participation: float = 0.1):
        if not 0 < participation <= 1:
            raise ConfigError(f"pov.participation must be in (0, 1], got {participation}")
        self.participation = participation

    def fractions(self, state: ExecState) -> np.ndarray:
        observed = state.past_volume(state.config.step_minutes)
        return self.participation * observed / state.batch.quantity


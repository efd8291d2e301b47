"""The four broker strategies of the seed papers (spec 1.1 smooth schedules and 2.5 baselines).

==========  =====================================================  ==========================================
broker      cumulative target X(x), x = elapsed fraction            per-order context read
==========  =====================================================  ==========================================
twap        x                                                      --
vwap        share of the expected horizon volume traded by x       ``volume_profile``
is          Almgren-Chriss ``1 - sinh(k T (1 - x)) / sinh(k T)``   ``minute_volatility`` (``shape="almgren_chriss"``)
            or the power law ``x^alpha``                           -- (``shape="power"``)
pov         --: ``participation`` x the last interval's market volume
==========  =====================================================  ==========================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from rlexec.errors import ConfigError
from rlexec.strategies.base import Broker, CumulativeSchedule, OrderContext, register

if TYPE_CHECKING:
    from rlexec.envs.engine import ExecState


@register("twap")
class TWAP(CumulativeSchedule):
    """Equal slices: ``X(x) = x``, i.e. ``(t + 1) / T`` of Q filled by the end of interval t."""

    def _curve(self, x: float, context: OrderContext) -> np.ndarray:
        return np.full(len(context), x)


def cumulative_share(profile: np.ndarray, x: float) -> np.ndarray:
    """(N,) share of each row of ``profile`` (N, B) in the first fraction ``x`` of its B equal bins.

    Linear inside a bin; on a bin edge it is the plain sum of the whole bins before it.
    """
    bins = profile.shape[1]
    position = x * bins
    edge = round(position)
    if abs(position - edge) <= 1e-9 * bins:
        return profile[:, :edge].sum(axis=1)
    whole = int(position)
    return profile[:, :whole].sum(axis=1) + (position - whole) * profile[:, whole]


def u_shaped_volume_profile(bins: int) -> np.ndarray:
    """(B,) volume shares of B equal bins under the U-shaped density ``1 / (pi sqrt(x (1 - x)))``.

    Beta(1/2, 1/2), whose cumulative is ``X(x) = (2 / pi) arcsin(sqrt(x))`` (spec 1.1, the CORRECTION
    to the VWAP schedule: a < 1 for a U, a = 1/2 for this closed form). For a day without earlier
    sessions to measure the intraday volume smile on.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.diff(2.0 / np.pi * np.arcsin(np.sqrt(edges)))


@register("vwap")
class VWAP(CumulativeSchedule):
    """Follow the expected intraday volume curve, never the order's own day.

    ``X(x)`` is the share of the horizon's volume expected by ``x`` (``OrderContext.volume_profile``).
    Bar env: the mean share of day volume per minute over up to ``ExecutionConfig.profile_days``
    earlier sessions, restricted to the horizon. LOB env: see ``LOBExecutionConfig.broker.vwap_profile``.
    """

    def _curve(self, x: float, context: OrderContext) -> np.ndarray:
        return cumulative_share(context.require("volume_profile", self.name), x)


def almgren_chriss_kappa(risk_aversion: float, sigma, temporary_impact: float, tau: float) -> np.ndarray:
    """The AC trading-urgency kappa of the discrete-time solution (Almgren & Chriss 2000, eq. for kappa).

    ``cosh(kappa * tau) = 1 + kappa_tilde^2 * tau^2 / 2`` with ``kappa_tilde^2 = lambda * sigma^2 / eta``
    (permanent impact gamma = 0). Units: time in minutes, holdings in fractions of Q, ``sigma`` the
    std of 1-minute returns, ``eta`` the price move (fraction) per unit of Q traded per minute.
    """
    kappa_tilde_sq = risk_aversion * np.asarray(sigma, dtype=np.float64) ** 2 / temporary_impact
    return np.arccosh(1.0 + 0.5 * kappa_tilde_sq * tau**2) / tau


def _almgren_chriss_holdings_at(total: float, horizon: float, times: np.ndarray, kappa) -> np.ndarray:
    """Holdings ``X sinh(kappa (T - t)) / sinh(kappa T)`` at ``times`` (1, M), one row per kappa."""
    kappa = np.atleast_1d(np.asarray(kappa, dtype=np.float64))[:, None]
    linear = total * (1.0 - times / horizon)
    safe = np.where(kappa < 1e-9, 1.0, kappa)
    # sinh(k(T-t)) / sinh(kT) = e^{-kt} (1 - e^{-2k(T-t)}) / (1 - e^{-2kT}): no overflow for large kT.
    curved = total * np.exp(-safe * times) * -np.expm1(-2 * safe * (horizon - times)) / -np.expm1(-2 * safe * horizon)
    return np.where(kappa < 1e-9, linear, curved)


def almgren_chriss_holdings(total: float, horizon: float, n_intervals: int, kappa) -> np.ndarray:
    """Optimal holdings ``x_j = X sinh(kappa (T - t_j)) / sinh(kappa T)`` at ``t_j = j T / N``, j = 0..N.

    ``kappa`` may be an array (one per order): the result is then (len(kappa), N + 1). As
    kappa -> 0 the trajectory becomes linear (TWAP); below 1e-9 that limit is used directly.
    """
    holdings = _almgren_chriss_holdings_at(total, horizon, np.linspace(0.0, horizon, n_intervals + 1)[None, :], kappa)
    return holdings[0] if holdings.shape[0] == 1 else holdings


IS_SHAPES = ("almgren_chriss", "power")


@register("is")
class ImplementationShortfall(CumulativeSchedule):
    """Implementation Shortfall: a front-loaded trajectory, of one of two shapes.

    * ``shape="almgren_chriss"`` (the bar env's default): the AC optimal trajectory
      ``X(x) = 1 - sinh(kappa T (1 - x)) / sinh(kappa T)``, kappa per order from its minute volatility
      (:func:`almgren_chriss_kappa`, tau = the decision interval); lambda -> 0 gives TWAP. Defaults are
      rlexec's: with eta = 0.01 and lambda = 1, kappa T is about 1.2 for a 5 bp/minute stock over 240
      minutes, a moderate front-loading.
    * ``shape="power"`` (the LOB env's default, which measures no volatility): ``X(x) = x^exponent``,
      spec 1.1's smooth schedule with exponent 0.6 (Pairs-ABIDES@71197b6 ``schedules.py``).
    """

    def __init__(self, risk_aversion: float = 1.0, temporary_impact: float = 0.01, *,
                 shape: str = "almgren_chriss", exponent: float = 0.6):
        if shape not in IS_SHAPES:
            raise ConfigError(f"is.shape must be one of {IS_SHAPES}, got {shape!r}")
        if risk_aversion < 0:
            raise ConfigError(f"is.risk_aversion must be >= 0, got {risk_aversion}")
        if temporary_impact <= 0:
            raise ConfigError(f"is.temporary_impact must be > 0, got {temporary_impact}")
        if not 0 < exponent <= 1:
            raise ConfigError(f"is.exponent must be in (0, 1], got {exponent}")
        self.risk_aversion = risk_aversion
        self.temporary_impact = temporary_impact
        self.shape = shape
        self.exponent = exponent

    def _curve(self, x: float, context: OrderContext) -> np.ndarray:
        if self.shape == "power":
            return np.full(len(context), x**self.exponent)
        volatility = context.require("minute_volatility", self.name)
        kappa = almgren_chriss_kappa(self.risk_aversion, volatility, self.temporary_impact, context.interval_minutes)
        horizon = context.horizon_minutes
        holdings = _almgren_chriss_holdings_at(1.0, horizon, np.array([[x * horizon]]), kappa)
        return 1.0 - holdings[:, 0]


@register("pov")
class PercentOfVolume(Broker):
    """Trade a target share of observed market volume (spec 1.1: 0.10 of the last window's volume).

    The volume of the coming interval is unknown, so each interval trades ``participation`` times the
    market volume of the interval just closed (bar env: the lookback bars before the first step). What
    is left at the end follows the env's end-of-horizon rule.
    """

    def __init__(self, participation: float = 0.1):
        if not 0 < participation <= 1:
            raise ConfigError(f"pov.participation must be in (0, 1], got {participation}")
        self.participation = participation

    def fractions(self, state: ExecState) -> np.ndarray:
        observed = state.past_volume(state.config.step_minutes)
        return self.participation * observed / state.batch.quantity

    def wanted_shares(self, context: OrderContext, *, executed: int, x_next: float, last_interval_volume: int) -> float:
        return self.participation * last_interval_volume

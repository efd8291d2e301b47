"""Expected cost of a schedule under linear temporary impact, and the risk-neutral optimum (Almgren-Chriss).

The bar env's fill model with ``impact_exponent: 1`` charges minute ``m`` the temporary impact
``c * q_m / v_m`` bp on each of its ``q_m`` shares (``c`` = ``FillModel.impact_coefficient_bps``,
``v_m`` the minute's volume). With no drift the price part of the execution cost has mean zero for
any schedule fixed in advance, so the expected cost of a schedule, in bp of the order's value, is

    E[cost] = c / Q * sum_m q_m^2 / v_m.

This is Almgren & Chriss (2000) with risk aversion 0 (the risk-neutral limit of
:func:`rlexec.strategies.schedules.almgren_chriss_holdings`, kappa -> 0) and the impact scaled by the
minute's volume. The env splits each decision step's shares evenly over the step's ``s`` minutes,
so a step ``k`` trading ``x_k`` costs ``c / Q * x_k^2 / s^2 * sum_{m in k} 1 / v_m``; minimising the
sum subject to ``sum_k x_k = Q`` gives ``x_k`` proportional to ``w_k = s^2 / sum_{m in k} 1 / v_m``
and the optimal expected cost ``c * Q / sum_k w_k``. With one-minute steps ``w_m = v_m``: trade in
proportion to volume, cost ``c * Q / V``; with flat volume every step has the same weight and the
optimum is TWAP.
"""

from __future__ import annotations

import numpy as np

from rlexec.errors import ConfigError


def _step_weights(volume: np.ndarray, step_minutes: int) -> np.ndarray:
    """(N, K) ``s^2 / sum_{m in step} 1 / v_m``, the share of the optimal schedule per step, unnormalised."""
    volume = np.atleast_2d(np.asarray(volume, dtype=np.float64))
    if volume.shape[1] % step_minutes:
        raise ConfigError(f"volume has {volume.shape[1]} minutes, not a whole number of {step_minutes}-minute steps")
    if not np.all(volume > 0):
        raise ConfigError("linear-impact optimum: every minute needs volume > 0 (a minute without volume fills nothing)")
    inverse = (1.0 / volume).reshape(volume.shape[0], -1, step_minutes).sum(axis=2)
    return step_minutes**2 / inverse


def optimal_schedule(quantity, volume, step_minutes: int = 1) -> np.ndarray:
    """(N, H) minute quantities of the risk-neutral optimum for orders of ``quantity`` (N,) shares over
    minutes of ``volume`` (N, H), each step's shares spread evenly over its minutes."""
    quantity = np.atleast_1d(np.asarray(quantity, dtype=np.float64))
    weights = _step_weights(volume, step_minutes)
    per_step = quantity[:, None] * weights / weights.sum(axis=1, keepdims=True)
    return np.repeat(per_step / step_minutes, step_minutes, axis=1)


def optimal_expected_cost_bps(quantity, volume, impact_coefficient_bps: float, step_minutes: int = 1) -> np.ndarray:
    """(N,) expected cost in bp of the risk-neutral optimum: ``c * Q / sum_k w_k`` (module docstring)."""
    quantity = np.atleast_1d(np.asarray(quantity, dtype=np.float64))
    return impact_coefficient_bps * quantity / _step_weights(volume, step_minutes).sum(axis=1)


def expected_cost_bps(minute_quantities, volume, impact_coefficient_bps: float) -> np.ndarray:
    """(N,) expected cost in bp of fixed schedules ``minute_quantities`` (N, H): ``c / Q * sum_m q_m^2 / v_m``,
    with ``Q`` each schedule's total."""
    q = np.atleast_2d(np.asarray(minute_quantities, dtype=np.float64))
    volume = np.atleast_2d(np.asarray(volume, dtype=np.float64))
    return impact_coefficient_bps * (q**2 / volume).sum(axis=1) / q.sum(axis=1)

"""Stock-trading metrics of spec 3.5 on a daily portfolio value series V_0 .. V_N.

Conventions (stated, since the paper's were not verified):

* ``r_d = V_d / V_{d-1} - 1``, simple daily returns, d = 1 .. N; N is the number of daily returns
  (trading days after the start), and a year has 252 trading days.
* CR = V_N / V_0 - 1;  AR = (1 + CR)^(252 / N) - 1 (geometric annualisation).
* AV = std(r_d) * sqrt(252) and SR = sqrt(252) * mean(r_d) / std(r_d), with the **sample** standard
  deviation (ddof = 1) and a zero risk-free rate. SR is nan where std is 0 (below 1e-12).
* MD = max_t (max_{s<=t} V_s - V_t) / max_{s<=t} V_s, reported as a **positive** fraction (the
  paper prints it negative, e.g. -22.3%).

All five are fractions (0.181 = 18.1%), except SR.
"""

from __future__ import annotations

import numpy as np

from rlexec.errors import ConfigError

TRADING_DAYS = 252
METRICS = ("AR", "CR", "AV", "MD", "SR")


def daily_returns(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, float)
    if values.ndim != 1 or values.size < 3 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ConfigError(f"portfolio metrics need at least 3 positive finite daily values, got {values!r:.80}")
    return values[1:] / values[:-1] - 1.0


def max_drawdown(values: np.ndarray) -> float:
    values = np.asarray(values, float)
    peak = np.maximum.accumulate(values)
    return float(np.max((peak - values) / peak))


def portfolio_metrics(values: np.ndarray) -> dict[str, float]:
    """AR, CR, AV, MD, SR of one value series (see the module docstring for the conventions)."""
    returns = daily_returns(values)
    days = returns.size
    cumulative = float(values[-1] / values[0] - 1.0)
    deviation = float(np.std(returns, ddof=1))
    return {
        "AR": float((1.0 + cumulative) ** (TRADING_DAYS / days) - 1.0),
        "CR": cumulative,
        "AV": float(deviation * np.sqrt(TRADING_DAYS)),
        "MD": max_drawdown(values),
        "SR": float(np.sqrt(TRADING_DAYS) * returns.mean() / deviation) if deviation > 1e-12 else float("nan"),
    }

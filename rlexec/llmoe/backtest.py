"""All-in / all-out (spec §4.4) and the TR, SR, MDD, CR metrics (spec §4.5).

Long only, one decision a day at the close, fills at the close. The account holds either cash or
shares, never both: a buy spends all the cash (less the cost) on shares, a sell turns all shares into
cash (less the cost). Cost is ``cost_bps`` of the traded value, paid on each switch; the account starts
in cash and the last position is not closed at the end. Prices are adjusted closes, so a held
position earns dividends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TRADING_DAYS = 252


@dataclass(eq=False)
class Backtest:
    """``equity[0]`` = initial capital, ``equity[i + 1]`` the value at the close after decision i.

    ``cash`` and ``stock`` are the two holdings right after each decision's fill (one is always 0);
    ``position[i]`` is 1 when decision i holds the stock.
    """

    equity: np.ndarray
    cash: np.ndarray
    stock: np.ndarray
    position: np.ndarray
    trades: int

    @property
    def daily_returns(self) -> np.ndarray:
        return self.equity[1:] / self.equity[:-1] - 1.0


def all_in_all_out(signal: np.ndarray, prices: np.ndarray, cost_bps: float = 0.0, capital: float = 1.0) -> Backtest:
    """Trade ``signal[i]`` (1 = hold the stock, 0 = hold cash) at ``prices[i]``; value at ``prices[i + 1]``.

    ``prices`` has one more entry than ``signal``: the close after the last decision.
    """
    signal = np.asarray(signal).astype(bool)
    prices = np.asarray(prices, dtype=np.float64)
    if len(prices) != len(signal) + 1:
        raise ValueError(f"all_in_all_out: {len(signal)} decisions need {len(signal) + 1} prices, got {len(prices)}")
    keep = 1.0 - cost_bps / 1e4
    n = len(signal)
    cash_after, stock_after = np.zeros(n), np.zeros(n)
    equity = np.empty(n + 1)
    equity[0] = capital
    cash, shares, trades = float(capital), 0.0, 0
    for i in range(n):
        if signal[i] and shares == 0.0:
            shares, cash, trades = cash * keep / prices[i], 0.0, trades + 1
        elif not signal[i] and shares > 0.0:
            shares, cash, trades = 0.0, shares * prices[i] * keep, trades + 1
        cash_after[i], stock_after[i] = cash, shares * prices[i]
        equity[i + 1] = cash + shares * prices[i + 1]
    return Backtest(equity, cash_after, stock_after, signal.astype(np.int64), trades)


def total_return(equity: np.ndarray) -> float:
    return float(equity[-1] / equity[0] - 1.0)


def sharpe_ratio(daily_returns: np.ndarray) -> float:
    """√252 · mean / std of the daily returns (sample std, ddof = 1); 0 when the returns do not vary
    (a strategy always in cash), since there is then neither excess return nor risk."""
    r = np.asarray(daily_returns, dtype=np.float64)
    if len(r) < 2:
        return 0.0
    sd = float(np.std(r, ddof=1))
    return 0.0 if sd <= 1e-15 else float(math.sqrt(TRADING_DAYS) * np.mean(r) / sd)


def max_drawdown(equity: np.ndarray) -> float:
    """max_t (max_{s<=t} V_s - V_t) / max_{s<=t} V_s, a fraction in [0, 1]."""
    equity = np.asarray(equity, dtype=np.float64)
    peak = np.maximum.accumulate(equity)
    return float(np.max((peak - equity) / peak))


def annualised_return(equity: np.ndarray) -> float:
    """(V_N / V_0)^(252 / N) - 1 over N daily steps."""
    equity = np.asarray(equity, dtype=np.float64)
    steps = len(equity) - 1
    return float((equity[-1] / equity[0]) ** (TRADING_DAYS / steps) - 1.0) if steps > 0 else 0.0


def calmar_ratio(equity: np.ndarray) -> float:
    """Annualised return / MDD; NaN when there was no drawdown."""
    mdd = max_drawdown(equity)
    return float(annualised_return(equity) / mdd) if mdd > 0 else float("nan")


def metrics(equity: np.ndarray) -> dict[str, float]:
    """TR, SR, MDD, CR (and the annualised return CR is built from) of one equity curve."""
    equity = np.asarray(equity, dtype=np.float64)
    return {"TR": total_return(equity), "SR": sharpe_ratio(equity[1:] / equity[:-1] - 1.0),
            "MDD": max_drawdown(equity), "CR": calmar_ratio(equity), "AR": annualised_return(equity)}

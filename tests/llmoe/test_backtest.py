"""All-in / all-out invariant and the metric identities (spec §4.5, §5.6)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlexec.llmoe.backtest import (
    all_in_all_out, annualised_return, calmar_ratio, max_drawdown, metrics, sharpe_ratio, total_return)


@pytest.mark.parametrize("cost_bps", [0.0, 10.0])
def test_the_account_is_always_fully_invested_or_fully_in_cash(cost_bps):
    rng = np.random.default_rng(0)
    prices = 100 * np.cumprod(1 + rng.normal(0, 0.02, 301))
    signal = rng.integers(0, 2, 300)
    bt = all_in_all_out(signal, prices, cost_bps)
    assert np.all((bt.cash == 0) | (bt.stock == 0))
    assert np.all((bt.stock > 0) == (signal == 1)) and np.all((bt.cash > 0) == (signal == 0))
    # each day's return is the stock's when held (less the cost of a switch into it) and 0 in cash
    stock_return = prices[1:] / prices[:-1] - 1
    switched = np.diff(np.concatenate([[0], signal])) != 0
    expected = (1 - cost_bps / 1e4 * switched) * (1 + signal * stock_return) - 1
    assert np.allclose(bt.daily_returns, expected)
    assert bt.trades == switched.sum()


def test_hand_case_with_costs():
    # buy at 10 (10 bp), hold to 11, sell at 11 (10 bp), sit in cash while it drops to 5
    bt = all_in_all_out([1, 0, 0], [10.0, 11.0, 5.0, 4.0], cost_bps=10)
    k = 1 - 1e-3
    assert bt.equity.tolist() == pytest.approx([1.0, k * 1.1, k * k * 1.1, k * k * 1.1])


def test_buy_and_hold_earns_the_price_change():
    prices = np.array([10.0, 12.0, 9.0, 15.0])
    assert total_return(all_in_all_out(np.ones(3), prices).equity) == pytest.approx(0.5)


def test_metrics_by_hand():
    equity = np.array([100.0, 110.0, 99.0, 120.0, 90.0, 108.0])
    r = equity[1:] / equity[:-1] - 1
    assert total_return(equity) == pytest.approx(0.08)
    assert sharpe_ratio(r) == pytest.approx(math.sqrt(252) * r.mean() / r.std(ddof=1))
    assert max_drawdown(equity) == pytest.approx(30 / 120)  # peak 120, trough 90
    assert annualised_return(equity) == pytest.approx(1.08 ** (252 / 5) - 1)


def test_calmar_identity_cr_times_mdd_is_the_annualised_return():
    """Spec §5.6 / §4.5: CR = annualised return / MDD; the paper's MSFT row, 5.91 x 11.32% ~ 66.9%."""
    rng = np.random.default_rng(3)
    for _ in range(20):
        equity = np.cumprod(np.concatenate([[1.0], 1 + rng.normal(0.001, 0.02, 250)]))
        m = metrics(equity)
        assert m["CR"] * m["MDD"] == pytest.approx(m["AR"], rel=1e-12)
        assert m["TR"] == pytest.approx(np.prod(1 + (equity[1:] / equity[:-1] - 1)) - 1)
    # one year of 252 steps: the annualised return is the total return, so CR x MDD = TR
    equity = np.concatenate([[1.0], np.linspace(1.2, 1.6544, 252)])
    equity[100] = equity[99] * (1 - 0.1132)  # one drawdown of 11.32%
    assert calmar_ratio(equity) * max_drawdown(equity) == pytest.approx(total_return(equity))


def test_cash_only_has_zero_sharpe_and_no_calmar():
    bt = all_in_all_out(np.zeros(10), np.linspace(10, 5, 11))
    m = metrics(bt.equity)
    assert m["TR"] == 0 and m["SR"] == 0 and m["MDD"] == 0 and math.isnan(m["CR"])

"""AR, CR, AV, MD, SR of spec 3.5 against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlexec.errors import ConfigError
from rlexec.evaluation.portfolio_metrics import max_drawdown, portfolio_metrics


def test_hand_computed_series():
    values = np.array([100.0, 110.0, 99.0, 108.9])
    # returns +10%, -10%, +10%: mean 1/30; sample std (ddof 1) by hand
    returns = np.array([0.1, -0.1, 0.1])
    mean = 0.1 / 3
    std = math.sqrt(((0.1 - mean) ** 2 * 2 + (-0.1 - mean) ** 2) / 2)
    assert std == pytest.approx(0.11547005, rel=1e-7)  # = 0.2 / sqrt(3)
    metrics = portfolio_metrics(values)
    assert metrics["CR"] == pytest.approx(0.089)
    assert metrics["AR"] == pytest.approx(1.089 ** (252 / 3) - 1)
    assert metrics["AV"] == pytest.approx(std * math.sqrt(252))
    assert metrics["SR"] == pytest.approx(math.sqrt(252) * mean / std)
    assert metrics["SR"] == pytest.approx(math.sqrt(252) * returns.mean() / returns.std(ddof=1))
    assert metrics["MD"] == pytest.approx(0.1)  # 110 -> 99


def test_drawdown_is_from_the_running_peak_not_the_first_value():
    # peaks 100, 120; the worst fall is 120 -> 90 (25%), not 100 -> 90 and not the later 110 -> 100
    assert max_drawdown(np.array([100, 120, 90, 110, 100])) == pytest.approx(0.25)
    assert max_drawdown(np.array([1.0, 2.0, 3.0])) == 0.0


def test_one_year_of_constant_growth():
    values = 1.0005 ** np.arange(253)  # 252 returns of 5 bp
    metrics = portfolio_metrics(values)
    assert metrics["AR"] == pytest.approx(metrics["CR"])  # N = 252: AR is CR
    assert metrics["AV"] == pytest.approx(0.0, abs=1e-12) and metrics["MD"] == 0.0
    assert math.isnan(metrics["SR"])  # zero volatility: undefined


def test_bad_series_is_refused():
    with pytest.raises(ConfigError, match="at least 3 positive finite"):
        portfolio_metrics(np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ConfigError, match="at least 3"):
        portfolio_metrics(np.array([1.0, 1.1]))

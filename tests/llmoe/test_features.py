"""The 11 daily features (spec §4.2) against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from rlexec.llmoe.features import FEATURE_NAMES, FIRST_WINDOW_DAY, daily_features, flat, window_features


def _series(n=40):
    rng = np.random.default_rng(7)
    close = 50 * np.cumprod(1 + rng.normal(0, 0.02, n))
    adj = close * np.linspace(0.9, 1.0, n)  # dividends make adj differ from close
    return close * 0.99, close * 1.02, close * 0.97, close, adj


def test_price_ratio_and_change_features_by_hand():
    open_, high, low, close, adj = _series()
    f = daily_features(open_, high, low, close, adj)
    t = 12
    assert f[t, FEATURE_NAMES.index("z_open")] == pytest.approx(0.99 - 1)
    assert f[t, FEATURE_NAMES.index("z_high")] == pytest.approx(0.02)
    assert f[t, FEATURE_NAMES.index("z_low")] == pytest.approx(-0.03)
    assert f[t, FEATURE_NAMES.index("z_close")] == pytest.approx(close[t] / close[t - 1] - 1)
    assert f[t, FEATURE_NAMES.index("z_adj")] == pytest.approx(adj[t] / adj[t - 1] - 1)
    assert np.isnan(f[0, FEATURE_NAMES.index("z_close")])


@pytest.mark.parametrize("k", [5, 10, 15, 20, 25, 30])
def test_moving_average_deviation_uses_the_last_k_adjusted_closes_including_today(k):
    *_, adj = _series()
    f = daily_features(*_series())
    t = 35
    expected = sum(adj[t - i] for i in range(k)) / k / adj[t] - 1
    assert f[t, FEATURE_NAMES.index(f"z_d{k}")] == pytest.approx(expected, rel=1e-12)
    assert np.isnan(f[k - 2, FEATURE_NAMES.index(f"z_d{k}")]) and not np.isnan(f[k - 1, FEATURE_NAMES.index(f"z_d{k}")])


def test_window_is_days_t_minus_4_to_t_and_flattens_day_major_to_55():
    f = daily_features(*_series())
    w = window_features(f, FIRST_WINDOW_DAY)
    assert w.shape == (5, 11) and not np.isnan(w).any()
    assert np.isnan(window_features(f, FIRST_WINDOW_DAY - 1)).any()
    assert np.array_equal(w[-1], f[FIRST_WINDOW_DAY]) and np.array_equal(w[0], f[FIRST_WINDOW_DAY - 4])
    v = flat(w)
    assert v.shape == (55,) and v[11] == w[1, 0] and v[54] == w[4, 10]


def test_features_do_not_depend_on_later_prices():
    series = _series()
    changed = [a.copy() for a in series]
    for a in changed:
        a[30:] *= 1.5
    assert np.array_equal(daily_features(*series)[:30], daily_features(*changed)[:30], equal_nan=True)

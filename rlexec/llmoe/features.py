"""The 11 daily features of spec §4.2 (Yoo et al. 2021b / Feng et al. 2019) and the 5-day, 55-float window.

    z_open  = open_t/close_t - 1      z_high = high_t/close_t - 1      z_low = low_t/close_t - 1
    z_close = close_t/close_{t-1} - 1  z_adj  = adj_t/adj_{t-1} - 1
    z_dk    = mean(adj_{t-k+1..t})/adj_t - 1,   k in (5, 10, 15, 20, 25, 30)

Day t's features use prices up to and including t's close, all known at the decision at t's close.
"""

from __future__ import annotations

import numpy as np

MA_WINDOWS = (5, 10, 15, 20, 25, 30)
FEATURE_NAMES = ("z_open", "z_high", "z_low", "z_close", "z_adj") + tuple(f"z_d{k}" for k in MA_WINDOWS)
N_FEATURES = len(FEATURE_NAMES)  # 11
WINDOW_DAYS = 5
FIRST_FEATURE_DAY = max(MA_WINDOWS) - 1  # the first row whose 30-day average is complete
FIRST_WINDOW_DAY = FIRST_FEATURE_DAY + WINDOW_DAYS - 1  # the first day whose whole window has features


def daily_features(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                   adj_close: np.ndarray) -> np.ndarray:
    """[n, 11] features, one row per day, NaN where the history is too short."""
    open_, high, low, close, adj = (np.asarray(a, dtype=np.float64) for a in (open_, high, low, close, adj_close))
    n = len(close)
    out = np.full((n, N_FEATURES), np.nan)
    out[:, 0] = open_ / close - 1.0
    out[:, 1] = high / close - 1.0
    out[:, 2] = low / close - 1.0
    out[1:, 3] = close[1:] / close[:-1] - 1.0
    out[1:, 4] = adj[1:] / adj[:-1] - 1.0
    cumulative = np.concatenate([[0.0], np.cumsum(adj)])
    for column, k in enumerate(MA_WINDOWS, start=5):
        if n >= k:
            means = (cumulative[k:] - cumulative[:-k]) / k  # mean of adj[t-k+1..t] for t = k-1..n-1
            out[k - 1:, column] = means / adj[k - 1:] - 1.0
    return out


def window_features(daily: np.ndarray, day: int) -> np.ndarray:
    """[5, 11]: the rows of days ``day-4 .. day`` (oldest first)."""
    if day < WINDOW_DAYS - 1:
        raise IndexError(f"window_features: day {day} has fewer than {WINDOW_DAYS - 1} days before it")
    return daily[day - WINDOW_DAYS + 1: day + 1]


def flat(windows_features: np.ndarray) -> np.ndarray:
    """[..., 5, 11] -> [..., 55], day-major (days t-4..t, each with its 11 features in FEATURE_NAMES order)."""
    windows_features = np.asarray(windows_features)
    return windows_features.reshape(*windows_features.shape[:-2], WINDOW_DAYS * N_FEATURES)

"""Fundamental path."""

from __future__ import annotations

import dataclasses

import numpy as np

from rlexec.market.config import FundamentalConfig, SessionConfig
from rlexec.market.oracle import draw_fundamental


def _path(seed, **changes):
    config = dataclasses.replace(FundamentalConfig(), **changes)
    return draw_fundamental(config, SessionConfig(), np.random.default_rng(seed))


def test_path_covers_session_each_second_and_is_seeded():
    path = _path(1)
    assert path.values.size == 6 * 3600 + 1800 + 1
    assert np.array_equal(path.values, _path(1).values)
    assert not np.array_equal(path.values, _path(2).values)
    assert path.at(path.start_ns + 10**9) == path.values[1]


def test_value_reverts_to_a_drifting_mean():
    drifted = _path(3, fund_vol=0.0, megashock_rate=0.0, drift=0.01, kappa=1e-2)
    assert abs(drifted.values[-1] - 10_100.0) < 1.0


def test_megashocks_make_jumps_and_ramp_raises_late_volatility():
    calm = np.abs(np.diff(_path(4, megashock_rate=0.0, vol_of_vol=0.0).values))
    shocked = np.abs(np.diff(_path(4, megashock_rate=1e-3, megashock_std=30.0, vol_of_vol=0.0).values))
    assert shocked.max() > 10 * calm.max()
    ramped = np.diff(_path(5, vol_ramp=4.0, megashock_rate=0.0, vol_of_vol=0.0).values)
    first, last = ramped[:3600].std(), ramped[-3600:].std()
    assert last > 2.5 * first


def _minute_abs_change_autocorrelation(path):
    minute_changes = np.abs(np.diff(path.values[::60]))
    return np.corrcoef(minute_changes[:-1], minute_changes[1:])[0, 1]


def test_stochastic_volatility_clusters_large_moves():
    clustered = [_minute_abs_change_autocorrelation(_path(seed, megashock_rate=0.0)) for seed in range(5)]
    constant = [_minute_abs_change_autocorrelation(_path(seed, megashock_rate=0.0, vol_of_vol=0.0))
                for seed in range(5)]
    assert np.mean(clustered) > 0.15
    assert abs(np.mean(constant)) < 0.1

"""Levels of the volatility_ramp regime (issue 10: profit and cost under increasing volatility)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rlexec.errors import ConfigError
from rlexec.market.config import MarketConfig, clock_ns
from rlexec.market.regimes import is_regime, regime_config, regime_family, regime_level, split_regime
from rlexec.market.simulator import MarketSimulator

SEEDS = (5, 6)


def _todays_volatility_ramp() -> MarketConfig:
    """The preset as it was before levels existed: the baseline with the close multiplier x4."""
    base = MarketConfig(regime="baseline")
    return replace(base, regime="volatility_ramp", fundamental=replace(base.fundamental, vol_ramp=4.0))


def _mids(config: MarketConfig, seed: int, first_minute: int, last_minute: int) -> np.ndarray:
    """The mid price every minute from ``first_minute`` to ``last_minute`` (minutes after midnight)."""
    sim = MarketSimulator(config, seed)
    mids = []
    for minute in range(first_minute, last_minute + 1):
        sim.run_until(clock_ns(minute // 60, minute % 60))
        mids.append(sim.mid())
    return np.asarray(mids, dtype=np.float64)


def test_level_names_parse_and_bad_levels_are_one_line_errors():
    assert split_regime("volatility_ramp@2") == ("volatility_ramp", 2.0)
    assert split_regime("baseline") == ("baseline", None)
    assert regime_family("volatility_ramp@0.5") == "volatility_ramp"
    assert regime_level("volatility_ramp") == 1.0 and regime_level("baseline") is None
    assert [regime_config(f"volatility_ramp@{level}").fundamental.vol_ramp for level in (0, 1, 2, 3)] == [1, 4, 7, 10]
    assert regime_config("volatility_ramp@2").regime == "volatility_ramp@2"
    for bad, message in (("baseline@2", "only volatility_ramp take a level"),
                         ("volatility_ramp@-1", "must be a number >= 0"),
                         ("volatility_ramp@x", "must be a number >= 0"),
                         ("volatility_ramp@inf", "must be a number >= 0"),
                         ("sideways@2", "unknown regime")):
        assert not is_regime(bad)
        with pytest.raises(ConfigError, match=message):
            regime_config(bad)


def test_the_default_level_is_today_s_regime_exactly():
    today = _todays_volatility_ramp()
    assert regime_config("volatility_ramp") == today
    assert replace(regime_config("volatility_ramp@1"), regime="volatility_ramp") == today
    for seed in SEEDS[:1]:
        np.testing.assert_array_equal(_mids(regime_config("volatility_ramp@1"), seed, 9 * 60 + 30, 16 * 60 - 1),
                                      _mids(today, seed, 9 * 60 + 30, 16 * 60 - 1))


def test_a_higher_level_has_a_higher_realised_volatility_on_the_same_seeds():
    def afternoon_volatility(name: str) -> float:
        """Std of one-minute mid returns (bp) over 14:00-15:59, pooled over the seeds."""
        returns = [np.diff(np.log(_mids(regime_config(name), seed, 14 * 60, 16 * 60 - 1))) * 1e4 for seed in SEEDS]
        return float(np.std(np.concatenate(returns)))

    low, default, high = (afternoon_volatility(f"volatility_ramp@{level}") for level in (0, 1, 3))
    assert low < default < high

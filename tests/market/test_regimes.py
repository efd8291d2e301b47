"""Regime presets."""

from __future__ import annotations

import pytest

from rlexec.errors import ConfigError
from rlexec.market.config import MarketConfig, clock_ns
from rlexec.market.regimes import REGIMES, regime_config


def test_every_listed_regime_builds_a_named_round_trippable_config():
    assert set(REGIMES) == {"baseline", "open", "close", "midday", "bullish", "bearish", "illiquid", "liquid",
                            "volatility_ramp"}
    for name in REGIMES:
        config = regime_config(name)
        assert config.regime == name
        assert MarketConfig.from_dict(config.to_dict()) == config


def test_window_regimes_keep_the_baseline_market():
    base = regime_config("baseline")
    assert regime_config("open").window_ns == (clock_ns(9, 30), clock_ns(10))
    assert regime_config("close").window_ns == (clock_ns(15, 30), clock_ns(16))
    assert regime_config("midday").window_ns == (clock_ns(12), clock_ns(13))
    for name in ("open", "close", "midday"):
        config = regime_config(name)
        assert (config.fundamental, config.value, config.noise) == (base.fundamental, base.value, base.noise)


def test_market_regimes_change_what_they_say():
    base = regime_config("baseline")
    assert regime_config("bullish").fundamental.drift == pytest.approx(0.01)
    assert regime_config("bearish").fundamental.drift == pytest.approx(-0.01)
    assert regime_config("illiquid").noise.count == base.noise.count // 4
    assert regime_config("liquid").market_maker.count == base.market_maker.count * 4
    thin = regime_config("illiquid").market_maker
    assert thin.count * thin.min_size == base.market_maker.count * base.market_maker.min_size // 4
    assert regime_config("volatility_ramp").fundamental.vol_ramp == 4.0


def test_unknown_regime_lists_the_choices():
    with pytest.raises(ConfigError, match="baseline"):
        regime_config("sideways")

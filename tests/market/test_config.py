"""Config dataclasses: defaults, dict round trip, validation messages."""

from __future__ import annotations

import dataclasses

import pytest

from rlexec.errors import ConfigError
from rlexec.market.config import MarketConfig, clock_ns


def test_defaults_are_the_documented_population_and_session():
    config = MarketConfig()
    assert (config.market_maker.count, config.value.count, config.momentum.count, config.noise.count,
            config.volatility.count) == (2, 102, 12, 1_000, 10)
    assert (config.session.start_ns, config.session.end_ns) == (clock_ns(9, 30), clock_ns(16))
    assert config.session.tick_size == 0.01
    assert config.window_ns == (clock_ns(9, 30), clock_ns(16))


def test_dict_round_trip_is_lossless_and_plain():
    config = dataclasses.replace(MarketConfig(), execution_window=(clock_ns(10), clock_ns(11)))
    data = config.to_dict()
    assert data["execution_window"] == [clock_ns(10), clock_ns(11)]
    assert isinstance(data["value"], dict)
    assert MarketConfig.from_dict(data) == config


def test_partial_dict_takes_defaults():
    config = MarketConfig.from_dict({"noise": {"count": 7}})
    assert config.noise.count == 7
    assert config.noise.beta_a == MarketConfig().noise.beta_a


@pytest.mark.parametrize("data, field", [
    ({"value": {"wake_mean_s": 0}}, "value.wake_mean_s"),
    ({"noise": {"colour": 1}}, "noise.colour"),
    ({"bogus": 1}, "bogus"),
    ({"momentum": {"short_window": 30, "long_window": 20}}, "momentum.long_window"),
    ({"execution_window": [clock_ns(8), clock_ns(10)]}, "execution_window"),
    ({"fundamental": "fast"}, "fundamental"),
])
def test_invalid_values_name_the_field(data, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        MarketConfig.from_dict(data)


def test_configs_are_frozen_and_keyword_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        MarketConfig().regime = "x"
    with pytest.raises(TypeError):
        MarketConfig("baseline")

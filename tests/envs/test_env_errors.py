"""prepare_orders rejects unexecutable orders naming the row; configs reject bad values naming the field."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from envs_helpers import D0, D1, make_market, order, tiny_config
from rlexec.data.orders import Order
from rlexec.envs import ExecutionConfig, FillModel, RewardConfig, prepare_orders
from rlexec.errors import ConfigError, OrderError

GOOD = Order(symbol="AAPL", date=dt.date(2019, 2, 13), side="buy", quantity=10_000, start_minute=60)


def _rows(bad: Order, position: int) -> list[Order]:
    orders = [GOOD, GOOD, GOOD]
    orders[position - 1] = bad
    return orders


@pytest.mark.parametrize(
    "bad, match",
    [
        (dataclasses.replace(GOOD, start_minute=151), r"ends after 16:00; start by 12:00"),
        (dataclasses.replace(GOOD, date=dt.date(2019, 2, 11)), r"no session before 2019-02-11"),
        (dataclasses.replace(GOOD, symbol="XYZ"), r"no market data for XYZ on 2019-02-13"),
        (dataclasses.replace(GOOD, date=dt.date(2019, 2, 18)), r"no market data for AAPL on 2019-02-18"),
        (dataclasses.replace(GOOD, quantity=50_000_000), r"exceeds the [\d,]+ shares available in its window"),
    ],
    ids=["past-16:00", "no-earlier-session", "unknown-symbol", "unknown-date", "too-large"],
)
@pytest.mark.parametrize("position", [1, 3])
def test_prepare_orders_names_the_bad_row(sample_market, bad, match, position):
    with pytest.raises(OrderError, match=rf"^order {position}: .*{match}") as info:
        prepare_orders(sample_market, _rows(bad, position), ExecutionConfig())
    assert info.value.row == position


def test_window_ending_exactly_at_16_00_is_accepted(sample_market):
    batch = prepare_orders(sample_market, [dataclasses.replace(GOOD, start_minute=150)], ExecutionConfig())
    assert batch.volume.shape == (1, 240)


def test_capacity_boundary_is_max_participation_times_window_volume():
    # 4 horizon minutes of 1,000 shares at 20 %: at most 800 shares
    market = make_market([100] * 4, [1000] * 4)
    prepare_orders(market, [order("buy", 800)], tiny_config())
    with pytest.raises(OrderError, match=r"^order 1: quantity 801 exceeds the 800 shares"):
        prepare_orders(market, [order("buy", 801)], tiny_config())
    # a lower cap lowers the capacity
    with pytest.raises(OrderError, match="exceeds the 400 shares"):
        prepare_orders(market, [order("buy", 500)], tiny_config(max_participation=0.1))


def test_window_without_traded_volume_is_rejected():
    market = make_market([100] * 4, [0, 0, 0, 0])
    with pytest.raises(OrderError, match=rf"^order 2: no traded volume in the window of TST on {D1}"):
        prepare_orders(market, [order("buy", 1, start=100), order("buy", 1)], tiny_config())


def test_first_session_has_no_earlier_session():
    with pytest.raises(OrderError, match="^order 1: TST has no session before"):
        prepare_orders(make_market(), [order("buy", 1, date=D0)], tiny_config())


def test_empty_order_list_is_rejected(sample_market):
    with pytest.raises(OrderError, match="no orders"):
        prepare_orders(sample_market, [], ExecutionConfig())


# --------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "cls, field, value",
    [
        (FillModel, "price_field", "open"),
        (FillModel, "max_participation", 0.0),
        (FillModel, "max_participation", 1.5),
        (FillModel, "max_participation", float("nan")),
        (FillModel, "impact_coefficient_bps", -1.0),
        (FillModel, "impact_exponent", 0.0),
        (FillModel, "half_spread_bps", -0.1),
        (RewardConfig, "alpha", -1.0),
        (RewardConfig, "scale", 0.0),
        (RewardConfig, "basis", "day"),
        (ExecutionConfig, "n_steps", 0),
        (ExecutionConfig, "step_minutes", 0),
        (ExecutionConfig, "action_values", (1.0,)),
        (ExecutionConfig, "action_values", (0.0, 1.5)),
        (ExecutionConfig, "lookback_minutes", -1),
        (ExecutionConfig, "lookback_minutes", 391),
        (ExecutionConfig, "profile_days", 0),
    ],
)
def test_invalid_config_values_raise_config_error_naming_the_field(cls, field, value):
    with pytest.raises(ConfigError, match=rf"^{cls.__name__}\.{field} "):
        cls(**{field: value})


def test_horizon_longer_than_a_session_is_rejected():
    with pytest.raises(ConfigError, match=r"ExecutionConfig\.horizon_minutes .*390"):
        ExecutionConfig(n_steps=14, step_minutes=30)
    assert ExecutionConfig(n_steps=13, step_minutes=30).horizon_minutes == 390


@pytest.mark.parametrize(
    "cls, field, value",
    [
        (ExecutionConfig, "n_steps", "8"),
        (ExecutionConfig, "n_steps", 2.5),
        (FillModel, "max_participation", "0.1"),
    ],
)
def test_wrongly_typed_config_values_raise_config_error(cls, field, value):
    """A string or a fractional step count (e.g. from YAML) is an invalid value, not a crash later."""
    with pytest.raises(ConfigError, match=field):
        cls(**{field: value})


def test_from_dict_rejects_unknown_keys_naming_them():
    with pytest.raises(ConfigError, match=r"ExecutionConfig: unknown field\(s\) \['n_step'\]"):
        ExecutionConfig.from_dict({"n_step": 4})
    with pytest.raises(ConfigError, match=r"FillModel: unknown field\(s\) \['cap'\]"):
        ExecutionConfig.from_dict({"fill": {"cap": 0.1}})
    with pytest.raises(ConfigError, match=r"RewardConfig: unknown field\(s\) \['penalty'\]"):
        ExecutionConfig.from_dict({"reward": {"penalty": 4}})
    with pytest.raises(ConfigError, match=r"FillModel\.max_participation"):
        ExecutionConfig.from_dict({"fill": {"max_participation": 2}})


def test_to_dict_round_trips():
    config = ExecutionConfig(
        n_steps=4, step_minutes=15, action_values=(0.0, 0.5, 1.0), lookback_minutes=10, profile_days=3,
        fill=FillModel(price_field="close", max_participation=0.1, impact_coefficient_bps=3.0,
                       impact_exponent=1.0, half_spread_bps=0.5, force_remainder=False),
        reward=RewardConfig(alpha=4.0, scale=0.1, basis="step"),
    )
    data = config.to_dict()
    assert data["fill"]["max_participation"] == 0.1 and data["reward"]["basis"] == "step"
    assert ExecutionConfig.from_dict(data) == config
    assert ExecutionConfig.from_dict({}) == ExecutionConfig()
    # YAML gives lists: they become the tuple the dataclass holds
    assert ExecutionConfig.from_dict({**data, "action_values": [0, 0.5, 1]}) == config

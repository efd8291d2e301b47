"""Hand-computed fills of the bar fill model (FillModel docstring, kernels.execute_step).

Every expected number below is worked out on paper from the bars given in the test; the comments
show the arithmetic. Horizon = D1 minutes 10..13, two steps of two minutes (see envs_helpers).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from envs_helpers import make_market, order, tiny_config
from rlexec.envs import BatchExecutionEngine, ExecutionConfig, FillModel, prepare_orders
from rlexec.errors import ConfigError, OrderError


def run(market, orders, config, fractions):
    """Run the batch engine with ``fractions[t]`` (one value per order) at step t; keep each step's outcome."""
    batch = prepare_orders(market, orders, config)
    engine = BatchExecutionEngine(config)
    state = engine.reset(batch)
    outcomes = []
    for f in fractions:
        out = engine.step(np.broadcast_to(np.asarray(f, dtype=float), (len(orders),)))
        outcomes.append((out.quantity.copy(), out.pa_bps.copy(), out.minute_concentration.copy()))
    assert state.done
    return batch, state, outcomes


# --------------------------------------------------------------------------- uncapped, linear impact


def test_linear_impact_and_half_spread_buy_and_sell_by_hand():
    # prices 100, 101, 102, 103; volumes 1000, 2000, 4000, 1000; Q = 400, TWAP 50 % per step
    # -> 100 shares a minute, caps (20 %) 200, 400, 800, 200 never bind.
    # impact_bps = 10 * (100 / v) ** 1 + 2 = 3, 2.5, 2.25, 3
    market = make_market([100, 101, 102, 103], [1000, 2000, 4000, 1000])
    config = tiny_config(impact_coefficient_bps=10.0, impact_exponent=1.0, half_spread_bps=2.0)
    batch, state, outcomes = run(market, [order("buy", 400), order("sell", 400)], config, [0.5, 0.5])

    np.testing.assert_array_equal(state.minute_fills, [[100, 100, 100, 100]] * 2)
    buy_prices = np.array([100.03, 101.02525, 102.02295, 103.0309])  # p * (1 + bps / 1e4)
    sell_prices = np.array([99.97, 100.97475, 101.97705, 102.9691])  # p * (1 - bps / 1e4)
    np.testing.assert_allclose(state.cash, [100 * buy_prices.sum(), 100 * sell_prices.sum()], rtol=1e-13)
    np.testing.assert_allclose(state.cash, [40610.91, 40589.09], rtol=1e-13)
    np.testing.assert_allclose(state.average_price, [101.5272750, 101.4727250], rtol=1e-13)
    np.testing.assert_array_equal(state.executed, [400, 400])
    np.testing.assert_array_equal(state.remaining, [0, 0])
    # impact works against the trader on both sides
    assert state.average_price[0] > 101.5 > state.average_price[1]
    assert batch.twap_price[0] == pytest.approx(101.5, rel=1e-15)
    # PA = sigma (avg / twap - 1) 1e4 = -sum(p * bps) / sum(p) = -1091 / 406 for both sides
    pa_total = np.sum([o[1] for o in outcomes], axis=0)
    np.testing.assert_allclose(pa_total, [-1091 / 406, -1091 / 406], rtol=1e-10)
    # per step: sigma * (spent / twap - filled) / Q * 1e4
    step0_buy = -1 * (100 * (100.03 + 101.02525) / 101.5 - 200) / 400 * 1e4
    assert outcomes[0][1][0] == pytest.approx(step0_buy, rel=1e-10)


def test_square_root_impact_by_hand():
    # 100 shares a minute on volumes 625, 2500, 10000, 1600: participation .16, .04, .01, .0625,
    # sqrt = .4, .2, .1, .25 -> impact 4, 2, 1, 2.5 bp with coefficient 10.
    market = make_market([50, 60, 70, 80], [625, 2500, 10000, 1600])
    config = tiny_config(impact_coefficient_bps=10.0, impact_exponent=0.5)
    _, state, _ = run(market, [order("buy", 400), order("sell", 400)], config, [0.5, 0.5])
    np.testing.assert_allclose(state.cash[0], 100 * (50.02 + 60.012 + 70.007 + 80.02), rtol=1e-13)
    np.testing.assert_allclose(state.cash[1], 100 * (49.98 + 59.988 + 69.993 + 79.98), rtol=1e-13)
    assert state.average_price[0] > 65.0 > state.average_price[1]  # mean minute price is 65


def test_zero_impact_fills_at_the_minute_price_typical_and_close():
    market = make_market([100, 101, 102, 103], [1000, 1000, 1000, 1000])
    # make bar 12 non-flat: high 110, low 98, close 101 -> typical 103
    market.bars[1, 12, 1:4] = [110.0, 98.0, 101.0]
    for field, expected in (("typical", [100, 101, 103, 103]), ("close", [100, 101, 101, 103])):
        _, state, _ = run(market, [order("buy", 400)], tiny_config(price_field=field), [0.5, 0.5])
        np.testing.assert_allclose(state.cash[0], 100 * sum(expected), rtol=1e-15)


# --------------------------------------------------------------------------- the volume cap


def test_cap_binding_leaves_shares_in_remaining_and_last_step_catches_up():
    # Q = 600 on 1,000-share minutes, cap 200 a minute. Step 0 asks for all of Q: 300 a minute,
    # capped at 200 -> 400 filled, 200 stay in `remaining`; the last step trades them, 100 a minute.
    market = make_market([100, 100, 100, 100], [1000, 1000, 1000, 1000])
    batch = prepare_orders(market, [order("sell", 600)], tiny_config())
    engine = BatchExecutionEngine(tiny_config())
    state = engine.reset(batch)
    out = engine.step(np.array([1.0]))
    assert out.quantity[0] == 400
    assert state.remaining[0] == 200 and state.executed[0] == 400
    np.testing.assert_array_equal(state.minute_fills[0], [200, 200, 0, 0])
    engine.step(np.array([0.0]))  # the last step trades the remainder whatever the action
    np.testing.assert_array_equal(state.minute_fills[0], [200, 200, 100, 100])
    assert state.remaining[0] == 0 and state.fill_rate[0] == 1.0


@pytest.mark.parametrize("side, sigma", [("buy", -1), ("sell", 1)])
def test_forced_remainder_trades_above_the_cap_with_impact_of_its_participation(side, sigma):
    # Nothing in step 0; step 1 wants 600: 300 a minute. Minute 12 is capped at 200; the forced last
    # minute takes the rest, 600 - 200 = 400 shares = 40 % of its volume (cap is 20 %).
    # impact: minute 12 at 20 %: 10 sqrt(.2) bp; minute 13 at 40 %: 10 sqrt(.4) bp.
    market = make_market([100, 100, 100, 104], [1000, 1000, 1000, 1000])
    config = tiny_config(impact_coefficient_bps=10.0, impact_exponent=0.5, force_remainder=True)
    _, state, outcomes = run(market, [order(side, 600)], config, [0.0, 0.0])
    np.testing.assert_array_equal(state.minute_fills[0], [0, 0, 200, 400])
    assert state.minute_fills[0, 3] > config.fill.max_participation * 1000
    p12 = 100 * (1 - sigma * 10 * math.sqrt(0.2) * 1e-4)
    p13 = 104 * (1 - sigma * 10 * math.sqrt(0.4) * 1e-4)
    assert state.cash[0] == pytest.approx(200 * p12 + 400 * p13, rel=1e-13)
    assert state.fill_rate[0] == 1.0 and state.remaining[0] == 0.0
    assert outcomes[1][0][0] == 600
    # against the trader: a buy pays more than the minute price, a sell receives less
    assert sigma * (p13 - 104) < 0


def test_without_force_remainder_the_capped_leftover_stays_unfilled():
    market = make_market([100, 100, 100, 104], [1000, 1000, 1000, 1000])
    config = tiny_config(force_remainder=False)
    _, state, outcomes = run(market, [order("buy", 600)], config, [0.0, 1.0])
    np.testing.assert_array_equal(state.minute_fills[0], [0, 0, 200, 200])
    assert state.executed[0] == 400 and state.remaining[0] == 200
    assert state.fill_rate[0] == pytest.approx(2 / 3, rel=1e-15)
    assert state.cash[0] == pytest.approx(200 * 100 + 200 * 104, rel=1e-15)
    assert np.all(state.minute_fills <= config.fill.max_participation * 1000)


def test_zero_volume_minute_gets_no_fill_and_is_left_out_of_twap():
    # Minute 11 has no volume: the 75 shares planned for it do not fill and are caught up later.
    market = make_market([100, 200, 102, 104], [1000, 0, 1000, 1000])
    config = tiny_config()
    batch, state, _ = run(market, [order("buy", 300)], config, [0.5, 0.5])
    np.testing.assert_array_equal(state.minute_fills[0], [75, 0, 112.5, 112.5])
    assert batch.twap_price[0] == pytest.approx((100 + 102 + 104) / 3, rel=1e-15)
    # volume-weighted: the untraded 200 bar has no weight
    assert batch.market_vwap[0] == pytest.approx((100 + 102 + 104) / 3, rel=1e-15)
    assert state.cash[0] == pytest.approx(75 * 100 + 112.5 * 102 + 112.5 * 104, rel=1e-15)


def test_zero_volume_last_minute_still_takes_the_forced_remainder():
    market = make_market([100, 100, 100, 104], [1000, 1000, 1000, 0])
    _, state, _ = run(market, [order("buy", 300)], tiny_config(), [0.0, 0.0])
    # minute 12: 150 (cap 200); minute 13 has no volume but is the forced last minute: 150
    np.testing.assert_array_equal(state.minute_fills[0], [0, 0, 150, 150])
    assert state.cash[0] == pytest.approx(150 * 100 + 150 * 104, rel=1e-15)  # no impact configured
    # and with impact the forced fill is priced against the buyer: above the minute's 104
    _, state, _ = run(market, [order("buy", 300)], tiny_config(impact_coefficient_bps=10.0), [0.0, 0.0])
    assert state.minute_fills[0, 3] == 150
    p12 = 100 * (1 + 10 * math.sqrt(150 / 1000) * 1e-4)
    forced_price = (state.cash[0] - 150 * p12) / 150
    assert np.isfinite(forced_price) and forced_price > 104
    # without the forced rule a zero-volume minute never fills
    _, state, _ = run(market, [order("buy", 300)], tiny_config(force_remainder=False), [0.0, 0.0])
    np.testing.assert_array_equal(state.minute_fills[0], [0, 0, 150, 0])


def test_fraction_is_of_q_capped_by_remaining_and_negative_means_nothing():
    config = ExecutionConfig(n_steps=3, step_minutes=2, lookback_minutes=2, profile_days=1,
                             fill=FillModel(impact_coefficient_bps=0.0))
    market = make_market()  # 1,000 shares a minute everywhere: cap 200
    engine = BatchExecutionEngine(config)
    state = engine.reset(prepare_orders(market, [order("buy", 400)], config))
    engine.step(np.array([-0.5]))
    assert state.executed[0] == 0 and state.remaining[0] == 400
    engine.step(np.array([0.75]))  # 0.75 Q = 300, 150 a minute
    assert state.executed[0] == 300
    engine.reset(prepare_orders(market, [order("buy", 400)], config))
    engine.step(np.array([0.75]))
    out = engine.step(np.array([0.75]))  # asks 300 again, only 100 remain
    assert out.quantity[0] == 100 and engine.state.remaining[0] == 0
    np.testing.assert_array_equal(engine.state.minute_fills[0], [150, 150, 50, 50, 0, 0])


def test_reference_price_is_last_close_before_start_and_lookback_comes_from_the_day():
    market = make_market([100, 100, 100, 100], lookback_prices=[97.0, 98.5])
    batch = prepare_orders(market, [order("buy", 100)], tiny_config())
    assert batch.reference_price[0] == 98.5
    np.testing.assert_array_equal(batch.window_bars[0, :, 3], [97.0, 98.5, 100, 100, 100, 100])


def test_order_at_the_open_takes_lookback_and_reference_from_the_previous_session():
    day0 = np.full(390, 100.0)
    day0[-2:] = [95.0, 96.0]
    market = make_market([101, 101, 101, 101], start=0, day0_close=day0)
    batch = prepare_orders(market, [order("sell", 100, start=0)], tiny_config())
    assert batch.reference_price[0] == 96.0
    np.testing.assert_array_equal(batch.window_bars[0, :2, 3], [95.0, 96.0])


# --------------------------------------------------------------------------- no volume cap (max_participation=None)


@pytest.mark.parametrize("side, sigma", [("buy", -1), ("sell", 1)])
def test_without_a_cap_a_child_above_twenty_percent_of_volume_fills_within_its_step(side, sigma):
    # Q = 1,200 on 1,000-share minutes, 50 % a step: 300 shares a minute = 30 % of each bar,
    # above the default 20 % cap. Uncapped, each step fills its 600 entirely, at impact
    # 10 sqrt(.3) bp in every minute (the forced last minute: max(1000, .25 x 1000) = its own volume).
    market = make_market([100, 101, 102, 103], [1000, 1000, 1000, 1000])
    config = tiny_config(max_participation=None, impact_coefficient_bps=10.0, impact_exponent=0.5)
    _, state, outcomes = run(market, [order(side, 1200)], config, [0.5, 0.5])
    assert outcomes[0][0][0] == 600 and outcomes[1][0][0] == 600
    np.testing.assert_array_equal(state.minute_fills[0], [300, 300, 300, 300])
    impact = 10 * math.sqrt(0.3) * 1e-4
    expected = sum(300 * p * (1 - sigma * impact) for p in (100, 101, 102, 103))
    assert state.cash[0] == pytest.approx(expected, rel=1e-13)
    assert state.fill_rate[0] == 1.0
    # the same order is more than the default cap lets the window trade (0.2 x 4,000 = 800 shares)
    with pytest.raises(OrderError, match="max_participation 0.2"):
        prepare_orders(market, [order(side, 1200)], tiny_config())


def test_without_a_cap_a_zero_volume_minute_still_gets_no_fill():
    # No cap is no licence to trade where nobody traded: minute 11 (volume 0) fills nothing, its
    # 300 shares stay in the order and the last step takes 900, 450 a minute (45 % of each bar).
    market = make_market([100, 200, 102, 104], [1000, 0, 1000, 1000])
    config = tiny_config(max_participation=None, impact_coefficient_bps=10.0)
    _, state, outcomes = run(market, [order("buy", 1200)], config, [0.5, 0.5])
    np.testing.assert_array_equal(state.minute_fills[0], [300, 0, 450, 450])
    assert outcomes[0][0][0] == 300
    expected = 300 * 100 * (1 + 10 * math.sqrt(0.3) * 1e-4) + 450 * (102 + 104) * (1 + 10 * math.sqrt(0.45) * 1e-4)
    assert state.cash[0] == pytest.approx(expected, rel=1e-13)


def test_no_cap_is_null_in_yaml_and_round_trips():
    config = ExecutionConfig.from_dict(yaml.safe_load("fill:\n  max_participation: null\n"))
    assert config.fill.max_participation is None and config.fill.participation_cap == math.inf
    assert ExecutionConfig.from_dict(config.to_dict()) == config
    assert FillModel().max_participation == 0.2 and FillModel().participation_cap == 0.2
    with pytest.raises(ConfigError, match=r"^FillModel\.max_participation must be in \(0, 1\], or null for no cap"):
        FillModel(max_participation=1.5)


# --------------------------------------------------------------------------- forced remainder on a thin last minute


@pytest.mark.parametrize(
    "last_volume, liquidity",
    [
        (0, 0.25 * 3000 / 3),  # empty last bar: floor = 0.25 x mean of the 3 traded minutes (1,000)
        (100, 0.25 * 3100 / 4),  # thin last bar: 100 < floor 0.25 x 775 = 193.75
        (5000, 5000),  # busy last bar: its own volume (floor 0.25 x 2,000 = 500)
    ],
)
def test_forced_remainder_impact_is_measured_against_at_least_the_volume_floor(last_volume, liquidity):
    # Nothing in step 0; the last step wants 300, 150 a minute. Minute 12 fills 150 (15 % of 1,000);
    # the forced last minute takes the other 150 whatever its bar, at participation 150 / liquidity.
    market = make_market([100, 100, 100, 104], [1000, 1000, 1000, last_volume])
    config = tiny_config(impact_coefficient_bps=10.0, impact_exponent=0.5)
    _, state, _ = run(market, [order("buy", 300)], config, [0.0, 0.0])
    np.testing.assert_array_equal(state.minute_fills[0], [0, 0, 150, 150])
    p12 = 100 * (1 + 10 * math.sqrt(0.15) * 1e-4)
    p13 = 104 * (1 + 10 * math.sqrt(150 / liquidity) * 1e-4)
    assert state.cash[0] == pytest.approx(150 * p12 + 150 * p13, rel=1e-13)


def test_forced_volume_floor_is_configurable_and_must_be_positive():
    # A floor of 1 charges the forced 150 shares on the empty last bar as 15 % of a mean minute (1,000).
    market = make_market([100, 100, 100, 104], [1000, 1000, 1000, 0])
    config = tiny_config(impact_coefficient_bps=10.0, forced_volume_floor=1.0)
    _, state, _ = run(market, [order("sell", 300)], config, [0.0, 0.0])
    assert state.cash[0] == pytest.approx(150 * (100 + 104) * (1 - 10 * math.sqrt(0.15) * 1e-4), rel=1e-13)
    for bad in (0.0, -1.0, float("nan"), float("inf"), "1", True):
        with pytest.raises(ConfigError, match=r"^FillModel\.forced_volume_floor "):
            FillModel(forced_volume_floor=bad)

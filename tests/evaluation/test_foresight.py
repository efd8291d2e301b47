"""rlexec.evaluation.foresight: the timing advantage by hand, past features without look-ahead, the ridge, policy timing."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from rlexec.cli.main import main
from rlexec.data import MarketData
from rlexec.data.orders import Order
from rlexec.envs import ExecutionConfig, FillModel, RewardConfig, prepare_orders
from rlexec.evaluation.foresight import (PAST_FEATURES, RidgeFit, front_share, horizon_drift, past_features,
                                         policy_timing, predictability, r_squared, share_of_remaining, step_fills,
                                         timing_advantage, window_prices)
from rlexec.strategies import make_strategy

DAYS = (dt.date(2024, 1, 2), dt.date(2024, 1, 3))
START = 40  # session minute of every order
CONFIG = ExecutionConfig(n_steps=3, step_minutes=2, lookback_minutes=4, profile_days=1,
                         fill=FillModel(impact_coefficient_bps=0.0), reward=RewardConfig())


def hand_market(window_prices_: tuple[float, ...] = (100.0, 102.0, 98.0)) -> np.ndarray:
    """Two flat sessions at 100 USD, 1,000 shares a minute; the order day's three windows at the given prices."""
    bars = np.zeros((2, 390, 5))
    bars[..., :4] = 100.0
    bars[..., 4] = 1000.0
    for w, price in enumerate(window_prices_):
        bars[1, START + 2 * w: START + 2 * w + 2, :4] = price
    return bars


def market_of(bars: np.ndarray) -> MarketData:
    return MarketData(symbols=("TST",), dates=DAYS, row_symbols=("TST", "TST"), bars=bars,
                      observed=np.ones((2, 390), dtype=bool))


def batch_of(bars: np.ndarray, sides=("buy", "sell")):
    orders = [Order(symbol="TST", date=DAYS[1], side=s, quantity=300.0, start_minute=START) for s in sides]
    return prepare_orders(market_of(bars), orders, CONFIG)


def test_timing_advantage_by_hand():
    batch = batch_of(hand_market())
    np.testing.assert_allclose(window_prices(batch, CONFIG)[0], [100.0, 102.0, 98.0])
    # window 1 at 102 against the mean of 102 and 98 (100): +200 bp dearer; a buyer loses, a seller gains
    expected_sell = np.array([(100 / 100 - 1), (102 / 100 - 1), 0.0]) * 1e4
    np.testing.assert_allclose(timing_advantage(batch, CONFIG), [-expected_sell, expected_sell], atol=1e-9)


def test_horizon_drift_and_front_share_by_side_by_hand():
    batch = batch_of(hand_market((100.0, 101.0, 103.0)))
    assert horizon_drift(batch, CONFIG) == pytest.approx({"buy": 300.0, "sell": 300.0})
    filled = np.array([[300.0, 0.0, 0.0], [0.0, 100.0, 200.0]])  # the buy all at once, the sell late
    assert front_share(filled, batch) == pytest.approx({"buy": 1.0, "sell": 0.0})  # first half = step 0 of 3


def test_window_price_ignores_minutes_without_volume():
    bars = hand_market()
    bars[1, START, 4] = 0.0  # window 0's first minute does not trade ...
    bars[1, START, :4] = 90.0  # ... so its price must not count
    assert window_prices(batch_of(bars), CONFIG)[0, 0] == pytest.approx(100.0)


def test_past_features_do_not_see_the_decision_window_or_later():
    bars = hand_market()
    base = past_features(batch_of(bars), CONFIG)
    for t in range(CONFIG.n_steps):
        future = bars.copy()
        future[1, START + 2 * t:, :4] *= 1.05  # every bar from step t's decision minute on
        future[1, START + 2 * t:, 4] *= 3.0
        changed = past_features(batch_of(future), CONFIG)
        np.testing.assert_array_equal(changed[:, : t + 1], base[:, : t + 1])
        if t + 1 < CONFIG.n_steps:  # the next decision has seen the changed window
            assert not np.array_equal(changed[:, t + 1], base[:, t + 1])


def test_past_returns_are_signed_by_side_and_by_hand():
    bars = hand_market()
    bars[1, START - 1, CLOSE_COLUMN] = 101.0  # the last lookback minute closes at 101 (the reference price)
    bars[1, START - 6, CLOSE_COLUMN] = 99.0  # five minutes earlier: 99
    features = past_features(batch_of(bars), CONFIG)
    five = PAST_FEATURES.index("return_5m_bps")
    # the lookback holds 4 minutes, so the 5-minute return reaches back to the lookback's first minute (100)
    assert features[1, 0, five] == pytest.approx((101 / 100 - 1) * 1e4)
    assert features[0, 0, five] == pytest.approx(-(101 / 100 - 1) * 1e4)
    assert features[0, 1, PAST_FEATURES.index("step")] == pytest.approx(1 / 3)
    assert features[0, 2, PAST_FEATURES.index("time_of_day")] == pytest.approx((START + 4) / 390)


CLOSE_COLUMN = 3


def test_ridge_recovers_a_linear_law_out_of_sample_and_not_noise():
    rng = np.random.default_rng(0)
    x, x_out = rng.normal(size=(500, 3)), rng.normal(size=(500, 3))
    law = lambda v: 2.0 * v[:, 0] - 3.0 * v[:, 1] + 1.0  # noqa: E731
    model = RidgeFit.fit(x, law(x), alpha=1e-6)
    np.testing.assert_allclose(model.coef / model.scale, [2.0, -3.0, 0.0], atol=1e-5)
    assert r_squared(law(x_out), model.predict(x_out)) == pytest.approx(1.0, abs=1e-8)
    noise = RidgeFit.fit(x, rng.normal(size=500))
    assert r_squared(rng.normal(size=500), noise.predict(x_out)) < 0.02
    assert r_squared(np.ones(3), np.zeros(3)) == 0.0  # no variance to explain


def test_step_fills_of_twap_conserve_shares_and_trade_one_over_what_is_left():
    batch = batch_of(hand_market())
    filled, remaining = step_fills(make_strategy("twap"), batch, CONFIG)
    np.testing.assert_allclose(filled.sum(axis=1), batch.quantity)
    np.testing.assert_allclose(remaining[:, 0], batch.quantity)
    np.testing.assert_allclose(share_of_remaining(filled, remaining), [[1 / 3, 1 / 2, 1.0]] * 2)


class _Clairvoyant:
    """Trades all of what remains in the window with the best timing advantage (it reads the future)."""

    name = "clairvoyant"

    def __init__(self, batch, config):
        self.best = np.argmax(timing_advantage(batch, config)[:, :-1], axis=1)

    def fractions(self, state):
        return np.where(self.best == state.t, 1.0, 0.0)


def _random_market(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bars = hand_market()
    walk = 100.0 * np.exp(np.cumsum(rng.normal(0, 2e-3, size=(2, 390)), axis=1))
    bars[..., :4] = walk[..., None]
    return bars


def test_policy_timing_sees_foresight_and_not_in_the_past():
    fit = prepare_orders(market_of(_random_market(1)), _orders(1), CONFIG)
    score = prepare_orders(market_of(_random_market(2)), _orders(2), CONFIG)
    seer = policy_timing((_Clairvoyant(fit, CONFIG), fit), (_Clairvoyant(score, CONFIG), score), CONFIG)
    assert seer["correlation_with_advantage"] > 0.3
    assert seer["r2_share_from_advantage"] > 0.1
    view = predictability(fit, score, CONFIG)
    assert view["oracle_edge_bps"] > 0 and view["decisions_scored"] == 2 * len(score)
    assert abs(view["captured_edge_bps"]) <= view["oracle_edge_bps"]


def _orders(seed: int) -> list[Order]:
    rng = np.random.default_rng(seed)
    return [Order(symbol="TST", date=DAYS[1], side=("buy", "sell")[i % 2], quantity=100.0,
                  start_minute=int(s)) for i, s in enumerate(rng.integers(10, 380, size=200))]


def test_cli_writes_foresight_json_and_refuses_one_part(tmp_path, capsys):
    assert main(["foresight", "--split", "sample", "--part", "train", "--fit-part", "train"]) == 2
    assert "out-of-sample" in capsys.readouterr().err
    assert main(["foresight", "--split", "sample", "--num-orders", "40", "--strategies", "twap,vwap",
                 "--out", str(tmp_path)]) == 0
    [path] = tmp_path.glob("foresight/*/foresight.json")
    record = json.loads(path.read_text())
    assert set(record["policy_timing"]) == {"twap", "vwap"}
    assert record["predictability"]["decisions_scored"] == 40 * (ExecutionConfig().n_steps - 1)
    assert record["config"]["features"] == list(PAST_FEATURES) and "git_commit" in record

"""What each broker strategy trades, checked against schedules computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlexec.data.orders import Order, OrderGenerator, generate_orders
from rlexec.data.panel import CLOSE, VOLUME
from rlexec.envs import ExecutionConfig
from rlexec.strategies import TWAP, VWAP, ImplementationShortfall, PercentOfVolume, Strategy, make_strategy
from strategies_helpers import START, config, hand_bars, market_from, order, run, set_minutes


def _orders(market, n, seed, fraction=(0.0005, 0.002)):
    generator = OrderGenerator(horizon_minutes=240, size_fraction=fraction)
    return generate_orders(market, n, seed=seed, generator=generator)


def _assert_cap_never_binds(batch, state, cfg):
    cap = cfg.fill.participation_cap * batch.volume
    assert np.all(state.minute_fills[:, :-1] < cap[:, :-1]), "test orders must stay below the volume cap"


# --------------------------------------------------------------------------- TWAP


def test_twap_fills_equal_slices(deep_market):
    cfg = ExecutionConfig()
    orders = _orders(deep_market, 12, seed=1)
    batch, state, fractions, fills = run(deep_market, orders, cfg, TWAP())
    _assert_cap_never_binds(batch, state, cfg)
    np.testing.assert_allclose(fills, np.tile(batch.quantity / cfg.n_steps, (cfg.n_steps, 1)), rtol=1e-12)
    # and evenly within each step
    np.testing.assert_allclose(state.minute_fills, np.tile(batch.quantity[:, None] / 240, 240), rtol=1e-12)
    np.testing.assert_allclose(fractions[0], 1 / 8, rtol=1e-15)


# --------------------------------------------------------------------------- IS


@pytest.mark.parametrize("risk_aversion, eta", [(1.0, 0.01), (200.0, 0.01), (0.0, 0.01)])
def test_is_cumulative_fills_follow_the_almgren_chriss_trajectory(deep_market, risk_aversion, eta):
    cfg = ExecutionConfig()
    orders = _orders(deep_market, 6, seed=2)
    strategy = ImplementationShortfall(risk_aversion=risk_aversion, temporary_impact=eta)
    batch, state, _, fills = run(deep_market, orders, cfg, strategy)
    _assert_cap_never_binds(batch, state, cfg)
    cumulative = np.cumsum(fills, axis=0) / batch.quantity  # (T, N) fill rate at each step end
    T, tau, H = cfg.n_steps, cfg.step_minutes, cfg.horizon_minutes
    for i, o in enumerate(orders):
        prev = deep_market.prior_rows(o.symbol, o.date, 1)[0]
        closes = deep_market.bars[prev, :, CLOSE]
        sigma = float(np.std(np.diff(np.log(closes))))  # one-minute volatility of the previous session
        kappa = math.acosh(1 + risk_aversion * sigma**2 * tau**2 / (2 * eta)) / tau
        if kappa == 0:
            x = [1 - (j + 1) / T for j in range(T)]
        else:
            x = [math.sinh(kappa * (H - (j + 1) * tau)) / math.sinh(kappa * H) for j in range(T)]
        np.testing.assert_allclose(cumulative[:, i], 1 - np.array(x), rtol=1e-9, atol=1e-12)
        if risk_aversion > 0:
            assert np.all(cumulative[:-1, i] > np.arange(1, T) / T)  # front-loaded against TWAP
    if risk_aversion == 200.0:
        assert cumulative[0].min() > 0.3  # a strong urgency: a third of the order in the first step


def test_is_with_high_urgency_still_gives_finite_decisions(sample_market):
    """One decision a minute over a whole session with a large risk aversion (kappa T > 710).

    The AC trajectory must not overflow: the decisions stay finite fractions in [0, 1].
    """
    import warnings

    cfg = ExecutionConfig(n_steps=390, step_minutes=1, lookback_minutes=30)
    o = Order(symbol="AAPL", date=sample_market.dates[2], side="sell", quantity=5_000, start_minute=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _, state, fractions, _ = run(sample_market, [o], cfg, ImplementationShortfall(risk_aversion=1e6))
    assert np.all(np.isfinite(fractions)), fractions[:3, 0]
    assert np.all((fractions >= 0) & (fractions <= 1))


# --------------------------------------------------------------------------- VWAP

# Three sessions D0, D1 (profile) and D2 (order day). Horizon minutes 10..13.
# D0: horizon volumes 4000, 2000, 1000, 1000 and 2000 elsewhere -> day total 2000 * 386 + 8000 = 780,000
# D1: horizon volumes 2000 x 4 and 1000 elsewhere               -> day total 1000 * 386 + 8000 = 394,000


def _vwap_market():
    bars = hand_bars(3)
    bars[0, :, VOLUME] = 2000.0
    set_minutes(bars, 0, START, volumes=[4000, 2000, 1000, 1000])
    set_minutes(bars, 1, START, volumes=[2000, 2000, 2000, 2000])
    set_minutes(bars, 2, START, prices=[100, 100, 100, 100], volumes=[1000, 1000, 1000, 1000])
    return market_from(bars)


def test_vwap_cumulative_target_is_the_earlier_sessions_profile_by_hand():
    market = _vwap_market()
    d0 = np.array([4000, 2000, 1000, 1000]) / 780_000  # share of D0's volume per horizon minute
    d1 = np.array([2000, 2000, 2000, 2000]) / 394_000
    profile = (d0 + d1) / 2
    profile /= profile.sum()  # restricted to the window
    # two sessions of profile
    cfg = config(profile_days=2)
    batch, state, fractions, fills = run(market, [order(market, "buy", 400)], cfg, VWAP())
    np.testing.assert_allclose(batch.volume_profile[0], profile, rtol=1e-12)
    assert fills[0, 0] == pytest.approx(400 * profile[:2].sum(), rel=1e-12)
    assert fractions[0, 0] == pytest.approx(profile[:2].sum(), rel=1e-12)
    assert profile[:2].sum() == pytest.approx(0.5839, abs=1e-4)  # clearly not TWAP's 0.5
    # one session of profile: D1 alone is flat over the window -> TWAP
    batch, state, fractions, fills = run(market, [order(market, "buy", 400)], config(profile_days=1), VWAP())
    np.testing.assert_allclose(batch.volume_profile[0], 0.25, rtol=1e-12)
    np.testing.assert_allclose(fills[:, 0], [200, 200], rtol=1e-12)


def test_vwap_target_matches_the_profile_of_earlier_sample_sessions(sample_market):
    cfg = ExecutionConfig(profile_days=3)
    orders = _orders(sample_market, 8, seed=5)
    batch, state, fractions, fills = run(sample_market, orders, cfg, VWAP())
    checked = []
    for i, o in enumerate(orders):
        prior = sample_market.prior_rows(o.symbol, o.date, 3)
        assert 1 <= len(prior) <= 3 and all(sample_market.dates[r] < o.date for r in prior)
        vol = sample_market.bars[prior, :, VOLUME]
        share = (vol / vol.sum(axis=1, keepdims=True)).mean(axis=0)[o.start_minute : o.start_minute + 240]
        share /= share.sum()
        np.testing.assert_allclose(batch.volume_profile[i], share, rtol=1e-10)
        target = np.add.reduceat(share, np.arange(0, 240, 30)).cumsum()
        # the first decision is the target itself; later ones top up to it, so where every minute
        # traded (a minute without volume fills nothing) and the cap never binds, the order has
        # filled exactly the target by the end of every step
        assert fractions[0, i] == pytest.approx(target[0], rel=1e-10)
        if (batch.volume[i] > 0).all():
            checked.append(i)
            assert np.all(state.minute_fills[i] < cfg.fill.participation_cap * batch.volume[i])
            np.testing.assert_allclose(np.cumsum(fills[:, i]) / o.quantity, target, rtol=1e-10)
    assert len(checked) >= 4
    assert not np.allclose(fractions[1:-1], fractions[0])  # top-ups that differ: not TWAP's equal slices


def test_vwap_never_uses_the_order_days_volume():
    market = _vwap_market()
    cfg = config(profile_days=2)
    _, _, base, _ = run(market, [order(market, "sell", 400)], cfg, VWAP())
    bars = market.bars.copy()
    rng = np.random.default_rng(0)
    bars[2, :, VOLUME] *= rng.uniform(1.0, 5.0, 390)  # only the order day's volume changes
    perturbed = market_from(bars)
    _, _, got, _ = run(perturbed, [order(perturbed, "sell", 400)], cfg, VWAP())
    np.testing.assert_array_equal(got, base)


def test_vwap_decisions_ignore_the_order_days_volume_on_the_sample(sample_market):
    from rlexec.data import MarketData

    cfg = ExecutionConfig()
    # one order per (symbol, last day): no order day is another order's profile day
    orders = [Order(symbol=s, date=sample_market.dates[4], side=side, quantity=200.0, start_minute=start)
              for s, side, start in (("AAPL", "buy", 0), ("JPM", "sell", 75), ("MSFT", "buy", 150), ("SPY", "sell", 20))]
    batch, state, base, _ = run(sample_market, orders, cfg, VWAP())
    _assert_cap_never_binds(batch, state, cfg)
    bars = sample_market.bars.copy()
    rng = np.random.default_rng(1)
    for o in orders:  # only raise volumes: the cap stays slack, so fills cannot differ either
        row = sample_market.row(o.symbol, o.date)
        bars[row, :, VOLUME] = np.rint(bars[row, :, VOLUME] * rng.uniform(1.0, 4.0, 390)) + 1
    perturbed = MarketData(symbols=sample_market.symbols, dates=sample_market.dates,
                           row_symbols=sample_market.row_symbols, bars=bars, observed=sample_market.observed)
    _, _, got, _ = run(perturbed, orders, cfg, VWAP())
    np.testing.assert_array_equal(got, base)
    assert not np.allclose(base[0], 1 / 8)  # a real volume profile, not TWAP


# --------------------------------------------------------------------------- POV


def test_pov_trades_a_share_of_the_previous_interval_volume_by_hand():
    # 3 steps of 2 minutes; lookback volumes 1500, 2500; horizon 3000, 5000, 2500, 2500, 4000, 4000
    bars = hand_bars(2)
    set_minutes(bars, 1, START - 2, volumes=[1500, 2500, 3000, 5000, 2500, 2500, 4000, 4000])
    market = market_from(bars)
    cfg = config(n_steps=3)
    batch, state, fractions, fills = run(market, [order(market, "buy", 2000)], cfg, PercentOfVolume(0.1))
    # step 0: 10 % of the lookback (4000) = 400; step 1: 10 % of step 0's 8000 = 800; last: the rest
    np.testing.assert_allclose(fills[:, 0], [400, 800, 800], rtol=1e-12)
    np.testing.assert_allclose(state.minute_fills[0], [200, 200, 400, 400, 400, 400], rtol=1e-12)
    np.testing.assert_allclose(fractions[:2, 0], [0.2, 0.4], rtol=1e-12)
    _, _, _, fills = run(market, [order(market, "buy", 2000)], cfg, PercentOfVolume(0.05))
    np.testing.assert_allclose(fills[:2, 0], [200, 400], rtol=1e-12)


def test_pov_uses_the_lookback_then_each_closed_interval_on_the_sample(deep_market):
    cfg = ExecutionConfig()
    orders = _orders(deep_market, 6, seed=3, fraction=(0.01, 0.02))
    batch, state, fractions, fills = run(deep_market, orders, cfg, PercentOfVolume(0.03))
    _assert_cap_never_binds(batch, state, cfg)
    L, m = cfg.lookback_minutes, cfg.step_minutes
    for t in range(cfg.n_steps - 1):
        closed = batch.window_bars[:, L + (t - 1) * m : L + t * m, VOLUME].sum(axis=1)
        left = np.maximum(batch.quantity - fills[:t].sum(axis=0), 0.0)
        expected = np.minimum(0.03 * closed, left)
        np.testing.assert_allclose(fills[t], expected, rtol=1e-12, atol=1e-9)
    assert (fills[1] > 0).all() and not np.allclose(fills[0], fills[1])


# --------------------------------------------------------------------------- PA of TWAP, sign flips


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_twap_pa_is_zero_without_impact(side):
    bars = hand_bars(2)
    set_minutes(bars, 1, START, prices=[100, 101, 99, 102], volumes=[1000, 4000, 1000, 2500])
    market = market_from(bars)
    batch, state, _, _ = run(market, [order(market, side, 400)], config(), TWAP())
    np.testing.assert_array_equal(state.minute_fills[0], [100, 100, 100, 100])
    assert state.average_price[0] == pytest.approx(100.5, rel=1e-15)  # the mean minute price
    pa = batch.sigma[0] * (state.average_price[0] / batch.twap_price[0] - 1) * 1e4
    assert abs(pa) < 1e-10


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_twap_pa_with_impact_by_hand(side):
    # 100 shares a minute: participation .1, .025, .1, .04 -> impact 10 sqrt(p) bp =
    # 3.16228, 1.58114, 3.16228, 2.0; PA = -sum(p i) / sum(p) on either side
    bars = hand_bars(2)
    set_minutes(bars, 1, START, prices=[100, 101, 99, 102], volumes=[1000, 4000, 1000, 2500])
    market = market_from(bars)
    batch, state, _, _ = run(market, [order(market, side, 400)], config(impact_coefficient_bps=10.0), TWAP())
    impact = [10 * math.sqrt(0.1), 10 * math.sqrt(0.025), 10 * math.sqrt(0.1), 10 * math.sqrt(0.04)]
    expected = -(100 * impact[0] + 101 * impact[1] + 99 * impact[2] + 102 * impact[3]) / 402
    pa = batch.sigma[0] * (state.average_price[0] / batch.twap_price[0] - 1) * 1e4
    assert pa == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(-2.4701, abs=1e-4)


def test_pa_sign_flips_between_buy_and_sell_for_a_non_twap_schedule():
    # VWAP front-loads (profile 0.584 in step 0) into rising prices: good for a buy, bad for a sell.
    market = _vwap_market()
    bars = market.bars.copy()
    set_minutes(bars, 2, START, prices=[100, 101, 103, 104])
    market = market_from(bars)
    cfg = config(profile_days=2)
    pas = {}
    for side in ("buy", "sell"):
        batch, state, _, _ = run(market, [order(market, side, 400)], cfg, VWAP())
        pas[side] = batch.sigma[0] * (state.average_price[0] / batch.twap_price[0] - 1) * 1e4
    assert pas["buy"] > 1.0
    assert pas["sell"] == pytest.approx(-pas["buy"], rel=1e-12)


# --------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name, cls", [("twap", TWAP), ("vwap", VWAP), ("is", ImplementationShortfall),
                                       ("IS", ImplementationShortfall), ("pov", PercentOfVolume)])
def test_make_strategy_builds_by_name(name, cls):
    s = make_strategy(name)
    assert isinstance(s, cls) and isinstance(s, Strategy) and s.name == name.lower()


def test_make_strategy_passes_parameters():
    assert make_strategy("pov", participation=0.25).participation == 0.25
    s = make_strategy("is", risk_aversion=3.0, temporary_impact=0.5)
    assert (s.risk_aversion, s.temporary_impact) == (3.0, 0.5)


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("foo", {}, r"unknown strategy 'foo'; choose from \['twap', 'vwap', 'is', 'pov'\]"),
        ("twap", {"participation": 0.1}, r"strategy 'twap'"),
        ("vwap", {"days": 3}, r"strategy 'vwap'"),
        ("is", {"lambda_": 1.0}, r"strategy 'is'"),
        ("is", {"risk_aversion": -1.0}, r"is\.risk_aversion"),
        ("is", {"temporary_impact": 0.0}, r"is\.temporary_impact"),
        ("pov", {"participation": 0.0}, r"pov\.participation"),
        ("pov", {"participation": 1.5}, r"pov\.participation"),
    ],
)
def test_make_strategy_errors(name, params, match):
    from rlexec.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        make_strategy(name, **params)


def test_strategies_act_through_the_gym_env(sample_market):
    """The same strategy object drives the continuous env: TWAP reproduces its batch fills."""
    from rlexec.envs import BarExecutionEnv

    o = Order(symbol="MSFT", date=sample_market.dates[3], side="sell", quantity=20_000, start_minute=30)
    env = BarExecutionEnv({"continuous": True}, market=sample_market)
    env.reset(options={"order": o})
    strategy, done = TWAP(), False
    while not done:
        _, _, done, _, info = env.step(strategy.fractions(env.state))
    _, state, _, _ = run(sample_market, [o], ExecutionConfig(), TWAP())
    np.testing.assert_allclose(env.state.minute_fills[0], state.minute_fills[0], rtol=1e-12)
    assert info["fill_rate"] == pytest.approx(1.0)

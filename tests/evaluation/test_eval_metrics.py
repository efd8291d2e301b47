"""Per-order metrics, GLR / POS and the small-sample statistics, on hand numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlexec.evaluation import gain_loss_ratio, mean_se, order_metrics, paired_difference, positive_rate
from rlexec.evaluation.metrics import ORDER_METRICS, aggregate
from rlexec.evaluation.stats import t_quantile


def _hand_metrics():
    # order 0: BUY 1000, 800 filled at 101 (cash 80,800); p0 100, twap 100.5, window VWAP 100.8
    # order 1: SELL 500, all filled at 99 (cash 49,500); p0 100, twap 98, window VWAP 99.5
    # order 2: BUY 100, nothing filled
    return order_metrics(
        sigma=np.array([-1.0, 1.0, -1.0]),
        quantity=np.array([1000.0, 500.0, 100.0]),
        executed=np.array([800.0, 500.0, 0.0]),
        cash=np.array([80_800.0, 49_500.0, 0.0]),
        reference_price=np.array([100.0, 100.0, 50.0]),
        twap_price=np.array([100.5, 98.0, 50.0]),
        market_vwap=np.array([100.8, 99.5, 50.0]),
        reward=np.array([0.3, -0.2, 0.0]),
    )


def test_order_metrics_by_hand():
    m = _hand_metrics()
    assert set(ORDER_METRICS) <= set(m)
    np.testing.assert_allclose(m["fill_rate"], [0.8, 1.0, 0.0])
    np.testing.assert_allclose(m["average_price"][:2], [101.0, 99.0])
    # PA = sigma (avg / twap - 1) 1e4: the buy paid above the horizon average (bad), the sell got above it (good)
    np.testing.assert_allclose(m["price_advantage_bps"][:2], [-(101 / 100.5 - 1) * 1e4, (99 / 98 - 1) * 1e4])
    np.testing.assert_allclose(m["price_advantage_bps"][:2], [-49.751244, 102.040816], rtol=1e-7)
    # against arrival: both lost 100 bp
    np.testing.assert_allclose(m["arrival_advantage_bps"][:2], [-100.0, -100.0], rtol=1e-12)
    np.testing.assert_allclose(m["implementation_shortfall_bps"][:2], [100.0, 100.0], rtol=1e-12)
    # slippage vs VWAP, positive = cost: buy above VWAP, sell below VWAP
    np.testing.assert_allclose(m["slippage_vwap_bps"][:2], [19.841270, 50.251256], rtol=1e-7)
    # profit = sigma (cash - executed p0): buy -(80,800 - 80,000), sell 49,500 - 50,000
    np.testing.assert_allclose(m["profit_usd"], [-800.0, -500.0, 0.0])
    np.testing.assert_allclose(m["execution_cost_usd"], [800.0, 500.0, 0.0])
    np.testing.assert_array_equal(m["reward"], [0.3, -0.2, 0.0])
    # an order with no fill has no price: NaN advantages, not zeros
    for name in ("average_price", "price_advantage_bps", "arrival_advantage_bps", "slippage_vwap_bps"):
        assert math.isnan(m[name][2])


def test_pa_sign_convention_flips_with_side():
    common = dict(quantity=np.array([10.0, 10.0]), executed=np.array([10.0, 10.0]), cash=np.array([1010.0, 1010.0]),
                  reference_price=np.array([100.0, 100.0]), twap_price=np.array([100.0, 100.0]),
                  market_vwap=np.array([100.0, 100.0]), reward=np.zeros(2))
    m = order_metrics(sigma=np.array([1.0, -1.0]), **common)
    np.testing.assert_allclose(m["price_advantage_bps"], [100.0, -100.0])  # sold / bought at 101 vs 100
    np.testing.assert_allclose(m["profit_usd"], [10.0, -10.0])


def test_aggregate_of_hand_metrics():
    agg = aggregate(_hand_metrics())
    assert agg.n_orders == 3
    assert agg.price_advantage_bps.n == 2  # NaN PA left out of the mean
    assert agg.price_advantage_bps.mean == pytest.approx((-49.751244 + 102.040816) / 2, rel=1e-7)
    assert agg.pos == pytest.approx(1 / 2)  # the unfilled order has no PA: out of POS as out of the mean
    assert agg.glr == pytest.approx(102.040816 / 49.751244, rel=1e-7)
    assert agg.fill_rate.mean == pytest.approx(0.6)
    d = agg.to_dict()
    assert d["price_advantage_bps"]["n"] == 2 and d["glr"] == agg.glr


@pytest.mark.parametrize(
    "pa, glr, pos",
    [
        ([10.0, 20.0, -5.0, -15.0], 1.5, 0.5),  # mean gain 15 / mean loss 10
        ([4.0, -1.0, -3.0, 0.0], 2.0, 0.25),  # zero counts as neither
        ([1.0, 2.0], math.inf, 1.0),  # no losses
        ([-1.0, -2.0], 0.0, 0.0),  # no gains
        ([0.0, 0.0], 0.0, 0.0),
        ([10.0, math.nan, -5.0], 2.0, 1 / 2),  # NaN (no fill): out of GLR and POS, as out of the PA mean
    ],
)
def test_gain_loss_ratio_and_positive_rate(pa, glr, pos):
    assert gain_loss_ratio(np.array(pa)) == pytest.approx(glr)
    assert positive_rate(np.array(pa)) == pytest.approx(pos)


def test_orders_without_a_fill_count_in_no_pa_figure():
    """Review defect: an unfilled order (NaN PA) was left out of the PA mean but counted in POS's denominator,
    so the same orders gave a mean over n and a POS over n + 1."""
    agg = aggregate(_hand_metrics())
    pa = agg.price_advantage_bps
    assert pa.n == 2
    assert agg.pos * pa.n == pytest.approx(1.0)  # one of the two priced orders gained


def test_a_new_metric_is_one_function(monkeypatch):
    from rlexec.evaluation import metrics

    monkeypatch.setattr(metrics, "ORDER_METRICS", dict(metrics.ORDER_METRICS))
    metrics.order_metric("half_fill", "1", "half fill")(lambda o: o.executed / o.quantity / 2)
    m = _hand_metrics()
    np.testing.assert_allclose(m["half_fill"], [0.4, 0.5, 0.0])
    assert aggregate(m).half_fill.mean == pytest.approx(0.3)
    assert aggregate(m).to_dict()["half_fill"]["n"] == 3


def test_positive_rate_of_nothing_is_nan():
    assert math.isnan(positive_rate(np.array([])))


def test_mean_se_against_numpy():
    x = np.random.default_rng(0).normal(3.0, 2.0, 57)
    r = mean_se(x)
    assert r.n == 57
    assert r.mean == pytest.approx(np.mean(x), rel=1e-14)
    assert r.se == pytest.approx(np.std(x, ddof=1) / np.sqrt(57), rel=1e-14)
    with_nan = mean_se(np.append(x, [np.nan, np.inf]))
    assert (with_nan.mean, with_nan.se, with_nan.n) == (r.mean, r.se, r.n)
    one = mean_se(np.array([4.0]))
    assert one.mean == 4.0 and math.isnan(one.se) and one.n == 1
    assert mean_se(np.array([])).n == 0
    assert r.format(1) == f"{np.mean(x):.1f} ± {np.std(x, ddof=1) / np.sqrt(57):.1f}"


def test_paired_difference_by_hand():
    # d = 1, 2, 2, 3, 2, 2: mean 2, sd sqrt(2/5), se sqrt(2/5) / sqrt(6) = 0.258199; t(0.975, 5) = 2.5706
    d = paired_difference(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), np.array([0.0, 0.0, 1.0, 1.0, 3.0, 4.0]))
    assert d.n == 6 and d.confidence == 0.95
    assert d.mean == pytest.approx(2.0)
    assert d.se == pytest.approx(math.sqrt(2 / 5) / math.sqrt(6), rel=1e-12)
    half = 2.5706 * math.sqrt(2 / 5) / math.sqrt(6)  # 0.66373
    assert d.low == pytest.approx(2.0 - half, abs=5e-4)
    assert d.high == pytest.approx(2.0 + half, abs=5e-4)
    assert d.significant
    d90 = paired_difference(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), np.array([0.0, 0.0, 1.0, 1.0, 3.0, 4.0]), 0.90)
    assert d90.high - d90.mean == pytest.approx(2.0150 * d.se, abs=5e-4)  # t(0.95, 5) = 2.0150


def test_paired_difference_ignores_non_finite_pairs_and_checks_shapes():
    d = paired_difference(np.array([1.0, np.nan, 3.0, 5.0]), np.array([0.0, 1.0, np.inf, 1.0]))
    assert d.n == 2 and d.mean == pytest.approx(2.5)
    with pytest.raises(ValueError, match="same orders"):
        paired_difference(np.zeros(3), np.zeros(4))
    tiny = paired_difference(np.array([1.0]), np.array([0.0]))
    assert tiny.n == 1 and math.isnan(tiny.mean)


def test_paired_difference_of_identical_arrays_is_exactly_zero():
    x = np.random.default_rng(1).normal(size=40)
    d = paired_difference(x, x.copy())
    assert (d.mean, d.se, d.low, d.high) == (0.0, 0.0, 0.0, 0.0)
    assert not d.significant


def test_paired_difference_ci_contains_the_true_mean_and_covers_at_the_nominal_rate():
    rng = np.random.default_rng(42)
    b = rng.normal(0.0, 1.0, 400)
    a = b + 0.5 + rng.normal(0.0, 1.0, 400)  # true mean difference 0.5
    d = paired_difference(a, b)
    assert d.low < 0.5 < d.high and d.significant
    # coverage of the 95 % interval over many small samples (n = 10, dof 9)
    hits = 0
    reps = 2000
    for _ in range(reps):
        x = rng.normal(0.3, 2.0, 10)
        r = paired_difference(x, np.zeros(10))
        hits += r.low <= 0.3 <= r.high
    assert abs(hits / reps - 0.95) < 0.015


@pytest.mark.parametrize(
    "p, dof, expected",
    [(0.975, 10, 2.228), (0.975, 30, 2.042), (0.975, 5, 2.571), (0.975, 100, 1.984), (0.95, 10, 1.812),
     (0.995, 20, 2.845), (0.9, 15, 1.341)],
)
def test_t_quantile_against_tables(p, dof, expected):
    assert t_quantile(p, dof) == pytest.approx(expected, abs=2e-3)


@pytest.mark.parametrize("dof, expected", [(1, 12.706), (2, 4.303)])
def test_t_quantile_for_tiny_samples_is_conservative(dof, expected):
    """The docstring promises a conservative value below 5 dof: it must not be smaller than the true one
    (a smaller quantile gives a too-narrow CI for comparisons over 2 or 3 orders)."""
    assert t_quantile(0.975, dof) >= expected - 1e-3


def test_t_quantile_of_no_dof_is_nan():
    assert math.isnan(t_quantile(0.975, 0))

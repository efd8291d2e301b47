"""Logic-Q core: trend features (hand-computed), no look-ahead, the sketch and its holes, the adjustment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlexec.errors import ConfigError
from rlexec.logicq.adjust import AdjustedModel, mix, simplex, tempered_probabilities
from rlexec.logicq.features import PastCloses, TrendFeatureConfig, TrendFeatures, feature_series, window_features
from rlexec.logicq.sketch import (
    DEFAULT_ORDER,
    Sketch,
    ThresholdBounds,
    Trend,
    ensemble_holes,
    temperature_holes,
)


# ---- features -----------------------------------------------------------------------------------------
def test_features_match_a_hand_computed_window():
    # x = 10, 12, 11, 9, 13: mean 11; squared deviations 1, 1, 0, 4, 4 -> vol = 10/5 = 2
    # below the mean: 10 and 9 -> dr = sqrt((1 + 4) / 2); growth 10 -> 13 = 30 %
    f = window_features(np.array([[10.0, 12.0, 11.0, 9.0, 13.0]]))
    assert f.vol[0] == pytest.approx(2.0)
    assert f.dr[0] == pytest.approx(math.sqrt(2.5))
    assert f.gr[0] == pytest.approx(30.0)


def test_growth_is_zero_when_the_window_ends_at_or_below_its_start_and_dr_zero_on_a_flat_window():
    f = window_features(np.array([[10.0, 11.0, 9.0], [10.0, 12.0, 10.0], [5.0, 5.0, 5.0]]))
    assert f.gr.tolist() == [0.0, 0.0, 0.0]
    assert f.dr[2] == 0.0 and f.vol[2] == 0.0
    # second row: mean 32/3, below it 10 and 10 -> dr = 2/3
    assert f.dr[1] == pytest.approx(2.0 / 3.0)


def test_relative_features_are_the_spec_formula_on_prices_divided_by_the_first():
    x = np.array([[10.0, 12.0, 11.0, 9.0, 13.0]])
    rel = window_features(x, relative=True)
    assert rel.vol[0] == pytest.approx(2.0 / 100.0)
    assert rel.dr[0] == pytest.approx(math.sqrt(2.5) / 10.0)
    assert rel.gr[0] == pytest.approx(30.0)


def test_the_window_holds_the_last_g_closes_up_to_t():
    closes = np.arange(1.0, 11.0)  # 1..10
    config = TrendFeatureConfig(window=3)
    f = config(PastCloses(closes, t=5))  # closes 4, 5, 6
    assert f.gr[0] == pytest.approx(50.0)
    assert f.vol[0] == pytest.approx(2.0 / 3.0)
    short = TrendFeatureConfig(window=3)(PastCloses(closes, t=0))  # a single close so far
    assert (short.vol[0], short.dr[0], short.gr[0]) == (0.0, 0.0, 0.0)


def test_past_closes_cannot_reach_the_future():
    closes = np.arange(1.0, 11.0)
    past = PastCloses(closes, t=4)
    assert past.last(100).tolist() == [[1.0, 2.0, 3.0, 4.0, 5.0]]
    with pytest.raises(ValueError):
        past.last(2)[0, 0] = 99.0  # read-only
    closes[:] = 0.0  # not even a view of the caller's array
    assert past.last(1)[0, 0] == 5.0


def test_labels_up_to_t_do_not_change_when_future_bars_are_perturbed():
    rng = np.random.default_rng(0)
    closes = 100 + np.cumsum(rng.normal(0, 0.3, 200))
    config = TrendFeatureConfig(window=30, relative=True)
    sketch = Sketch()
    train = feature_series(closes, config)
    thresholds = sketch.temperature_assignment({h.name: (h.low + h.high) / 2 for h in sketch.temperature_holes(
        ThresholdBounds.from_features(train))}).thresholds
    labels = sketch.classify(feature_series(closes, config), thresholds)
    t = 120
    perturbed = closes.copy()
    perturbed[t + 1:] = perturbed[t + 1:] * rng.uniform(0.5, 1.5, len(closes) - t - 1)
    after = sketch.classify(feature_series(perturbed, config), thresholds)
    assert np.array_equal(labels[: t + 1], after[: t + 1])
    assert not np.array_equal(labels, after), "the perturbation must matter after t, or the test proves nothing"
    assert len(set(labels.tolist())) >= 3


# ---- sketch ---------------------------------------------------------------------------------------------
def test_hole_counts_are_13_and_23():
    assert len(temperature_holes()) == 13
    assert len(ensemble_holes(3)) == 23
    names = [h.name for h in ensemble_holes(3)]
    assert len(set(names)) == 23
    without = Sketch(order=())  # w/o sketch: one temperature, one weight vector
    assert [h.name for h in temperature_holes(without)] == ["temperature.oscillation"]
    assert len(ensemble_holes(3, without)) == 3


def _features(vol, dr, gr) -> TrendFeatures:
    return TrendFeatures(np.asarray(vol, float), np.asarray(dr, float), np.asarray(gr, float))


def _thresholds(sketch=None, **values):
    sketch = sketch or Sketch()
    base = {h.name: 0.5 for h in sketch.temperature_holes(ThresholdBounds(vol=(0, 1), dr=(0, 1), gr=(0, 1)))}
    base.update({f"threshold.{k}": v for k, v in values.items()})
    return sketch.temperature_assignment(base).thresholds


def test_each_conditional_returns_its_trend_in_the_spec_order():
    sketch = Sketch()
    th = _thresholds(rapid_descend_vol=2.0, rapid_descend_dr=1.0, steady_descend_vol=2.0, steady_descend_dr=0.5,
                     steady_ascend_vol=2.0, steady_ascend_gr=1.0, rapid_ascend_vol=2.0, rapid_ascend_gr=1.0)
    f = _features(vol=[3.0, 1.0, 1.0, 3.0, 1.0, 3.0],
                  dr=[2.0, 0.7, 0.0, 0.0, 0.0, 0.0],
                  gr=[0.0, 0.0, 5.0, 5.0, 0.0, 0.0])
    assert sketch.classify(f, th).tolist() == [Trend.RAPID_DESCEND, Trend.STEADY_DESCEND, Trend.STEADY_ASCEND,
                                               Trend.RAPID_ASCEND, Trend.OSCILLATION, Trend.OSCILLATION]
    # vol == threshold: cnd2 (<=) and cnd4 (>=) include it, cnd1 (>) and cnd3 (<) do not
    edge = _features(vol=[2.0, 2.0], dr=[2.0, 0.0], gr=[0.0, 5.0])
    assert sketch.classify(edge, th).tolist() == [Trend.STEADY_DESCEND, Trend.RAPID_ASCEND]


def test_the_order_is_configurable_and_the_first_satisfied_conditional_wins():
    # a step both steadily descending and steadily ascending: the earlier conditional decides
    f = _features(vol=[0.1], dr=[1.0], gr=[5.0])
    values = dict(steady_descend_vol=1.0, steady_descend_dr=0.5, steady_ascend_vol=1.0, steady_ascend_gr=1.0)
    default = Sketch()
    ascend_first = Sketch.from_dict({"order": ["steady_ascend", "steady_descend", "rapid_descend", "rapid_ascend"]})
    assert default.classify(f, _thresholds(default, **values))[0] == Trend.STEADY_DESCEND
    assert ascend_first.classify(f, _thresholds(ascend_first, **values))[0] == Trend.STEADY_ASCEND
    with pytest.raises(ConfigError, match="distinct"):
        Sketch.from_dict({"order": ["steady_ascend", "steady_ascend"]})
    with pytest.raises(ConfigError, match="unknown trend"):
        Sketch.from_dict({"order": ["sideways"]})


def test_exactly_one_trend_per_step_on_random_features():
    rng = np.random.default_rng(1)
    f = _features(rng.random(1000), rng.random(1000), rng.random(1000) * 3)
    labels = Sketch().classify(f, _thresholds(rapid_descend_vol=0.7, steady_descend_vol=0.3))
    assert labels.shape == (1000,)
    assert set(labels.tolist()) <= {int(t) for t in Trend}
    assert len(set(labels.tolist())) == 5


def test_bounds_come_from_training_quantiles():
    vol = np.arange(101.0)  # q05 = 5, q95 = 95
    dr = np.arange(101.0) / 10  # q99 = 9.9
    gr = np.zeros(101)  # no growth at all: a degenerate range is widened, not rejected
    b = ThresholdBounds.from_features(_features(vol, dr, gr))
    assert b.vol == pytest.approx((5.0, 95.0))
    assert b.dr == pytest.approx((0.0, 9.9))
    assert b.gr[0] == 0.0 and b.gr[1] > 0.0
    holes = {h.name: h for h in Sketch().temperature_holes(b)}
    assert (holes["threshold.rapid_ascend_vol"].low, holes["threshold.rapid_ascend_vol"].high) == pytest.approx((5, 95))
    assert holes["temperature.oscillation"].log and (holes["temperature.oscillation"].low,
                                                     holes["temperature.oscillation"].high) == (0.1, 10.0)


def test_assignment_names_every_hole_and_rejects_a_missing_one():
    sketch = Sketch()
    values = {h.name: float(i + 1) for i, h in enumerate(temperature_holes())}
    holes = sketch.temperature_assignment(values)
    assert holes.thresholds.rapid_descend_vol == values["threshold.rapid_descend_vol"]
    assert holes.temperature[Trend.STEADY_ASCEND] == values["temperature.steady_ascend"]
    values.pop("temperature.rapid_ascend")
    with pytest.raises(ConfigError, match="temperature.rapid_ascend"):
        sketch.temperature_assignment(values)


# ---- adjustment ---------------------------------------------------------------------------------------
class Logits:
    """A frozen 'model' with fixed logits per row (the actors' ``model.logits`` interface)."""

    def __init__(self, logits):
        self.z = np.asarray(logits, dtype=np.float32)

    def logits(self, observations):
        import torch

        return torch.from_numpy(self.z[: len(observations)])


Z = np.array([[2.0, 0.5, -1.0, 0.0, 1.0], [0.0, 3.0, 1.0, -2.0, 0.5]])


def test_temperature_one_is_the_frozen_policy_and_large_temperature_is_uniform():
    frozen = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    assert np.allclose(tempered_probabilities(Z, 1.0), frozen)
    assert np.allclose(tempered_probabilities(Z, 1e9), 0.2, atol=1e-8)
    cold = tempered_probabilities(Z, 1e-3)
    assert np.allclose(cold, np.eye(5)[Z.argmax(axis=1)], atol=1e-8)
    per_row = tempered_probabilities(Z, np.array([1.0, 2.0]))
    assert np.allclose(per_row[1], np.exp(Z[1] / 2) / np.exp(Z[1] / 2).sum())
    with pytest.raises(ConfigError):
        tempered_probabilities(Z, np.array([1.0, 0.0]))


def _temperature_holes(temperatures: dict[Trend, float]):
    values = {h.name: 0.5 for h in temperature_holes()}
    values.update({f"temperature.{t.key}": v for t, v in temperatures.items()})
    return Sketch().temperature_assignment(values)


def test_expected_fraction_of_the_adjusted_policy():
    from rlexec.policies.actors import ExpectedFractionActor

    holes = _temperature_holes({t: 1.0 for t in Trend} | {Trend.OSCILLATION: 2.0})
    model = AdjustedModel([Logits(Z)], holes)
    model.set_trends([Trend.STEADY_ASCEND, Trend.OSCILLATION])
    values = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    got = ExpectedFractionActor(model, values).actions(np.zeros((2, 3)))[:, 0]
    p0 = np.exp(Z[0]) / np.exp(Z[0]).sum()
    p1 = np.exp(Z[1] / 2) / np.exp(Z[1] / 2).sum()
    assert got == pytest.approx([p0 @ values, p1 @ values])


def test_seeded_sampling_of_the_adjusted_policy_follows_its_probabilities_and_repeats():
    from rlexec.policies.actors import SampledActor

    holes = _temperature_holes({t: 3.0 for t in Trend})
    model = AdjustedModel([Logits(np.repeat(Z[:1], 20000, axis=0))], holes)
    model.set_trends(np.full(20000, int(Trend.OSCILLATION)))
    obs = np.zeros((20000, 3))
    draws = SampledActor(model, seed=7).actions(obs)
    expected = tempered_probabilities(Z[:1], 3.0)[0]
    assert np.bincount(draws, minlength=5) / 20000 == pytest.approx(expected, abs=0.015)
    assert np.array_equal(draws, SampledActor(model, seed=7).actions(obs))


def test_ensemble_mixes_the_sub_policies_with_simplex_weights_per_trend():
    za, zb, zc = Z, Z[::-1], np.zeros_like(Z)
    values = {h.name: 0.5 for h in ensemble_holes(3)}
    values.update({"weight.oscillation.0": 2.0, "weight.oscillation.1": 1.0, "weight.oscillation.2": 1.0,
                   "weight.rapid_ascend.0": 0.0, "weight.rapid_ascend.1": 0.0, "weight.rapid_ascend.2": 0.0})
    holes = Sketch().ensemble_assignment(values, 3)
    model = AdjustedModel([Logits(za), Logits(zb), Logits(zc)], holes)
    model.set_trends([Trend.OSCILLATION, Trend.RAPID_ASCEND])
    p = model.probabilities(np.zeros((2, 3)))
    pa, pb, pc = (tempered_probabilities(z, 1.0) for z in (za, zb, zc))
    assert p[0] == pytest.approx(0.5 * pa[0] + 0.25 * pb[0] + 0.25 * pc[0])
    assert p[1] == pytest.approx((pa[1] + pb[1] + pc[1]) / 3)  # all-zero weights: uniform mixture
    assert p.sum(axis=1) == pytest.approx([1.0, 1.0])


def test_simplex_and_mix_of_actions():
    assert simplex(np.array([[1.0, 3.0], [0.0, 0.0]])).tolist() == [[0.25, 0.75], [0.5, 0.5]]
    with pytest.raises(ConfigError):
        simplex(np.array([[-1.0, 1.0]]))
    actions = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.2, 0.8]]])  # k=2 models, N=2, 2 assets
    mixed = mix(actions, np.array([[0.25, 0.75], [1.0, 0.0]]))
    assert mixed.tolist() == [[0.25, 0.75], [0.5, 0.5]]


def test_default_order_is_the_specs():
    assert [t.key for t in DEFAULT_ORDER] == ["rapid_descend", "steady_descend", "steady_ascend", "rapid_ascend"]

"""Spec 5.3 and 1.3: the SIP I-projection, its bisection, Hedge, fixed share."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from rlexec.algorithms.sip import update as sip
from rlexec.errors import ConfigError

PRIOR = np.array([0.4, 0.3, 0.2, 0.1])
UTILITY = np.array([1.0, -2.0, 3.0, 0.5])  # bp: expert 2 best, expert 1 worst


def test_scores_are_the_standardised_utilities_with_the_fill_penalty():
    u = sip.utilities([2.0, 2.0], [1.0, 0.9], fill_penalty_bps=50.0)
    np.testing.assert_allclose(u, [2.0, -3.0])  # 10% unfilled costs 5 bp at lambda_F = 50
    np.testing.assert_allclose(sip.standardise(u, 0.0), [1.0, -1.0])


def test_lambda_is_zero_and_the_weights_unchanged_when_the_constraint_holds():
    s = sip.standardise(UTILITY)
    below = sip.mean_score(PRIOR, s) - 0.1
    assert sip.solve_lambda(PRIOR, s, below, lambda_max=10.0) == (0.0, True)
    # through update: equal utilities leave every score 0, so the target equals the mean and lambda = 0
    step = sip.update(PRIOR, [1.0, 1.0, 1.0, 1.0], sip.SIPConfig(fixed_share=0.0))
    assert step.lam == 0.0
    np.testing.assert_allclose(step.weights, PRIOR)


def test_the_active_constraint_is_met_with_equality():
    step = sip.update(PRIOR, UTILITY, sip.SIPConfig(fixed_share=0.0))
    assert step.lam > 0 and step.constraint_met
    assert step.tilted @ step.scores == pytest.approx(step.target, abs=1e-9)
    m = PRIOR @ step.scores
    assert step.target == pytest.approx(m + 0.5 * (step.scores.max() - m))


def test_the_tilt_is_the_kl_minimiser_under_the_constraint():
    s = sip.standardise(UTILITY)
    c = sip.target(PRIOR, s, 0.5)
    lam, _ = sip.solve_lambda(PRIOR, s, c, lambda_max=10.0)
    closed_form = sip.tilt(PRIOR, s, lam)
    kl = lambda w: float(np.sum(w * np.log(np.clip(w, 1e-300, None) / PRIOR)))
    found = minimize(kl, PRIOR, method="SLSQP", bounds=[(1e-12, 1.0)] * 4, tol=1e-14,
                     constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0},
                                  {"type": "ineq", "fun": lambda w: w @ s - c}])
    assert found.success
    np.testing.assert_allclose(closed_form, found.x, atol=1e-5)
    assert kl(closed_form) <= kl(found.x) + 1e-9
    # any other feasible point is farther from the prior
    rng = np.random.default_rng(0)
    for _ in range(200):
        w = rng.dirichlet(np.ones(4))
        if w @ s >= c:
            assert kl(w) >= kl(closed_form) - 1e-12


def test_bisection_mean_score_and_lambda_are_monotone():
    s = sip.standardise(UTILITY)
    grid = np.linspace(0.0, 10.0, 101)
    means = [sip.mean_score(PRIOR, s, lam) for lam in grid]
    assert np.all(np.diff(means) >= -1e-12)
    targets = np.linspace(PRIOR @ s + 0.01, s.max() - 0.01, 20)
    lambdas = [sip.solve_lambda(PRIOR, s, c, lambda_max=1e3)[0] for c in targets]
    assert np.all(np.diff(lambdas) > 0)


def test_lambda_stops_at_its_cap_and_says_so():
    s = sip.standardise(UTILITY)
    lam, met = sip.solve_lambda(PRIOR, s, s.max() - 1e-6, lambda_max=1.0)
    assert (lam, met) == (1.0, False)


def test_kappa_near_one_concentrates_on_the_best_expert():
    step = sip.update(PRIOR, UTILITY, sip.SIPConfig(kappa=0.999, lambda_max=1e4, fixed_share=0.0))
    assert step.tilted.argmax() == 2 and step.tilted[2] > 0.99


def test_hedge_mode_is_exponential_weights_with_fixed_eta():
    config = sip.SIPConfig(mode="hedge", eta=0.7, fixed_share=0.0)
    step = sip.update(PRIOR, UTILITY, config)
    s = sip.standardise(UTILITY)
    expected = PRIOR * np.exp(0.7 * s)
    np.testing.assert_allclose(step.weights, expected / expected.sum(), rtol=1e-12)
    assert step.lam == 0.7


def test_fixed_share_keeps_every_weight_above_alpha_over_k():
    history = sip.run(np.tile([10.0, -10.0, -10.0, -10.0], (200, 1)), sip.SIPConfig(fixed_share=0.04))
    assert history.weights[1:].min() >= 0.04 / 4 - 1e-15
    np.testing.assert_allclose(sip.fixed_share([1.0, 0.0], 0.1), [0.95, 0.05])


def test_weights_stay_on_the_simplex_over_a_long_random_sequence():
    rng = np.random.default_rng(1)
    for mode in sip.MODES:
        history = sip.run(rng.normal(0, 5, size=(300, 4)), sip.SIPConfig(mode=mode))
        assert history.weights.shape == (301, 4)
        assert np.all(history.weights >= 0)
        np.testing.assert_allclose(history.weights.sum(axis=1), 1.0, atol=1e-12)
        np.testing.assert_allclose(history.weights[0], 0.25)


def test_a_persistently_better_expert_gains_weight():
    u = np.tile([1.0, 0.0, 0.0, 0.0], (50, 1)) + np.random.default_rng(2).normal(0, 0.1, (50, 4))
    assert sip.run(u, sip.SIPConfig()).final.argmax() == 0


@pytest.mark.parametrize("field, value", [("kappa", 1.0), ("kappa", 0.0), ("mode", "bandit"), ("lambda_max", 0),
                                          ("fixed_share", 1.0)])
def test_invalid_settings_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"sip.{field}"):
        sip.SIPConfig.from_dict({field: value})


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="probability vector"):
        sip.update([0.5, 0.6], [1.0, 2.0], sip.SIPConfig())
    with pytest.raises(ValueError, match="finite"):
        sip.update([0.5, 0.5], [1.0, np.nan], sip.SIPConfig())
    with pytest.raises(ConfigError, match="unknown field"):
        sip.SIPConfig.from_dict({"kapa": 0.5})

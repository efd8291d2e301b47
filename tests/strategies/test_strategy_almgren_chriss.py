"""Almgren-Chriss trajectory and urgency (Almgren & Chriss 2000) against the closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlexec.strategies import almgren_chriss_holdings, almgren_chriss_kappa


@pytest.mark.parametrize(
    "X, T, N, kappa",
    [(1000.0, 240.0, 8, 0.01), (1.0, 240.0, 8, 0.005), (500.0, 60.0, 4, 0.1), (1.0, 390.0, 13, 0.002)],
)
def test_holdings_match_the_closed_form(X, T, N, kappa):
    got = almgren_chriss_holdings(X, T, N, kappa)
    expected = [X * math.sinh(kappa * (T - j * T / N)) / math.sinh(kappa * T) for j in range(N + 1)]
    assert got.shape == (N + 1,)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * X)
    assert got[0] == pytest.approx(X, rel=1e-14) and got[-1] == 0.0


def test_hand_values():
    # X = 1, T = 2, N = 2, kappa = 1: x_1 = sinh(1) / sinh(2) = 1.1752012 / 3.6268604 = 0.3240271
    np.testing.assert_allclose(almgren_chriss_holdings(1.0, 2.0, 2, 1.0), [1.0, 0.32402714, 0.0], rtol=1e-7)


@pytest.mark.parametrize("kappa", [1e-4, 1e-3, 0.01, 0.05, 0.5])
def test_holdings_start_at_X_end_at_0_decrease_and_are_front_loaded(kappa):
    X, T, N = 1.0, 390.0, 390  # one decision a minute over a whole session
    x = almgren_chriss_holdings(X, T, N, kappa)
    assert np.all(np.isfinite(x)), f"kappa T = {kappa * T}: non-finite holdings"
    assert x[0] == pytest.approx(X) and x[-1] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.diff(x) < 0)
    twap_line = X * (1 - np.arange(N + 1) / N)
    assert np.all(x[1:-1] < twap_line[1:-1])  # sold faster than TWAP


def test_high_urgency_holdings_stay_finite():
    """kappa T beyond ~710 overflows sinh; the trajectory must still be X, then ~X exp(-kappa t), then 0."""
    X, T, N, kappa = 1.0, 390.0, 13, 2.0  # e.g. IS with one-minute volatility and a large risk aversion
    x = almgren_chriss_holdings(X, T, N, kappa)
    assert np.all(np.isfinite(x)), x
    assert x[0] == pytest.approx(X) and x[-1] == 0.0
    assert np.all(np.diff(x) <= 0)
    assert x[1] == pytest.approx(math.exp(-kappa * T / N), rel=1e-9)


def test_vanishing_urgency_converges_to_twap():
    X, T, N = 1.0, 240.0, 8
    twap_line = X * (1 - np.arange(N + 1) / N)
    errors = [np.abs(almgren_chriss_holdings(X, T, N, k) - twap_line).max() for k in (1e-2, 1e-3, 1e-4, 1e-6)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-8
    np.testing.assert_array_equal(almgren_chriss_holdings(X, T, N, 0.0), twap_line)
    # and via the risk aversion: lambda -> 0 gives kappa -> 0
    assert almgren_chriss_kappa(0.0, 5e-4, 0.01, 30.0) == 0.0


def test_holdings_for_several_orders_at_once():
    kappas = np.array([0.0, 0.01, 0.05])
    x = almgren_chriss_holdings(1.0, 240.0, 8, kappas)
    assert x.shape == (3, 9)
    for row, k in zip(x, kappas):
        np.testing.assert_allclose(row, almgren_chriss_holdings(1.0, 240.0, 8, k), rtol=1e-15)
    assert np.all(x[2, 1:-1] < x[1, 1:-1]) and np.all(x[1, 1:-1] < x[0, 1:-1])  # more urgency, faster


@pytest.mark.parametrize(
    "lam, sigma, eta, tau", [(1.0, 5e-4, 0.01, 30.0), (10.0, 1e-3, 0.02, 5.0), (1e-3, 2e-3, 1e-4, 1.0)]
)
def test_kappa_satisfies_the_discrete_time_equation(lam, sigma, eta, tau):
    kappa = float(almgren_chriss_kappa(lam, sigma, eta, tau))
    assert kappa > 0
    assert math.cosh(kappa * tau) == pytest.approx(1 + lam * sigma**2 * tau**2 / (2 * eta), rel=1e-12)
    # as tau -> 0 kappa tends to the continuous-time sqrt(lambda sigma^2 / eta)
    fine = float(almgren_chriss_kappa(lam, sigma, eta, 0.01))
    assert fine == pytest.approx(math.sqrt(lam * sigma**2 / eta), rel=1e-5)


def test_kappa_vectorises_over_sigma():
    sigmas = np.array([1e-4, 5e-4, 1e-3])
    kappas = almgren_chriss_kappa(1.0, sigmas, 0.01, 30.0)
    assert kappas.shape == (3,) and np.all(np.diff(kappas) > 0)
    for s, k in zip(sigmas, kappas):
        assert k == pytest.approx(float(almgren_chriss_kappa(1.0, s, 0.01, 30.0)), rel=1e-15)

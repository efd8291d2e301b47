"""The brokers as defined once for both envs: closed forms by hand, LOB child sizing, the bar
fractions against values recorded before the merge, and the package's place below rlexec.envs.

``data/bar_fractions_recorded.npz`` holds, for 16 sample orders (stored with it), what each bar
strategy asked for at every step of the default grid on fixed states (fill rate 0.9 t / T), as
computed at commit 4ea4ec8, when the bar and LOB brokers were separate code.
"""

import datetime as dt
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rlexec
from rlexec.data.orders import Order
from rlexec.envs import BatchExecutionEngine, ExecutionConfig, prepare_orders
from rlexec.errors import ConfigError
from rlexec.strategies import (
    TWAP,
    VWAP,
    ImplementationShortfall,
    OrderContext,
    PercentOfVolume,
    cumulative_share,
    make_strategy,
    u_shaped_volume_profile,
)

RECORDED = Path(__file__).parent / "data" / "bar_fractions_recorded.npz"


def context(n=1, quantity=1000.0, **fields):
    return OrderContext(quantity=np.full(n, quantity), horizon_minutes=fields.pop("horizon_minutes", 240.0),
                        interval_minutes=fields.pop("interval_minutes", 30.0), **fields)


# ---- closed forms ---------------------------------------------------------------------------------


@pytest.mark.parametrize("x", [0.0, 0.1, 0.37, 0.5, 0.9, 1.0])
def test_twap_and_the_power_is_by_hand(x):
    assert TWAP().cumulative_target(x, context())[0] == pytest.approx(x)
    power = ImplementationShortfall(shape="power", exponent=0.6)
    assert power.cumulative_target(x, context())[0] == pytest.approx(x**0.6)


def test_u_shaped_profile_is_the_arcsin_law():
    """Beta(1/2, 1/2): X(1/4) = (2/pi) arcsin(1/2) = 1/3, X(1/2) = 1/2, X(3/4) = 2/3."""
    profile = u_shaped_volume_profile(12)
    assert profile.sum() == pytest.approx(1.0)
    assert profile[0] > profile[3] < profile[-1] and profile[0] == pytest.approx(profile[-1])  # a U
    vwap, ctx = VWAP(), context(volume_profile=profile[None, :])
    for x, expected in [(0.25, 1 / 3), (0.5, 0.5), (0.75, 2 / 3), (1 / 12, 2 / np.pi * np.arcsin(np.sqrt(1 / 12)))]:
        assert vwap.cumulative_target(x, ctx)[0] == pytest.approx(expected, abs=1e-12)


def test_vwap_is_linear_inside_a_bin():
    profile = np.array([[0.5, 0.25, 0.25]])
    assert cumulative_share(profile, 1 / 3)[0] == 0.5
    assert cumulative_share(profile, 0.5)[0] == pytest.approx(0.5 + 0.5 * 0.25)
    assert VWAP().cumulative_target(0.0, context(volume_profile=profile))[0] == 0.0


@pytest.mark.parametrize("x", [0.1, 0.3, 0.5, 0.85])
def test_almgren_chriss_against_its_formula(x):
    sigma, lam, eta, tau, horizon = 0.002, 50.0, 0.01, 30.0, 240.0
    ctx = context(n=2, minute_volatility=np.array([sigma, 0.0]))
    target = ImplementationShortfall(risk_aversion=lam, temporary_impact=eta).cumulative_target(x, ctx)
    kappa = math.acosh(1 + lam * sigma**2 * tau**2 / (2 * eta)) / tau
    assert target[0] == pytest.approx(1 - math.sinh(kappa * horizon * (1 - x)) / math.sinh(kappa * horizon), rel=1e-12)
    assert target[1] == pytest.approx(x)  # no volatility: the linear limit


def test_brokers_say_what_context_they_miss():
    with pytest.raises(ConfigError, match="volume profile"):
        VWAP().cumulative_target(0.5, context())
    with pytest.raises(ConfigError, match="minute volatility"):
        ImplementationShortfall().cumulative_target(0.5, context())
    with pytest.raises(ConfigError, match="is.shape"):
        make_strategy("is", shape="hump")
    with pytest.raises(ConfigError, match="is.exponent"):
        ImplementationShortfall(shape="power", exponent=0.0)


# ---- LOB child sizing -----------------------------------------------------------------------------


def test_child_shares_clip_to_one_share_max_child_and_remaining():
    twap, ctx = TWAP(), context(quantity=1000)

    def child(broker, executed, x_next, volume=0):
        return broker.child_shares(ctx, executed=executed, x_next=x_next, last_interval_volume=volume, max_child=200)

    assert child(twap, 0, 0.1) == 100
    assert child(twap, 100, 0.1) == 1  # on schedule: the Stage-1 floor of one share
    assert child(twap, 0, 0.9) == 200  # far behind: max_child
    assert child(twap, 995, 1.0) == 5  # never more than remains
    assert child(twap, 1000, 1.0) == 0
    power = ImplementationShortfall(shape="power", exponent=0.6)
    assert child(power, 0, 0.05) == math.floor(1000 * 0.05**0.6)
    pov = PercentOfVolume(participation=0.1)
    assert child(pov, 0, 0.1, volume=1500) == 150
    assert child(pov, 990, 0.1, volume=1500) == 10


def test_the_last_child_asks_for_everything_left_whatever_the_profile_rounding():
    """Six shares of 1/6 sum to 1 - 1.1e-16: Q X(1) must still be Q, not a share short."""
    profile = np.full((1, 6), 1 / 6)
    assert profile.sum() < 1.0
    ctx = context(quantity=1_000_000.0, volume_profile=profile)
    assert VWAP().child_shares(ctx, executed=999_000, x_next=1.0, last_interval_volume=0, max_child=10**6) == 1000


# ---- the bar engine: unchanged by the merge ------------------------------------------------------


@pytest.fixture(scope="module")
def recorded_state(sample_market):
    with np.load(RECORDED) as data:
        recorded = {key: data[key] for key in data.files}
    orders = [
        Order(symbol=str(s), date=dt.date.fromisoformat(str(d)), side=str(side), quantity=float(q), start_minute=int(m))
        for s, d, side, q, m in zip(recorded["symbol"], recorded["date"], recorded["side"], recorded["quantity"],
                                    recorded["start_minute"])
    ]
    config = ExecutionConfig()
    return BatchExecutionEngine(config).reset(prepare_orders(sample_market, orders, config)), recorded


@pytest.mark.parametrize("label, name, params", [
    ("twap", "twap", {}), ("vwap", "vwap", {}), ("is", "is", {}), ("is_hi", "is", {"risk_aversion": 200.0}),
    ("is_0", "is", {"risk_aversion": 0.0}), ("pov", "pov", {}),
])
def test_bar_fractions_are_the_recorded_ones(recorded_state, label, name, params):
    state, recorded = recorded_state
    strategy = make_strategy(name, **params)
    fractions = []
    for t in range(state.n_steps):
        state.t = t
        state.executed = state.batch.quantity * min(1.0, 0.9 * t / state.n_steps)
        fractions.append(strategy.fractions(state))
    fractions, expected = np.array(fractions), recorded[f"fractions/{label}"]
    np.testing.assert_array_equal(fractions[:-1], expected[:-1])
    # The last step trades the whole remainder whatever is asked (engine rule); there the target is now
    # exactly 1 instead of VWAP's profile sum, 1 - 2e-16.
    np.testing.assert_allclose(fractions[-1], expected[-1], rtol=0, atol=1e-15)


def test_strategies_sit_below_the_envs():
    """rlexec.envs sizes LOB child orders with rlexec.strategies, so the strategies must not import it."""
    code = "import sys, rlexec.strategies; print(sorted(m for m in sys.modules if m.startswith('rlexec.')))"
    root = str(Path(rlexec.__file__).parents[1])  # this checkout's rlexec, not an installed one
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout
    assert "rlexec.envs" not in loaded and "rlexec.strategies.schedules" in loaded

"""evaluate(): the four strategies over sample orders, the per-order table, comparisons and plots."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from rlexec.envs import BarExecutionEnv
from rlexec.evaluation import BarEpisodes, evaluate, paired_difference, run_episodes
from rlexec.evaluation.plots import plot_fill_curves, plot_pa_distribution
from rlexec.strategies import TWAP, make_strategy

NUM_ORDERS = 60  # the size of the sample_evaluation fixture (tests/evaluation/conftest.py)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_evaluate_covers_every_strategy_and_order(sample_evaluation):
    config, batch, ev = sample_evaluation
    assert len(batch) == NUM_ORDERS
    assert [r.name for r in ev.results] == ["twap", "vwap", "is", "pov"]
    assert ev.baseline == "twap"
    table = ev.per_order_table()
    assert isinstance(table, pa.Table)
    assert table.num_rows == 4 * NUM_ORDERS
    pairs = set(zip(table.column("strategy").to_pylist(), table.column("order_index").to_pylist()))
    assert len(pairs) == 4 * NUM_ORDERS  # one row per (strategy, order)
    for column in ("symbol", "date", "side", "quantity", "start", "fill_rate", "price_advantage_bps",
                   "implementation_shortfall_bps", "slippage_vwap_bps", "profit_usd", "reward"):
        assert column in table.column_names
    # rows carry the right order identity
    rows = table.filter(pa.compute.equal(table.column("strategy"), "vwap")).to_pylist()
    for row in rows:
        o = batch.orders[row["order_index"]]
        assert (row["symbol"], row["date"], row["side"], row["quantity"], row["start"]) == (
            o.symbol, o.date, o.side, o.quantity, o.start_time)


def test_every_order_is_filled_under_force_remainder(sample_evaluation):
    config, batch, ev = sample_evaluation
    assert config.fill.force_remainder
    for r in ev.results:
        np.testing.assert_allclose(r.metrics["fill_rate"], 1.0, rtol=1e-12)
        assert r.summary.fill_rate.mean == pytest.approx(1.0)
        assert r.fill_curve.shape == (NUM_ORDERS, config.horizon_minutes)
        assert np.all(np.diff(r.fill_curve, axis=1) >= -1e-12)  # cumulative: never decreases
        np.testing.assert_allclose(r.fill_curve[:, -1], 1.0, rtol=1e-12)
        assert np.all(np.isfinite(r.metrics["price_advantage_bps"]))


def test_twap_fill_curve_is_the_straight_line_where_volume_allows(sample_evaluation):
    config, batch, ev = sample_evaluation
    curve = ev.result("twap").fill_curve
    straight = np.arange(1, config.horizon_minutes + 1) / config.horizon_minutes
    cap_free = np.all(batch.volume * config.fill.max_participation >= batch.quantity[:, None] / 240, axis=1)
    assert cap_free.sum() > NUM_ORDERS // 2
    np.testing.assert_allclose(curve[cap_free], np.broadcast_to(straight, curve[cap_free].shape), rtol=1e-9)


def test_comparisons_are_paired_differences_against_the_baseline(sample_evaluation):
    _, _, ev = sample_evaluation
    comparisons = ev.comparisons()
    assert set(comparisons) == {"vwap", "is", "pov"}
    base = ev.result("twap").metrics["price_advantage_bps"]
    for name, d in comparisons.items():
        expected = paired_difference(ev.result(name).metrics["price_advantage_bps"], base)
        assert d == expected
        diff = ev.result(name).metrics["price_advantage_bps"] - base
        assert d.mean == pytest.approx(diff.mean(), rel=1e-12)
    with pytest.raises(KeyError):
        ev.result("nope")


def test_a_strategy_compared_with_itself_is_exactly_zero(sample_evaluation):
    config, batch, _ = sample_evaluation
    twin = TWAP()
    twin.name = "twap_again"
    ev = evaluate(batch, config, [TWAP(), twin])
    d = ev.comparisons()["twap_again"]
    assert (d.mean, d.se, d.low, d.high) == (0.0, 0.0, 0.0, 0.0)
    assert d.n == NUM_ORDERS and not d.significant
    for metric in ("fill_rate", "profit_usd", "reward"):
        z = ev.comparisons(metric)["twap_again"]
        assert z.low == z.high == 0.0


def test_summary_matches_the_per_order_metrics(sample_evaluation):
    _, _, ev = sample_evaluation
    for r in ev.results:
        pa_ = r.metrics["price_advantage_bps"]
        assert r.summary.n_orders == NUM_ORDERS
        assert r.summary.price_advantage_bps.mean == pytest.approx(pa_.mean(), rel=1e-12)
        assert r.summary.pos == pytest.approx(np.mean(pa_ > 0))
        gains, losses = pa_[pa_ > 0], -pa_[pa_ < 0]
        if gains.size == 0:  # TWAP pays impact on every order: no gains, GLR 0
            assert r.summary.glr == 0.0 and losses.size == NUM_ORDERS
        else:
            assert r.summary.glr == pytest.approx(gains.mean() / losses.mean(), rel=1e-12)
    assert ev.result("twap").summary.glr == 0.0 and ev.result("vwap").summary.glr > 0


def test_runner_reward_equals_the_env_episode_return(sample_market, sample_evaluation):
    """The runner's per-order reward is what the gym env pays over the same order and actions."""
    config, batch, ev = sample_evaluation
    result = ev.result("is")
    strategy = make_strategy("is")
    for i in (0, 7, 33):
        env = BarExecutionEnv({"continuous": True}, market=sample_market, orders=[batch.orders[i]], execution=config)
        env.reset(seed=0)
        total, done = 0.0, False
        while not done:
            _, r, done, _, _ = env.step(strategy.fractions(env.state))
            total += r
        assert total == pytest.approx(result.metrics["reward"][i], rel=1e-10, abs=1e-12)


def test_run_episodes_calls_on_step_once_per_step(sample_evaluation):
    config, batch, _ = sample_evaluation
    calls = []
    _, steps = run_episodes(BarEpisodes(batch.select(np.arange(5)), config), TWAP(), on_step=lambda: calls.append(1))
    assert len(calls) == steps == config.n_steps


def test_plots_write_png_files(sample_evaluation, tmp_path):
    _, _, ev = sample_evaluation
    fill_png = plot_fill_curves(ev, tmp_path / "fill.png")
    pa_png = plot_pa_distribution(ev, tmp_path / "pa.png")
    for path in (fill_png, pa_png):
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE
        assert len(data) > 10_000  # a real picture, not an empty canvas

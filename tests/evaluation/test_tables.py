"""The result tables: what they ran on in the title, a legend that defines each column, and a reward
column whose stated unit is what the env pays."""

from __future__ import annotations

import numpy as np
import pytest

from rlexec.envs.config import RewardConfig
from rlexec.evaluation import tables
from rlexec.evaluation.episodes import BarEpisodes
from rlexec.evaluation.run_folders import budget_label, training_record
from rlexec.evaluation.runner import run_episodes
from rlexec.strategies import make_strategy


def test_the_bar_reward_is_what_its_stated_definition_says(sample_evaluation):
    """reward = scale × (PA × fill rate − alpha × Σ_minutes (filled / ordered)²), in bp × scale."""
    config, batch, _ = sample_evaluation
    note = tables.bar_reward_note(config.reward)
    assert note.unit == "bp × 0.01"
    assert note.definition.startswith("reward = 0.01 × (PA × fill rate − 100 × Σ per minute (filled / ordered)²)")
    episodes = BarEpisodes(batch, config)
    result, _ = run_episodes(episodes, make_strategy("vwap"))
    concentration = ((episodes.engine.state.minute_fills / batch.quantity[:, None]) ** 2).sum(axis=1)
    m = result.metrics
    expected = 0.01 * (m["price_advantage_bps"] * m["fill_rate"] - 100.0 * concentration)
    np.testing.assert_allclose(m["reward"], expected, rtol=1e-9, atol=1e-12)


def test_the_reward_unit_follows_the_reward_config():
    note = tables.bar_reward_note(RewardConfig(alpha=5.0, scale=1.0, basis="step"))
    assert note.unit == "bp × 1"
    assert "1 × (PA × fill rate − 5 × Σ per step (filled / ordered)²)" in note.definition
    assert tables.lob_reward_note(50.0).unit == "bp"
    assert "− 50 bp × unfilled share" in tables.lob_reward_note(50.0).definition


SUMMARY = {
    "n_orders": 3,
    "dataset": {"description": "split preset 'sample', test part: SPY on 2019-02-15 (random orders, seed 0)",
                "unit": "orders"},
    "reward": {"unit": "bp × 0.01", "definition": "reward = 0.01 × (PA × fill rate − ...)"},
    "baseline": "twap",
    "trained_policies": {"smoke": {"budget": "2 it., 4.1k steps"}},
    "results": {
        "twap": {"n_orders": 3, "glr": 0.0, "pos": 0.0, "price_advantage_bps": {"mean": -1.254, "se": 0.051, "n": 3},
                 "fill_rate": {"mean": 1.0, "se": 0.0, "n": 3}, "reward": {"mean": -0.0171, "se": 0.0004, "n": 3}},
        "smoke": {"n_orders": 3, "glr": float("inf"), "pos": 1.0,
                  "price_advantage_bps": {"mean": float("nan"), "se": float("nan"), "n": 0},
                  "fill_rate": {"mean": 0.5, "se": 0.1, "n": 3}, "reward": {"mean": 0.25, "se": 0.1, "n": 3}},
    },
    "paired_vs_baseline": {"smoke": {"mean": 1.5, "se": 0.5, "low": 0.2, "high": 2.8, "n": 3, "significant": True}},
}


def test_the_results_table_names_its_data_units_and_budgets():
    table = tables.results(SUMMARY)
    assert table.title == ("3 orders · split preset 'sample', test part: SPY on 2019-02-15 (random orders, seed 0) "
                           "· mean ± standard error")
    assert table.columns[:4] == ("strategy", "PA (bp)", "GLR", "POS")
    assert table.columns[-1] == "reward (bp × 0.01)"
    twap, smoke = table.rows
    assert twap[:4] == ("TWAP", "-1.25 ± 0.05", "0.00", "0.00") and twap[-1] == "-0.017 ± 0.000"
    assert smoke[0] == "SMOKE\n(2 it., 4.1k steps)"
    assert smoke[1:4] == ("n/a", "inf", "1.00")
    for clause in ("PA = price advantage", "GLR = mean PA gain / mean PA loss", "POS = share of orders with PA > 0",
                   "fill rate = executed / ordered", "IS cost = implementation shortfall",
                   "VWAP slip. = slippage vs the window's market VWAP", "reward = 0.01 × (PA × fill rate − ...)",
                   "training budget"):
        assert clause in table.caption, clause


def test_the_comparison_table_finds_the_baseline_of_an_older_summary():
    older = {k: v for k, v in SUMMARY.items() if k not in ("baseline", "dataset", "reward", "trained_policies")}
    table = tables.comparison(older)
    assert table.title == "Paired PA difference vs TWAP (same 3 orders, 95% CI)"
    assert table.rows == (("SMOKE", "+1.50", "[+0.20, +2.80]", "yes"),)
    assert tables.results(older).columns[-1] == "reward"  # no unit recorded: none claimed


@pytest.mark.parametrize("iterations, steps, label", [
    (2, 512, "2 it., 512 steps"), (2, 4096, "2 it., 4.1k steps"), (40, 2_560_000, "40 it., 2.56M steps"),
    (3, None, "3 it."), (None, None, "budget unknown"),
])
def test_budget_label(iterations, steps, label):
    assert budget_label(iterations, steps) == label


def test_training_record_reads_the_budget_at_the_evaluated_checkpoint(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "iter_000002").mkdir(parents=True)
    (run / "run.json").write_text('{"git_commit": "abc123"}')
    (run / "progress.jsonl").write_text('{"iteration": 1, "env_steps_sampled_lifetime": 256}\n'
                                        '{"iteration": 2, "env_steps_sampled_lifetime": 512}\n'
                                        '{"event": "resumed", "iteration": 2}\n'
                                        '{"iteration": 3, "env_steps_sampled_lifetime": 768}\n')
    record = training_record(run, run / "checkpoints" / "iter_000002")
    assert record == {"checkpoint": str((run / "checkpoints" / "iter_000002").resolve()),
                      "run_folder": str(run.resolve()), "git_commit": "abc123", "iterations": 2, "env_steps": 512,
                      "budget": "2 it., 512 steps"}
    (run / "run.json").write_text("{not json")  # a damaged record costs the label, not the evaluation
    assert training_record(run, run / "checkpoints" / "iter_000002")["git_commit"] is None

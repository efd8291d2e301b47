"""Preference pairs (spec 1.4): labels by hand, the noisy labeller, the parquet round trip and bad files."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlexec.algorithms.moe_dpo.preferences import (
    PAIRS_FILE,
    TRAJECTORIES_FILE,
    LabelRule,
    Trajectory,
    build_preferences,
    label_pairs,
    read_preferences,
    synthetic_preferences,
    write_preferences,
)
from rlexec.errors import ConfigError, DataFileError


def _trajectory(policy: str, a: float, fr: float, t_done: float, context_id: str = "c0") -> Trajectory:
    return Trajectory(context_id=context_id, regime="baseline", policy=policy, context=np.array([1.0, 0.0], np.float32),
                      observations=np.zeros((2, 3), np.float32), actions=np.array([0, 1]),
                      price_advantage_bps=a, fill_rate=fr, t_done=t_done, horizon=100.0)


def test_quality_and_speed_utilities_by_hand():
    quality, speed = LabelRule(criterion="quality"), LabelRule(criterion="speed")
    done, unfinished = _trajectory("a", 3.0, 1.0, 40.0), _trajectory("b", 5.0, 0.8, math.nan)
    assert quality.utility(done) == pytest.approx(3.0)
    assert quality.utility(unfinished) == pytest.approx(5.0 - 50.0 * 0.2)  # lambda_F = 50 bp
    assert speed.utility(done) == pytest.approx(-0.4 + 3.0 / 1e4)
    assert speed.utility(unfinished) == pytest.approx(-(100.0 * (2 - 0.8)) / 100.0 + 5.0 / 1e4)  # t_done = T (2 - FR)
    assert quality.resolved_margin == 0.5 and speed.resolved_margin == 0.02


def test_pairs_are_labelled_by_the_higher_utility_and_filtered_by_the_margin():
    group = [_trajectory("a", 3.0, 1.0, 90.0), _trajectory("b", 3.4, 1.0, 30.0), _trajectory("c", 1.0, 1.0, 60.0)]
    _, chosen, rejected, u_plus, u_minus = label_pairs([group], LabelRule(criterion="quality"))
    # a vs b: |3.0 - 3.4| = 0.4 <= 0.5 bp margin, dropped; a > c and b > c kept.
    assert sorted(zip(chosen.tolist(), rejected.tolist())) == [(0, 2), (1, 2)]
    assert (u_plus > u_minus).all()
    _, chosen, rejected, _, _ = label_pairs([group], LabelRule(criterion="speed"))
    # speed: b (30) > c (60) > a (90); every gap is 0.3 of T > 2 %.
    assert sorted(zip(chosen.tolist(), rejected.tolist())) == [(1, 0), (1, 2), (2, 0)]


def test_noisy_labeller_flips_at_the_bradley_terry_rate():
    group = [_trajectory("a", 2.0, 1.0, 1.0), _trajectory("b", 1.0, 1.0, 1.0)]
    rule = LabelRule(criterion="quality", temperature=1.0)
    with pytest.raises(ConfigError, match="rng"):
        label_pairs([group], rule)
    rng = np.random.default_rng(0)
    wins = [label_pairs([group], rule, rng=rng)[1][0] == 0 for _ in range(4000)]
    assert np.mean(wins) == pytest.approx(1 / (1 + math.exp(-1.0)), abs=0.025)  # sigma((U_a - U_b)/T_lab)


def test_round_trip_keeps_every_field_and_the_reference_cache(tmp_path):
    group = [_trajectory("a", 3.0, 1.0, 20.0), _trajectory("b", 0.0, 0.9, math.nan)]
    preferences = build_preferences([group], LabelRule(), expert_names=["twap", "vwap"],
                                    reference_log_prob=lambda k, obs, actions: -1.0 - k - len(actions),
                                    context_names=["x0", "x1"])
    read = read_preferences(write_preferences(preferences, tmp_path / "prefs"))
    assert read.expert_names == ["twap", "vwap"] and read.context_names == ["x0", "x1"]
    assert read.chosen.tolist() == [0] and read.rejected.tolist() == [1]
    assert read.trajectories[1].ref_logp.tolist() == [-3.0, -4.0]
    assert math.isnan(read.trajectories[1].t_done) and read.trajectories[0].t_done == 20.0
    np.testing.assert_array_equal(read.trajectories[0].observations, group[0].observations)
    assert read.rule == LabelRule() and read.utility_chosen.tolist() == [3.0]


def test_bad_rows_are_named(tmp_path):
    folder = write_preferences(synthetic_preferences(num_contexts=3)[0], tmp_path / "prefs")
    table = pq.read_table(folder / TRAJECTORIES_FILE)
    steps = table.column("num_steps").to_pylist()
    steps[1] = 99
    pq.write_table(table.set_column(table.column_names.index("num_steps"), "num_steps",
                                    pa.array(steps)), folder / TRAJECTORIES_FILE)
    with pytest.raises(DataFileError, match=r"trajectories.parquet, row 2, field 'observations'"):
        read_preferences(folder)

    folder = write_preferences(synthetic_preferences(num_contexts=3)[0], tmp_path / "prefs2")
    pairs = pq.read_table(folder / PAIRS_FILE)
    chosen = pairs.column("chosen").to_pylist()
    chosen[0] = 10_000
    pq.write_table(pairs.set_column(1, "chosen", pa.array(chosen)), folder / PAIRS_FILE)
    with pytest.raises(DataFileError, match=r"pairs.parquet, row 1, field 'chosen'.*10000"):
        read_preferences(folder)
    with pytest.raises(DataFileError, match="preferences.json"):
        read_preferences(tmp_path / "nowhere")


def test_synthetic_set_prefers_the_best_expert_of_each_regime():
    preferences, best = synthetic_preferences(num_contexts=30, seed=3)
    winners = [preferences.trajectories[i] for i in preferences.chosen]
    share = np.mean([t.policy == f"expert{best[t.regime]}" for t in winners])
    assert share > 0.6  # the best expert's trajectory takes part in and wins most kept pairs
    assert all(preferences.trajectories[c].context_id == preferences.trajectories[r].context_id
               for c, r in zip(preferences.chosen, preferences.rejected))

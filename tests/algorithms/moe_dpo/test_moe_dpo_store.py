"""Preference pairs from a trajectory store (`rlexec regimes --store`) and the `rlexec preferences` command."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rlexec.algorithms.moe_dpo.preferences import (
    CRITERIA,
    LabelRule,
    preferences_from_store,
    read_preferences,
)
from rlexec.algorithms.sip.gate import context_names
from rlexec.cli import preferences as preferences_cli
from rlexec.cli.main import main
from rlexec.envs.lob_interpreters import OBSERVATION_NAMES
from rlexec.evaluation.trajectory_store import (
    EPISODES_FILE,
    FORMAT,
    FORMAT_VERSION,
    META_FILE,
    STEPS_FILE,
)

# One context (baseline, seed 7), two policies of 2 steps; a 600-s sell window starting at 10:00.
OUTCOMES = {"fast": {"arrival_advantage_bps": -1.0, "fill_rate": 1.0, "t_done_s": 300.0},
            "slow": {"arrival_advantage_bps": 2.0, "fill_rate": 1.0, "t_done_s": 600.0}}


def _store(folder, regimes=("baseline",)):
    """The context of each regime (same seed, same trajectories): a store of len(regimes) contexts."""
    folder.mkdir()
    rows = [(policy, step) for policy in OUTCOMES for step in range(2)]
    # the LOB env's (placement) observation: spread 2 bp, imbalance_1 0.5, mid returns 1, -1, 0 ... at step 0
    first = np.zeros(len(OBSERVATION_NAMES))
    first[[OBSERVATION_NAMES.index(n) for n in ("spread_bps", "imbalance_1", "mid_return_2_bps", "mid_return_1_bps")]] = \
        [2.0, 0.5, 1.0, -1.0]
    observations = [first + step for _, step in rows]  # the same first observation in both
    n = len(regimes)
    steps = pa.table({
        "regime": [r for r in regimes for _ in range(4)], "policy": [p for p, _ in rows] * n, "episode": [0] * 4 * n,
        "seed": [7] * 4 * n, "step": [s for _, s in rows] * n,
        "observation": pa.FixedSizeListArray.from_arrays(pa.array(np.ravel(observations * n), pa.float32()),
                                                         len(OBSERVATION_NAMES)),
        "action": [1, 2, 0, 0] * n, "logp_twap": [-1.0, -2.0, -0.5, -0.5] * n, "logp_vwap": [-3.0, -1.0, -1.0, -2.0] * n,
    })
    episodes = pa.table({
        "regime": [r for r in regimes for _ in range(2)], "policy": list(OUTCOMES) * n, "episode": [0, 0] * n,
        "seed": [7, 7] * n, "side": ["sell", "sell"] * n, "quantity": [1000.0] * 2 * n,
        "window_start_s": [36000.0] * 2 * n, "window_end_s": [36600.0] * 2 * n, "steps": [2, 2] * n,
        **{k: [OUTCOMES[p][k] for p in OUTCOMES] * n for k in ("arrival_advantage_bps", "fill_rate", "t_done_s")},
    })
    pq.write_table(steps, folder / STEPS_FILE)
    pq.write_table(episodes, folder / EPISODES_FILE)
    (folder / META_FILE).write_text(json.dumps({"format": FORMAT, "version": FORMAT_VERSION, "experts": ["twap", "vwap"]}))
    return folder


def test_store_contexts_become_labelled_pairs_with_the_reference_cache(tmp_path):
    store = _store(tmp_path / "store")
    quality = preferences_from_store(store, LabelRule(criterion="quality"))
    assert quality.expert_names == ["twap", "vwap"]
    (chosen,), (rejected,) = quality.chosen, quality.rejected
    assert quality.trajectories[chosen].policy == "slow" and quality.trajectories[rejected].policy == "fast"  # 2 > -1 bp
    fast = quality.trajectories[rejected]
    assert fast.ref_logp.tolist() == [-3.0, -4.0]  # sum of the store's logp_<expert> over the steps
    assert fast.horizon == 600.0 and fast.t_done == 300.0
    # x = rlexec.algorithms.sip.gate.context_features: hours after 09:30, side (+1 sell), log Q, std of the
    # 9 mid returns (1, -1 and seven 0: sqrt(2/9 - 0)), spread, imbalance_1, imbalance_5, regime one-hot
    assert quality.context_names == context_names(["baseline"])
    np.testing.assert_allclose(fast.context, [0.5, 1.0, np.log(1000.0), np.sqrt(2 / 9), 2.0, 0.5, 0.0, 1.0], rtol=1e-6)
    speed = preferences_from_store(store, LabelRule(criterion="speed"))
    # U_s: fast -0.5 - 1e-4, slow -1 + 2e-4: the faster one wins on speed
    assert speed.trajectories[speed.chosen[0]].policy == "fast"


def test_preferences_command_writes_a_set_the_learner_reads(tmp_path, capsys):
    store = _store(tmp_path / "store")
    assert main(["preferences", str(store), "--out", str(tmp_path / "prefs"), "--criterion", "speed"]) == 0
    assert "1 speed pairs" in capsys.readouterr().out
    read = read_preferences(tmp_path / "prefs")
    assert read.rule.criterion == "speed" and read.trajectories[read.chosen[0]].policy == "fast"
    assert main(["preferences", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p2")]) == 2
    assert "store.json" in capsys.readouterr().err


def test_the_criteria_the_parser_offers_are_the_labeller_s():
    assert preferences_cli.CRITERIA == CRITERIA


def test_quality_margin_drops_close_pairs(tmp_path):
    store = _store(tmp_path / "store")
    assert len(preferences_from_store(store, LabelRule(criterion="quality", margin=3.5))) == 0
    assert math.isclose(LabelRule(criterion="quality", margin=3.5).resolved_margin, 3.5)


def test_train_spec_makes_the_moe_dpo_paths_absolute(tmp_path, monkeypatch):
    # Tune runs each trial in its own directory: relative paths would point elsewhere there.
    from rlexec.training.spec import TrainSpec

    monkeypatch.chdir(tmp_path)
    spec = TrainSpec.from_dict({"algorithm": "moe_dpo", "training": {
        "preferences": "prefs", "validation_preferences": "held_out", "experts": ["e0", "e1"], "gate_init": "g.pt"}})
    training = spec.sections["training"]
    assert training["preferences"] == str(tmp_path / "prefs")
    assert training["validation_preferences"] == str(tmp_path / "held_out")
    assert training["experts"] == [str(tmp_path / "e0"), str(tmp_path / "e1")]
    assert training["gate_init"] == str(tmp_path / "g.pt")


def test_one_regime_s_pairs_keep_every_regime_in_the_gate_input(tmp_path, capsys):
    store = _store(tmp_path / "store", regimes=("baseline", "open"))
    assert len(preferences_from_store(store, LabelRule(criterion="quality"))) == 2  # one pair per context
    only_open = preferences_from_store(store, LabelRule(criterion="quality"), only_regimes=["open"])
    assert len(only_open) == 1 and {t.regime for t in only_open.trajectories} == {"open"}
    assert only_open.context_names == context_names(["baseline", "open"])
    assert only_open.trajectories[0].context[-2:].tolist() == [0.0, 1.0]  # one-hot of open among both
    assert main(["preferences", str(store), "--out", str(tmp_path / "p"), "--regime", "open"]) == 0
    assert "1 quality pairs" in capsys.readouterr().out
    assert main(["preferences", str(store), "--out", str(tmp_path / "q"), "--regime", "bullish"]) == 2
    assert "bullish" in capsys.readouterr().err

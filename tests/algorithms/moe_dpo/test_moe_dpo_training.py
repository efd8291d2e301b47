"""One short MoE-DPO run through RLlib (``rlexec train``'s driver): the Learner path, the logged figures,
the checkpoint, and the tiny synthetic problem learned (the gate picks each regime's best expert)."""

from __future__ import annotations

import json

import numpy as np

from rlexec.algorithms.moe_dpo.module import MixturePolicy
from rlexec.algorithms.moe_dpo.preferences import (
    read_preferences,
    synthetic_preferences,
    write_preferences,
)
from rlexec.policies.checkpoints import load_module
from rlexec.training.runner import train
from rlexec.training.spec import TrainSpec

GATE_ACCURACY_THRESHOLD = 0.9  # share of contexts whose arg-max gate weight is the regime's best expert


def test_a_short_rllib_run_learns_the_best_expert_per_regime(ray_session, synthetic_run_inputs, tmp_path):
    folder, experts, best = synthetic_run_inputs
    held_out = write_preferences(synthetic_preferences(num_contexts=30, seed=1)[0], tmp_path / "validation")
    spec = TrainSpec.from_dict({
        "algorithm": "moe_dpo", "name": "moe_dpo_synthetic", "seed": 0, "stop": {"training_iterations": 6},
        "checkpoint_frequency": 0,
        # beta 1 and gate lr 1e-2: a budget of 6 passes over 147 pairs (spec 1.5's 0.1 / 1e-3 need ~10x more)
        "training": {"preferences": str(folder), "experts": experts, "beta": 1.0, "gate_lr": 1e-2,
                     "gate_hidden": [16], "validation_preferences": str(held_out)},
    })
    run = train(spec, out=tmp_path / "runs", local=True)

    lines = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert [line["iteration"] for line in lines] == [1, 2, 3, 4, 5, 6]
    for key in ("log_likelihood", "preference_accuracy", "gate_entropy", "gate_weight/calm/expert0",
                "gate_weight/thin/expert2", "logp_chosen/expert1", "logp_rejected/expert1"):
        assert all(key in line for line in lines), key
    assert lines[-1]["log_likelihood"] > lines[0]["log_likelihood"]
    assert lines[-1]["preference_accuracy"] > lines[0]["preference_accuracy"]
    # held-out pairs of other contexts: the fitted mixture predicts them better than the starting one
    assert lines[-1]["validation_log_likelihood"] > lines[0]["validation_log_likelihood"]
    assert lines[-1]["validation_preference_accuracy"] > lines[0]["validation_preference_accuracy"]

    module = load_module(run)  # the weights-only copy written next to the checkpoint
    preferences = read_preferences(folder)
    contexts = {t.context_id: t for t in preferences.trajectories}
    hits = [int(np.argmax(MixturePolicy(module, t.context).gate_weights())) == best[t.regime] for t in contexts.values()]
    assert np.mean(hits) >= GATE_ACCURACY_THRESHOLD, np.mean(hits)

    # An offline algorithm restores without EnvRunners and trains on (RLlib's own restore syncs to them).
    train(spec.with_overrides({"stop.training_iterations": 7}), out=tmp_path / "runs", resume=run, local=True)
    lines = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert lines[-2]["event"] == "resumed" and lines[-2]["iteration"] == 6 and lines[-1]["iteration"] == 7


def test_experts_may_be_renamed_only_when_the_run_scores_its_own_references(ray_session, synthetic_run_inputs, tmp_path):
    """The cached reference log-probabilities belong to the store's experts, by name; a run that recomputes them
    with its own frozen experts may call those experts what it likes (e.g. as its SIP gate_init names them)."""
    import pytest

    from rlexec.errors import ConfigError

    folder, experts, _ = synthetic_run_inputs
    assert all(t.ref_logp is not None for t in read_preferences(folder).trajectories)
    training = {"preferences": str(folder), "experts": experts, "expert_names": ["a", "b", "c"], "gate_hidden": [4]}
    spec = TrainSpec.from_dict({"algorithm": "moe_dpo", "name": "renamed", "seed": 0, "checkpoint_frequency": 0,
                                "stop": {"training_iterations": 1}, "training": training})
    with pytest.raises(ConfigError, match=r"expert_names \['a', 'b', 'c'\] differ"):
        train(spec, out=tmp_path / "runs", local=True)
    run = train(spec.with_overrides({"training.recompute_reference": True}), out=tmp_path / "runs", local=True)
    lines = [json.loads(line) for line in (run / "progress.jsonl").read_text().splitlines()]
    assert "gate_weight/calm/a" in lines[-1] and "logp_chosen/c" in lines[-1]

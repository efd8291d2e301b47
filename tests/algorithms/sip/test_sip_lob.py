"""End to end on the LOB simulator: saved shared-action experts -> SIP per regime -> the three mixtures run."""

from __future__ import annotations

import numpy as np
import pytest

from rlexec.algorithms.sip.driver import SIPRunConfig, fit, load_weights, save
from rlexec.algorithms.sip.mixture import BlendMixture, EpisodeDrawMixture, StepMixture
from rlexec.envs.lob_env import BROKERS, SHARED_OBSERVATION_NAMES, LOBExecutionConfig
from rlexec.evaluation.episodes import LOBEpisodes
from rlexec.evaluation.runner import Run, evaluate_runs
from rlexec.policies.binning import FeatureBins, StateBinning
from rlexec.policies.expert import ExpertPolicy

ENVIRONMENT = {"action_space": "shared", "window_minutes": 5, "decision_interval_s": 60, "calibration_days": 1}


@pytest.mark.slow
def test_sip_on_the_simulator_end_to_end(tmp_path):
    binning = StateBinning((FeatureBins(name="time_pct", index=SHARED_OBSERVATION_NAMES.index("time_pct"),
                                        edges=(0.5,)),))
    rng = np.random.default_rng(0)
    for broker in BROKERS:  # market-leaning random placement tables: every expert fills
        q = rng.normal(0, 0.3, size=(binning.num_states, 3)) + [1.0, 0.0, -2.0]
        ExpertPolicy.from_q_table(broker=broker, q_table=q, binning=binning, temperature=1.0).save(
            tmp_path / "experts" / "open" / broker)
    config = SIPRunConfig.from_dict({
        "experts": {b: str(tmp_path / "experts" / "{regime}" / "{expert}") for b in BROKERS},
        "regimes": ["open"], "environment": ENVIRONMENT, "episodes": 3, "seed_start": 500_000,
        "gate": {"epochs": 20}})
    fits, gate = fit(config)
    (f,) = fits
    assert f.advantage.shape == (3, 4) and np.all(np.isfinite(f.advantage))
    assert np.all((f.fill_rate > 0) & (f.fill_rate <= 1))
    np.testing.assert_allclose(f.history.weights.sum(axis=1), 1.0)
    run_dir = save(fits, gate, config, tmp_path / "run")
    names, weights = load_weights(run_dir)
    experts = [ExpertPolicy.load(tmp_path / "experts" / "open" / b) for b in names]
    env = LOBExecutionConfig.from_dict({**ENVIRONMENT, "regime": "open"})
    w = weights["open"]
    actors = [EpisodeDrawMixture(w, experts, seed=1), StepMixture(w, experts, seed=1),
              BlendMixture(w, experts, size_multipliers=env.size_multipliers)]
    evaluation = evaluate_runs([Run(a.name, a, lambda: LOBEpisodes(env, episodes=2, seed=0)) for a in actors])
    for actor in actors:
        metrics = evaluation.result(actor.name).metrics
        assert np.all(np.isfinite(metrics["arrival_advantage_bps"])) and np.all(metrics["fill_rate"] > 0)

"""The MoE-DPO RLModule and Learner on hand-built batches, and the mixture policy (no Ray needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlexec.algorithms.moe_dpo import module as columns
from rlexec.algorithms.moe_dpo.config import MoEDPOConfig, PairBatches
from rlexec.algorithms.moe_dpo.module import MixturePolicy
from rlexec.algorithms.moe_dpo.preferences import read_preferences
from rlexec.errors import ConfigError


def _learner(preferences, experts, **training):
    config = MoEDPOConfig().training(preferences=str(preferences), experts=experts, **training)
    config.validate()
    learner = config.build_learner()
    learner.build()
    return learner, learner.module["default_policy"].unwrapped()


def _hand_batch():
    # Two pairs of 2-step trajectories (the second rejected one is 1 step: padding); obs are irrelevant.
    return {
        columns.CONTEXT: np.array([[1, 0, 0], [0, 1, 0]], np.float32), columns.REGIME: np.array([0, 1]),
        columns.CHOSEN_OBS: np.zeros((2, 2, 3), np.float32), columns.CHOSEN_ACTIONS: np.array([[0, 0], [1, 2]]),
        columns.CHOSEN_MASK: np.ones((2, 2), np.float32),
        columns.REJECTED_OBS: np.zeros((2, 2, 3), np.float32), columns.REJECTED_ACTIONS: np.array([[1, 3], [0, 0]]),
        columns.REJECTED_MASK: np.array([[1, 1], [1, 0]], np.float32),
        columns.REF_LOGP_CHOSEN: np.full((2, 3), 2 * math.log(0.25), np.float32),
        columns.REF_LOGP_REJECTED: np.array([[2 * math.log(0.25)] * 3, [math.log(0.25)] * 3], np.float32),
    }


def test_learner_loss_on_a_hand_built_batch_equals_the_hand_computation(synthetic_run_inputs):
    folder, experts, _ = synthetic_run_inputs
    beta, weights = 0.5, [0.2, 0.3, 0.5]
    learner, module = _learner(folder, experts, beta=beta, initial_weights=weights)
    batch = {k: torch.as_tensor(v) for k, v in _hand_batch().items()}
    fwd_out = module.forward_train(batch)
    loss = learner.compute_loss_for_module(module_id="default_policy", config=learner.config, batch=batch,
                                           fwd_out=fwd_out)

    # Expert k: pi(k) = e^2 / (e^2 + 3), pi(other) = 1 / (e^2 + 3); the gate starts at `weights` for every x.
    high, low = math.log(math.e ** 2 / (math.e ** 2 + 3)), math.log(1 / (math.e ** 2 + 3))
    logp = lambda k, actions: sum(high if a == k else low for a in actions)
    pairs = [([0, 0], [1, 3], 2 * math.log(0.25), 2 * math.log(0.25)), ([1, 2], [0], 2 * math.log(0.25), math.log(0.25))]
    total = 0.0
    for plus, minus, ref_plus, ref_minus in pairs:
        delta = [beta * ((logp(k, plus) - ref_plus) - (logp(k, minus) - ref_minus)) for k in range(3)]
        joint = [w * (1 / (1 + math.exp(-d))) for w, d in zip(weights, delta)]
        q = [j / sum(joint) for j in joint]
        total += -sum(qk * math.log(1 / (1 + math.exp(-d))) for qk, d in zip(q, delta))  # experts' M-step
        total += -sum(qk * math.log(w) for qk, w in zip(q, weights))  # gate cross-entropy
    assert loss.item() == pytest.approx(total / 2, abs=1e-5)


def test_mix_gate_takes_the_closed_form_step(synthetic_run_inputs):
    folder, experts, _ = synthetic_run_inputs
    learner, module = _learner(folder, experts, gate="mix", mix_rate=0.5)
    batch = {k: torch.as_tensor(v) for k, v in _hand_batch().items()}
    fwd_out = module.forward_train(batch)
    log_gate = fwd_out[columns.LOG_GATE].detach()
    learner.compute_loss_for_module(module_id="default_policy", config=learner.config, batch=batch, fwd_out=fwd_out)
    from rlexec.algorithms.moe_dpo.losses import (
        implicit_reward_differences,
        responsibilities,
    )

    delta = implicit_reward_differences(fwd_out[columns.LOGP_CHOSEN].detach(), batch[columns.REF_LOGP_CHOSEN],
                                        fwd_out[columns.LOGP_REJECTED].detach(), batch[columns.REF_LOGP_REJECTED],
                                        beta=0.1)
    expected = 0.5 * torch.full((3,), 1 / 3) + 0.5 * responsibilities(log_gate, delta).mean(0)
    assert torch.allclose(module.mix_log_weights.exp(), expected, atol=1e-6)
    assert not hasattr(module, "gate")


def test_missing_reference_cache_is_computed_once_from_the_frozen_references(synthetic_run_inputs, specialist):
    folder, experts, _ = synthetic_run_inputs
    _, module = _learner(folder, experts)
    preferences = read_preferences(folder)
    uncached = preferences.without_reference_cache()
    with pytest.raises(ConfigError, match="ref_logp"):
        PairBatches(uncached)
    score = lambda padded: module.trajectory_log_probs(*(torch.from_numpy(padded[k]) for k in ("obs", "actions", "mask")),
                                                     reference=True).detach().numpy()
    pairs = PairBatches(uncached, score)
    t = preferences.trajectories[0]
    by_hand = [sum(math.log(specialist(k).probs(t.observations[i])[a].item()) for i, a in enumerate(t.actions))
               for k in range(3)]
    assert pairs.ref_logp[0] == pytest.approx(by_hand, abs=1e-5)


def test_mixture_policy_is_the_gate_weighted_expert_mixture(synthetic_run_inputs, specialist):
    folder, experts, _ = synthetic_run_inputs
    _, module = _learner(folder, experts, initial_weights=[0.6, 0.3, 0.1])
    obs = np.zeros((2, 3), np.float32)
    policy = MixturePolicy(module, context=np.array([1, 0, 0], np.float32))
    probs = [specialist(k).probs(obs[:1])[0].detach().numpy() for k in range(3)]
    mixture = 0.6 * probs[0] + 0.3 * probs[1] + 0.1 * probs[2]
    np.testing.assert_allclose(np.exp(policy.log_probs(obs, np.array([0, 3]))), mixture[[0, 3]], atol=1e-6)
    assert policy.actions(obs).tolist() == [0, 0]
    np.testing.assert_allclose(policy.gate_weights(), [0.6, 0.3, 0.1], atol=1e-6)
    sampled = MixturePolicy(module, context=np.array([1, 0, 0], np.float32), mode="sampled", seed=0)
    draws = sampled.actions(np.zeros((4000, 3), np.float32))
    np.testing.assert_allclose(np.bincount(draws, minlength=4) / 4000, mixture, atol=0.03)
    module.hard_gating = True  # argmax expert only: expert 0
    np.testing.assert_allclose(np.exp(policy.log_probs(obs[:1], np.array([0]))), probs[0][[0]], atol=1e-6)


def test_config_errors_name_the_field(synthetic_run_inputs, tmp_path):
    folder, experts, _ = synthetic_run_inputs
    with pytest.raises(ConfigError, match="preferences"):
        MoEDPOConfig().validate()
    with pytest.raises(ConfigError, match="initial_weights"):
        MoEDPOConfig().training(preferences=str(folder), experts=experts, initial_weights=[1.0]).validate()
    with pytest.raises(ConfigError, match="beta"):
        MoEDPOConfig().training(preferences=str(folder), experts=experts, beta=0).validate()
    with pytest.raises(ConfigError, match="experts"):
        MoEDPOConfig().training(preferences=str(folder), experts=experts[:2]).validate()
    with pytest.raises(ConfigError, match="neither an exported expert"):
        MoEDPOConfig().training(preferences=str(folder), experts=[str(tmp_path)])


def test_shared_action_experts_start_as_the_exported_expert_and_only_the_copy_learns(tmp_path):
    from rlexec.algorithms.moe_dpo.preferences import (
        synthetic_preferences,
        write_preferences,
    )
    from rlexec.envs.lob_env import SHARED_OBSERVATION_NAMES
    from rlexec.policies.binning import FeatureBins, StateBinning
    from rlexec.policies.expert import ExpertPolicy

    time_index = SHARED_OBSERVATION_NAMES.index("time_pct")
    binning = StateBinning((FeatureBins(name="time_pct", index=time_index, edges=(0.5,)),))
    folders = []
    for k, broker in enumerate(("twap", "vwap")):
        q = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]]) * (k + 1)
        folders.append(str(ExpertPolicy.from_q_table(broker=broker, q_table=q, binning=binning, temperature=0.5)
                           .save(tmp_path / broker)))
    obs_dim, experts = len(SHARED_OBSERVATION_NAMES), [ExpertPolicy.load(f) for f in folders]
    preferences, _ = synthetic_preferences(num_contexts=6, num_experts=2, num_actions=experts[0].num_actions,
                                           obs_dim=obs_dim, seed=0)
    learner, module = _learner(write_preferences(preferences, tmp_path / "prefs"), folders, expert_lr=0.1)
    obs = np.random.default_rng(0).uniform(0, 1, (5, obs_dim)).astype(np.float32)
    for k, expert in enumerate(experts):
        np.testing.assert_allclose(torch.log_softmax(module.experts[k](torch.from_numpy(obs)), -1).detach().numpy(),
                                   expert.logits(obs), atol=1e-6)
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch

    from rlexec.algorithms.moe_dpo.config import PairBatches

    batch = PairBatches(preferences).batch(np.arange(len(preferences)))
    before = [p.detach().clone() for p in module.experts.parameters()]
    reference = [p.detach().clone() for p in module.references.parameters()]
    learner.update(batch=MultiAgentBatch({"default_policy": SampleBatch(batch)}, env_steps=len(preferences)))
    assert any(not torch.equal(a, b) for a, b in zip(before, module.experts.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(reference, module.references.parameters()))

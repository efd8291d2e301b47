"""`kind: moe_dpo` of rlexec regimes, and the gate context shared with SIP (one function, loadable SIP gate)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from moe_dpo_models import NAMES, NUM_ACTIONS, OBS_DIM, REGIMES, saved_run, two_expert_module

from rlexec.algorithms.moe_dpo.module import MoEDPOModule, sip_gate_network
from rlexec.algorithms.moe_dpo.policy_kind import MoEDPOActor, moe_dpo_policy
from rlexec.algorithms.sip.gate import GateConfig, context_names, fit_gate
from rlexec.envs.lob_env import SHARED_OBSERVATION_NAMES
from rlexec.errors import ConfigError
from rlexec.evaluation.regime_table import PolicyContext, PolicySpec, resolve_kind


def _module(*, gate_hidden=(), hard=False) -> MoEDPOModule:
    return two_expert_module(["twap", "vwap"], gate_hidden=gate_hidden, hard=hard)


def _identity(rows):
    return {"side": ["buy"] * rows, "quantity": [100.0] * rows, "window_start_s": [36000.0] * rows}


def _first_observations(spreads):
    obs = np.zeros((len(spreads), OBS_DIM), dtype=np.float32)
    obs[:, SHARED_OBSERVATION_NAMES.index("spread_bps")] = spreads
    return obs


def _expert_probabilities():
    logits = np.zeros((2, NUM_ACTIONS))
    logits[0, 0], logits[1, 1] = 1.0, 5.0
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def test_actor_acts_with_the_hand_computed_mixture_of_each_episode_s_gate():
    actor = MoEDPOActor(_module(), regime="open", identity=_identity, act="greedy")
    obs = _first_observations([-4.0, 0.0, 4.0])
    actions = actor.actions(obs)
    w_vwap = 1.0 / (1.0 + np.exp(-0.5 * np.array([-4.0, 0.0, 4.0])))  # softmax of (0, 0.5 spread)
    weights = np.stack([1 - w_vwap, w_vwap], axis=1)
    mixture = weights @ _expert_probabilities()  # (E, A) sum_k w_k pi_k
    np.testing.assert_allclose(actor.gate_weights(), weights, rtol=1e-6)
    np.testing.assert_array_equal(actions, mixture.argmax(axis=1))
    assert actions.tolist() == [0, 1, 1]  # the gate moves episode 0 to the mild expert's mode
    np.testing.assert_allclose(actor.log_probs(obs, [2, 1, 0]), np.log(mixture[[0, 1, 2], [2, 1, 0]]), rtol=1e-5)
    np.testing.assert_allclose(actor.mixture_weights()["vwap"], w_vwap, rtol=1e-6)
    midday = MoEDPOActor(_module(), regime="midday", identity=_identity)  # the regime one-hot reaches the gate
    midday.actions(obs)
    np.testing.assert_allclose(midday.mixture_weights()["vwap"], 1 / (1 + np.exp(-(0.5 * np.array([-4.0, 0, 4]) + 1))),
                               rtol=1e-6)


def test_hard_gating_follows_the_arg_max_expert_alone():
    obs = _first_observations([-1.0, 1.0])  # w_vwap = 0.38 and 0.62
    soft = MoEDPOActor(_module(), regime="open", identity=_identity).actions(obs)
    hard_actor = MoEDPOActor(_module(), regime="open", identity=_identity, hard=True)
    hard = hard_actor.actions(obs)
    assert soft.tolist() == [1, 1]  # 0.62 * 0.475 < 0.38 * 0.98 + 0.62 * 0.175: the sharp expert wins the blend
    assert hard.tolist() == [0, 1]  # argmax w: twap for episode 0, vwap for episode 1
    np.testing.assert_allclose(hard_actor.log_probs(obs, [0, 1]), np.log(_expert_probabilities()[[0, 1], [0, 1]]),
                               rtol=1e-5)
    sampled = MoEDPOActor(_module(), regime="open", identity=_identity, act="sampled", hard=True, seed=3)
    draws = sampled.actions(_first_observations([-1.0] * 300 + [1.0] * 300))  # 300 episodes of each context
    frequencies = [(draws[:300] == 0).mean(), (draws[300:] == 1).mean()]  # each row samples its arg-max expert
    np.testing.assert_allclose(frequencies, [_expert_probabilities()[0, 0], _expert_probabilities()[1, 1]], atol=0.08)


def test_gate_weights_come_from_each_episode_s_first_observation_only():
    actor = MoEDPOActor(_module(), regime="open", identity=_identity)
    actor.actions(_first_observations([-2.0, 4.0]))
    before = actor.gate_weights().copy()
    later = _first_observations([9.0, -9.0])  # the spreads move later in the episode
    actor.actions(later)
    np.testing.assert_array_equal(actor.gate_weights(), before)
    fresh = MoEDPOActor(_module(), regime="open", identity=_identity)
    fresh.actions(later)
    assert not np.allclose(fresh.gate_weights(), before)  # a different start is a different context


def test_gate_init_from_a_saved_sip_gate_gives_the_sip_gate_s_weights(tmp_path):
    sip_names = context_names(["close", "open", "midday"])  # SIP saw a regime the preference set lacks
    rng = np.random.default_rng(0)
    features = rng.normal(3.0, 2.0, (40, len(sip_names)))
    features[:, -3:] = np.eye(3)[rng.integers(0, 3, 40)]
    targets = rng.dirichlet(np.ones(2), 40)
    gate = fit_gate(features, targets, feature_names=sip_names, expert_names=["twap", "vwap"],
                    config=GateConfig(hidden_sizes=(5,), epochs=30))
    gate.save(tmp_path / "sip_run" / "gate")
    contexts = features[features[:, sip_names.index("regime_close")] == 0]
    moe_columns = [sip_names.index(n) for n in NAMES]
    network = sip_gate_network(tmp_path / "sip_run", NAMES, ["twap", "vwap"])
    with torch.no_grad():
        moe_weights = torch.softmax(network(torch.as_tensor(contexts[:, moe_columns], dtype=torch.float32)), -1).numpy()
    np.testing.assert_allclose(moe_weights, gate.weights(contexts), atol=1e-5)
    assert not np.allclose(gate.weights(contexts), gate.weights(contexts).mean(axis=0))  # the gate does vary
    config = {"expert_names": ["twap", "vwap"], "gate": "moe", "context_dim": len(NAMES), "context_names": NAMES,
              "expert_hidden": [4], "gate_init": str(tmp_path / "sip_run")}
    module = MoEDPOModule(observation_space=gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32),
                          action_space=gym.spaces.Discrete(NUM_ACTIONS), inference_only=False, model_config=config)
    with torch.no_grad():
        log_gate = module.log_gate(torch.as_tensor(contexts[:, moe_columns], dtype=torch.float32), len(contexts))
    np.testing.assert_allclose(log_gate.exp().numpy(), gate.weights(contexts), atol=1e-5)
    with pytest.raises(ConfigError, match="experts"):
        sip_gate_network(tmp_path / "sip_run", NAMES, ["vwap", "twap"])
    with pytest.raises(ConfigError, match="regime_closing"):
        sip_gate_network(tmp_path / "sip_run", [*NAMES, "regime_closing"], ["twap", "vwap"])


def _saved_run(folder, module):
    """A run folder as `rlexec train` leaves it, holding the module's weights-only copy."""
    return saved_run(folder, module)


def test_the_kind_loads_a_run_s_weights_and_a_bad_run_is_a_one_line_error(tmp_path):
    from rlexec.envs.lob_env import LOBExecutionConfig

    _saved_run(tmp_path / "run", _module())  # found as "run" under the context's base_dir
    env = LOBExecutionConfig.from_dict({"regime": "open", "action_space": "shared"})
    context = PolicyContext(regime="open", env_config=env, seed=10_000_000, episodes=2, base_dir=tmp_path)
    factory = resolve_kind("moe_dpo")
    actor = factory(PolicySpec("moe_dpo_quality", "moe_dpo", "mixture", {"run": "run", "gating": "hard"}), context)
    obs = _first_observations([-1.0, 1.0])
    assert actor.actions(obs).tolist() == [0, 1]  # the saved module, hard-gated, on the env's episode identities
    assert actor.mixture_weights()["vwap"].shape == (2,)
    with pytest.raises(ConfigError) as error:
        moe_dpo_policy(PolicySpec("moe_dpo_quality", "moe_dpo", "mixture", {"run": "no/such/run"}), context)
    assert str(tmp_path / "no/such/run") in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="gating"):
        moe_dpo_policy(PolicySpec("m", "moe_dpo", "mixture", {"run": "run", "gating": "argmax"}), context)


def test_in_rlexec_regimes_each_episode_s_weights_come_from_its_own_window_start(tmp_path):
    """Through the one evaluation loop: the weights equal the gate on context_features of each episode's
    recorded first observation and its identity in the evaluation's order table."""
    from rlexec.algorithms.sip.gate import context_features
    from rlexec.evaluation import regime_table as rt

    module = _module()
    with torch.no_grad():  # the order's identity reaches the gate too
        module.gate[-1].weight[1, NAMES.index("log_quantity")] = 0.3
        module.gate[-1].weight[1, NAMES.index("time_of_day_h")] = -0.2
        module.gate[-1].weight[1, NAMES.index("side")] = 0.4
    _saved_run(tmp_path / "run", module)
    config = rt.RegimesConfig.from_dict({
        "regimes": ["open"], "episodes": 2,
        "execution": {"decision_interval_s": 300.0, "action_space": "shared"},
        "policies": [{"name": "moe_dpo_quality", "kind": "moe_dpo", "run": "run"}]}, base_dir=str(tmp_path))
    result = rt.run_regime(config, "open", record=True)
    steps = result.trajectories["moe_dpo_quality"].to_pandas()
    first = steps[steps.step == 0].sort_values("order")
    observations = np.stack(first.observation.to_numpy()).astype(np.float64)
    orders = result.evaluation.orders.to_pydict()
    x = context_features(observations, SHARED_OBSERVATION_NAMES, orders, "open", REGIMES)
    with torch.no_grad():
        expected = module.log_gate(torch.as_tensor(x, dtype=torch.float32), len(x)).exp().numpy()
    np.testing.assert_allclose(result.weights["moe_dpo_quality"]["vwap"], expected[:, 1], rtol=1e-5)


def test_training_refuses_a_sip_gate_whose_features_the_preference_set_lacks(tmp_path, synthetic_run_inputs):
    from rlexec.algorithms.moe_dpo.config import MoEDPOConfig

    folder, experts, _ = synthetic_run_inputs  # x = a noisy regime one-hot, not context_features
    names = [f"expert{k}" for k in range(3)]
    gate = fit_gate(np.eye(3)[[0, 1, 2, 0]], np.full((4, 3), 1 / 3), feature_names=context_names(["a", "b", "c"])[-3:],
                    expert_names=names, config=GateConfig(epochs=0))
    gate.save(tmp_path / "sip_run" / "gate")
    config = MoEDPOConfig().training(preferences=str(folder), experts=experts, expert_names=names,
                                     gate_init=str(tmp_path / "sip_run"))
    with pytest.raises(ConfigError, match="gate_init .*sip_run.*context features"):
        config.validate()

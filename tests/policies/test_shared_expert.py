"""The broker experts over the shared action space (issue 9): probabilities, log-probs, files, temperature."""

import numpy as np
import pytest
import torch

from rlexec.envs.lob_env import SHARED_OBSERVATION_NAMES, LOBExecutionEnv
from rlexec.envs.lob_interpreters import HOLD, LIMIT, MARKET, shared_action
from rlexec.errors import ConfigError
from rlexec.policies.binning import FeatureBins, StateBinning
from rlexec.policies.expert import (
    BrokerActor,
    ExpertPolicy,
    MLPPolicy,
    bucket_feature_index,
    calibrate_temperature,
)

TIME = SHARED_OBSERVATION_NAMES.index("time_pct")
BINNING = StateBinning((FeatureBins(name="time_pct", index=TIME, edges=(0.5,)),))
# rows: states (time < 0.5, time >= 0.5); columns: the env's placements (market, limit, hold)
Q = np.array([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])


def _obs(time, buckets):
    obs = np.zeros(len(SHARED_OBSERVATION_NAMES), dtype=np.float32)
    obs[TIME] = time
    obs[-4:] = buckets
    return obs


def _expert(broker="vwap", temperature=1.0, concentration=2.0):
    return ExpertPolicy.from_q_table(broker=broker, q_table=Q, binning=BINNING, temperature=temperature,
                                     size_concentration=concentration)


def test_probabilities_are_placement_times_size_on_a_hand_case():
    expert = _expert()
    obs = np.stack([_obs(0.2, [0, 1, 2, 3]), _obs(0.9, [4, 4, 0, 0])])
    p = expert.probabilities(obs)
    assert p.shape == (2, 11) and np.allclose(p.sum(axis=1), 1.0) and (p > 0).all()
    place = np.exp(Q[0]) / np.exp(Q[0]).sum()
    size = np.exp(-2.0 * np.abs(np.arange(5) - 1))  # vwap's bucket is 1 in the first row
    size /= size.sum()
    assert p[0, 0] == pytest.approx(place[HOLD], rel=1e-5)
    for b in range(5):
        assert p[0, shared_action(b, MARKET)] == pytest.approx(place[MARKET] * size[b], rel=1e-5)
        assert p[0, shared_action(b, LIMIT)] == pytest.approx(place[LIMIT] * size[b], rel=1e-5)
    # greedy: the broker's bucket with the table's best placement
    assert expert.greedy(obs).tolist() == [shared_action(1, MARKET), shared_action(4, LIMIT)]
    lp = expert.log_probs(obs, [0, 7])
    assert lp == pytest.approx(np.log([p[0, 0], p[1, 7]]), rel=1e-5)
    assert expert.trajectory_log_prob(obs, [0, 7]) == pytest.approx(lp.sum())


def test_module_is_differentiable_and_frozen_copy_is_not():
    expert = _expert(temperature=0.5)
    obs = torch.from_numpy(np.stack([_obs(0.2, [0, 1, 2, 3])] * 3))
    module = expert.module()
    module(obs)[:, 3].sum().backward()
    assert module.placement_logits.grad[0].abs().sum() > 0 and module.placement_logits.grad[1].abs().sum() == 0
    assert np.allclose(module(obs).detach().numpy(), expert.logits(obs.numpy()))
    frozen = expert.frozen_copy()
    assert not any(p.requires_grad for p in frozen._module.parameters())
    with torch.no_grad():
        module.placement_logits.add_(5.0)  # fine-tuning the module leaves the expert and its reference alone
    assert np.allclose(frozen.logits(obs.numpy()), expert.logits(obs.numpy()))


def test_save_load_round_trip_and_errors(tmp_path):
    expert = _expert("pov", temperature=0.3)
    expert.metadata["note"] = "x"
    expert.save(tmp_path / "e")
    loaded = ExpertPolicy.load(tmp_path / "e")
    obs = np.stack([_obs(0.2, [0, 1, 2, 3]), _obs(0.7, [1, 1, 1, 4])])
    assert isinstance(loaded, ExpertPolicy) and loaded.broker == "pov" and loaded.metadata["note"] == "x"
    assert np.allclose(loaded.logits(obs), expert.logits(obs))
    (tmp_path / "e" / "policy.pt").write_bytes(b"junk")
    with pytest.raises(ConfigError, match="policy.pt"):
        ExpertPolicy.load(tmp_path / "e")
    MLPPolicy(obs_dim=4, num_actions=3, hidden_sizes=(5,)).save(tmp_path / "mlp")
    assert isinstance(ExpertPolicy.load(tmp_path / "mlp"), MLPPolicy)  # older placement exports still load


def test_broker_actor_reads_its_bucket():
    obs = np.stack([_obs(0.1, [0, 1, 2, 3]), _obs(0.1, [4, 3, 2, 1])])
    assert BrokerActor("is", LIMIT).actions(obs).tolist() == [shared_action(2, LIMIT)] * 2
    assert BrokerActor("pov", MARKET).actions(obs).tolist() == [shared_action(3, MARKET), shared_action(1, MARKET)]
    assert BrokerActor("twap", HOLD).actions(obs).tolist() == [0, 0]
    assert bucket_feature_index("pov") == len(SHARED_OBSERVATION_NAMES) - 1
    with pytest.raises(ConfigError):
        BrokerActor("twap", 7)


def test_temperature_reaches_the_target_mass_closed_form():
    # two actions a gap g apart: top probability 1 / (1 + exp(-g / tau)) = m  <=>  tau = g / log(m / (1 - m))
    tau, mass = calibrate_temperature(np.array([[0.0, 0.3], [0.3, 0.0]]), target=0.8)
    assert tau == pytest.approx(0.3 / np.log(4.0), rel=1e-6) and mass == pytest.approx(0.8, abs=1e-9)
    # a tie cannot exceed 1/2: the target is out of reach, the mass reached is reported
    tau, mass = calibrate_temperature(np.array([[0.0, 0.0, -1.0]]), target=0.9)
    assert mass == pytest.approx(0.5, abs=1e-6)


def test_every_expert_gives_finite_log_probs_to_every_others_trajectory():
    rng = np.random.default_rng(0)
    from rlexec.policies.binning import DEFAULT_LOB_EDGES

    binning = StateBinning.named(DEFAULT_LOB_EDGES, SHARED_OBSERVATION_NAMES)
    experts = [ExpertPolicy.from_q_table(broker=b, q_table=rng.normal(size=(binning.num_states, 3)) * 3,
                                         binning=binning, temperature=0.05) for b in ("twap", "vwap", "is", "pov")]
    env = LOBExecutionEnv({"regime": "open", "window_minutes": 5, "action_space": "shared"})
    for seed, actor in enumerate(experts):
        obs, _ = env.reset(seed=seed)
        observations, actions, done = [], [], False
        while not done:
            action = int(actor.greedy(obs)[0])
            observations.append(obs)
            actions.append(action)
            obs, _, done, _, _ = env.step(action)
        for scorer in experts:
            assert np.isfinite(scorer.trajectory_log_prob(np.array(observations), np.array(actions)))


def test_greedy_is_the_mode_of_each_factor_not_the_joint_argmax():
    # placement probabilities (market, limit, hold) ~ (0.36, 0.28, 0.36) minus a hair: market is the table's
    # greedy placement, yet hold's joint probability beats market at the broker's bucket (0.36 x ~0.77)
    q = np.log(np.array([[0.36, 0.28, 0.3599], [0.36, 0.28, 0.3599]]))
    expert = ExpertPolicy.from_q_table(broker="twap", q_table=q, binning=BINNING, temperature=1.0)
    obs = np.stack([_obs(0.2, [2, 0, 0, 0])])
    assert expert.probabilities(obs).argmax() == 0
    assert expert.greedy(obs).tolist() == [shared_action(2, MARKET)]


def test_greedy_actor_and_regimes_expert_act_by_the_experts_own_greedy_rule(tmp_path):
    """The evaluation's greedy actor (rlexec evaluate, rlexec regimes) must execute the expert's greedy action,
    not the joint argmax over the shared actions, which picks hold whenever hold beats market x P(bucket)."""
    from rlexec.envs.lob_env import LOBExecutionConfig
    from rlexec.evaluation.regime_table import PolicyContext, PolicySpec, expert_policy
    from rlexec.policies.actors import make_actor

    q = np.log(np.array([[0.36, 0.28, 0.3599], [0.36, 0.28, 0.3599]]))
    expert = ExpertPolicy.from_q_table(broker="twap", q_table=q, binning=BINNING, temperature=1.0)
    obs = np.stack([_obs(0.2, [2, 0, 0, 0])])
    assert make_actor(expert, "greedy").actions(obs).tolist() == [shared_action(2, MARKET)]
    expert.save(tmp_path / "expert")
    context = PolicyContext(regime="open", env_config=LOBExecutionConfig.from_dict({"action_space": "shared"}),
                            seed=10_000_000, episodes=1, base_dir=tmp_path)
    actor = expert_policy(PolicySpec(name="e", kind="expert", role="expert", params={"path": "expert"}), context)
    assert actor.actions(obs).tolist() == [shared_action(2, MARKET)]

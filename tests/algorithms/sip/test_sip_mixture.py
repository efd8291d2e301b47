"""The three executions of the SIP mixture (spec 1.3) on hand-built experts over the shared actions."""

from __future__ import annotations

import numpy as np
import pytest
from sip_helpers import TableExpert, one_hot_ish

from rlexec.algorithms.sip.mixture import (
    BlendMixture,
    EpisodeDrawMixture,
    StepMixture,
    mixture_log_probs,
    trajectory_log_prob,
)
from rlexec.envs.lob_interpreters import HOLD, LIMIT, MARKET, SIZE_MULTIPLIERS, decode_shared_action, shared_action
from rlexec.errors import ConfigError

A = 1 + 2 * len(SIZE_MULTIPLIERS)
MARKET_1X, LIMIT_1X = shared_action(2, MARKET), shared_action(2, LIMIT)  # bucket 2 = 1.0 x pace
# state 0: expert 0 -> market 1x, expert 1 -> limit 4x; state 1: both hold
EXPERT_0 = TableExpert([one_hot_ish(MARKET_1X), one_hot_ish(0)])
EXPERT_1 = TableExpert([one_hot_ish(shared_action(4, LIMIT)), one_hot_ish(0)])
STATE_0 = np.zeros((1, 3))


def test_shared_action_ids_follow_the_contract():
    assert A == 11
    assert shared_action(0, MARKET) == 1 and shared_action(0, LIMIT) == 2 and shared_action(4, LIMIT) == 10
    assert decode_shared_action(0) == (None, HOLD)
    assert [decode_shared_action(shared_action(b, p)) for b in range(5) for p in (MARKET, LIMIT)] == [
        (b, p) for b in range(5) for p in (MARKET, LIMIT)]


def test_step_mixture_log_prob_is_log_sum_of_weighted_expert_probabilities():
    rng = np.random.default_rng(0)
    experts = [TableExpert(rng.dirichlet(np.ones(A), size=4)) for _ in range(3)]
    w = np.array([0.5, 0.3, 0.2])
    obs = np.array([[0], [1], [2], [3], [1]], dtype=float)
    actions = np.array([0, 3, 10, 5, 7])
    expected = np.log(sum(w[k] * experts[k].table[obs[:, 0].astype(int), actions] for k in range(3)))
    mixture = StepMixture(w, experts, seed=0)
    np.testing.assert_allclose(mixture.log_probs(obs, actions), expected, rtol=1e-12)
    np.testing.assert_allclose(mixture_log_probs(w, experts, obs, actions), expected, rtol=1e-12)
    np.testing.assert_allclose(mixture.probabilities(obs).sum(axis=1), 1.0)


def test_step_mixture_samples_the_mixture_distribution_reproducibly():
    w = np.array([0.25, 0.75])
    obs = np.repeat(STATE_0, 20000, axis=0)
    actions = StepMixture(w, [EXPERT_0, EXPERT_1], seed=3).actions(obs)
    expected = w[0] * EXPERT_0.table[0] + w[1] * EXPERT_1.table[0]
    frequencies = np.bincount(actions, minlength=A) / len(actions)
    np.testing.assert_allclose(frequencies, expected, atol=0.01)
    np.testing.assert_array_equal(actions, StepMixture(w, [EXPERT_0, EXPERT_1], seed=3).actions(obs))


def test_episode_draw_keeps_each_episode_on_one_expert():
    w = np.array([0.3, 0.7])
    mixture = EpisodeDrawMixture(w, [EXPERT_0, EXPERT_1], seed=5, within="greedy")
    chosen = mixture.assignments(4000)
    assert abs(chosen.mean() - 0.7) < 0.03  # share of episodes on expert 1
    np.testing.assert_array_equal(chosen[:100], mixture.assignments(100))  # a row's expert does not depend on N
    for _ in range(3):  # every step of an episode follows the same expert
        actions = mixture.actions(np.repeat(STATE_0, 4000, axis=0))
        np.testing.assert_array_equal(actions, np.where(chosen == 0, MARKET_1X, shared_action(4, LIMIT)))


def test_episode_draw_trajectory_log_prob_mixes_whole_trajectories():
    obs = np.array([[0], [0], [1]], dtype=float)
    actions = np.array([MARKET_1X, MARKET_1X, 0])
    w = np.array([0.4, 0.6])
    p0 = np.prod(EXPERT_0.table[[0, 0, 1], actions])
    p1 = np.prod(EXPERT_1.table[[0, 0, 1], actions])
    assert trajectory_log_prob(w, [EXPERT_0, EXPERT_1], obs, actions) == pytest.approx(np.log(0.4 * p0 + 0.6 * p1))
    mixture = EpisodeDrawMixture(w, [EXPERT_0, EXPERT_1], seed=0)
    assert mixture.trajectory_log_prob(obs, actions) == pytest.approx(np.log(0.4 * p0 + 0.6 * p1))


def test_episode_draw_sampled_follows_the_chosen_experts_distribution():
    mixture = EpisodeDrawMixture([0.0, 1.0], [EXPERT_0, EXPERT_1], seed=1)
    actions = mixture.actions(np.repeat(STATE_0, 20000, axis=0))
    frequencies = np.bincount(actions, minlength=A) / len(actions)
    np.testing.assert_allclose(frequencies, EXPERT_1.table[0], atol=0.01)


def test_blend_sizes_by_weighted_multiplier_and_places_by_weighted_vote():
    # expert 0: market 1.0x pace, expert 1: limit 4.0x pace. w = (0.6, 0.4): size 0.6 + 1.6 = 2.2x -> bucket 3 (2.0x);
    # market wins the vote 0.6 to 0.4
    blend = BlendMixture([0.6, 0.4], [EXPERT_0, EXPERT_1], size_multipliers=SIZE_MULTIPLIERS)
    multiplier, _ = blend.decisions(STATE_0)
    assert multiplier[0] == pytest.approx(2.2)
    assert blend.actions(STATE_0)[0] == shared_action(3, MARKET)
    # w = (0.2, 0.8): size 0.2 + 3.2 = 3.4x -> bucket 4 (4.0x; log-nearer than 2.0x), limit wins
    blend = BlendMixture([0.2, 0.8], [EXPERT_0, EXPERT_1], size_multipliers=SIZE_MULTIPLIERS)
    assert blend.actions(STATE_0)[0] == shared_action(4, LIMIT)
    # both hold -> hold
    assert blend.actions(np.array([[1.0, 0, 0]]))[0] == 0


def test_blend_with_a_holding_majority_holds_and_a_holding_minority_shrinks_the_size():
    holder = TableExpert([one_hot_ish(0)])
    market_4x = TableExpert([one_hot_ish(shared_action(4, MARKET))])
    assert BlendMixture([0.6, 0.4], [holder, market_4x], size_multipliers=SIZE_MULTIPLIERS).actions(STATE_0)[0] == 0
    # the holder's 0.4 adds size 0: 0.6 x 4.0 = 2.4x -> bucket 3 (2.0x)
    blend = BlendMixture([0.4, 0.6], [holder, market_4x], size_multipliers=SIZE_MULTIPLIERS)
    assert blend.actions(STATE_0)[0] == shared_action(3, MARKET)


def test_one_expert_mixtures_are_that_expert():
    obs = np.array([[0], [1]], dtype=float)
    assert list(BlendMixture([1.0], [EXPERT_1], size_multipliers=SIZE_MULTIPLIERS).actions(obs)) == list(
        EXPERT_1.greedy(obs))
    assert list(EpisodeDrawMixture([1.0], [EXPERT_1], seed=0, within="greedy").actions(obs)) == list(
        EXPERT_1.greedy(obs))
    np.testing.assert_allclose(StepMixture([1.0], [EXPERT_1], seed=0).probabilities(obs), EXPERT_1.table)


def test_mixtures_refuse_weights_that_are_not_a_distribution():
    with pytest.raises(ConfigError, match="probability vector"):
        StepMixture([0.7, 0.7], [EXPERT_0, EXPERT_1], seed=0)
    with pytest.raises(ConfigError, match="one weight per expert"):
        BlendMixture([1.0], [EXPERT_0, EXPERT_1], size_multipliers=SIZE_MULTIPLIERS)


def test_the_mixtures_run_on_real_shared_action_experts():
    from rlexec.envs.lob_env import SHARED_OBSERVATION_NAMES
    from rlexec.policies.binning import FeatureBins, StateBinning
    from rlexec.policies.expert import ExpertPolicy

    time_index = SHARED_OBSERVATION_NAMES.index("time_pct")
    binning = StateBinning((FeatureBins(name="time_pct", index=time_index, edges=(0.5,)),))
    market_first = np.array([[3.0, 0.0, -3.0], [3.0, 0.0, -3.0]])  # Q over (market, limit, hold)
    limit_first = np.array([[0.0, 3.0, -3.0], [0.0, 3.0, -3.0]])
    twap = ExpertPolicy.from_q_table(broker="twap", q_table=market_first, binning=binning, temperature=1.0)
    pov = ExpertPolicy.from_q_table(broker="pov", q_table=limit_first, binning=binning, temperature=1.0)
    obs = np.zeros((3, len(SHARED_OBSERVATION_NAMES)), dtype=np.float32)
    obs[:, -4:] = [2, 2, 1, 3]  # bucket_twap = 2 (1x pace), bucket_pov = 3 (2x pace)
    assert twap.greedy(obs).tolist() == [shared_action(2, MARKET)] * 3
    assert pov.greedy(obs).tolist() == [shared_action(3, LIMIT)] * 3
    # blend (0.7, 0.3): 0.7 x 1 + 0.3 x 2 = 1.3x pace -> bucket 2 (1x), market by 0.7 to 0.3
    blend = BlendMixture([0.7, 0.3], [twap, pov], size_multipliers=SIZE_MULTIPLIERS)
    assert blend.actions(obs).tolist() == [shared_action(2, MARKET)] * 3
    step = StepMixture([0.7, 0.3], [twap, pov], seed=0)
    actions = step.actions(obs)
    expected = np.log(0.7 * np.exp(twap.log_probs(obs, actions)) + 0.3 * np.exp(pov.log_probs(obs, actions)))
    np.testing.assert_allclose(step.log_probs(obs, actions), expected, rtol=1e-6)
    assert np.all(np.isfinite(step.log_probs(obs, np.arange(3) + 8)))  # any shared action has a finite log-prob
    episode = EpisodeDrawMixture([0.7, 0.3], [twap, pov], seed=0, within="greedy")
    chosen = episode.assignments(3)
    assert episode.actions(obs).tolist() == [
        shared_action(2, MARKET) if k == 0 else shared_action(3, LIMIT) for k in chosen]


def test_make_mixture_names_the_three_kinds():
    from rlexec.algorithms.sip.mixture import MIXTURE_KINDS, make_mixture

    made = [make_mixture(k, [0.5, 0.5], [EXPERT_0, EXPERT_1], size_multipliers=SIZE_MULTIPLIERS)
            for k in MIXTURE_KINDS]
    assert [type(m) for m in made] == [EpisodeDrawMixture, StepMixture, BlendMixture]
    with pytest.raises(ConfigError, match="size_multipliers"):
        make_mixture("blend", [0.5, 0.5], [EXPERT_0, EXPERT_1])
    with pytest.raises(ConfigError, match="one of"):
        make_mixture("vote", [0.5, 0.5], [EXPERT_0, EXPERT_1])

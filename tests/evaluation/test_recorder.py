"""The one evaluation loop and its trajectory recorder, on both venues; actors over a policy."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from rlexec.envs.interpreters import ObservationLayout
from rlexec.envs.lob_env import LOBExecutionConfig
from rlexec.evaluation import BarEpisodes, FixedAction, LOBEpisodes, TrajectoryRecorder, run_episodes
from rlexec.policies.actors import ExpectedFractionActor, GreedyActor, SampledActor, log_probs
from rlexec.policies.expert import MLPPolicy
from rlexec.strategies import TWAP


@pytest.fixture(scope="module")
def small(sample_evaluation):
    config, batch, _ = sample_evaluation
    return config, batch.select(np.arange(6))


@pytest.fixture(scope="module")
def policy(small):
    config, _ = small
    torch.manual_seed(0)
    size = ObservationLayout(config.lookback_minutes, config.horizon_minutes).size
    return MLPPolicy(obs_dim=size, num_actions=len(config.action_values), hidden_sizes=(8,))


def _per_order(table, column):
    orders = np.asarray(table["order"])
    values = np.asarray(table[column])
    return np.array([values[orders == i].sum() for i in range(orders.max() + 1)])


def test_recorded_fills_add_up_to_the_executed_orders(small, tmp_path):
    config, batch = small
    recorder = TrajectoryRecorder()
    result, steps = run_episodes(BarEpisodes(batch, config), TWAP(), recorder=recorder)
    table = recorder.to_table()
    assert steps == config.n_steps and table.num_rows == len(batch) * config.n_steps
    assert sorted(set(table["step"].to_pylist())) == list(range(config.n_steps))
    executed = result.metrics["fill_rate"] * batch.quantity
    np.testing.assert_allclose(_per_order(table, "filled"), executed, rtol=1e-12)
    # the step's price times its fills is its cash: the recorded prices reproduce the average price
    filled, price = np.asarray(table["filled"]), np.asarray(table["price"])
    cash = np.where(filled > 0, filled * price, 0.0)
    orders = np.asarray(table["order"])
    spent = np.array([cash[orders == i].sum() for i in range(len(batch))])
    np.testing.assert_allclose(spent / executed, result.metrics["average_price"], rtol=1e-12)
    # TWAP asks Q/8 at each of the first seven steps, and the remainder at the last
    child = np.asarray(table["child"]).reshape(config.n_steps, len(batch))
    np.testing.assert_allclose(child[0], batch.quantity / config.n_steps, rtol=1e-12)
    recorder.write(tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").equals(table)


def test_log_probabilities_are_those_of_the_policies_passed_in(small, policy):
    config, batch = small
    recorder = TrajectoryRecorder({"expert": policy})
    run_episodes(BarEpisodes(batch, config), GreedyActor(policy), recorder=recorder)
    table = recorder.to_table()
    obs = np.stack(table["observation"].to_numpy(zero_copy_only=False)).astype(np.float32)
    actions = np.asarray(table["action"])
    with torch.no_grad():
        expected = torch.log_softmax(policy.logits(torch.from_numpy(obs)), -1).numpy()
    np.testing.assert_allclose(np.asarray(table["logp_expert"]), expected[np.arange(len(actions)), actions],
                               rtol=1e-5, atol=1e-6)
    assert (np.asarray(table["logp_expert"]) >= expected.max(axis=1) - 1e-6).all()  # greedy = the most likely


def test_sampled_actor_is_reproducible_from_its_seed(small, policy):
    config, batch = small
    obs = BarEpisodes(batch, config).reset()
    first = SampledActor(policy, seed=3).actions(np.repeat(obs, 50, axis=0))
    again = SampledActor(policy, seed=3).actions(np.repeat(obs, 50, axis=0))
    other = SampledActor(policy, seed=4).actions(np.repeat(obs, 50, axis=0))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    # the draws follow the policy: empirical frequencies near the probabilities over many rows
    many = SampledActor(policy, seed=0).actions(np.repeat(obs[:1], 20_000, axis=0))
    probs = np.exp(log_probs(policy, obs[:1].repeat(5, 0), np.arange(5)))
    np.testing.assert_allclose(np.bincount(many, minlength=5) / many.size, probs, atol=0.015)


def test_expected_fraction_actor_trades_the_policy_mean(small, policy):
    config, batch = small
    obs = BarEpisodes(batch, config).reset()
    probs = np.exp(np.stack([log_probs(policy, obs, np.full(len(obs), a)) for a in range(5)], axis=1))
    fractions = ExpectedFractionActor(policy, config.action_values).actions(obs)
    np.testing.assert_allclose(fractions[:, 0], probs @ np.asarray(config.action_values), rtol=1e-6)
    with torch.no_grad():
        top2 = torch.topk(policy.logits(torch.from_numpy(obs)), 2).values
    gap = float((top2[:, 0] - top2[:, 1]).min())
    colder = ExpectedFractionActor(policy, config.action_values, temperature=gap / 20).actions(obs)
    greedy = np.asarray(config.action_values)[GreedyActor(policy).actions(obs)]
    np.testing.assert_allclose(colder[:, 0], greedy, atol=1e-3)  # temperature -> 0 is the argmax


def test_lob_episodes_share_seeds_and_record_the_broker_child():
    """Episode e of every broker replays seed + e (the same window, order and arrival: common random
    numbers), and the recorded child is what the broker sized: for TWAP, clip(floor(Q x_next - executed),
    1, max_child), never more than remains."""
    config = LOBExecutionConfig(decision_interval_s=60.0, quantity=400)
    recorder = TrajectoryRecorder()
    twap = LOBEpisodes(config, episodes=2, seed=11, broker="twap")
    result, steps = run_episodes(twap, FixedAction("market", 0), recorder=recorder)
    table = recorder.to_table()
    np.testing.assert_allclose(_per_order(table, "filled"), result.metrics["fill_rate"] * 400)
    assert steps == max(table["step"].to_pylist()) + 1
    assert twap.seeds == [11, 12]
    orders, child, filled = (np.asarray(table[c]) for c in ("order", "child", "filled"))
    for i, env in enumerate(twap.envs):
        mine = orders == i
        executed_before = np.concatenate([[0.0], np.cumsum(filled[mine])[:-1]])
        x_next = np.arange(1, mine.sum() + 1) / env.n_decisions
        max_child = int(config.max_child_fraction * 400)  # 80
        wanted = np.clip(np.floor(400 * x_next - executed_before), 1, max_child)
        np.testing.assert_array_equal(child[mine], np.minimum(wanted, 400 - executed_before))
        assert mine.sum() == env.n_decisions and (child[mine] > 1).any() and (child[mine] < max_child).any()
    other = LOBEpisodes(config, episodes=2, seed=11, broker="pov")
    first = other.reset()
    np.testing.assert_array_equal(first, LOBEpisodes(config, episodes=2, seed=11, broker="twap").reset())
    assert other.identity().equals(twap.identity())
    assert [e.arrival_price for e in other.envs] == [e.arrival_price for e in twap.envs]
    assert not np.array_equal(first[0], first[1])  # two seeds, two different episodes

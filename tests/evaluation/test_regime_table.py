"""rlexec regimes: the table's numbers by hand, paired CIs by hand, common random numbers, parallel ==
serial, the trajectory store's round trip and its log-probability columns.

The tiny run: regimes open (30 min) and midday (60 min) at 300-s decisions, 3 episodes each.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch
import yaml

from rlexec.envs.lob_env import OBSERVATION_NAMES, SHARED_OBSERVATION_NAMES, LOBExecutionEnv
from rlexec.envs.lob_interpreters import LIMIT, MARKET
from rlexec.errors import ConfigError
from rlexec.evaluation import regime_table as rt
from rlexec.evaluation.metrics import aggregate
from rlexec.evaluation.runner import Evaluation, StrategyResult
from rlexec.evaluation.trajectory_store import TrajectoryStore, write_store
from rlexec.policies.binning import FeatureBins, StateBinning
from rlexec.policies.expert import BrokerActor, ExpertPolicy, MLPPolicy

EPISODES = 3
EXECUTION = {"decision_interval_s": 300.0, "action_space": "shared"}
BROKERS = [{"name": "twap_market", "kind": "broker", "broker": "twap", "placement": "market"},
           {"name": "twap_limit", "kind": "broker", "broker": "twap", "placement": "limit"}]


class MarketThenLimit:
    """TWAP's size, a market order at the first decision, limit orders after: acts like twap_market only at first."""

    def __init__(self, name):
        self.name, self.calls = name, 0
        self.market, self.limit = BrokerActor("twap", MARKET), BrokerActor("twap", LIMIT)

    def actions(self, observations):
        self.calls += 1
        return (self.market if self.calls == 1 else self.limit).actions(observations)

    def mixture_weights(self):  # a stand-in mixture: weight 1/e on "a" after episode e
        e = np.arange(1, EPISODES + 1, dtype=np.float64)
        return {"a": 1 / e, "b": 1 - 1 / e}


def market_then_limit(spec, context):
    return MarketThenLimit(spec.name)


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory):
    """A shared-action VWAP expert: market early, limit late (by time_pct), at VWAP's size."""
    time = SHARED_OBSERVATION_NAMES.index("time_pct")
    binning = StateBinning((FeatureBins(name="time_pct", index=time, edges=(0.5,)),))
    q = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])  # rows: time < 0.5, >= 0.5; columns market, limit, hold
    expert = ExpertPolicy.from_q_table(broker="vwap", q_table=q, binning=binning, temperature=0.5)
    return expert.save(tmp_path_factory.mktemp("expert"))


@pytest.fixture(scope="module")
def mlp_dir(tmp_path_factory):
    """An MLP expert exported from a placement-mode table: 3 actions, the 16 placement-mode features."""
    torch.manual_seed(0)
    return MLPPolicy(obs_dim=len(OBSERVATION_NAMES), num_actions=3, hidden_sizes=(8,)).save(
        tmp_path_factory.mktemp("mlp"))


def _config_data(policies, **extra):
    return {"regimes": ["open", "midday"], "episodes": EPISODES, "execution": EXECUTION, "policies": policies, **extra}


@pytest.fixture(scope="module")
def tiny(expert_dir):
    """(config, results) of 2 brokers, the market-then-limit stand-in and a random expert, recorded."""
    rt.register_policy_kind("market_then_limit", market_then_limit)
    policies = [*BROKERS, {"name": "switcher", "kind": "market_then_limit"},
                {"name": "expert", "kind": "expert", "path": str(expert_dir)}]
    config = rt.RegimesConfig.from_dict(_config_data(policies, reference="switcher"))
    return config, rt.run_regimes(config, parallel=False, record=True)


def _steps(result, policy):
    return result.trajectories[policy].to_pandas()


def test_table_cells_are_the_episodes_metrics_by_hand(tiny):
    config, results = tiny
    table = rt.summary_table(results, config).to_pandas().set_index(["regime", "policy", "metric"])
    assert len(table) == 2 * 4 * len(rt.TABLE_METRICS)
    for result in results:
        env = LOBExecutionEnv(config.env_config(result.regime))
        for policy in ("twap_market", "twap_limit"):
            steps = _steps(result, policy)
            by_hand = {m: [] for m in ("profit_usd", "execution_cost_usd", "implementation_shortfall_bps",
                                       "fill_rate", "quality_bps", "completion_min")}
            minutes_per_step = config.env_config(result.regime).decision_interval_s / 60.0
            horizon = (steps.groupby("order").size().max()) * minutes_per_step
            for episode, seed in enumerate(range(config.seed, config.seed + EPISODES)):
                env.reset(seed=seed)  # the same simulated day: its arrival price, side and Q
                p0, sigma, quantity = env.arrival_price, env.sigma, env.quantity
                mine = steps[steps.order == episode]
                executed, cash = mine.filled.sum(), mine.cash.sum()
                fill = executed / quantity
                advantage = sigma * (cash / executed / p0 - 1) * 1e4
                by_hand["profit_usd"].append(sigma * (cash - executed * p0))
                by_hand["execution_cost_usd"].append(-sigma * (cash - executed * p0))
                by_hand["implementation_shortfall_bps"].append(-advantage)
                by_hand["fill_rate"].append(fill)
                by_hand["quality_bps"].append(advantage - 50.0 * (1 - fill))
                filled_by = np.cumsum(mine.sort_values("step").filled.to_numpy())
                complete = np.flatnonzero(filled_by >= quantity * (1 - 1e-12))
                by_hand["completion_min"].append((complete[0] + 1) * minutes_per_step if len(complete)
                                                 else horizon * (2 - fill))
            for metric, values in by_hand.items():
                cell = table.loc[(result.regime, policy, metric)]
                assert cell["n"] == EPISODES
                assert cell["mean"] == pytest.approx(np.mean(values), rel=1e-9, abs=1e-9)
                assert cell["se"] == pytest.approx(np.std(values, ddof=1) / math.sqrt(EPISODES), rel=1e-9, abs=1e-12)
    # the printed profit table shows those cells as "mean ± se" with two decimals
    printed = rt.text_tables(rt.summary_table(results, config), rt.paired_table(results, config), config)[0]
    cell = table.loc[("midday", "twap_limit", "profit_usd")]
    assert printed.rows[1] == ("twap_limit", printed.rows[1][1], f"{cell['mean']:.2f} ± {cell['se']:.2f}")
    assert "USD per parent order" in printed.title


def test_completion_is_the_first_decision_with_the_order_filled_else_later_than_any():
    curve = np.array([[0.5, 1.0, 1.0], [0.2, 0.4, 0.8], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(rt.completion_minutes(curve, np.array([0.5, 1.0, 1.5])),
                               [1.0, 1.5 * 1.2, 0.5, 3.0])


def _fake_result(regime, metrics_by_policy):
    results = []
    for name, metrics in metrics_by_policy.items():
        metrics = {k: np.asarray(v, dtype=np.float64) for k, v in metrics.items()}
        results.append(StrategyResult(name, metrics, np.zeros((4, 1)), aggregate(metrics)))
    evaluation = Evaluation(orders=pa.table({"episode": np.arange(4)}), results=results, baseline=results[0].name,
                            curve_minutes=np.ones(1), decision_minutes=np.zeros(1))
    return rt.RegimeResult(regime, evaluation, {}, {})


def _metrics(cost, quality):
    return {m: np.zeros(4) for m in rt.TABLE_METRICS} | {"execution_cost_usd": cost, "quality_bps": quality}


def test_paired_differences_against_the_best_single_expert_by_hand():
    # "a" has the higher mean quality (1.5 vs 0.5): it is the best single; "b" - "a" on the same episodes
    result = _fake_result("baseline", {"a": _metrics([1, 2, 3, 4], [1, 1, 2, 2]),
                                       "b": _metrics([2, 4, 5, 7], [0, 1, 0, 1])})
    config = rt.RegimesConfig.from_dict({"regimes": ["baseline"], "policies": [
        {"name": "a", "kind": "broker", "role": "expert", "broker": "twap"},
        {"name": "b", "kind": "broker", "role": "expert", "broker": "vwap", "compare_with": ["a"]}]})
    assert rt.best_single(result, config.candidates) == "a"
    paired = rt.paired_table([result], config).to_pandas()
    rows = paired[paired.against == "best_single"].set_index(["policy", "metric"])
    cost = rows.loc[("b", "execution_cost_usd")]
    # d = [1, 2, 2, 3]: mean 2, sd sqrt(2/3), se sqrt(2/3)/2; t(0.975, 3 dof) = 3.182446305
    se = math.sqrt(2 / 3) / 2
    assert (cost["against"], cost["against_policy"], cost["n"]) == ("best_single", "a", 4)
    assert cost["mean"] == pytest.approx(2.0)
    assert cost["se"] == pytest.approx(se)
    assert cost["low"] == pytest.approx(2 - 3.182446305 * se, rel=1e-8)
    assert cost["high"] == pytest.approx(2 + 3.182446305 * se, rel=1e-8)
    assert cost["significant"]
    # b's own comparison with a (compare_with) is the same pair
    table = rt.paired_table([result], config).to_pandas()
    assert table.against.tolist().count("compare_with") == len(rt.TABLE_METRICS)
    own = table[(table.against == "compare_with") & (table.metric == "execution_cost_usd")].iloc[0]
    assert (own.policy, own.against_policy, own["mean"], own.low) == ("b", "a", 2.0, cost["low"])
    printed = rt.text_tables(rt.summary_table([result], config), rt.paired_table([result], config), config)
    quality = next(t for t in printed if t.columns[0] == "policy − compared with" and "U_q" in t.title)
    assert quality.rows == (("b − a", "-1.00 [-2.30, +0.30]"),)  # d = [-1, 0, -2, -1]: half 3.182 x 0.408
    assert rows.loc[("b", "execution_cost_usd")].shape  # unique: the best single row only
    best = table[(table.against == "best_single")]
    assert "a" not in set(best.policy)  # the best is not compared with itself


def test_policies_that_act_alike_at_first_see_the_same_market(tiny):
    config, results = tiny
    for result in results:
        market, switcher = _steps(result, "twap_market"), _steps(result, "switcher")
        first = [s[s.step == 0].sort_values("order") for s in (market, switcher)]
        second = [s[s.step == 1].sort_values("order") for s in (market, switcher)]
        # the same seeds and the same first action: the same first step and the same market after it
        for column in ("child", "filled", "cash", "fill_rate"):
            np.testing.assert_array_equal(first[0][column].to_numpy(), first[1][column].to_numpy())
        np.testing.assert_array_equal(np.stack(second[0].observation), np.stack(second[1].observation))
        assert (second[0].action.to_numpy() != second[1].action.to_numpy()).all()
        # and the episodes are different days: the comparison is not vacuous
        observations = np.stack(first[0].observation)
        assert not np.array_equal(observations[0], observations[1])


def test_mixture_weights_are_collected_per_regime(tiny):
    _, results = tiny
    for result in results:
        assert set(result.weights) == {"switcher"}
        np.testing.assert_allclose(result.weights["switcher"]["a"], [1, 0.5, 1 / 3])


def test_reference_comparison_names_the_reference(tiny):
    config, results = tiny
    rows = rt.paired_table(results, config).to_pandas()
    reference = rows[rows.against == "reference"]
    assert set(reference.against_policy) == {"switcher"}
    assert set(reference.policy) == {"twap_market", "twap_limit", "expert"}


def test_parallel_regimes_equal_serial_ones(ray_session, tiny):
    # A policy's episodes do not depend on the other policies: the brokers' rows of the serial tiny
    # run must come back identical from one Ray task per regime.
    _, serial = tiny
    config = rt.RegimesConfig.from_dict(_config_data(BROKERS))
    parallel = rt.run_regimes(config, parallel=True)
    assert [r.regime for r in parallel] == ["open", "midday"]
    brokers = pc.is_in(rt.per_episode_table(serial)["strategy"], pa.array(["twap_market", "twap_limit"]))
    assert rt.per_episode_table(parallel).equals(rt.per_episode_table(serial).filter(brokers))


def test_a_mistake_inside_a_ray_task_is_its_one_line_error(ray_session, expert_dir):
    config = rt.RegimesConfig.from_dict(_config_data([
        {"name": "e", "kind": "expert", "path": {"open": str(expert_dir)}}], episodes=1))
    with pytest.raises(ConfigError) as info:
        rt.run_regimes(config, parallel=True)
    assert type(info.value) is ConfigError and str(info.value) == (
        "regimes config: regime 'midday': policy 'e': no path for regime 'midday' (has ['open'])")


def test_store_round_trip_and_expert_log_probabilities(tiny, expert_dir, tmp_path):
    config, results = tiny
    write_store(results, config, tmp_path / "store")
    store = TrajectoryStore.read(tmp_path / "store")
    assert store.experts == ["expert"]
    assert store.contexts() == [(r, s) for r in ("midday", "open") for s in range(config.seed, config.seed + 3)]
    expert = ExpertPolicy.load(expert_dir)
    grouped = store.by_context()
    for (regime, seed), by_policy in grouped.items():
        assert set(by_policy) == {"twap_market", "twap_limit", "switcher", "expert"}
        episode = seed - config.seed
        for policy, trajectory in by_policy.items():
            recorded = _steps(next(r for r in results if r.regime == regime), policy)
            recorded = recorded[recorded.order == episode].sort_values("step")
            np.testing.assert_array_equal(trajectory.observations, np.stack(recorded.observation))
            np.testing.assert_array_equal(trajectory.actions, recorded.action.to_numpy())
            scored = expert.log_probs(trajectory.observations, trajectory.actions)
            assert np.isfinite(scored).all()  # every policy's trajectory has a likelihood under the expert
            np.testing.assert_allclose(trajectory.logp["expert"], scored, rtol=1e-6, atol=1e-6)
            assert trajectory.log_prob("expert") == pytest.approx(float(scored.sum()), rel=1e-6)
            assert trajectory.outcome["steps"] == len(trajectory.actions)
            assert trajectory.outcome["policy"] == policy and trajectory.outcome["seed"] == seed
    # a market-only TWAP completes at its last decision: t_done = steps x 300 s when fully filled
    twap = grouped[("midday", config.seed)]["twap_market"]
    if twap.outcome["fill_rate"] >= 1:
        assert twap.outcome["t_done_s"] == pytest.approx(300.0 * twap.outcome["steps"])


def test_evaluation_seeds_stay_clear_of_training_seeds():
    from pathlib import Path

    for seed, episodes in ((0, 100), (99_990, 20), (1_000_050, 1)):
        with pytest.raises(ConfigError, match="overlap the training seeds"):
            rt.check_evaluation_seeds(seed, episodes)
    rt.check_evaluation_seeds(rt.DEFAULT_SEED, 10_000)
    # every shipped training config seeds RLlib inside the reserved ranges (EnvRunner i: seed + i; eval + 1e6)
    training = [p for p in Path(__file__).resolve().parents[2].joinpath("configs").rglob("*.yaml")
                if "algorithm" in (yaml.safe_load(p.read_text()) or {})]
    assert training
    for path in training:
        seed = yaml.safe_load(path.read_text()).get("seed", 0)
        for offset in (0, 1_000_000):
            assert any(lo <= seed + offset + 16 < hi for lo, hi in rt.TRAINING_SEED_RANGES), path


@pytest.mark.parametrize("change, message", [
    ({"regimes": ["nowhere"]}, "regimes: unknown"),
    ({"policies": [{"name": "x", "kind": "nosuch"}]}, "unknown policy kind 'nosuch'"),
    ({"policies": [{"name": "x", "kind": "broker"}, {"name": "x", "kind": "broker"}]}, "repeated name"),
    ({"reference": "sip"}, "reference: no policy named"),
    ({"policies": [{"name": "x", "kind": "broker", "broker": "twap", "compare_with": ["y"]}]},
     "compare_with: no policy named"),
    ({"seed": 5}, "overlap the training seeds"),
    ({"execution": {"decision_interval_s": -1}}, "execution of regime 'open': LOBExecutionConfig.decision_interval_s"),
    ({"regime_execution": {"midday": {"window_minutes": 0}}},
     "execution of regime 'midday': LOBExecutionConfig.window_minutes"),
    ({"regime_execution": {"close": {}}}, "'regime_execution' must map regimes of the list"),
    ({"policies": [{"name": "x", "kind": "broker", "broker": "twap", "execution": {"action_space": "odd"}}]},
     "policy 'x': LOBExecutionConfig.action_space"),
    ({"extra": 1}, "unknown key"),
])
def test_bad_configs_fail_with_one_line_naming_the_file(tmp_path, change, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_config_data(BROKERS) | change))
    with pytest.raises(ConfigError, match=message) as info:
        rt.RegimesConfig.from_yaml(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_an_expert_path_per_regime_and_its_own_action_space(mlp_dir):
    # the placement-mode MLP acts in its own env (execution override), next to shared-mode policies
    config = rt.RegimesConfig.from_dict(_config_data([
        {"name": "e", "kind": "expert", "broker": "is", "path": {"open": str(mlp_dir)},
         "execution": {"action_space": "placement"}}]))
    (spec, actor), = rt.build_policies(config, "open")
    assert actor.broker == "is" and config.env_config("open", spec).action_space == "placement"
    with pytest.raises(ConfigError, match="no path for regime 'midday'"):
        rt.build_policies(config, "midday")
    shared = rt.RegimesConfig.from_dict(_config_data([{"name": "e", "kind": "expert", "path": str(mlp_dir)}]))
    with pytest.raises(ConfigError, match="has 3 actions, the env's 'shared' action space 11"):
        rt.build_policies(shared, "open")


def test_plots_draw_every_policy_and_mixture_weight(tiny):
    from rlexec.evaluation import plots

    _, results = tiny
    fig = plots.mixture_weights_figure({r.regime: r.weights for r in results})
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == ["switcher · open", "switcher · midday"]
    np.testing.assert_allclose(panels[0].lines[0].get_ydata(), [1, 0.5, 1 / 3])
    fig = plots.regime_fill_curves_figure({r.regime: r.evaluation for r in results})
    open_panel = fig.axes[0]
    assert [line.get_label() for line in open_panel.lines] == ["twap_market", "twap_limit", "switcher", "expert"]
    market = results[0].evaluation.result("twap_market").fill_curve.mean(axis=0) * 100
    np.testing.assert_allclose(open_panel.lines[0].get_ydata()[1:], market)


def test_twelve_policies_get_twelve_distinct_styles():
    from rlexec.evaluation import plots

    styles = plots.many_series_styles([f"policy_{i}" for i in range(12)])
    assert len({(s["color"], str(s["ls"]), s["hatch"]) for s in styles.values()}) == 12

"""MoE-DPO's figures (issue 10): log-probability dynamics, gate weights per regime, and one episode's
gate weights with the posterior responsibility of each expert, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from moe_dpo_models import EXPERT_LOGITS, NAMES, NUM_ACTIONS, OBS_DIM, REGIMES, SPREAD, saved_run, two_expert_module

from rlexec.algorithms.moe_dpo import plots as moe_plots
from rlexec.algorithms.moe_dpo.module import MoEDPOModule
from rlexec.algorithms.moe_dpo.preferences import LabelRule, Trajectory, build_preferences, write_preferences
from rlexec.cli.main import main
from rlexec.envs.lob_env import SHARED_OBSERVATION_NAMES
from rlexec.errors import ConfigError


def _module() -> MoEDPOModule:
    return two_expert_module(["expert_twap", "expert_vwap"])


def _expert_log_probs() -> np.ndarray:
    """(K, A) log pi_k(a) of the two experts."""
    logits = np.zeros((2, NUM_ACTIONS))
    for k, (action, logit) in enumerate(EXPERT_LOGITS):
        logits[k, action] = logit
    return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


# ---- the posterior ------------------------------------------------------------------------------------
def test_posterior_responsibility_by_hand():
    # w = (1/4, 3/4); both steps play an action with pi_0 = 0.8, pi_1 = 0.2:
    # after 1 step 0.25*0.8 / (0.25*0.8 + 0.75*0.2) = 4/7; after 2: 0.25*0.64 / (0.16 + 0.75*0.04) = 16/19
    log_w = np.log([0.25, 0.75])
    steps = np.log([[0.8, 0.2], [0.8, 0.2]])
    posterior = moe_plots.posterior_responsibilities(log_w, steps)
    np.testing.assert_allclose(posterior[:, 0], [0.25, 4 / 7, 16 / 19])
    np.testing.assert_allclose(posterior.sum(axis=1), 1.0)
    # 200 steps of likelihoods that underflow in linear space: still the posterior, in log space
    far = moe_plots.posterior_responsibilities(log_w, np.tile([[-50.0, -51.0]], (200, 1)))
    assert np.all(np.isfinite(far))
    np.testing.assert_allclose(far[-1, 1], 0.75 * np.exp(-200) / (0.25 + 0.75 * np.exp(-200)), rtol=1e-9)
    np.testing.assert_allclose(moe_plots.posterior_responsibilities(log_w, np.zeros((0, 2))), [[0.25, 0.75]])


def test_expert_step_log_probs_are_each_expert_s():
    actions = np.array([0, 1, 3])
    logp = moe_plots.expert_step_log_probs(_module(), np.zeros((3, OBS_DIM), np.float32), actions)
    np.testing.assert_allclose(logp, _expert_log_probs()[:, actions].T, rtol=1e-6)


# ---- log-probability dynamics -------------------------------------------------------------------------
PROGRESS = [
    {"iteration": 1, "logp_chosen/e0": -2.0, "logp_rejected/e0": -1.0, "logp_chosen/e1": -3.0, "logp_rejected/e1": -3.5},
    {"event": "resumed", "iteration": 1},
    {"iteration": 2, "logp_chosen/e0": -1.9, "logp_rejected/e0": -1.2, "logp_chosen/e1": -2.5, "logp_rejected/e1": -4.0},
    {"iteration": 3, "logp_chosen/e0": -1.5, "logp_rejected/e0": -1.3, "logp_chosen/e1": -2.4, "logp_rejected/e1": -4.2},
]


def test_logp_dynamics_draw_each_expert_s_change_since_the_first_iteration():
    lines = [line for line in PROGRESS if "event" not in line]
    iterations, experts, chosen, rejected = moe_plots.logp_dynamics(lines)
    assert iterations.tolist() == [1, 2, 3] and experts == ["e0", "e1"]
    np.testing.assert_allclose(rejected[:, 1], [-3.5, -4.0, -4.2])
    fig = moe_plots.logp_dynamics_figure(lines)
    e0, e1 = (ax for ax in fig.axes if ax.get_visible())
    assert [e0.get_title(), e1.get_title()] == ["e0", "e1"]
    preferred, rejected_line = e1.lines[:2]
    np.testing.assert_allclose(preferred.get_ydata(), [0.0, 0.5, 0.6])  # rising
    np.testing.assert_allclose(rejected_line.get_ydata(), [0.0, -0.5, -0.7])  # falling
    assert "-3.000" in preferred.get_label()
    assert moe_plots.logp_dynamics(lines, ["e1", "e0"])[1] == ["e1", "e0"]  # the module's order, when given
    with pytest.raises(ConfigError, match="logp_chosen"):
        moe_plots.logp_dynamics([{"iteration": 1, "episode_return_mean": 0.0}])


# ---- gate weights per regime --------------------------------------------------------------------------
def _preferences():
    """3 contexts: open with spread 0 (3 trajectories, 3 pairs) and 2 (2 trajectories); midday with spread -2."""
    rows = []
    for context_id, regime, spread, count in (("o0", "open", 0.0, 3), ("o2", "open", 2.0, 2), ("m", "midday", -2.0, 2)):
        x = np.zeros(len(NAMES), np.float32)
        x[SPREAD], x[NAMES.index(f"regime_{regime}")] = spread, 1.0
        rows.append([Trajectory(context_id=context_id, regime=regime, policy=f"p{i}", context=x,
                                observations=np.zeros((2, OBS_DIM), np.float32), actions=np.array([0, i]),
                                price_advantage_bps=float(i), fill_rate=1.0, t_done=1.0, horizon=2.0)
                     for i in range(count)])
    return build_preferences(rows, LabelRule(criterion="quality"),
                             expert_names=["expert_twap", "expert_vwap"], context_names=NAMES)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_gate_weights_per_regime_count_each_context_once():
    regimes, experts, weights, counts = moe_plots.regime_gate_weights(_module(), _preferences())
    assert regimes == ["open", "midday"] and experts == ["expert_twap", "expert_vwap"] and counts.tolist() == [2, 1]
    # w_vwap = sigmoid(0.5 spread + 1[midday]): open (spreads 0, 2) -> mean of sigmoid(0), sigmoid(1)
    open_vwap = (_sigmoid(0.0) + _sigmoid(1.0)) / 2
    np.testing.assert_allclose(weights, [[1 - open_vwap, open_vwap], [1 - _sigmoid(0.0), _sigmoid(0.0)]], rtol=1e-6)
    fig = moe_plots.gate_by_regime_figure(regimes, experts, weights, counts)
    bars = fig.axes[0].containers
    np.testing.assert_allclose([b.get_height() for b in bars[1]], weights[:, 1], rtol=1e-6)


def test_training_figures_are_written_into_the_run_folder_and_need_its_preference_set(tmp_path):
    preferences = write_preferences(_preferences(), tmp_path / "prefs")
    run = saved_run(tmp_path / "run", _module(), [line for line in PROGRESS if "event" not in line], preferences)
    written = moe_plots.training_figures(run)
    assert written == {"logp_dynamics": str(run / moe_plots.LOGP_FIGURE),
                       "gate_by_regime": str(run / moe_plots.GATE_FIGURE)}
    assert all((run / name).stat().st_size > 1000 for name in (moe_plots.LOGP_FIGURE, moe_plots.GATE_FIGURE))
    (run / moe_plots.LOGP_FIGURE).unlink()
    assert main(["figures", "training", str(run)]) == 0 and (run / moe_plots.LOGP_FIGURE).is_file()
    bare = saved_run(tmp_path / "bare", _module(), PROGRESS[:1])
    with pytest.raises(ConfigError, match="training.preferences") as info:
        moe_plots.training_figures(bare)
    assert "\n" not in str(info.value)


# ---- one episode through rlexec regimes and the trajectory store -------------------------------------------
def test_an_episode_s_trace_is_the_gate_then_the_hand_posterior_of_its_actions(tmp_path, monkeypatch):
    from rlexec.algorithms.sip.gate import context_features
    from rlexec.evaluation import regime_table as rt
    from rlexec.evaluation.trajectory_store import write_store

    module = _module()
    saved_run(tmp_path / "run", module)
    monkeypatch.chdir(tmp_path)  # the store's config names the run relative to where rlexec regimes ran
    config = rt.RegimesConfig.from_dict({
        "regimes": ["midday"], "episodes": 2,
        "execution": {"decision_interval_s": 600.0, "action_space": "shared"},
        "policies": [{"name": "moe", "kind": "moe_dpo", "run": "run", "act": "sampled"}]})
    result = rt.run_regime(config, "midday", record=True)
    store = write_store([result], config, tmp_path / "store")

    trace = moe_plots.episode_gate_trace(store, "moe", "midday", 1)
    steps = result.trajectories["moe"].to_pandas()
    steps = steps[steps.order == 1].sort_values("step")
    observations = np.stack(steps.observation.to_numpy()).astype(np.float64)
    actions = steps.action.to_numpy()
    x = context_features(observations[:1], SHARED_OBSERVATION_NAMES, result.evaluation.orders.slice(1, 1).to_pydict(),
                         "midday", REGIMES)
    w_vwap = _sigmoid(0.5 * x[0, SPREAD] + 1.0)
    np.testing.assert_allclose(trace["weights"], [1 - w_vwap, w_vwap], rtol=1e-5)
    np.testing.assert_allclose(trace["weights"][1], result.weights["moe"]["expert_vwap"][1], rtol=1e-6)
    # posterior by hand: w_k prod_t pi_k(a_t), normalised after each step
    likelihood = np.cumprod(np.exp(_expert_log_probs()[:, actions]).T, axis=0)
    hand = np.vstack([[1 - w_vwap, w_vwap], [1 - w_vwap, w_vwap] * likelihood])
    np.testing.assert_allclose(trace["posterior"], hand / hand.sum(axis=1, keepdims=True), rtol=1e-5)
    assert trace["actions"].tolist() == actions.tolist() and len(trace["fill_rate"]) == len(actions)
    assert len(moe_plots.episode_gate_figure(trace).axes[0].lines) == 4  # 2 experts x (gate, posterior)
    assert main(["figures", "episode", str(tmp_path), "--policy", "moe", "--regime", "midday", "--episode", "1"]) == 0
    assert (tmp_path / "gate_moe_midday_1.png").stat().st_size > 1000
    assert main(["figures", "episode", str(tmp_path), "--policy", "moe", "--regime", "midday", "--run", "nowhere"]) == 2

    for args, message in ((("nobody", "midday", 0), "no policy 'nobody'"), (("moe", "open", 0), "no steps"),
                          (("moe", "midday", 7), "no steps")):
        with pytest.raises(ConfigError, match=message):
            moe_plots.episode_gate_trace(store, *args)

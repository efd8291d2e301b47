"""The SIP driver: experts scored on common episodes per regime, SIP weights per regime, the gate, the run folder."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from sip_helpers import OneStepEpisodes, TableExpert, one_hot_ish

from rlexec.algorithms.sip.driver import SIPRunConfig, fit, load_weights, save
from rlexec.algorithms.sip.gate import Gate, context_names
from rlexec.envs.lob_interpreters import LIMIT, MARKET, shared_action
from rlexec.errors import ConfigError

ACTIONS = {"twap": shared_action(2, MARKET), "vwap": shared_action(2, LIMIT), "pov": shared_action(0, MARKET)}
# per regime: advantage (bp) and fill rate of each action; twap is best in "open", vwap in "midday"
ADVANTAGE = {"open": {ACTIONS["twap"]: 3.0, ACTIONS["vwap"]: 4.0, ACTIONS["pov"]: 0.0},
             "midday": {ACTIONS["twap"]: 1.0, ACTIONS["vwap"]: 4.0, ACTIONS["pov"]: 0.0}}
FILL = {"open": {ACTIONS["vwap"]: 0.9}, "midday": {}}  # vwap's limit orders leave 10% in "open": u = 4 - 5 = -1


def _episodes_factory(episodes, seed):
    def make(env_config):
        regime = env_config["regime"]
        advantage, fill = np.zeros(11), np.ones(11)
        for action, value in ADVANTAGE[regime].items():
            advantage[action] = value
        for action, value in FILL[regime].items():
            fill[action] = value
        return lambda: OneStepEpisodes(advantage, fill, episodes=episodes, seed=seed)
    return make


def _config(**overrides):
    data = {"name": "sip_test", "experts": {k: f"experts/{k}_{{regime}}" for k in ACTIONS},
            "regimes": ["open", "midday"], "episodes": 40, "seed_start": 1000, "gate": {"epochs": 200, "lr": 0.1}}
    return SIPRunConfig.from_dict({**data, **overrides})


def _fit(config):
    loaded = []

    def load_expert(path):
        loaded.append(path)
        return TableExpert([one_hot_ish(ACTIONS[path.split("/")[1].split("_")[0]], mass=1.0)])

    fits, gate = fit(config, load_expert=load_expert, make_episodes=_episodes_factory(config.episodes,
                                                                                        config.seed_start))
    return fits, gate, loaded


def test_each_regime_gets_weights_on_its_best_expert_from_common_episodes(tmp_path):
    config = _config()
    fits, gate, loaded = _fit(config)
    assert loaded[:3] == ["experts/twap_open", "experts/vwap_open", "experts/pov_open"]
    by_regime = {f.regime: f for f in fits}
    open_fit, midday_fit = by_regime["open"], by_regime["midday"]
    # common random numbers: the same market noise in every expert's episode e, so differences are exact
    np.testing.assert_allclose(open_fit.advantage[:, 0] - open_fit.advantage[:, 2], 3.0, atol=1e-6)
    np.testing.assert_allclose(open_fit.fill_rate[:, 1], 0.9)
    np.testing.assert_allclose(open_fit.utility[:, 1] - open_fit.utility[:, 2], 4.0 - 5.0, atol=1e-6)
    np.testing.assert_array_equal(open_fit.seeds, np.arange(1000, 1040))
    assert open_fit.history.final.argmax() == 0 and midday_fit.history.final.argmax() == 1
    assert open_fit.history.final[0] > 0.9 and midday_fit.history.final[1] > 0.9
    np.testing.assert_allclose(open_fit.history.weights[0], 1 / 3)

    w_open = gate.weights(open_fit.context).mean(axis=0)
    w_midday = gate.weights(midday_fit.context).mean(axis=0)
    assert w_open.argmax() == 0 and w_midday.argmax() == 1

    run_dir = save(fits, gate, config, tmp_path / "run")
    weights = pq.read_table(run_dir / "weights.parquet").to_pydict()
    assert weights["regime"].count("open") == 41 and weights["episodes_seen"][:2] == [0, 1]
    totals = np.array(weights["w_twap"]) + np.array(weights["w_vwap"]) + np.array(weights["w_pov"])
    np.testing.assert_allclose(totals, 1.0)
    episodes = pq.read_table(run_dir / "episodes.parquet").to_pydict()
    assert len(episodes["seed"]) == 80 and set(context_names(["open", "midday"])) <= set(episodes)
    names, final = load_weights(run_dir)
    assert names == ["twap", "vwap", "pov"]
    np.testing.assert_allclose(final["midday"], midday_fit.history.final)
    loaded_gate = Gate.load(run_dir / "gate")
    np.testing.assert_allclose(loaded_gate.weights(open_fit.context), gate.weights(open_fit.context), atol=1e-7)


def test_hedge_mode_runs_through_the_driver():
    fits, _, _ = _fit(_config(sip={"mode": "hedge", "eta": 0.5}, regimes=["open"]))
    assert np.all(fits[0].history.lambdas == 0.5)


def test_config_errors_name_the_file_and_field(tmp_path):
    path = tmp_path / "sip.yaml"
    path.write_text("name: x\nregimes: [open]\n")
    with pytest.raises(ConfigError, match=f"{path}.*experts"):
        SIPRunConfig.from_yaml(path)
    path.write_text("experts: {a: x, b: y}\nsip: {kappa: 2}\n")
    with pytest.raises(ConfigError, match=f"{path}.*sip.kappa"):
        SIPRunConfig.from_yaml(path)
    path.write_text("experts: {a: x, b: y}\nactor: bogus\n")
    with pytest.raises(ConfigError, match="actor"):
        SIPRunConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="weights.json"):
        load_weights(tmp_path)


def test_rlexec_sip_reports_a_bad_config_or_a_missing_expert_in_one_line(tmp_path, capsys):
    from rlexec.cli.main import main

    path = tmp_path / "sip.yaml"
    path.write_text("regimes: [open]\n")
    assert main(["sip", str(path), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "experts" in err
    path.write_text(f"experts:\n  twap: '{tmp_path}/none/{{expert}}'\n  pov: '{tmp_path}/none/{{expert}}'\n"
                    "regimes: [open]\nenvironment: {action_space: shared}\n")
    assert main(["sip", str(path), "--out", str(tmp_path / "runs"), "--episodes", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{tmp_path}/none/twap" in err


def test_experts_can_come_from_the_training_index(tmp_path):
    import json

    index = tmp_path / "experts_index.json"
    index.write_text(json.dumps({"expert_twap_open": {"expert": "/x/twap_open/expert"},
                                 "expert_pov_open": {"expert": "/x/pov_open/expert"},
                                 "expert_pov_midday": {"error": "RayTaskError: out of memory"}}))
    config = SIPRunConfig.from_dict({"experts": ["twap", "pov"], "experts_index": str(index),
                                     "regimes": ["open", "midday"]})
    assert config.expert_paths("open") == {"twap": "/x/twap_open/expert", "pov": "/x/pov_open/expert"}
    with pytest.raises(ConfigError, match="expert_twap_midday"):
        config.expert_paths("midday")
    with pytest.raises(ConfigError, match="needs experts_index"):
        SIPRunConfig.from_dict({"experts": ["twap", "pov"]})


def test_an_expert_that_fills_nothing_scores_minus_the_fill_penalty(monkeypatch):
    monkeypatch.setitem(FILL, "midday", {ACTIONS["pov"]: 0.0})
    fits, _, _ = _fit(_config(regimes=["midday"], episodes=5))
    np.testing.assert_allclose(fits[0].fill_rate[:, 2], 0.0)
    np.testing.assert_allclose(fits[0].utility[:, 2], -50.0)  # spec 1.3: a fully unfilled order scores -50 bp
    assert fits[0].history.final[2] < fits[0].history.final[1]


def test_relative_index_paths_resolve_from_the_folder_the_index_was_written_in(tmp_path):
    import json

    index = tmp_path / "runs" / "experts" / "experts_index.json"
    index.parent.mkdir(parents=True)
    for name in ("twap", "pov"):
        (tmp_path / "runs" / "experts" / name / "expert").mkdir(parents=True)
    index.write_text(json.dumps({f"expert_{n}_open": {"expert": f"runs/experts/{n}/expert"} for n in ("twap", "pov")}))
    config = SIPRunConfig.from_dict({"experts": ["twap", "pov"], "experts_index": str(index), "regimes": ["open"]})
    expected = {n: str(tmp_path / "runs" / "experts" / n / "expert") for n in ("twap", "pov")}
    assert config.expert_paths("open") == expected


def test_gate_targets_are_the_final_or_the_running_weights():
    from rlexec.algorithms.sip import update as sip
    from rlexec.algorithms.sip.driver import RegimeFit, gate_targets

    history = sip.run(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]), sip.SIPConfig())
    fit_ = RegimeFit("open", np.arange(3), np.zeros((3, 2)), np.ones((3, 2)), np.zeros((3, 2)), history,
                     np.zeros((3, 1)))
    np.testing.assert_allclose(gate_targets([fit_], "final"), np.tile(history.weights[3], (3, 1)))
    np.testing.assert_allclose(gate_targets([fit_], "history"), history.weights[1:])

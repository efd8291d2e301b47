"""The volatility-level sweep of rlexec regimes (issue 10): levelled regime names in the config, what the
policies are given, and the profit / cost figure against the level."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml

from rlexec.errors import ConfigError
from rlexec.evaluation import plots
from rlexec.evaluation import regime_table as rt

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _data(regimes, policies=None) -> dict:
    return {"regimes": regimes, "episodes": 2,
            "execution": {"decision_interval_s": 300.0, "action_space": "shared", "window_minutes": 30},
            "policies": policies or [{"name": "twap_market", "kind": "broker", "broker": "twap"}]}


def test_the_volatility_yaml_sweeps_levels_with_the_regimes_yaml_s_policies():
    sweep = rt.RegimesConfig.from_yaml(CONFIGS / "regimes_volatility.yaml")
    table = rt.RegimesConfig.from_yaml(CONFIGS / "regimes.yaml")
    assert sweep.regimes == ("volatility_ramp@0", "volatility_ramp@1", "volatility_ramp@2", "volatility_ramp@3")
    assert sweep.policies == table.policies and sweep.best_of == table.best_of
    assert (sweep.seed, sweep.episodes) == (table.seed, table.episodes)
    for regime in sweep.regimes:  # the same window as the volatility_ramp column of the regime table
        assert sweep.env_config(regime).regime == regime
        assert sweep.env_config(regime).window_start == table.env_config("volatility_ramp").window_start


@pytest.mark.parametrize("bad", ["baseline@2", "volatility_ramp@-1", "volatility_ramp@high"])
def test_a_bad_level_is_one_line_naming_the_file(tmp_path, bad):
    path = tmp_path / "levels.yaml"
    path.write_text(yaml.safe_dump(_data(["volatility_ramp", bad])))
    with pytest.raises(ConfigError, match="volatility_ramp@2") as info:
        rt.RegimesConfig.from_yaml(path)
    assert str(path) in str(info.value) and bad in str(info.value) and "\n" not in str(info.value)


def test_policies_of_a_level_get_the_regime_s_family_and_the_level_s_market(tmp_path, monkeypatch):
    seen = []

    def recording_kind(spec, context):
        seen.append((context.regime, context.env_config.regime, context.path("experts/e_{regime}", policy=spec.name)))
        return rt.broker_policy(spec, context)

    monkeypatch.setitem(rt.POLICY_KINDS, "recording", recording_kind)
    config = rt.RegimesConfig.from_dict(_data(["volatility_ramp@2"], [
        {"name": "rec", "kind": "recording", "broker": "twap"}]), base_dir=str(tmp_path))
    rt.build_policies(config, "volatility_ramp@2")
    assert seen == [("volatility_ramp", "volatility_ramp@2", tmp_path / "experts/e_volatility_ramp")]


def _per_episode() -> pa.Table:
    """2 policies x levels (1 = the plain name, 2, 0) x 3 episodes, plus a baseline row the figure must skip."""
    rows = {"regime": [], "strategy": [], "profit_usd": [], "execution_cost_usd": []}
    for regime, level in (("volatility_ramp", 1), ("volatility_ramp@2", 2), ("volatility_ramp@0", 0)):
        for policy, sign in (("a", 1.0), ("b", -1.0)):
            for e in range(3):
                rows["regime"].append(regime)
                rows["strategy"].append(policy)
                rows["profit_usd"].append(sign * (10 * level + e))  # mean ±(10 L + 1), SE = 1 / sqrt(3)
                rows["execution_cost_usd"].append(level * e)       # mean L, SE = L / sqrt(3)
    for key, value in (("regime", "baseline"), ("strategy", "a"), ("profit_usd", 1e6), ("execution_cost_usd", 1e6)):
        rows[key].append(value)
    return pa.table(rows)


def test_level_means_and_standard_errors_by_hand():
    levels, policies, values = plots.volatility_level_means(_per_episode())
    assert levels == [0.0, 1.0, 2.0] and policies == ["a", "b"]
    se = 1 / np.sqrt(3)
    np.testing.assert_allclose(values["profit_usd"]["a"], [[1, se], [11, se], [21, se]])
    np.testing.assert_allclose(values["profit_usd"]["b"], [[-1, se], [-11, se], [-21, se]])
    np.testing.assert_allclose(values["execution_cost_usd"]["b"], [[0, 0], [1, se], [2, 2 * se]])


def test_the_figure_draws_each_policy_per_level_and_needs_two_levels():
    fig = plots.volatility_levels_figure(_per_episode(), "test data")
    profit, cost = fig.axes[:2]
    assert [c.get_label() for c in profit.containers] == ["a", "b"]
    a_line = profit.containers[0].lines[0]
    np.testing.assert_allclose(a_line.get_ydata(), [1, 11, 21])
    assert np.all(np.diff(a_line.get_xdata()) == pytest.approx(1.0))  # one point per level, in order
    np.testing.assert_allclose(cost.containers[1].lines[0].get_ydata(), [0, 1, 2])
    assert len(plots.figure_png(fig)) > 1000
    one_level = _per_episode().filter(pa.compute.equal(pa.array(["volatility_ramp"] * 19), _per_episode()["regime"]))
    with pytest.raises(ConfigError, match="at least 2 levels"):
        plots.volatility_levels_figure(one_level)


def test_rlexec_figures_volatility_redraws_from_a_run_folder(tmp_path, capsys):
    import pyarrow.parquet as pq

    from rlexec.cli.main import main

    pq.write_table(_per_episode(), tmp_path / "per_episode.parquet")
    assert main(["figures", "volatility", str(tmp_path)]) == 0
    assert (tmp_path / "volatility_levels.png").stat().st_size > 1000
    assert main(["figures", "volatility", str(tmp_path / "elsewhere")]) == 2
    assert "per_episode.parquet: missing" in capsys.readouterr().err


@pytest.mark.slow  # two simulated days per level and their volume calibration: ~45 s of CPU
def test_rlexec_regimes_over_levels_draws_the_volatility_figure(tmp_path):
    import pyarrow.parquet as pq

    from rlexec.cli.main import main

    path = tmp_path / "levels.yaml"
    data = _data(["volatility_ramp@0", "volatility_ramp@2"])
    data["execution"]["window_start"] = "09:30"  # the first 30 minutes: a short simulated day
    path.write_text(yaml.safe_dump(data))
    assert main(["regimes", str(path), "--episodes", "2", "--serial", "--out", str(tmp_path / "runs")]) == 0
    (run,) = (tmp_path / "runs" / "regimes").iterdir()
    assert (run / "volatility_levels.png").read_bytes().startswith(b"\x89PNG")
    per_episode = pq.read_table(run / "per_episode.parquet")
    assert sorted(set(per_episode["regime"].to_pylist())) == ["volatility_ramp@0", "volatility_ramp@2"]
    assert per_episode["seed"].to_pylist()[:2] == per_episode["seed"].to_pylist()[2:]  # common seeds across levels

"""``rlexec regimes`` end to end on a tiny config: what it prints, the files it writes, its errors."""

from __future__ import annotations

import json

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import yaml

from rlexec.cli.main import main
from rlexec.evaluation.regime_table import TABLE_METRICS
from rlexec.evaluation.trajectory_store import TrajectoryStore

CONFIG = {"regimes": ["open", "midday"], "episodes": 100, "execution": {"decision_interval_s": 300.0},
          "policies": [{"name": "twap_market", "kind": "broker", "broker": "twap", "placement": "market"},
                       {"name": "twap_limit", "kind": "broker", "broker": "twap", "placement": "limit"}]}


def test_regimes_prints_and_saves_the_table_plots_and_store(tmp_path, capsys):
    path = tmp_path / "regimes.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    assert main(["regimes", str(path), "--episodes", "2", "--serial", "--store", "--out", str(tmp_path / "runs")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "profit ($): mean ± SE, USD per parent order" in out
    assert "seeds 10000000..10000001" in out
    assert "policy − the regime's best single expert" in out
    (run,) = (tmp_path / "runs" / "regimes").iterdir()
    table = pq.read_table(run / "regime_table.parquet")
    assert pcsv.read_csv(run / "regime_table.csv").num_rows == table.num_rows == 2 * 2 * len(TABLE_METRICS)
    assert set(table["n"].to_pylist()) == {2}  # --episodes overrides the YAML's 100
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["best_single"]) == {"open", "midday"} and summary["git_commit"] and summary["versions"]
    assert summary["config"]["episodes"] == 2 and summary["units"]["profit_usd"] == "USD per parent order"
    assert pq.read_table(run / "paired.parquet").num_rows == 2 * len(TABLE_METRICS)  # the non-best broker in each regime
    for png in ("fill_curves.png", "slippage.png"):
        assert (run / png).read_bytes().startswith(b"\x89PNG")
    assert not (run / "mixture_weights.png").exists()  # no mixture reported weights
    store = TrajectoryStore.read(run / "store")
    assert store.contexts() == [(r, s) for r in ("midday", "open") for s in (10_000_000, 10_000_001)]


def test_regimes_refuses_training_seeds_in_one_line(tmp_path, capsys):
    path = tmp_path / "regimes.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    assert main(["regimes", str(path), "--seed", "0", "--serial", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rlexec: error: {path}: episode seeds 0..99 overlap the training seeds") and "\n" not in err


def test_simulate_and_evaluate_take_a_levelled_regime(capsys):
    """``volatility_ramp@L`` reaches rlexec simulate and rlexec evaluate --env lob; a bad level is a one-line error."""
    from rlexec.cli.main import main

    assert main(["simulate", "--regime", "volatility_ramp@2", "--print-config"]) == 0
    assert "vol_ramp: 7.0" in capsys.readouterr().out  # x(1 + 3 L) at the end of the day
    for command in (["simulate"], ["evaluate", "--env", "lob"]):
        assert main([*command, "--regime", "volatility_ramp@x"]) == 2
        assert "--regime: 'volatility_ramp@x': the level after '@' must be a number >= 0" in capsys.readouterr().err
        assert main([*command, "--regime", "baseline@2"]) == 2
        assert "only volatility_ramp take a level" in capsys.readouterr().err

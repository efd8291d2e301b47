"""``rlexec evaluate``: output table, run folder contents, and one-line errors with exit code 2."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from rlexec.cli.main import main
from rlexec.data.orders import Order, read_orders, write_orders

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN_FILES = {"per_order.parquet", "summary.json", "run.json", "orders.csv", "fill_curves.png", "pa_distribution.png"}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("rlexec: error: ")
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def evaluate_run(tmp_path_factory):
    """One default evaluate run over 40 random orders: (out base, run folder, stdout)."""
    out = tmp_path_factory.mktemp("runs")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["evaluate", "--out", str(out), "--num-orders", "40"])
    assert code == 0, stderr.getvalue()
    folders = sorted((out / "evaluate").iterdir())
    assert len(folders) == 1
    return out, folders[0], stdout.getvalue()


def test_evaluate_prints_the_results_table(evaluate_run):
    _, folder, text = evaluate_run
    summary = json.loads((folder / "summary.json").read_text())
    for name in ("TWAP", "VWAP", "IS", "POV"):
        pa_mean = summary["results"][name.lower()]["price_advantage_bps"]["mean"]
        # each strategy's row, starting with its PA mean (the figure the table is for)
        assert re.search(rf"^\W*{name}\W+{pa_mean:.2f} ±", text, re.M), f"no row for {name} with PA {pa_mean:.2f}"
    for column in ("PA (bp)", "GLR", "POS", "fill rate"):
        assert column in text
    assert "40 orders" in text
    assert "Paired PA difference vs TWAP" in text
    assert str(folder) in text.replace("\n", "")


def _flat(text: str) -> str:
    """The printed text with rich's line wrapping undone."""
    return " ".join(text.split())


def test_the_table_names_its_data_and_defines_its_columns(evaluate_run):
    _, folder, text = evaluate_run
    flat = _flat(text)
    orders = read_orders(folder / "orders.csv")
    days = sorted({str(o.date) for o in orders})
    symbols = sorted({o.symbol for o in orders})
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["dataset"]["days"] == days and summary["dataset"]["symbols"] == symbols
    on = f"{len(days)} days {days[0]} to {days[-1]}" if len(days) > 3 else ", ".join(days)
    assert f"40 orders · shipped sample: {', '.join(symbols)} on {on} (random orders, seed 0)" in flat
    # the bar env pays 0.01 x bp: its column says so, and the legend says what it is
    assert "reward (bp × 0.01)" in flat and summary["reward"]["unit"] == "bp × 0.01"
    for clause in ("PA = price advantage vs the horizon's average market price, bp, + = better",
                   "GLR = mean PA gain / mean PA loss", "POS = share of orders with PA > 0",
                   "fill rate = executed / ordered shares",
                   "IS cost = implementation shortfall vs the arrival price, bp, + = worse", "VWAP slip. = slippage vs the window's market VWAP, bp, + = worse",
                   "reward = 0.01 × (PA × fill rate − 100 × Σ per minute (filled / ordered)²)"):
        assert clause in flat, clause


def test_evaluate_writes_the_run_folder(evaluate_run):
    out, folder, _ = evaluate_run
    assert folder.parent == out / "evaluate"
    assert RUN_FILES <= {p.name for p in folder.iterdir()}
    table = pq.read_table(folder / "per_order.parquet")
    assert table.num_rows == 4 * 40
    assert set(table.column("strategy").to_pylist()) == {"twap", "vwap", "is", "pov"}
    assert min(table.column("fill_rate").to_pylist()) == pytest.approx(1.0)
    summary = json.loads((folder / "summary.json").read_text())
    for key in ("config", "seed", "versions", "git_commit", "results", "n_orders", "paired_vs_baseline"):
        assert key in summary
    assert summary["seed"] == 0 and summary["n_orders"] == 40
    assert summary["config"]["execution"]["n_steps"] == 8
    assert set(summary["results"]) == {"twap", "vwap", "is", "pov"}
    assert set(summary["paired_vs_baseline"]) == {"vwap", "is", "pov"}
    assert "numpy" in summary["versions"]
    run = json.loads((folder / "run.json").read_text())
    assert run["config"] == summary["config"] and run["seed"] == 0
    assert len(read_orders(folder / "orders.csv")) == 40
    for png in ("fill_curves.png", "pa_distribution.png"):
        assert (folder / png).read_bytes()[:8] == PNG_SIGNATURE


def test_evaluate_twice_makes_two_folders_and_replays_from_its_orders(evaluate_run, capsys):
    out, first, _ = evaluate_run
    before = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    code = main(["evaluate", "--out", str(out), "--orders", str(first / "orders.csv"), "--no-plots"])
    assert code == 0
    folders = sorted((out / "evaluate").iterdir())
    assert len(folders) == 2
    second = next(f for f in folders if f != first)
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == before  # nothing overwritten
    assert not (second / "fill_curves.png").exists()
    # the saved orders reproduce the first run's per-order metrics exactly
    a, b = pq.read_table(first / "per_order.parquet"), pq.read_table(second / "per_order.parquet")
    for column in ("strategy", "symbol", "price_advantage_bps", "reward", "profit_usd"):
        assert a.column(column).to_pylist() == b.column(column).to_pylist()


# --------------------------------------------------------------------------- errors


def test_oversized_order_names_the_line(tmp_path, capsys):
    orders = [
        Order(symbol="AAPL", date=dt.date(2019, 2, 13), side="buy", quantity=10_000, start_minute=30),
        Order(symbol="SPY", date=dt.date(2019, 2, 14), side="sell", quantity=20_000, start_minute=60),
        Order(symbol="JPM", date=dt.date(2019, 2, 12), side="buy", quantity=90_000_000, start_minute=0),
    ]
    path = write_orders(orders, tmp_path / "orders.csv")
    code = main(["evaluate", "--orders", str(path), "--out", str(tmp_path / "runs")])
    assert code == 2
    line = _one_error_line(capsys)
    # the third order is on line 4 (the header is line 1), as an editor counts
    assert f"{path}, line 4: " in line and "90,000,000" in line and "exceeds" in line
    assert not (tmp_path / "runs").exists()  # nothing written for a run that never started


def test_bad_row_in_order_file_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "orders.csv"
    path.write_text("symbol,date,side,quantity,start\nAAPL,2019-02-13,buy,100,10:00\nAAPL,2019-02-13,hold,100,10:00\n")
    assert main(["evaluate", "--orders", str(path), "--out", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert f"{path}, line 3: " in line and "side" in line


def test_unknown_split_names_the_flag(tmp_path, capsys):
    assert main(["evaluate", "--split", "nosuch", "--out", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert line == "rlexec: error: --split: unknown preset 'nosuch'; choose from ['sample', 'spy_2011', 'us_equity_1min']"


def test_unknown_strategy(tmp_path, capsys):
    assert main(["evaluate", "--strategies", "twap,moon", "--out", str(tmp_path)]) == 2
    line = _one_error_line(capsys)
    assert "unknown strategy 'moon'" in line and "twap" in line


BAD_CONFIGS = {
    "yaml-syntax": "execution: {n_steps: 4\n",
    "unknown-key": "execution:\n  n_step: 4\n",
    "bad-value": "execution:\n  fill:\n    max_participation: 1.5\n",
    "unknown-top-level": "executions: {}\n",
    "string-for-number": "execution:\n  n_steps: eight\n",
    "strategy-params-not-a-mapping": "strategies:\n  is: 5\n",
}
CONFIG_FIELD = {
    "yaml-syntax": "line 2, column 1: invalid YAML",
    "unknown-key": "n_step",
    "bad-value": "max_participation",
    "unknown-top-level": "executions",
    "string-for-number": "n_steps",
    "strategy-params-not-a-mapping": "is",
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_malformed_config_is_one_line_exit_2(tmp_path, capsys, case):
    path = tmp_path / "config.yaml"
    path.write_text(BAD_CONFIGS[case])
    code = main(["evaluate", "--config", str(path), "--num-orders", "5", "--no-plots", "--out", str(tmp_path / "r")])
    assert code == 2
    line = _one_error_line(capsys)
    assert CONFIG_FIELD[case] in line


def test_missing_config_file(tmp_path, capsys):
    assert main(["evaluate", "--config", str(tmp_path / "none.yaml"), "--out", str(tmp_path)]) == 2
    assert "none.yaml" in _one_error_line(capsys)


def test_bad_bar_file_names_file_line_and_field(tmp_path, capsys):
    path = tmp_path / "XYZ_1min.csv"
    path.write_text(
        "datetime,open,high,low,close,volume\n"
        "2019-02-15 10:02:00,10.0,10.5,9.5,10.1,100\n"
        "2019-02-15 10:01:00,10.0,10.5,9.5,abc,100\n"
        "2019-02-15 10:00:00,10.0,10.5,9.5,10.2,100\n"
    )
    assert main(["evaluate", "--data", str(path), "--out", str(tmp_path / "r")]) == 2
    line = _one_error_line(capsys)
    assert str(path) in line and "line 3" in line and "'close'" in line


def test_missing_bar_file(tmp_path, capsys):
    assert main(["evaluate", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path)]) == 2
    assert "nope.csv" in _one_error_line(capsys)


def test_non_positive_num_orders(tmp_path, capsys):
    assert main(["evaluate", "--num-orders", "0", "--out", str(tmp_path)]) == 2
    assert "--num-orders" in _one_error_line(capsys)


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["evaluate", "--num-orders", "many"])
    assert info.value.code == 2
    assert "invalid int value" in capsys.readouterr().err


def test_lob_evaluation_on_the_shipped_replay(tmp_path, capsys):
    from rlexec.envs.lob_env import LOBExecutionConfig
    from rlexec.evaluation import FixedAction, LOBEpisodes, run_episodes
    from rlexec.market.lobster import SAMPLE_REPLAY

    code = main(["evaluate", "--env", "lob", "--replay", str(SAMPLE_REPLAY), "--replay-window", "10",
                 "--episodes", "3", "--no-plots", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    (run,) = (tmp_path / "evaluate").iterdir()
    table = pq.read_table(run / "per_order.parquet")
    assert table.num_rows == 4 * 3
    summary = json.loads((run / "summary.json").read_text())
    # the files hold what the evaluation loop gives for the same set-up: the replay, 10-minute windows,
    # 30 s decisions, seeds 0, 1, 2 (--seed's default), market child orders
    config = LOBExecutionConfig(replay=str(SAMPLE_REPLAY), replay_window_minutes=10, decision_interval_s=30.0)
    for broker in ("twap", "vwap", "is", "pov"):
        episodes = LOBEpisodes(config, episodes=3, seed=0, broker=broker)
        result, _ = run_episodes(episodes, FixedAction("market", 0))
        rows = table.filter(pc.equal(table.column("strategy"), broker))
        assert rows.column("seed").to_pylist() == [0, 1, 2]
        assert rows.column("quantity").to_pylist() == [float(env.quantity) for env in episodes.envs]
        for name, values in result.metrics.items():
            assert rows.column(name).to_pylist() == pytest.approx(values.tolist(), rel=1e-12, nan_ok=True), name
        pa_mean = summary["results"][broker]["price_advantage_bps"]["mean"]
        assert pa_mean == pytest.approx(float(np.mean(result.metrics["price_advantage_bps"])), rel=1e-12)
        # and the printed table shows that mean in the strategy's row
        assert re.search(rf"^\W*{broker.upper()}\W+{pa_mean:.2f} ±", out, re.M), f"no PA mean for {broker}"
        # the LOB env's reward is in bp: arrival slippage per share of the order less 50 bp per unfilled share
        fill = np.array(rows.column("fill_rate").to_pylist())
        expected = np.array(rows.column("arrival_advantage_bps").to_pylist()) * fill - 50.0 * (1 - fill)
        assert rows.column("reward").to_pylist() == pytest.approx(expected.tolist(), rel=1e-9, abs=1e-9)
    flat = " ".join(out.split())
    assert (f"3 episodes · LOBSTER replay {SAMPLE_REPLAY.name}, 10-minute windows (seeds 0 to 2); market child "
            "orders every 30 s") in flat
    assert "reward (bp)" in flat and "− 50 bp × unfilled share" in flat
    assert summary["reward"]["unit"] == "bp" and summary["dataset"]["unit"] == "episodes"


def test_replay_window_longer_than_the_data_is_one_line(tmp_path, capsys):
    from rlexec.market.lobster import SAMPLE_REPLAY

    code = main(["evaluate", "--env", "lob", "--replay", str(SAMPLE_REPLAY), "--episodes", "1",
                 "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not fit in the 30.0 minutes of replayed data" in err[0]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A train run folder as ``rlexec train`` leaves it (two checkpoints of an untrained OPD network,
    progress.jsonl, run.json), written without training: (run folder, its newest checkpoint)."""
    import shutil

    import gymnasium as gym
    import yaml

    from rlexec.algorithms.opd.module import module_spec
    from rlexec.envs.config import ExecutionConfig
    from rlexec.envs.interpreters import ObservationInterpreter
    from rlexec.policies.checkpoints import MODULE_SUBPATH, write_module_weights

    execution = {"n_steps": 4, "step_minutes": 30, "lookback_minutes": 10}
    run = tmp_path_factory.mktemp("train") / "smoke" / "20260101T000000-0a1b2c3d"
    spec = module_spec({}, {"execution": execution})
    spec.observation_space = ObservationInterpreter(ExecutionConfig.from_dict(execution)).space()
    spec.action_space = gym.spaces.Discrete(5)
    first = run / "checkpoints" / "iter_000001"
    spec.build().save_to_path(str(first / MODULE_SUBPATH / "default_policy"))
    write_module_weights(first / MODULE_SUBPATH / "default_policy")
    shutil.copytree(first, run / "checkpoints" / "iter_000002")
    (run / "config.yaml").write_text(yaml.safe_dump({"algorithm": "opd", "name": "smoke", "environment": {
        "env": "bar", "env_config": {"execution": execution}}}))
    (run / "run.json").write_text(json.dumps({"git_commit": "0123abc"}))
    (run / "progress.jsonl").write_text("".join(json.dumps({"iteration": i, "env_steps_sampled_lifetime": 2048 * i})
                                                + "\n" for i in (1, 2)))
    return run, run / "checkpoints" / "iter_000002"


def test_a_trained_policy_is_labelled_with_its_budget_and_checkpoint(smoke_run, tmp_path):
    run, checkpoint = smoke_run
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["evaluate", "--policy", str(run.parent), "--strategies", "twap,pov", "--num-orders", "10",
                     "--no-plots", "--out", str(tmp_path)])
    assert code == 0
    text = stdout.getvalue()
    assert re.search(r"^\W*SMOKE\W+\S+ ±.*\n\W*\(2 it\., 4\.1k steps\)", text, re.M), text
    assert "training budget up to the checkpoint evaluated" in _flat(text)
    (folder,) = (tmp_path / "evaluate").iterdir()
    recorded = {"checkpoint": str(checkpoint.resolve()), "run_folder": str(run.resolve()), "git_commit": "0123abc",
                "iterations": 2, "env_steps": 4096, "budget": "2 it., 4.1k steps"}
    # runs/train/smoke resolved to its newest run's newest checkpoint: run.json says which
    assert json.loads((folder / "run.json").read_text())["trained_policies"] == {"smoke": recorded}
    assert json.loads((folder / "summary.json").read_text())["trained_policies"] == {"smoke": recorded}

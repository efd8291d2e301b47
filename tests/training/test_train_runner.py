"""``rlexec train`` / ``rlexec evaluate --policy``: the training spec, run folders, checkpoints and resume.

A tiny PPO (2 iterations of 256 steps on the shipped sample, ``--local``) is trained once per module;
tests that change a run work on a copy of its folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rlexec.cli.main import main
from rlexec.errors import ConfigError
from rlexec.policies.checkpoints import (
    LATEST,
    MODULE_SUBPATH,
    CheckpointError,
    latest_checkpoint,
    load_module,
    module_checkpoint,
)
from rlexec.policies.trained import TrainedPolicy
from rlexec.training import runner
from rlexec.training.spec import TrainSpec, build_algorithm_config

MID = "default_policy"
TINY = {
    "algorithm": "ppo",
    "name": "tiny",
    "seed": 7,
    "stop": {"training_iterations": 2},
    "checkpoint_frequency": 1,
    "keep_checkpoints": 3,
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train"}},
    "env_runners": {"num_env_runners": 1, "num_envs_per_env_runner": 4},
    "training": {"lr": 1.0e-4, "gamma": 1.0, "lambda_": 1.0, "train_batch_size_per_learner": 256,
                 "minibatch_size": 128, "num_epochs": 1},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [32, 32]}},
}


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def only_run(out: Path, name: str) -> Path:
    runs = sorted((out / "train" / name).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def read_progress(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "progress.jsonl").read_text().splitlines()]


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------- TrainSpec


@pytest.mark.parametrize(
    "change, match",
    [
        ({"trainig": {"lr": 1e-3}}, r"unknown top-level key.*trainig"),
        ({"algorithm": "dqn"}, r"algorithm must be one of.*'dqn'"),
        ({"algorithm": None}, r"algorithm must be one of"),
        ({"stop": {"iterations": 3}}, r"stop must map"),
        ({"stop": {"training_iterations": 0}}, r"stop\.training_iterations must be a positive number"),
        ({"stop": {"time_s": "ten"}}, r"stop\.time_s must be a positive number"),
        ({"stop": [2]}, r"stop must map"),
        ({"seed": -1}, r"seed must be a non-negative integer"),
        ({"checkpoint_frequency": 1.5}, r"checkpoint_frequency must be a non-negative integer"),
        ({"training": [1, 2]}, r"section 'training' must be a mapping"),
    ],
)
def test_spec_errors_name_the_file_and_key(tmp_path, change, match):
    path = write_yaml(tmp_path / "bad.yaml", {**TINY, **change})
    with pytest.raises(ConfigError, match=match) as info:
        TrainSpec.from_yaml(path)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize(
    "section, value, match",
    [
        ("training", {"lrr": 1e-3}, r"training.*lrr"),
        ("env_runners", {"num_env_runnerz": 1}, r"env_runners: unknown key.*num_env_runnerz"),
        ("rl_module", {"module": "default", "modle_config": {}}, r"rl_module: unknown key.*modle_config"),
        ("rl_module", {"module": "lstm"}, r"rl_module.module must be"),
        ("environment", {"env": "cartpole"}, r"environment.env must be"),
        ("environment", {"env": "rlexec.envs.nothing:Env"}, r"environment.env 'rlexec.envs.nothing:Env' cannot"),
        ("fault_tolerance", {"restart_failed_workers": True}, r"fault_tolerance: unknown key.*restart_failed_workers"),
    ],
)
def test_unknown_keys_inside_sections_name_the_file_and_key(tmp_path, section, value, match):
    path = write_yaml(tmp_path / "bad_section.yaml", {**TINY, section: value})
    spec = TrainSpec.from_yaml(path)  # sections are RLlib keyword arguments: checked when the config is built
    with pytest.raises(ConfigError, match=match) as info:
        build_algorithm_config(spec, local=True)
    assert str(info.value).startswith(str(path))


def test_cli_reports_spec_errors_as_one_line(ray_session, tmp_path, capsys):
    path = write_yaml(tmp_path / "typo.yaml", {**TINY, "training": {**TINY["training"], "lrr": 1.0}})
    assert main(["train", str(path), "--local", "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlexec: error: ") and str(path) in err and "lrr" in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("progress.jsonl"))
    assert main(["train", str(tmp_path / "missing.yaml"), "--local"]) == 2
    assert "missing.yaml: config file not found" in capsys.readouterr().err


def test_with_overrides_copies_and_validates(tmp_path):
    spec = TrainSpec.from_dict(TINY, source="tiny.yaml")
    changed = spec.with_overrides({"training.lr": 3e-4, "environment.env_config.oracle": True, "seed": 9,
                                   "stop": {"training_iterations": 5}, "evaluation.evaluation_interval": 2})
    assert changed.sections["training"]["lr"] == 3e-4 and changed.sections["training"]["num_epochs"] == 1
    assert changed.sections["environment"]["env_config"] == {"split": {"preset": "sample"}, "part": "train",
                                                             "oracle": True}
    assert changed.seed == 9 and changed.stop == {"training_iterations": 5}
    assert changed.sections["evaluation"] == {"evaluation_interval": 2}
    # the original is untouched
    assert spec.sections["training"]["lr"] == 1e-4 and "oracle" not in spec.sections["environment"]["env_config"]
    assert spec.seed == 7 and spec.stop == {"training_iterations": 2}
    assert changed.source == spec.source
    with pytest.raises(ConfigError, match="tiny.yaml.*goes through a non-mapping"):
        spec.with_overrides({"training.lr.value": 1})
    with pytest.raises(ConfigError, match=r"tiny.yaml: stop\.training_iterations"):
        spec.with_overrides({"stop.training_iterations": -1})
    with pytest.raises(ConfigError, match="tiny.yaml: unknown top-level key.*optimiser"):
        spec.with_overrides({"optimiser.lr": 1})
    # the CLI's --set parses values as YAML and goes through the same path
    from rlexec.cli.train import parse_overrides

    assert parse_overrides(["training.lr=3e-4", "env_runners.num_env_runners=0", "x.flag=true", "name=run 2",
                            "training.gamma=0.99", "y='1e-3'"]) == {
        "training.lr": 3e-4, "env_runners.num_env_runners": 0, "x.flag": True, "name": "run 2",
        "training.gamma": 0.99, "y": "1e-3"}  # 3e-4 is a number (YAML 1.1 alone would read a string)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_overrides(["training.lr"])


def test_relative_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = TrainSpec.from_dict({
        **TINY,
        "environment": {"env": "bar", "env_config": {"data": ["bars/a.csv", "/abs/b.csv"], "orders": "orders.csv",
                                                     "replay": "s3://bucket/day.zip"}},
        "training": {**TINY["training"], "teacher_checkpoint": "runs/train/opd_teacher"},
        "evaluation": {"evaluation_config": {"env_config": {"data": "val/bars.csv"}}},
    })
    env_config = spec.sections["environment"]["env_config"]
    assert env_config["data"] == [str(tmp_path / "bars/a.csv"), "/abs/b.csv"]
    assert env_config["orders"] == str(tmp_path / "orders.csv")
    assert env_config["replay"] == "s3://bucket/day.zip"  # URLs stay as they are
    assert spec.sections["training"]["teacher_checkpoint"] == str(tmp_path / "runs/train/opd_teacher")
    assert spec.sections["evaluation"]["evaluation_config"]["env_config"]["data"] == str(tmp_path / "val/bars.csv")
    # the absolute paths survive a round trip through the run's config.yaml, even from another directory
    monkeypatch.chdir("/")
    again = TrainSpec.from_dict(yaml.safe_load(yaml.safe_dump(spec.to_dict())))
    assert again.sections == spec.sections


def test_local_flag_samples_in_the_driver():
    spec = TrainSpec.from_dict({**TINY, "env_runners": {"num_env_runners": 3, "num_envs_per_env_runner": 4}})
    assert build_algorithm_config(spec).num_env_runners == 3
    config = build_algorithm_config(spec, local=True)
    assert config.num_env_runners == 0 and config.num_envs_per_env_runner == 4 and config.seed == 7


# ----------------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory) -> Path:
    return write_yaml(tmp_path_factory.mktemp("config") / "tiny.yaml", TINY)


@pytest.fixture(scope="module")
def trained_run(ray_session, tmp_path_factory, tiny_yaml) -> Path:
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", str(tiny_yaml), "--local", "--out", str(out)]) == 0
    return only_run(out, "tiny")


def test_train_writes_a_complete_run_folder(trained_run, tiny_yaml):
    assert trained_run.parent.name == "tiny" and trained_run.parent.parent.name == "train"
    config = yaml.safe_load((trained_run / "config.yaml").read_text())
    assert config == TrainSpec.from_yaml(tiny_yaml).to_dict()
    record = json.loads((trained_run / "run.json").read_text())
    assert record["seed"] == 7 and record["config"] == config
    assert record["versions"]["ray"] == "2.60.0" and record["versions"]["torch"].startswith("2.")
    assert record["git_commit"] and isinstance(record["git_commit"], str)
    assert record["source"] == str(tiny_yaml)

    lines = read_progress(trained_run)
    assert [line["iteration"] for line in lines] == [1, 2]
    for line in lines:
        assert line["env_steps_sampled"] == 256 and line["episode_len_mean"] == 8
        assert math.isfinite(line["episode_return_mean"]) and math.isfinite(line["policy_loss"])
    assert lines[1]["env_steps_sampled_lifetime"] == 512

    checkpoints = trained_run / "checkpoints"
    assert json.loads((checkpoints / LATEST).read_text()) == {"iteration": 2, "path": "iter_000002"}
    assert sorted(p.name for p in checkpoints.iterdir()) == ["iter_000001", "iter_000002", LATEST]
    assert (checkpoints / "iter_000002" / "rllib_checkpoint.json").exists()
    assert latest_checkpoint(trained_run) == checkpoints / "iter_000002"
    assert latest_checkpoint(trained_run.parent) == checkpoints / "iter_000002"  # runs/train/<name>
    assert latest_checkpoint(checkpoints) == checkpoints / "iter_000002"
    assert module_checkpoint(trained_run) == checkpoints / "iter_000002" / MODULE_SUBPATH / MID

    summary = json.loads((trained_run / "summary.json").read_text())
    assert summary["iterations"] == 2 and summary["checkpoint"] == str(checkpoints / "iter_000002")
    assert summary["last"]["iteration"] == 2
    assert not list(trained_run.rglob("*.partial"))


def test_trained_module_loads_without_the_algorithm(trained_run):
    from ray.rllib.core.columns import Columns

    from rlexec.envs.bar_env import BarExecutionEnv

    module = load_module(trained_run)
    obs, _ = BarExecutionEnv({"split": {"preset": "sample"}}).reset(seed=0)
    with torch.no_grad():
        logits = module.forward_inference({Columns.OBS: torch.from_numpy(obs[None])})[Columns.ACTION_DIST_INPUTS]
    assert logits.shape == (1, 5) and torch.isfinite(logits).all()
    # two checkpoints of one run differ (training changed the weights)
    first = load_module(trained_run / "checkpoints" / "iter_000001")
    assert any(not torch.equal(a, b) for a, b in zip(first.state_dict().values(), module.state_dict().values()))


def test_resume_continues_from_the_last_checkpoint(trained_run, tiny_yaml, tmp_path, monkeypatch):
    out = tmp_path / "runs"
    run_dir = out / "train" / "tiny" / trained_run.name
    shutil.copytree(trained_run, run_dir)
    saved = load_module(run_dir).state_dict()
    run_json = (run_dir / "run.json").read_bytes()

    restored = {}
    real_restore = runner.restore_algorithm

    def spy(algo, path):
        checkpoint = real_restore(algo, path)
        restored["checkpoint"] = checkpoint
        restored["iteration"] = algo.iteration
        restored["learner"] = {k: v.clone() for k, v in algo.learner_group._learner.module[MID].state_dict().items()}
        restored["env_runner"] = {k: v.clone() for k, v in algo.env_runner.module.state_dict().items()}
        return checkpoint

    monkeypatch.setattr(runner, "restore_algorithm", spy)
    assert main(["train", str(tiny_yaml), "--local", "--out", str(out), "--resume",
                 "--set", "stop.training_iterations=4"]) == 0
    assert only_run(out, "tiny") == run_dir, "resumed in place, no new run folder"

    assert restored["checkpoint"] == run_dir / "checkpoints" / "iter_000002"
    assert restored["iteration"] == 2
    assert saved.keys() == restored["learner"].keys()
    for key, value in saved.items():
        assert torch.equal(value, restored["learner"][key]), key
    assert restored["env_runner"] and all(torch.equal(saved[k], v) for k, v in restored["env_runner"].items())

    lines = read_progress(run_dir)
    assert [line.get("iteration") for line in lines] == [1, 2, 2, 3, 4]
    assert lines[2]["event"] == "resumed" and lines[2]["checkpoint"] == "iter_000002"
    assert lines[4]["env_steps_sampled_lifetime"] == 4 * 256, "the step counters continue too"
    assert json.loads((run_dir / "summary.json").read_text())["iterations"] == 4
    assert json.loads((run_dir / "checkpoints" / LATEST).read_text())["iteration"] == 4
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("iter_*")) == [
        "iter_000002", "iter_000003", "iter_000004"]  # keep_checkpoints: 3
    assert (run_dir / "run.json").read_bytes() == run_json
    # what the resumed part ran with: the config, 4 iterations instead of 2
    assert lines[2]["config"] == "config.resumed_000002.yaml" and lines[2]["changed"] == ["stop.training_iterations"]
    assert yaml.safe_load((run_dir / "config.resumed_000002.yaml").read_text()) == {
        **yaml.safe_load((run_dir / "config.yaml").read_text()), "stop": {"training_iterations": 4}}
    after = load_module(run_dir).state_dict()
    assert any(not torch.equal(saved[k], after[k]) for k in saved), "training went on after the resume"


class ReplaceCounter:
    """``os.replace`` that fails, as a kill would stop it, when a checkpoint folder is moved in a second time."""

    def __init__(self):
        self.moved_in: list[str] = []
        self.real = os.replace

    def __call__(self, src, dst):
        if Path(src).name.endswith(".partial") and Path(dst).name.startswith("iter_"):
            if Path(dst).name in self.moved_in:
                raise OSError(f"killed while replacing {Path(dst).name}")
            self.moved_in.append(Path(dst).name)
        return self.real(src, dst)


def test_each_iteration_is_saved_once_and_resume_goes_on_with_the_runs_own_config(
        ray_session, tiny_yaml, tmp_path, monkeypatch, capsys):
    """The last iteration (a multiple of checkpoint_frequency) was saved again at the end of every run,
    deleting the complete checkpoint first: a kill in between left ``latest.json`` naming nothing."""
    out = tmp_path / "runs"
    replace = ReplaceCounter()
    monkeypatch.setattr(os, "replace", replace)
    assert main(["train", str(tiny_yaml), "--local", "--out", str(out)]) == 0
    monkeypatch.undo()
    assert replace.moved_in == ["iter_000001", "iter_000002"]
    run_dir = only_run(out, "tiny")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["checkpoint"] == str(run_dir / "checkpoints" / "iter_000002")

    # --resume RUN without a config goes on with the run's own config; --set changes how long
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--local", "--set", "stop.training_iterations=3"]) == 0
    assert f"from {run_dir / 'config.yaml'}" in " ".join(capsys.readouterr().out.split())
    lines = read_progress(run_dir)
    assert [line["iteration"] for line in lines] == [1, 2, 2, 3]
    assert lines[2]["changed"] == ["stop.training_iterations"]
    assert json.loads((run_dir / "checkpoints" / LATEST).read_text())["iteration"] == 3
    assert main(["train", "--resume", "--local", "--out", str(out)]) == 2
    assert "give a training YAML, or --resume RUN_DIR" in capsys.readouterr().err


def test_resume_refuses_a_changed_config_unless_forced_and_records_it(trained_run, tiny_yaml, tmp_path, capsys):
    out = tmp_path / "runs"
    run_dir = out / "train" / "tiny" / trained_run.name
    shutil.copytree(trained_run, run_dir)
    before = digest(run_dir)
    faster = write_yaml(tmp_path / "faster.yaml", {**TINY, "training": {**TINY["training"], "lr": 1.0e-2}})

    assert main(["train", str(faster), "--local", "--out", str(out), "--resume"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith(f"rlexec: error: {faster}: differs from the config the run trained with "
                          f"({run_dir / 'config.yaml'}) in training.lr;")
    assert "--force-config" in err
    assert main(["train", "--resume", str(run_dir), "--local", "--seed", "8"]) == 2
    assert "in seed;" in capsys.readouterr().err
    assert main(["train", str(faster), "--local", "--out", str(out), "--force-config"]) == 2
    assert "--force-config only applies with --resume" in capsys.readouterr().err
    assert digest(run_dir) == before, "a refused resume changes nothing"

    assert main(["train", str(faster), "--local", "--out", str(out), "--resume", "--force-config",
                 "--set", "stop.training_iterations=3"]) == 0
    lines = read_progress(run_dir)
    assert lines[2]["event"] == "resumed" and lines[2]["config"] == "config.resumed_000002.yaml"
    assert lines[2]["changed"] == ["stop.training_iterations", "training.lr"]
    resumed = yaml.safe_load((run_dir / "config.resumed_000002.yaml").read_text())
    assert resumed["training"]["lr"] == 1.0e-2 and resumed["stop"] == {"training_iterations": 3}
    assert lines[3]["iteration"] == 3 and lines[3]["default_optimizer_learning_rate"] == pytest.approx(1.0e-2)
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["training"]["lr"] == 1.0e-4, "the start, as it was"
    # the run now trains with the forced config: the one it started with is the changed one
    assert runner.recorded_config(run_dir) == run_dir / "config.resumed_000002.yaml"
    assert main(["train", str(tiny_yaml), "--local", "--out", str(out), "--resume",
                 "--set", "stop.training_iterations=3"]) == 2
    assert "config.resumed_000002.yaml) in training.lr;" in " ".join(capsys.readouterr().err.split())


def test_resume_after_a_kill_while_replacing_a_checkpoint(trained_run, tmp_path, monkeypatch):
    """Killed between setting the complete ``iter_000002`` aside and moving its replacement in."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    checkpoints = run_dir / "checkpoints"

    class CopyOfIteration2:
        def save_to_path(self, path):
            shutil.copytree(checkpoints / "iter_000002", path)

    replace = ReplaceCounter()
    replace.moved_in.append("iter_000002")
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="killed while replacing iter_000002"):
        runner.save_checkpoint(CopyOfIteration2(), run_dir, 2)
    monkeypatch.undo()
    assert not (checkpoints / "iter_000002").exists() and (checkpoints / "iter_000002.replaced").is_dir()

    assert main(["train", "--resume", str(run_dir), "--local", "--set", "stop.training_iterations=3"]) == 0
    lines = read_progress(run_dir)
    assert lines[2] == {**lines[2], "event": "resumed", "checkpoint": "iter_000002.replaced", "iteration": 2}
    assert lines[3]["iteration"] == 3 and lines[3]["env_steps_sampled_lifetime"] == 3 * 256
    assert sorted(p.name for p in checkpoints.iterdir()) == ["iter_000001", "iter_000002", "iter_000003", LATEST]


def test_resume_without_an_earlier_run_is_an_error(ray_session, tiny_yaml, tmp_path, capsys):
    assert main(["train", str(tiny_yaml), "--local", "--out", str(tmp_path), "--resume"]) == 2
    assert "no earlier run of 'tiny'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="not an rlexec run folder"):
        (tmp_path / "ckpt" / "checkpoints" / "iter_000001").mkdir(parents=True)
        runner.train(TrainSpec.from_yaml(tiny_yaml), resume=tmp_path / "ckpt", local=True)


def test_corrupt_checkpoint_fails_resume_and_leaves_the_run_untouched(trained_run, tiny_yaml, tmp_path, capsys):
    run_dir = tmp_path / "runs" / "train" / "tiny" / trained_run.name
    shutil.copytree(trained_run, run_dir)
    state = run_dir / "checkpoints" / "iter_000002" / MODULE_SUBPATH / MID / "module_state.pkl"
    state.write_bytes(state.read_bytes()[: len(state.read_bytes()) // 3])
    before = digest(run_dir)

    spec = TrainSpec.from_yaml(tiny_yaml).with_overrides({"stop.training_iterations": 4})
    with pytest.raises(CheckpointError) as info:
        runner.train(spec, resume=run_dir, local=True)
    assert str(run_dir / "checkpoints" / "iter_000002") in str(info.value)
    assert digest(run_dir) == before, "a failed resume changes nothing in the run folder"

    # through the CLI: one line naming the checkpoint, exit code 2
    assert main(["train", str(tiny_yaml), "--local", "--out", str(tmp_path / "runs"), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlexec: error: ") and "iter_000002" in err
    assert digest(run_dir) == before

    weights = state.parent / "weights.pt"  # evaluation reads the weights-only copy: damage it too
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=str(state.parent)):
        load_module(run_dir)


def test_corrupt_or_dangling_latest_marker(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    marker = run_dir / "checkpoints" / LATEST
    marker.write_text('{"iteration": 2, "pa')
    with pytest.raises(CheckpointError, match=f"{marker}: corrupt checkpoint marker"):
        latest_checkpoint(run_dir)
    # a marker naming a checkpoint that is gone: the newest complete one
    marker.write_text(json.dumps({"iteration": 9, "path": "iter_000009"}))
    assert latest_checkpoint(run_dir) == run_dir / "checkpoints" / "iter_000002"
    marker.write_text(json.dumps({"iteration": 9, "path": "../../etc"}))
    with pytest.raises(CheckpointError, match=f"{marker}: names '../../etc', not a checkpoint folder"):
        latest_checkpoint(run_dir)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        latest_checkpoint(tmp_path / "nowhere")


def test_partial_checkpoint_folders_are_ignored(trained_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    checkpoints = run_dir / "checkpoints"
    (checkpoints / LATEST).unlink()
    # a save killed half-way: newer than every complete checkpoint, but never renamed
    shutil.copytree(checkpoints / "iter_000002", checkpoints / "iter_000003.partial")
    (checkpoints / "iter_000003.partial" / "rllib_checkpoint.json").unlink()
    assert latest_checkpoint(run_dir) == checkpoints / "iter_000002"
    shutil.rmtree(checkpoints / "iter_000002")
    shutil.copytree(checkpoints / "iter_000001", checkpoints / "iter_000009.partial")  # complete but unrenamed
    assert latest_checkpoint(run_dir) == checkpoints / "iter_000001"
    shutil.rmtree(checkpoints / "iter_000001")
    with pytest.raises(CheckpointError, match="no complete checkpoint"):
        latest_checkpoint(run_dir)


def test_evaluate_policy_next_to_twap_and_vwap(trained_run, tmp_path):
    out = tmp_path / "eval"
    assert main(["evaluate", "--policy", str(trained_run), "--split", "sample", "--num-orders", "40", "--no-plots",
                 "--strategies", "twap,vwap", "--out", str(out)]) == 0
    (folder,) = (out / "evaluate").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["n_orders"] == 40
    assert set(summary["results"]) == {"twap", "vwap", "tiny"}
    assert summary["config"]["strategies"]["tiny"] == {"policy": True, "oracle": False, "actor": "greedy"}
    assert summary["config"]["data"] == {"split": "sample", "part": "test"}
    for name, result in summary["results"].items():
        assert result["n_orders"] == 40
        assert result["fill_rate"]["mean"] == pytest.approx(1.0, abs=1e-12), name
        assert math.isfinite(result["price_advantage_bps"]["mean"]), name
        assert math.isfinite(result["reward"]["mean"]), name
    assert "tiny" in summary["paired_vs_baseline"]
    orders = (folder / "orders.csv").read_text().splitlines()
    assert len(orders) == 41 and all("2019-02-15" in row for row in orders[1:])  # the test day only
    assert not list(folder.glob("*.png"))


def test_trained_policy_acts_greedily_on_the_training_observation(trained_run):
    from ray.rllib.core.columns import Columns

    from rlexec.data.splits import DataSplit
    from rlexec.envs.engine import prepare_orders
    from rlexec.evaluation.episodes import BarEpisodes
    from rlexec.policies.trained import TrainedPolicy

    policy = TrainedPolicy.load(trained_run).require_env("bar")
    assert policy.name == "tiny" and policy.oracle is False
    split = DataSplit.from_dict({"preset": "sample"})
    market = split.market()
    batch = prepare_orders(market, split.orders(market, "test", 12, seed=3, horizon_minutes=240), policy.execution)
    episodes = BarEpisodes(batch, policy.execution, oracle=policy.oracle)
    obs = episodes.reset()
    with torch.no_grad():
        logits = load_module(trained_run).forward_inference({Columns.OBS: torch.from_numpy(obs)})
    expected = logits[Columns.ACTION_DIST_INPUTS].argmax(-1).numpy()
    actions = policy.actor("greedy").actions(obs)
    np.testing.assert_array_equal(actions, expected)
    _, step = episodes.step(actions)
    values = np.asarray(policy.execution.action_values)
    np.testing.assert_allclose(step.child, np.minimum(values[expected] * batch.quantity, batch.quantity))


# ------------------------------------------------------------------------------ an oracle run


@pytest.fixture(scope="module")
def oracle_run(ray_session, tmp_path_factory) -> Path:
    """A one-iteration OPD teacher: PPO with the OPD network on the oracle observation."""
    config = {**TINY, "name": "teacher", "stop": {"training_iterations": 1},
              "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "oracle": True}},
              "env_runners": {"num_env_runners": 0, "num_envs_per_env_runner": 2},
              "training": {**TINY["training"], "train_batch_size_per_learner": 64, "minibatch_size": 64},
              "rl_module": {"module": "opd"}}
    folder = tmp_path_factory.mktemp("oracle")
    out = folder / "runs"
    assert main(["train", str(write_yaml(folder / "teacher.yaml", config)), "--local", "--out", str(out)]) == 0
    return only_run(out, "teacher")


def test_trained_policy_on_an_oracle_run_acts_on_oracle_observations(oracle_run):
    from ray.rllib.core.columns import Columns

    from rlexec.algorithms.opd.module import OPDRecurrentModule
    from rlexec.data.splits import DataSplit
    from rlexec.envs.engine import BatchExecutionEngine, prepare_orders
    from rlexec.envs.interpreters import ObservationInterpreter
    from rlexec.evaluation.episodes import BarEpisodes
    from rlexec.evaluation.runner import run_episodes

    policy = TrainedPolicy.load(oracle_run, name="teacher")
    assert policy.oracle is True
    assert isinstance(policy.model, OPDRecurrentModule) and policy.model.oracle is True
    split = DataSplit.from_dict({"preset": "sample"})
    market = split.market()
    batch = prepare_orders(market, split.orders(market, "test", 6, seed=5, horizon_minutes=240), policy.execution)

    seen = []
    forward = policy.model.forward_inference

    def spy(batch_, **kwargs):
        seen.append(batch_[Columns.OBS].numpy().copy())
        return forward(batch_, **kwargs)

    policy.model.forward_inference = spy
    run_episodes(BarEpisodes(batch, policy.execution, oracle=policy.oracle), policy.actor())
    state = BatchExecutionEngine(policy.execution).reset(batch)
    oracle_obs = ObservationInterpreter(policy.execution, oracle=True)(state)
    student_obs = ObservationInterpreter(policy.execution)(state)
    np.testing.assert_array_equal(seen[0], oracle_obs)
    assert not np.array_equal(seen[0], student_obs)

    out = oracle_run.parent.parent.parent
    assert main(["evaluate", "--policy", str(oracle_run), "--split", "sample", "--num-orders", "10", "--no-plots",
                 "--strategies", "twap", "--out", str(out)]) == 0
    (folder,) = (out / "evaluate").iterdir()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["config"]["strategies"]["teacher"] == {"policy": True, "oracle": True, "actor": "greedy"}
    assert summary["results"]["teacher"]["fill_rate"]["mean"] == pytest.approx(1.0)

"""``rlexec walkforward``: per fold train, evaluate on the next day, tables per test day and pooled; resumable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from rlexec.cli.main import main
from rlexec.errors import ConfigError
from rlexec.training.walkforward import WalkForwardSpec

TINY_PPO = {
    "algorithm": "ppo", "name": "ppo", "seed": 7, "stop": {"training_iterations": 5}, "checkpoint_frequency": 0,
    "validation": {"every": 1, "orders": 10},  # the folds have no validation part: switched off there
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train"}},
    "env_runners": {"num_env_runners": 0, "num_envs_per_env_runner": 4},
    "training": {"lr": 1.0e-4, "gamma": 1.0, "lambda_": 1.0, "train_batch_size_per_learner": 128,
                 "minibatch_size": 64, "num_epochs": 1},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [16]}},
}


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def study_yaml(tmp_path: Path, **changes) -> Path:
    ppo = write_yaml(tmp_path / "ppo.yaml", TINY_PPO)
    data = {"name": "wf", "split": {"preset": "sample"}, "folds": {"last": 2}, "methods": [str(ppo)],
            "set": {"stop.training_iterations": 1},
            "evaluation": {"orders": 12, "seed": 1, "strategies": ["twap", "vwap"], "compare": ["ppo:vwap"]}}
    return write_yaml(tmp_path / "wf.yaml", {**data, **changes})


def read_csv(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open()))


def run_folders(root: Path) -> list[Path]:
    return sorted(root.glob("fold_*/train/*/*"))


def test_two_folds_give_one_row_per_test_day_and_a_rerun_skips_what_is_finished(ray_session, tmp_path, capsys):
    config, out = study_yaml(tmp_path), tmp_path / "runs"
    assert main(["walkforward", str(config), "--out", str(out), "--local"]) == 0
    root = out / "walkforward" / "wf"
    runs = run_folders(root)
    assert [r.parent.parent.parent.name for r in runs] == ["fold_0_2019-02-14", "fold_1_2019-02-15"]
    for run in runs:  # each fold trained on its own days only, one iteration, no validation
        config_yaml = yaml.safe_load((run / "config.yaml").read_text())
        assert config_yaml["stop"] == {"training_iterations": 1} and "validation" not in config_yaml
    assert yaml.safe_load((runs[1] / "config.yaml").read_text())["environment"]["env_config"]["split"][
        "train_days"] == ["2019-02-12", "2019-02-13", "2019-02-14"]

    methods = read_csv(root / "methods.csv")
    assert [(r["scope"], r["method"]) for r in methods] == [
        (scope, method) for scope in ("2019-02-14", "2019-02-15", "pooled") for method in ("twap", "vwap", "ppo")]
    assert [r["n_orders"] for r in methods if r["method"] == "ppo"] == ["12", "12", "24"]
    paired = read_csv(root / "paired.csv")
    pooled_pa = [(r["a"], r["b"]) for r in paired if r["scope"] == "pooled" and r["metric"] == "price_advantage_bps"]
    assert pooled_pa == [("vwap", "twap"), ("ppo", "twap"), ("ppo", "vwap")]
    # every method of a fold ran on the same orders, all of them on the test day
    fold = json.loads((root / "fold_1_2019-02-15" / "evaluation" / "summary.json").read_text())
    assert fold["test_day"] == "2019-02-15" and list(fold["results"]) == ["twap", "vwap", "ppo"]
    orders = read_csv(root / "fold_1_2019-02-15" / "evaluation" / "orders.csv")
    assert {o["date"] for o in orders} == {"2019-02-15"}
    assert "PPO − VWAP" in capsys.readouterr().out

    # Rerun: nothing trained, nothing evaluated again.
    evaluation_summaries = {p: p.stat().st_mtime_ns for p in root.glob("fold_*/evaluation/summary.json")}
    assert main(["walkforward", str(config), "--out", str(out), "--local"]) == 0
    assert run_folders(root) == runs
    assert {p: p.stat().st_mtime_ns for p in root.glob("fold_*/evaluation/summary.json")} == evaluation_summaries
    assert capsys.readouterr().out.count("not trained again") == 2
    assert read_csv(root / "methods.csv") == methods

    # A run that did not finish (no summary.json) is trained afresh, and only its fold is evaluated again.
    (runs[1] / "summary.json").unlink()
    assert main(["walkforward", str(config), "--out", str(out), "--local"]) == 0
    rerun = run_folders(root)
    assert len(rerun) == 3 and rerun[:2] == runs
    assert {p: p.stat().st_mtime_ns for p in root.glob("fold_*/evaluation/summary.json")}[
        root / "fold_0_2019-02-14" / "evaluation" / "summary.json"] == evaluation_summaries[
        root / "fold_0_2019-02-14" / "evaluation" / "summary.json"]
    fold = json.loads((root / "fold_1_2019-02-15" / "evaluation" / "summary.json").read_text())
    assert fold["runs"]["ppo"] == str(rerun[2])


@pytest.mark.parametrize("changes, match", [
    ({"folds": {"last": 0}}, r"folds.last must be an integer >= 1"),
    ({"folds": {"first": 1}}, r"folds: unknown key\(s\) \['first'\]"),
    ({"methods": []}, r"methods must list at least one"),
    ({"evaluation": {"compare": ["ppo:opd"]}}, r"evaluation.compare ppo:opd: no method \['opd'\]"),
    ({"evaluation": {"strategies": ["twap", "best"]}}, r"evaluation.strategies: \['best'\]"),
    ({"set": {"training.lrr": 1}}, r"set training.lrr: unknown key 'lrr'"),
    ({"trainig": 1}, r"unknown top-level key\(s\) \['trainig'\]"),
])
def test_a_bad_study_yaml_is_refused_before_anything_runs(tmp_path, changes, match):
    with pytest.raises(ConfigError, match=match):
        WalkForwardSpec.from_yaml(study_yaml(tmp_path, **changes))


def test_a_teacher_must_be_a_method_listed_before_its_student(tmp_path):
    ppo = write_yaml(tmp_path / "ppo.yaml", TINY_PPO)
    student = write_yaml(tmp_path / "student.yaml", {**TINY_PPO, "name": "student"})
    with pytest.raises(ConfigError, match=r"methods\[0\]: teacher 'ppo' is not a method listed before it"):
        WalkForwardSpec.from_yaml(study_yaml(tmp_path, methods=[{"config": str(student), "teacher": "ppo"},
                                                                str(ppo)]))
    with pytest.raises(ConfigError, match=r"methods\[1\]: a second method named 'ppo'"):
        WalkForwardSpec.from_yaml(study_yaml(tmp_path, methods=[str(ppo), str(ppo)]))


def test_the_shipped_study_yaml_reads():
    spec = WalkForwardSpec.from_yaml(Path(__file__).resolve().parents[2] / "configs" / "opd_walkforward.yaml")
    assert [m.spec.name for m in spec.methods] == ["opd_teacher", "ppo", "opds", "opd"]
    assert [m.teacher for m in spec.methods] == [None, None, None, "opd_teacher"]
    assert spec.evaluation["compare"] == ["opd:opds", "opds:ppo"]

"""Nothing lost, nothing exposed: names stay inside the output root, checkpoints are never lost to
a replacement, run outputs are written whole, and a changed sweep is not silently restored.

Most tests here need no training: a fake algorithm writes checkpoints, a fake Tuner stands in for
Ray Tune, and a small hand-made table stands in for a simulated day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from rlexec import provenance
from rlexec.errors import ConfigError
from rlexec.policies.checkpoints import LATEST, CheckpointError, latest_checkpoint
from rlexec.provenance import new_run_dir
from rlexec.training import runner
from rlexec.training.checkpoints import save_checkpoint
from rlexec.training.spec import TrainSpec
from rlexec.training.sweep import SweepSpec

TINY = {
    "algorithm": "ppo",
    "name": "tiny",
    "seed": 7,
    "stop": {"training_iterations": 2},
    "checkpoint_frequency": 1,
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train"}},
    "env_runners": {"num_env_runners": 0, "num_envs_per_env_runner": 2},
    "training": {"train_batch_size_per_learner": 64, "minibatch_size": 32, "num_epochs": 1},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [8]}},
}
NOT_PLAIN = ["..", "/tmp/x", "../../x", "a/b", ".hidden", "a..b", "run 2", "x\\y"]


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def sweep_file(folder: Path, **changes) -> Path:
    base = write_yaml(folder / "base.yaml", TINY)
    data = {"name": "safe", "base": str(base), "param_space": {"training.lr": {"choice": [1.0e-4, 1.0e-3]}},
            "metric": "episode_return_mean", "num_samples": 2, "max_concurrent": 1,
            "search": {"algorithm": "random", "seed": 0}, "scheduler": {"type": "fifo"}, **changes}
    return write_yaml(folder / "sweep.yaml", data)


def half_written(path: Path, text: str = '{"half": ') -> None:
    path.write_text(text)
    raise OSError("killed mid-write")


# ----------------------------------------------------------------------- names and output roots


@pytest.mark.parametrize("name", NOT_PLAIN)
def test_train_names_are_plain_names(tmp_path, name):
    path = write_yaml(tmp_path / "train.yaml", {**TINY, "name": name})
    with pytest.raises(ConfigError, match=r"name must be a plain name") as info:
        TrainSpec.from_yaml(path)
    assert str(info.value).startswith(str(path))
    with pytest.raises(ConfigError, match="name must be a plain name"):  # --set name=... too
        TrainSpec.from_dict(TINY).with_overrides({"name": name})


def test_plain_names_and_defaults_are_accepted(tmp_path):
    assert TrainSpec.from_dict({**TINY, "name": "opd_v2.1-b"}).name == "opd_v2.1-b"
    assert TrainSpec.from_dict({**TINY, "name": 2024}).name == "2024"
    assert TrainSpec.from_dict({k: v for k, v in TINY.items() if k != "name"}).name == "ppo"
    assert SweepSpec.from_yaml(sweep_file(tmp_path, name=None)).name == "sweep"  # the file's stem


@pytest.mark.parametrize("name", NOT_PLAIN)
def test_sweep_names_are_plain_names(tmp_path, name):
    path = sweep_file(tmp_path, name=name)
    with pytest.raises(ConfigError, match="name must be a plain name") as info:
        SweepSpec.from_yaml(path)
    assert str(info.value).startswith(str(path))


def test_a_sweep_file_stem_that_is_not_a_plain_name_needs_a_name(tmp_path):
    path = sweep_file(tmp_path, name=None).rename(tmp_path / "my sweep.yaml")
    with pytest.raises(ConfigError, match=r"my sweep.yaml: name must be a plain name .* got 'my sweep'"):
        SweepSpec.from_yaml(path)


def test_run_folders_never_leave_the_output_root(tmp_path):
    out = tmp_path / "runs"
    with pytest.raises(ConfigError, match="outside the output folder"):
        new_run_dir(out, "train/../../escaped", {})
    with pytest.raises(ConfigError, match="outside the output folder"):
        new_run_dir(out, "/tmp", {})
    assert not (tmp_path / "escaped").exists()
    assert provenance.inside(out, out / "train" / "x") == (out / "train" / "x").resolve()
    for outside in (out, out / "..", tmp_path / "other", out / "train" / ".." / ".."):
        with pytest.raises(ConfigError, match="outside the output folder"):
            provenance.inside(out, outside)
    (tmp_path / "elsewhere").mkdir()
    out.mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere")  # a link out of the root counts as outside
    with pytest.raises(ConfigError, match="outside the output folder"):
        provenance.inside(out, out / "link" / "x")


@pytest.mark.parametrize("name", ["..", "/victim", "../../victim"])
def test_restart_never_deletes_outside_the_tune_folder(ray_session, tmp_path, monkeypatch, name):
    """A SweepSpec built in code skips the file's name check: the output-root check still holds."""
    out = tmp_path / "runs"
    keep = out / "keep.txt"
    keep.parent.mkdir()
    keep.write_text("precious")
    (tmp_path / "victim").mkdir()
    name = name.replace("/victim", str(tmp_path / "victim"))
    sweep = dataclasses.replace(SweepSpec.from_yaml(sweep_file(tmp_path)), name=name)
    deleted = []

    def refuse_rmtree(path, *args, **kwargs):
        deleted.append(Path(path))
        raise AssertionError(f"rmtree({path})")

    monkeypatch.setattr(shutil, "rmtree", refuse_rmtree)
    from rlexec.training.sweep import run_sweep

    with pytest.raises(ConfigError, match="outside the output folder"):
        run_sweep(sweep, out=out, local=True, restart=True)
    assert deleted == [] and keep.read_text() == "precious" and (tmp_path / "victim").is_dir()


def test_run_folders_are_created_exclusively(tmp_path, monkeypatch):
    """Two processes starting in the same second with the same config: each gets its own folder, even
    when the other one creates it between a check and the creation."""
    frozen = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(provenance, "dt", SimpleNamespace(
        datetime=SimpleNamespace(now=lambda tz=None: frozen), timezone=dt.timezone))
    first = new_run_dir(tmp_path, "simulate", {"a": 1})
    monkeypatch.setattr(Path, "exists", lambda self: False)  # the race: the check saw no folder
    second = new_run_dir(tmp_path, "simulate", {"a": 1})
    third = new_run_dir(tmp_path, "simulate", {"a": 1})
    monkeypatch.undo()
    assert first.name == f"20250102T030405-{provenance.config_hash({'a': 1})}"
    assert [second.name, third.name] == [first.name + "-1", first.name + "-2"]
    assert all(p.is_dir() and not any(p.iterdir()) for p in (first, second, third))


# ------------------------------------------------------------------------------------ checkpoints


class FakeAlgo:
    """Writes a checkpoint folder the way RLlib does: several files, the marker file among them."""

    def __init__(self, weights: str):
        self.weights = weights

    def save_to_path(self, path: str) -> None:
        Path(path).mkdir(parents=True)
        (Path(path) / "weights.txt").write_text(self.weights)
        (Path(path) / "rllib_checkpoint.json").write_text("{}")


def crash_when_moving_in(monkeypatch):
    """``os.replace`` fails (as a kill would stop it) when a finished ``.partial`` checkpoint is renamed."""
    real = os.replace

    def replace(src, dst):
        if Path(src).name.endswith(".partial") and Path(dst).name.startswith("iter_"):
            raise OSError("killed before the rename")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def test_replacing_a_checkpoint_never_loses_the_complete_one(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    save_checkpoint(FakeAlgo("one"), run_dir, 1)
    save_checkpoint(FakeAlgo("two"), run_dir, 2)
    crash_when_moving_in(monkeypatch)
    with pytest.raises(OSError, match="killed before the rename"):
        save_checkpoint(FakeAlgo("two again"), run_dir, 2)  # a crash between setting aside and moving in
    monkeypatch.undo()
    checkpoint = latest_checkpoint(run_dir)
    assert (checkpoint / "weights.txt").read_text() == "two", "the complete iteration-2 checkpoint survives"
    assert json.loads((run_dir / "checkpoints" / LATEST).read_text())["path"] == "iter_000002"

    # the next save of that iteration completes the replacement and tidies up
    final = save_checkpoint(FakeAlgo("two again"), run_dir, 2)
    assert final == run_dir / "checkpoints" / "iter_000002"
    assert latest_checkpoint(run_dir) == final and (final / "weights.txt").read_text() == "two again"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["iter_000001", "iter_000002", LATEST]


def test_pruning_keeps_the_newest_complete_checkpoints(tmp_path):
    run_dir = tmp_path / "run"
    for iteration in (1, 2, 3):
        save_checkpoint(FakeAlgo(str(iteration)), run_dir, iteration, keep=2)
    checkpoints = run_dir / "checkpoints"
    (checkpoints / "iter_000009.partial").mkdir()  # a killed save: no checkpoint, not counted, tidied away
    save_checkpoint(FakeAlgo("4"), run_dir, 4, keep=2)
    assert sorted(p.name for p in checkpoints.iterdir()) == ["iter_000003", "iter_000004", LATEST]
    # iteration numbers past six digits still sort by number
    save_checkpoint(FakeAlgo("big"), run_dir, 1_000_000, keep=2)
    assert latest_checkpoint(run_dir).name == "iter_1000000"
    assert (checkpoints / "iter_000004").is_dir() and not (checkpoints / "iter_000003").exists()


def fake_run(tmp_path: Path, iterations=(1, 2)) -> Path:
    run_dir = tmp_path / "run"
    for iteration in iterations:
        save_checkpoint(FakeAlgo(str(iteration)), run_dir, iteration)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(TINY))
    return run_dir


@pytest.mark.parametrize("name", ["../../etc", "/etc", "iter_000002/../../x", "..", "config.yaml", 2, None])
def test_latest_marker_must_name_a_checkpoint_folder_of_its_own(tmp_path, name):
    run_dir = fake_run(tmp_path)
    marker = run_dir / "checkpoints" / LATEST
    marker.write_text(json.dumps({"iteration": 2, "path": name}))
    with pytest.raises(CheckpointError, match=f"{marker}: names .*, not a checkpoint folder"):
        latest_checkpoint(run_dir)


def test_a_marker_naming_a_missing_checkpoint_falls_back_to_the_newest_complete(tmp_path):
    run_dir = fake_run(tmp_path)
    checkpoints = run_dir / "checkpoints"
    (checkpoints / LATEST).write_text(json.dumps({"iteration": 3, "path": "iter_000003"}))
    (checkpoints / "iter_000003.partial").mkdir()
    assert latest_checkpoint(run_dir) == checkpoints / "iter_000002"
    # a crash mid-replacement: iteration 2 set aside, its replacement not moved in
    os.rename(checkpoints / "iter_000002", checkpoints / "iter_000002.replaced")
    assert latest_checkpoint(run_dir) == checkpoints / "iter_000002.replaced"
    (checkpoints / "iter_000002").mkdir()  # moved in, the old copy not yet deleted: the new one
    assert latest_checkpoint(run_dir) == checkpoints / "iter_000002"


# ------------------------------------------------------------------------ outputs written whole


def test_a_crash_writing_config_yaml_leaves_no_run_to_resume(ray_session, tmp_path, monkeypatch):
    """A half-written config.yaml would make ``--resume`` pick a run it cannot read."""
    real_write_text = Path.write_text

    def write_text(self, text, *args, **kwargs):
        if self.name.startswith("config.yaml"):
            real_write_text(self, text[: len(text) // 2])
            raise OSError("killed mid-write")
        return real_write_text(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(OSError, match="killed mid-write"):
        runner.train(TrainSpec.from_dict(TINY), out=tmp_path, local=True)
    monkeypatch.undo()
    (run_dir,) = (tmp_path / "train" / "tiny").iterdir()
    assert list(run_dir.iterdir()) == [], "no config.yaml, whole or partial"
    with pytest.raises(ConfigError, match="no earlier run of 'tiny'"):
        runner.latest_run(tmp_path, "tiny")


class FakeResults:
    errors = ()

    def __len__(self):
        return 2

    def get_best_result(self, metric, mode):
        return SimpleNamespace(config={"training.lr": 1.0e-4}, metrics={metric: 1.5}, checkpoint=None)

    def get_dataframe(self):
        import pandas as pd

        return pd.DataFrame({"training_iteration": [2, 2], "config/training.lr": [1.0e-4, 1.0e-3]})


class FakeTuner:
    """Ray Tune's Tuner, without trials: ``fit`` leaves a state file that makes the experiment restorable."""

    fits: ClassVar[list[str]] = []

    def __init__(self, trainable=None, *, run_config=None, **kwargs):
        self.experiment = Path(run_config.storage_path) / run_config.name

    @staticmethod
    def can_restore(path) -> bool:
        return (Path(path) / "experiment_state-fake.json").exists()

    @classmethod
    def restore(cls, path, **kwargs):
        tuner = cls.__new__(cls)
        tuner.experiment = Path(path)
        return tuner

    def fit(self):
        FakeTuner.fits.append("fit")
        (self.experiment / "experiment_state-fake.json").write_text("{}")
        return FakeResults()


@pytest.fixture
def fake_tune(ray_session, monkeypatch):
    import ray.tune

    monkeypatch.setattr(ray.tune, "Tuner", FakeTuner)
    FakeTuner.fits = []
    return FakeTuner


def test_a_crash_writing_trials_csv_leaves_no_partial_file(fake_tune, tmp_path, monkeypatch):
    import pandas as pd

    from rlexec.training.sweep import run_sweep

    def killed_to_csv(self, path, **kwargs):
        half_written(Path(path), "training_iteration,config/tr")

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed_to_csv)
    sweep = SweepSpec.from_yaml(sweep_file(tmp_path))
    with pytest.raises(OSError, match="killed mid-write"):
        run_sweep(sweep, out=tmp_path / "runs", local=True)
    experiment = tmp_path / "runs" / "tune" / "safe"
    assert sorted(p.name for p in experiment.iterdir()) == ["experiment_state-fake.json", "rlexec_run.json"]


def test_an_edited_sweep_is_not_restored_under_the_old_experiment(fake_tune, tmp_path):
    from rlexec.training.sweep import run_sweep

    out = tmp_path / "runs"
    path = sweep_file(tmp_path)
    first = run_sweep(SweepSpec.from_yaml(path), out=out, local=True)
    experiment = Path(first["experiment"])
    record = json.loads((experiment / "rlexec_run.json").read_text())
    assert record["settings_hash"] == provenance.config_hash(SweepSpec.from_yaml(path).settings())
    again = run_sweep(SweepSpec.from_yaml(path), out=out, local=True)  # the same finished sweep: read back
    assert FakeTuner.fits == ["fit"] and again == json.loads(json.dumps(first))

    edited = sweep_file(tmp_path, param_space={"training.lr": {"choice": [1.0e-5, 1.0e-2]}})
    with pytest.raises(ConfigError) as info:
        run_sweep(SweepSpec.from_yaml(edited), out=out, local=True)
    message = str(info.value)
    assert message.startswith(str(edited)) and str(experiment / "rlexec_run.json") in message
    assert "--restart" in message and "new name" in message
    assert FakeTuner.fits == ["fit"], "nothing restored"
    assert json.loads((experiment / "rlexec_run.json").read_text()) == record

    # --restart starts the edited sweep afresh and records its settings
    run_sweep(SweepSpec.from_yaml(edited), out=out, local=True, restart=True)
    assert json.loads((experiment / "rlexec_run.json").read_text())["settings_hash"] == provenance.config_hash(
        SweepSpec.from_yaml(edited).settings())
    # an experiment that records no settings (an older rlexec) is not restored blindly either
    (experiment / "rlexec_run.json").write_text("{}")
    with pytest.raises(ConfigError, match="settings it does not record"):
        run_sweep(SweepSpec.from_yaml(edited), out=out, local=True)


def test_the_sweep_settings_do_not_depend_on_where_the_file_is_read_from(tmp_path, monkeypatch):
    path = sweep_file(tmp_path)
    here = SweepSpec.from_yaml(path).settings()
    monkeypatch.chdir(tmp_path)
    assert SweepSpec.from_yaml(Path("sweep.yaml")).settings() == here


def tiny_day():
    """A SimulationResult of three snapshots and two minutes: enough for every writer."""
    from rlexec.market import regime_config
    from rlexec.market.simulate import SimulationResult

    times = np.array([0, 30, 60], dtype=np.int64) * 1_000_000_000
    book = pa.table({"time_ns": times, "mid": [100.0, 100.5, 101.0], "spread": [1.0, 2.0, 1.0],
                     "fundamental": [100.0, 100.0, 101.0]})
    bars = pa.table({"time_ns": times[[0, 2]], "volume": np.array([10, 20]), "spread_mean": [1.5, 1.0]})
    tape = pa.table({"time_ns": times[:2], "price": np.array([100, 101]), "qty": np.array([10, 20])})
    return SimulationResult(config=regime_config("baseline"), seed=0, tape=tape, book=book, minute_bars=bars,
                            events=3, wall_seconds=0.1)


@pytest.mark.parametrize("killed", ["tape", "book", "minute_bars"])
def test_a_crash_writing_a_simulation_table_leaves_no_partial_parquet(tmp_path, monkeypatch, killed):
    from rlexec.market import report

    day = tiny_day()
    real_write_table = pq.write_table

    def write_table(table, where, *args, **kwargs):
        if table is getattr(day, killed):
            Path(where).write_bytes(b"PAR1\x00\x01")
            raise OSError("killed mid-write")
        return real_write_table(table, where, *args, **kwargs)

    monkeypatch.setattr(report.pq, "write_table", write_table)
    with pytest.raises(OSError, match="killed mid-write"):
        report.write_simulation(day, tmp_path)
    written = sorted(p.name for p in tmp_path.iterdir())
    order = ["tape", "book", "minute_bars"]
    assert written == sorted(f"{name}.parquet" for name in order[: order.index(killed)])
    for name in written:
        assert pq.read_table(tmp_path / name).num_rows > 0


def test_a_crash_writing_day_png_leaves_no_partial_png(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from rlexec.market import report

    def killed_savefig(self, where, **kwargs):
        Path(where).write_bytes(b"\x89PNG\r\n\x1a\n")
        raise OSError("killed mid-write")

    monkeypatch.setattr(Figure, "savefig", killed_savefig)
    with pytest.raises(OSError, match="killed mid-write"):
        report.write_simulation(tiny_day(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.parquet", "minute_bars.parquet", "tape.parquet"]
    monkeypatch.undo()
    paths = report.write_simulation(tiny_day(), tmp_path)
    assert paths["day"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["book.parquet", "day.png", "minute_bars.parquet",
                                                          "tape.parquet"]

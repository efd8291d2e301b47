"""What ``rlexec train`` shows while it runs (issue 14): timings that add up, progress lines with an
ETA, TensorBoard event files, and Ray's own messages in ``ray.log`` instead of the terminal."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from rlexec.training.progress import (
    ConsoleMonitor,
    IterationClock,
    ProgressFormatter,
    clock_text,
    eta_seconds,
    timing_parts,
)
from rlexec.training.ray_logs import LOG_NAME, RayLogRouter
from rlexec.training.tensorboard import ScalarWriter, progress_tag, read_scalars

REPO = Path(__file__).resolve().parents[2]
TINY = {
    "algorithm": "ppo",
    "name": "watch",
    "seed": 3,
    "stop": {"training_iterations": 2},
    "checkpoint_frequency": 1,
    "keep_checkpoints": 2,
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train"}},
    "env_runners": {"num_env_runners": 1, "num_envs_per_env_runner": 4},
    "training": {"lr": 1.0e-4, "gamma": 1.0, "lambda_": 1.0, "train_batch_size_per_learner": 256,
                 "minibatch_size": 128, "num_epochs": 1},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [16]}},
}
RAY_WARNINGS = ("Token authentication is enabled", "DeprecationWarning", "gputil")


# --------------------------------------------------------------------------- timings that add up


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += seconds


class FakeStats:
    """Stands for RLlib's stats object: records that RLlib's own timing still happens."""

    def __init__(self, log: list, key):
        self.log, self.key = log, key

    def __enter__(self):
        self.log.append(("enter", self.key))
        return self

    def __exit__(self, *exc):
        self.log.append(("exit", self.key))


def fake_algo(*, parallel_evaluation: bool = False):
    log: list = []
    metrics = SimpleNamespace()
    metrics.log_time = lambda key, **kwargs: FakeStats(log, key)
    return SimpleNamespace(metrics=metrics, config=SimpleNamespace(evaluation_parallel_to_training=parallel_evaluation)), log


def fake_train(algo, clock: FakeClock, blocks: list[tuple[str, float]], overhead: float) -> None:
    """``algo.train()``: RLlib's timed blocks in order, then ``overhead`` seconds of untimed work."""
    for name, seconds in blocks:
        with algo.metrics.log_time(("timers", name)):
            clock.wait(seconds)
    with algo.metrics.log_time(("timers", "training_iteration")):  # a timer that is not a part
        pass
    clock.wait(overhead)


def test_iteration_clock_splits_each_iteration_into_parts_that_add_up():
    clock = FakeClock()
    algo, rllib_log = fake_algo()
    timer = IterationClock(algo, clock=clock)
    clock.wait(0.5)  # before the first iteration's parts: the loop's own work
    with timer.part("reseed"):
        clock.wait(0.25)
    with timer.part("train"):
        # Sampling twice in one iteration (RLlib repeats training_step until min_*_per_iteration is met).
        fake_train(algo, clock, [("env_runner_sampling_timer", 2.0), ("learner_update_timer", 1.0),
                                 ("env_runner_sampling_timer", 0.75), ("synch_weights", 0.125)], overhead=0.375)
    with timer.part("checkpoint"):
        clock.wait(0.0625)
    first = timer.lap()
    assert first == {
        "time_iteration_s": 5.0625,
        "time_sample_s": 2.75, "time_learn_s": 1.0, "time_sync_weights_s": 0.125,
        "time_rllib_other_s": 0.375,
        "time_reseed_s": 0.25, "time_checkpoint_s": 0.0625, "time_other_s": 0.5,
        "time_elapsed_s": 5.0625,
    }
    assert sum(timing_parts(first).values()) == pytest.approx(first["time_iteration_s"], abs=1e-12)
    # RLlib still times every block itself (its smoothed timers keep working).
    assert rllib_log.count(("enter", ("timers", "env_runner_sampling_timer"))) == 2
    assert rllib_log.count(("exit", ("timers", "env_runner_sampling_timer"))) == 2
    assert ("exit", ("timers", "training_iteration")) in rllib_log

    # The next iteration starts where the last one's line was made: no gap, no overlap. A part that
    # does not happen (no checkpoint, no sampling timed) reports zero, not last iteration's value.
    clock.wait(0.1)
    with timer.part("reseed"):
        clock.wait(0.2)
    with timer.part("train"):
        fake_train(algo, clock, [("learner_update_timer", 0.5)], overhead=0.25)
    second = timer.lap()
    assert second["time_iteration_s"] == pytest.approx(1.05)
    assert second["time_sample_s"] == 0.0 and second["time_checkpoint_s"] == 0.0
    assert second["time_learn_s"] == 0.5 and second["time_rllib_other_s"] == pytest.approx(0.25)
    assert second["time_other_s"] == pytest.approx(0.1)
    assert sum(timing_parts(second).values()) == pytest.approx(second["time_iteration_s"], abs=1e-12)
    assert second["time_elapsed_s"] == pytest.approx(first["time_iteration_s"] + second["time_iteration_s"])


def test_parallel_evaluation_is_reported_outside_the_sum():
    """Evaluation parallel to training overlaps the sampling: counting it would exceed the wall-clock."""
    clock = FakeClock()
    algo, _ = fake_algo(parallel_evaluation=True)
    timer = IterationClock(algo, clock=clock)
    with timer.part("train"):
        fake_train(algo, clock, [("env_runner_sampling_timer", 1.0), ("learner_update_timer", 0.5)], overhead=0.0)
        timer.add("evaluate", 1.2)  # what the evaluation thread timed meanwhile
    figures = timer.lap()
    assert figures["time_evaluate_parallel_s"] == 1.2 and "time_evaluate_s" not in figures
    assert figures["time_rllib_other_s"] == 0.0
    assert sum(timing_parts(figures).values()) == pytest.approx(figures["time_iteration_s"], abs=1e-12)


def test_watching_twice_does_not_count_twice():
    clock = FakeClock()
    algo, _ = fake_algo()
    timer = IterationClock(algo, clock=clock)
    timer.watch(algo)
    with timer.part("train"):
        fake_train(algo, clock, [("learner_update_timer", 1.0)], overhead=0.0)
    assert timer.lap()["time_learn_s"] == 1.0


# ------------------------------------------------------------------------------- the progress line


def test_eta_follows_the_stop_criterion():
    line = {"iteration": 3, "env_steps_sampled_lifetime": 6144, "time_elapsed_s": 37.0}
    assert eta_seconds({"training_iterations": 10}, line, 12.5, None) == 7 * 12.5
    assert eta_seconds({"env_steps": 10240}, line, 12.5, 512.0) == (10240 - 6144) / 512.0
    # time_s is checked between iterations: the run ends with the first iteration past it
    assert eta_seconds({"time_s": 60}, line, 10.0, None) == 30.0
    assert eta_seconds({"time_s": 30}, line, 10.0, None) == 0.0
    # several criteria: the first one met ends the run
    assert eta_seconds({"training_iterations": 10, "env_steps": 10240}, line, 12.5, 512.0) == 8.0
    assert eta_seconds({"training_iterations": 10}, line, None, None) is None
    assert [clock_text(s) for s in (0, 37.4, 87, 725, 3723)] == ["0:00", "0:37", "1:27", "12:05", "1:02:03"]


def test_progress_line_is_compact_and_names_what_it_shows():
    formatter = ProgressFormatter({"training_iterations": 10}, window=2)
    base = {"env_steps_sampled": 2048.0, "episode_return_mean": -0.1534, "total_loss": 0.02113,
            "healthy_env_runners": 0.0, "env_runner_restarts": 0.0}
    first = formatter({**base, "iteration": 1, "env_steps_sampled_lifetime": 2048.0, "time_iteration_s": 20.0,
                       "time_elapsed_s": 20.0})
    assert first == "iter 1/10  steps 2,048  return -0.1534  loss 0.02113  20 s/it  elapsed 0:20  ETA 3:00"
    formatter({**base, "iteration": 2, "env_steps_sampled_lifetime": 4096.0, "time_iteration_s": 13.0,
               "time_elapsed_s": 33.0})
    third = formatter({**base, "iteration": 3, "env_steps_sampled_lifetime": 6144.0, "time_iteration_s": 11.8,
                       "time_elapsed_s": 44.8})
    # s/it over the last two iterations (window=2): (13 + 11.8) / 2 = 12.4; 7 left
    assert third == "iter 3/10  steps 6,144  return -0.1534  loss 0.02113  12.4 s/it  elapsed 0:45  ETA 1:27"
    assert "healthy" not in third and "runners" not in third, "no remote runners: nothing to report"

    remote = ProgressFormatter({"env_steps": 8192}, remote_env_runners=2, score="validation_price_advantage_bps")
    text = remote({"iteration": 2, "env_steps_sampled": 4096.0, "env_steps_sampled_lifetime": 4096.0,
                   "evaluation_return_mean": -0.05, "td_error": 0.5, "healthy_env_runners": 1.0,
                   "env_runner_restarts": 1.0, "validation_price_advantage_bps": 1.234,
                   "time_iteration_s": 8.0, "time_elapsed_s": 16.0})
    assert text == ("iter 2  steps 4,096/8,192  eval return -0.05  validation_price_advantage_bps 1.234  "
                    "td_error 0.5  runners 1/2  restarts 1  8 s/it  elapsed 0:16  ETA 0:08")


def test_console_monitor_counts_remote_runners_from_the_config(tmp_path):
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200, record=True)
    monitor = ConsoleMonitor(console, {"training_iterations": 2})
    monitor.status("starting Ray")
    line = {"iteration": 1, "healthy_env_runners": 0.0, "time_iteration_s": 1.0, "time_elapsed_s": 1.0}
    monitor.started(tmp_path, SimpleNamespace(num_env_runners=0))
    monitor.iteration(line)
    monitor.started(tmp_path, SimpleNamespace(num_env_runners=3))
    monitor.iteration({**line, "healthy_env_runners": 3.0})
    text = console.export_text()
    assert "starting Ray…" in text and f"run folder: {tmp_path}" in text
    first, second = [row for row in text.splitlines() if row.startswith("iter ")]
    assert "runners" not in first and "runners 3/3" in second


def test_console_monitor_attaches_a_resumed_runs_log_only_once_it_trains(tmp_path):
    """A resume that fails before its first iteration must leave the run folder as it was."""
    from rich.console import Console

    class Router:
        verbose, path, workers = False, None, 0

        def attach(self, folder):
            self.path = folder / LOG_NAME

        def capture_worker_output(self):
            self.workers += 1

    console = Console(file=io.StringIO())
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    fresh.mkdir()
    resumed.mkdir()
    (resumed / "progress.jsonl").write_text('{"iteration": 1}\n')
    new_run = ConsoleMonitor(console, {"training_iterations": 2}, ray_log=Router())
    new_run.started(fresh)
    assert new_run.ray_log.path == fresh / LOG_NAME
    again = ConsoleMonitor(console, {"training_iterations": 2}, ray_log=Router())
    again.started(resumed)
    assert again.ray_log.path is None and again.ray_log.workers == 1
    again.iteration({"iteration": 2})
    assert again.ray_log.path == resumed / LOG_NAME


# ---------------------------------------------------------------------------------- a real run


@pytest.fixture(scope="module")
def watched_run(ray_session, tmp_path_factory):
    from rlexec.training.runner import train
    from rlexec.training.spec import TrainSpec

    out = tmp_path_factory.mktemp("runs")
    run_dir = train(TrainSpec.from_dict(TINY), out=out, local=True)
    lines = [json.loads(row) for row in (run_dir / "progress.jsonl").read_text().splitlines()]
    return run_dir, lines


def test_reported_timings_add_up_to_each_iteration(watched_run):
    """RLlib's smoothed sample + learn timers exceeded its own time_this_iter_s; these add up."""
    _, lines = watched_run
    assert [line["iteration"] for line in lines] == [1, 2]
    for line in lines:
        parts = timing_parts(line)
        assert {"time_sample_s", "time_learn_s", "time_sync_weights_s", "time_rllib_other_s", "time_reseed_s",
                "time_checkpoint_s", "time_other_s"} <= set(parts)
        assert sum(parts.values()) == pytest.approx(line["time_iteration_s"], abs=1e-9)
        assert all(value >= 0 for value in parts.values()), parts  # no part counted inside another
        assert parts["time_sample_s"] > 0 and parts["time_learn_s"] > 0 and parts["time_checkpoint_s"] > 0
        # algo.train()'s parts against RLlib's own, unsmoothed, wall-clock of the same call
        inside = parts["time_sample_s"] + parts["time_learn_s"] + parts["time_sync_weights_s"]
        assert inside <= line["time_this_iter_s"]
        assert inside + parts["time_rllib_other_s"] == pytest.approx(line["time_this_iter_s"], abs=0.05)
        assert "sample_time_s" not in line and "learn_time_s" not in line, "the smoothed timers are gone"
    # consecutive iterations tile the run: their sum is the time since the loop started
    assert sum(line["time_iteration_s"] for line in lines) == pytest.approx(lines[-1]["time_elapsed_s"], abs=1e-6)


def test_event_files_hold_every_figure_of_progress_jsonl(watched_run):
    run_dir, lines = watched_run
    scalars = read_scalars(run_dir / "tb")
    expected = {progress_tag(key) for line in lines for key in line if key != "iteration"}
    assert set(scalars) == expected
    assert {"train/episode_return_mean", "train/policy_loss", "train/total_loss", "time/time_sample_s",
            "time/time_iteration_s"} <= expected
    for line in lines:
        for key, value in line.items():
            if key != "iteration":
                # TensorBoard keeps 32-bit floats
                assert scalars[progress_tag(key)][line["iteration"]] == pytest.approx(value, rel=1e-6, abs=1e-30), key


def test_scalar_writer_for_other_learners(tmp_path):
    writer = ScalarWriter(tmp_path / "tb")
    writer.write(1, {"loss": 0.5, "accuracy": 0.75, "skipped": float("nan"), "flag": True, "name": "x"},
                 group="learner")
    writer.write(2, {"loss": 0.25}, group="learner")
    writer.close()
    assert read_scalars(tmp_path / "tb") == {"learner/loss": {1: 0.5, 2: 0.25}, "learner/accuracy": {1: 0.75}}


# ----------------------------------------------------------------------------------- Ray's output


def test_ray_log_router_moves_ray_messages_to_the_run_folder(tmp_path):
    import ray

    ray_file = str(Path(ray.__file__).parent / "rllib" / "algorithms" / "algorithm.py")
    terminal = io.StringIO()  # stands for the terminal: a stream handler on a Ray logger, as Ray installs them
    tune_logger = logging.getLogger("ray.tune.test_progress")
    tune_logger.addHandler(logging.StreamHandler(terminal))
    handlers = {name: list(logging.getLogger(name).handlers) for name in ("ray", "ray.rllib", tune_logger.name)}
    try:
        with warnings.catch_warnings(record=True) as shown:
            warnings.simplefilter("always")
            with RayLogRouter(tmp_path / "out") as router:
                assert logging.getLogger("ray.rllib").handlers != handlers["ray.rllib"]
                logging.getLogger("ray.rllib.algorithms.x").warning("DeprecationWarning: held until the run folder exists")
                warnings.warn_explicit("old Ray API", DeprecationWarning, ray_file, 12)
                warnings.warn_explicit("rlexec's own warning", UserWarning, __file__, 1)
                router.attach(tmp_path / "run")
                tune_logger.warning("Install gputil for GPU system monitoring.")
            tune_logger.warning("after the run: Ray prints again")
        assert {name: list(logging.getLogger(name).handlers) for name in handlers} == handlers
    finally:
        tune_logger.handlers.clear()
    assert [str(w.message) for w in shown] == ["rlexec's own warning"]
    assert terminal.getvalue() == "after the run: Ray prints again\n"
    text = (tmp_path / "run" / LOG_NAME).read_text()
    assert text.index("held until") < text.index("old Ray API") < text.index("gputil")
    assert "rlexec's own warning" not in text and "after the run" not in text
    assert text.count("gputil") == 1, "one line per message, though two loggers' handlers were swapped"
    assert router.path == tmp_path / "run" / LOG_NAME
    assert not (tmp_path / "out" / LOG_NAME).exists()


def test_ray_log_router_falls_back_to_the_out_folder_and_verbose_changes_nothing(tmp_path):
    logger = logging.getLogger("ray.tune.test_progress")
    with RayLogRouter(tmp_path / "out"):
        logger.warning("before any run folder")  # e.g. the run failed while building the algorithm
    assert "before any run folder" in (tmp_path / "out" / LOG_NAME).read_text()
    handlers = list(logging.getLogger("ray").handlers)
    with RayLogRouter(tmp_path / "verbose", verbose=True) as router:
        assert logging.getLogger("ray").handlers == handlers
        logger.warning("shown with --verbose")
        router.attach(tmp_path / "verbose_run")
    assert not (tmp_path / "verbose_run" / LOG_NAME).exists() and router.path is None


def test_ray_log_router_moves_worker_output(tmp_path, monkeypatch):
    """EnvRunner/trial process output that Ray forwards to the driver (log_to_driver) goes to the file."""
    from ray._private import ray_logging

    dispatcher = ray_logging.WorkerStandardStreamDispatcher()
    printed = []
    dispatcher.add_handler("ray_print_logs", printed.append)
    monkeypatch.setattr(ray_logging, "global_worker_stdstream_dispatcher", dispatcher)
    batch = {"pid": 4242, "ip": "127.0.0.1", "actor_name": "SingleAgentEnvRunner", "is_err": True,
             "lines": ["WARNING rl_module.py:463 -- DeprecationWarning: RLModule(config=...)"]}
    status = {"pid": "autoscaler", "ip": "127.0.0.1", "is_err": False,
              "lines": ["======== Autoscaler status ========", "Node status"]}  # Ray prints none of it
    with RayLogRouter(tmp_path) as router:
        router.attach(tmp_path / "run")
        dispatcher.emit(batch)
        dispatcher.emit(status)
    assert printed == []
    assert "Autoscaler status" not in (tmp_path / "run" / LOG_NAME).read_text()
    assert "(SingleAgentEnvRunner pid=4242 ip=127.0.0.1) [stderr] WARNING rl_module.py:463" in \
        (tmp_path / "run" / LOG_NAME).read_text()
    dispatcher.emit(batch)  # Ray prints again once the run is over
    assert printed == [batch]


def run_cli(tmp_path: Path, *flags: str, iterations: int = 2) -> tuple[subprocess.CompletedProcess, Path]:
    """``rlexec train`` in a process of its own: a fresh Ray, whose start-up messages are part of the test."""
    config = tmp_path / "watch.yaml"
    config.write_text(yaml.safe_dump({**TINY, "stop": {"training_iterations": iterations}}, sort_keys=False))
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # A user's shell: no cluster, and no auth mode (the ray_session fixture's ray.init sets it in this
    # process's environment, which would silence the token notice).
    for name in ("RAY_ADDRESS", "RAY_AUTH_MODE"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-m", "rlexec.cli.main", "train", str(config), "--local",
                             "--out", str(out), *flags], capture_output=True, text=True, timeout=300, env=env,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = (out / "train" / "watch").iterdir()
    return result, run_dir


def test_train_prints_progress_lines_and_keeps_ray_messages_in_the_log(tmp_path):
    result, run_dir = run_cli(tmp_path)
    rows = [row for row in result.stdout.splitlines() if row.startswith("iter ")]
    assert [row.split("  ")[0] for row in rows] == ["iter 1/2", "iter 2/2"], result.stdout
    assert all(" s/it  elapsed " in row and "  ETA " in row for row in rows), rows
    assert rows[-1].endswith("ETA 0:00")
    assert "healthy" not in result.stdout and "runners" not in result.stdout  # --local: no remote runners
    assert "starting Ray…" in result.stdout and "building the algorithm…" in result.stdout
    for text in RAY_WARNINGS:
        assert text not in result.stdout and text not in result.stderr, text
    log = (run_dir / LOG_NAME).read_text()
    for text in RAY_WARNINGS:
        assert text in log, text


@pytest.mark.slow
def test_verbose_train_prints_ray_messages(tmp_path):
    result, run_dir = run_cli(tmp_path, "--verbose", iterations=1)
    assert "iter 1/1" in result.stdout
    for text in RAY_WARNINGS:
        assert text in result.stdout + result.stderr, text
    assert not (run_dir / LOG_NAME).exists()

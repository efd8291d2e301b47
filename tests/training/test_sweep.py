"""``rlexec tune``: the sweep YAML, a tiny real sweep on the shipped sample, and resuming a killed sweep."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from rlexec.errors import ConfigError
from rlexec.training.sweep import Scorer, ScoreSpec, SweepSpec, tune_domain

REPO = Path(__file__).resolve().parents[2]
SAMPLE_OVERRIDES = {  # configs/opds.yaml shrunk to the shipped sample and a few hundred steps per iteration
    "env_runners.num_env_runners": 0,
    "env_runners.num_envs_per_env_runner": 4,
    "environment.env_config.split": {"preset": "sample"},
    "training.train_batch_size_per_learner": 128,
    "training.minibatch_size": 64,
    "training.num_epochs": 1,
}
SAMPLE_SCORE = {"metric": "price_advantage_bps", "split": "sample", "part": "validation", "num_orders": 40, "seed": 0}
RLLIB_EVALUATION = {  # RLlib's own evaluation on the validation day, as the shipped sweep once scored trials
    "evaluation.evaluation_interval": 1,
    "evaluation.evaluation_duration": 8,
    "evaluation.evaluation_duration_unit": "episodes",
    "evaluation.evaluation_config": {"env_config": {"split": {"preset": "sample"}, "part": "validation"}},
}
ALPHA = "environment.env_config.execution.reward.alpha"


def sweep_yaml(folder: Path, name: str = "tiny", **changes) -> Path:
    data = {
        "name": name,
        "base": str(REPO / "configs" / "opds.yaml"),
        "overrides": dict(SAMPLE_OVERRIDES),
        "param_space": {"training.lr": {"loguniform": [1.0e-5, 1.0e-3]}, ALPHA: {"choice": [50.0, 100.0]}},
        "score": dict(SAMPLE_SCORE),
        "metric": None,  # the score's name
        "mode": "max",
        "num_samples": 3,
        "max_concurrent": 2,
        "search": {"algorithm": "optuna", "sampler": "tpe", "seed": 0},
        "scheduler": {"type": "asha", "grace_period": 1},
        "stop": {"training_iterations": 2},
        "checkpoint_frequency": 1,
        **changes,
    }
    data = {k: v for k, v in data.items() if v is not None}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# -------------------------------------------------------------------------------------- SweepSpec


def test_sweep_spec_reads_the_shipped_sweep_and_the_base_config():
    sweep = SweepSpec.from_yaml(REPO / "tune_configs" / "opds_lr_alpha.yaml")
    assert sweep.name == "opds_lr_alpha" and sweep.metric == "validation_price_advantage_bps" and sweep.mode == "max"
    assert sweep.score == ScoreSpec(metric="price_advantage_bps", split={"preset": "us_equity_1min"}, part="validation",
                                    num_orders=500, seed=0)
    assert sweep.score.name == sweep.metric
    assert sweep.base.algorithm == "opd" and sweep.base.name == "opds"
    assert sweep.base.stop == {"training_iterations": 15}
    assert sweep.base.sections["env_runners"]["num_env_runners"] == 0  # the overrides reach the base
    assert sweep.base.sections["training"]["distillation_coeff"] == 0.0
    assert sweep.search == {"algorithm": "optuna", "sampler": "tpe", "seed": 0}
    assert sweep.scheduler == {"type": "asha", "grace_period": 3, "reduction_factor": 2}
    assert set(sweep.param_space) == {"training.lr", "environment.env_config.execution.reward.alpha"}


def test_sweep_spec_relative_base_and_defaults(tmp_path):
    (tmp_path / "configs").mkdir()
    base = yaml.safe_load((REPO / "configs" / "opds.yaml").read_text())
    (tmp_path / "configs" / "mine.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "sweeps").mkdir()
    path = tmp_path / "sweeps" / "small.yaml"
    path.write_text(yaml.safe_dump({"base": "../configs/mine.yaml", "param_space": {"training.lr": {"choice": [1e-4]}}}))
    sweep = SweepSpec.from_yaml(path)
    assert sweep.name == "small" and sweep.num_samples == 4 and sweep.max_concurrent == 2
    assert sweep.search["algorithm"] == "optuna" and sweep.scheduler == {"type": "asha"}
    assert sweep.base.source == str(path.parent / "../configs/mine.yaml")
    assert sweep.score is None and sweep.metric == "episode_return_mean"
    path.write_text(yaml.safe_dump({"base": "../configs/mine.yaml", "param_space": {ALPHA: {"choice": [50.0]}},
                                    "score": {}}))
    sweep = SweepSpec.from_yaml(path)
    assert sweep.score == ScoreSpec() and sweep.metric == "validation_price_advantage_bps"


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"param_space": {"training.lr": {"normal": [0, 1]}}}, r"param_space\.training\.lr must be one of"),
        ({"param_space": {"training.lr": {"uniform": [0, 1], "choice": [1]}}}, r"param_space\.training\.lr"),
        ({"param_space": {"training.lr": [1e-4, 1e-3]}}, r"param_space\.training\.lr"),
        ({"param_space": {}}, r"param_space must map"),
        ({"param_space": {"stop.training_iterations": {"choice": [0, 5]}}}, r"stop\.training_iterations"),
        ({"param_space": {"trainer.lr": {"choice": [1e-4]}}}, r"unknown top-level key.*trainer"),
        ({"searcher": {"algorithm": "optuna"}}, r"unknown key.*searcher"),
        ({"search": {"algorithm": "hebo"}}, r"search\.algorithm must be one of"),
        ({"scheduler": {"type": "pbt"}}, r"scheduler\.type must be one of"),
        ({"mode": "maximise"}, r"mode must be 'max' or 'min'"),
        ({"base": None}, r"'base' \(a training config\) is required"),
        ({"base": "no_such_config.yaml"}, r"no_such_config.yaml: config file not found"),
        ({"overrides": {"training.lr.x": 1}}, r"non-mapping"),
        # trials scored on their own objective
        ({"score": None, "metric": "evaluation_return_mean", "overrides": {**SAMPLE_OVERRIDES, **RLLIB_EVALUATION}},
         rf"param_space\.{ALPHA} is not pinned in evaluation\.evaluation_config\.env_config"),
        ({"score": None, "metric": "episode_return_mean"},
         rf"param_space\.{ALPHA} changes the training env, so episode_return_mean"),
        ({"score": None}, rf"param_space\.{ALPHA} changes the training env"),
        ({"param_space": {"environment.env_config.execution.n_steps": {"choice": [4, 8]}}},
         r"param_space\.environment\.env_config\.execution\.n_steps: the score runs every trial on the base's"),
        ({"param_space": {"environment.env_config.continuous": {"choice": [True]}}}, r"discrete bar-env policies"),
        ({"score": {"metric": "pa_bps"}}, r"score\.metric must be one of \[.*'price_advantage_bps'.*got 'pa_bps'"),
        ({"score": {"part": "holdout"}}, r"score\.part must be one of"),
        ({"score": {"num_orders": 0}}, r"score\.num_orders must be an integer >= 1"),
        ({"score": {"seed": 1.5}}, r"score\.seed must be an integer >= 0"),
        ({"score": {"split": "nasdaq"}}, r"score\.split\.preset must be one of"),
        ({"score": {"orders": 10}}, r"score: unknown key.*orders"),
        ({"score": [1]}, r"score must be a mapping"),
    ],
)
def test_sweep_spec_errors(tmp_path, changes, match):
    path = sweep_yaml(tmp_path, "bad", **changes)
    with pytest.raises(ConfigError, match=match) as info:
        SweepSpec.from_yaml(path)
    if "base" not in changes:
        assert str(path) in str(info.value) or "opds.yaml" in str(info.value)


def test_sweep_spec_score_needs_a_bar_env_base(tmp_path):
    base = yaml.safe_load((REPO / "configs" / "qlearning_twap.yaml").read_text())
    (tmp_path / "q.yaml").write_text(yaml.safe_dump(base))
    path = sweep_yaml(tmp_path, "lob", base=str(tmp_path / "q.yaml"), overrides=None,
                      param_space={"training.alpha": {"choice": [0.1, 0.2]}})
    with pytest.raises(ConfigError, match=f"{path}: score runs discrete bar-env policies; the base trains on 'lob'"):
        SweepSpec.from_yaml(path)


def test_evaluation_return_is_accepted_when_the_evaluation_env_pins_every_swept_key(tmp_path):
    pinned = {"env_config": {"split": {"preset": "sample"}, "part": "validation",
                             "execution": {"reward": {"alpha": 100.0}}}}
    path = sweep_yaml(tmp_path, "pinned", score=None, metric="evaluation_return_mean",
                      overrides={**SAMPLE_OVERRIDES, **RLLIB_EVALUATION, "evaluation.evaluation_config": pinned})
    sweep = SweepSpec.from_yaml(path)
    assert sweep.metric == "evaluation_return_mean" and sweep.score is None
    # RLlib deep-merges the evaluation env_config over each trial's: the pinned alpha wins.
    from rlexec.training.spec import build_algorithm_config

    trial = sweep.base.with_overrides({ALPHA: 25.0})
    evaluation = build_algorithm_config(trial, local=True).get_evaluation_config_object()
    assert evaluation.env_config["execution"]["reward"]["alpha"] == 100.0
    assert evaluation.env_config["part"] == "validation"


def test_sweep_spec_bad_optuna_sampler_is_an_error(tmp_path):
    from rlexec.training.sweep import _optuna_searcher

    sweep = SweepSpec.from_yaml(sweep_yaml(tmp_path, search={"algorithm": "optuna", "sampler": "cmaes"}))
    with pytest.raises(ConfigError, match="search.sampler must be one of"):
        _optuna_searcher(sweep)


def test_tune_domains():
    from ray.tune.search.sample import Categorical, Float, Integer

    assert isinstance(tune_domain({"choice": [1, 2]}), Categorical)
    lr = tune_domain({"loguniform": [1e-5, 1e-3]})
    assert isinstance(lr, Float) and lr.lower == 1e-5 and lr.upper == 1e-3
    assert isinstance(tune_domain({"randint": [1, 4]}), Integer)


# ---------------------------------------------------------------------------------- the score


def trial_reports(monkeypatch, trial_params: dict, **kwargs) -> list[dict]:
    """What ``trial_trainable`` reports to Tune, run outside Tune."""
    import ray.tune

    from rlexec.training.sweep import trial_trainable

    reports = []
    monkeypatch.setattr(ray.tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(ray.tune, "report", lambda metrics, checkpoint=None: reports.append(dict(metrics)))
    trial_trainable(trial_params, **kwargs)
    return reports


def test_trials_that_differ_only_in_the_swept_reward_score_alike(ray_session, tmp_path, monkeypatch):
    """lr 0: both trials keep the seed's initial weights, so one policy; only alpha differs between them.

    The score uses the order metric ``reward``, which alpha does enter: the score must price it
    with the base's alpha (100), not the trial's. RLlib's evaluation return, the old objective,
    prices each trial with its own alpha.
    """
    path = sweep_yaml(tmp_path, "alpha", score={**SAMPLE_SCORE, "metric": "reward"},
                      overrides={**SAMPLE_OVERRIDES, **RLLIB_EVALUATION, "training.lr": 0.0},
                      param_space={ALPHA: {"choice": [25.0, 400.0]}}, stop={"training_iterations": 1})
    sweep = SweepSpec.from_yaml(path)
    assert sweep.metric == "validation_reward"
    scores, returns = {}, {}
    for alpha in (25.0, 400.0):
        (line,) = trial_reports(monkeypatch, {ALPHA: alpha}, base=sweep.base, checkpoint_every=0, score=sweep.score)
        assert line["iteration"] == 1
        scores[alpha], returns[alpha] = line["validation_reward"], line["evaluation_return_mean"]
    assert np.isfinite(scores[25.0]) and scores[25.0] == scores[400.0]
    assert returns[25.0] > returns[400.0], "RLlib's evaluation return charges each trial its own penalty"

    # The score is that of the seed's initial policy, rewards priced with the base's alpha (100).
    from rlexec.envs.config import ExecutionConfig
    from rlexec.evaluation.episodes import BarEpisodes
    from rlexec.evaluation.runner import run_episodes
    from rlexec.policies.actors import GreedyActor
    from rlexec.training.spec import build_algorithm_config

    algo = build_algorithm_config(sweep.base.with_overrides({ALPHA: 25.0})).build_algo()
    try:
        module = algo.get_module()
    finally:
        algo.stop()
    scorer = Scorer(sweep.score, sweep.base)
    assert scorer.execution.reward.alpha == 100.0 and len(scorer.batch) == 40
    rewards = run_episodes(BarEpisodes(scorer.batch, scorer.execution), GreedyActor(module))[0].metrics
    assert scores[25.0] == pytest.approx(float(np.mean(rewards["reward"])), rel=1e-12)
    priced_by_trial = ExecutionConfig.from_dict({"reward": {"alpha": 25.0}})
    cheaper = run_episodes(BarEpisodes(scorer.batch, priced_by_trial), GreedyActor(module))[0].metrics
    assert float(np.mean(cheaper["reward"])) > scores[25.0], "alpha 25 would have scored this policy higher"


def test_scorer_reports_the_mean_price_advantage_of_the_greedy_policy():
    """The score's orders: ``num_orders`` drawn with ``seed`` from the validation day; PA averaged over them."""
    import torch
    from ray.rllib.core.columns import Columns

    from rlexec.data.splits import DataSplit
    from rlexec.envs.engine import prepare_orders
    from rlexec.evaluation.episodes import BarEpisodes
    from rlexec.evaluation.runner import run_episodes
    from rlexec.training.spec import TrainSpec

    base = TrainSpec.from_yaml(REPO / "configs" / "opds.yaml").with_overrides(SAMPLE_OVERRIDES)
    scorer = Scorer(ScoreSpec.from_dict(SAMPLE_SCORE, "test"), base)
    split = DataSplit.from_dict({"preset": "sample"})
    market = split.market()
    orders = split.orders(market, "validation", 40, 0, scorer.execution.horizon_minutes)
    assert list(scorer.batch.orders) == orders
    assert {order.date.isoformat() for order in orders} == {"2019-02-14"}

    class ActionOne:  # a module whose greedy action is always 1: a quarter of Q per step
        def forward_inference(self, batch):
            logits = torch.zeros(batch[Columns.OBS].shape[0], 5)
            logits[:, 1] = 1.0
            return {Columns.ACTION_DIST_INPUTS: logits}

    class QuarterPerStep:
        name = "quarter"

        def fractions(self, state):
            return np.full(len(state.batch), 0.25)

    episodes = BarEpisodes(prepare_orders(market, orders, scorer.execution), scorer.execution)
    pa = run_episodes(episodes, QuarterPerStep())[0].metrics["price_advantage_bps"]
    assert np.isfinite(pa).all() and np.ptp(pa) > 0
    assert scorer(ActionOne()) == pytest.approx(float(pa.mean()), rel=1e-12)


# -------------------------------------------------------------------------------- a tiny sweep


def read_trials(experiment: Path) -> list[dict]:
    with open(experiment / "trials.csv") as f:
        return list(csv.DictReader(f))


def trial_dirs(experiment: Path) -> list[Path]:
    return sorted(p for p in experiment.iterdir() if p.is_dir() and p.name.startswith("trial_trainable"))


def result_lines(trial: Path) -> list[dict]:
    path = trial / "result.json"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def test_tiny_sweep_finishes_with_best_and_trials(ray_session, tmp_path):
    from rlexec.training.sweep import run_sweep

    sweep = SweepSpec.from_yaml(sweep_yaml(tmp_path, num_samples=2))  # two concurrent trials: one round
    summary = run_sweep(sweep, out=tmp_path / "runs", local=True)
    experiment = tmp_path / "runs" / "tune" / "tiny"
    assert summary["experiment"] == str(experiment)
    assert summary["trials"] == 2 and summary["errors"] == 0

    best = json.loads((experiment / "best.json").read_text())
    assert best == json.loads(json.dumps(summary))
    assert set(best["best_params"]) == {"training.lr", "environment.env_config.execution.reward.alpha"}
    assert 1e-5 <= best["best_params"]["training.lr"] <= 1e-3
    assert best["best_params"]["environment.env_config.execution.reward.alpha"] in (50.0, 100.0)
    assert best["best_checkpoint"] and Path(best["best_checkpoint"]).is_dir()

    rows = read_trials(experiment)
    assert len(rows) == 2
    scores = [float(r["validation_price_advantage_bps"]) for r in rows]
    assert best["best_validation_price_advantage_bps"] == pytest.approx(max(scores))
    assert len({float(r["config/training.lr"]) for r in rows}) == 2, "the searcher proposed two learning rates"
    assert all(1 <= int(r["training_iteration"]) <= 2 for r in rows)
    record = json.loads((experiment / "rlexec_run.json").read_text())
    assert record["config"]["sweep"] == sweep.source

    # A trial's checkpoint is an ordinary RLlib checkpoint: the module loads without Ray's help.
    from rlexec.policies.checkpoints import load_module

    module = load_module(best["best_checkpoint"])
    assert type(module).__name__ == "OPDRecurrentModule"
    # The reported score is the fixed objective, measured on the checkpointed weights.
    assert Scorer(sweep.score, sweep.base)(module) == pytest.approx(best["best_validation_price_advantage_bps"],
                                                                   rel=1e-9, abs=1e-9)

    # Running the finished sweep again restores it instead of starting over.
    again = run_sweep(sweep, out=tmp_path / "runs", local=True)
    assert again["trials"] == 2 and again["best_params"] == summary["best_params"]
    assert len(trial_dirs(experiment)) == 2


def start_sweep(path: Path, out: Path, log: Path) -> subprocess.Popen:
    """``rlexec tune PATH --local`` in a session of its own, so that its Ray dies with it."""
    env = {**os.environ, "RAY_DEDUP_LOGS": "0", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "rlexec.cli.main", "tune", str(path), "--local", "--out", str(out)]
    with open(log, "w") as f:
        return subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL the driver and everything of its Ray (the whole process group)."""
    for _ in range(2):  # again after a pause: what the dying Ray started meanwhile
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=30)
        time.sleep(1)


TINY_PPO = {  # a few seconds a trial: PPO on the shipped sample, 64 steps an iteration
    "algorithm": "ppo", "name": "tiny", "seed": 3, "checkpoint_frequency": 1,
    "environment": {"env": "bar", "env_config": {"split": {"preset": "sample"}, "part": "train"}},
    "env_runners": {"num_env_runners": 0, "num_envs_per_env_runner": 2},
    "training": {"train_batch_size_per_learner": 64, "minibatch_size": 32, "num_epochs": 1},
    "rl_module": {"module": "default", "model_config": {"fcnet_hiddens": [8]}},
}


def test_killed_sweep_driver_loses_and_reruns_no_trial(tmp_path):
    """Kill the driver once the first trial has finished and the second has begun; the same command
    again finishes the sweep: the finished trial is not rerun, the other goes on from its checkpoint."""
    base = tmp_path / "tiny_ppo.yaml"
    base.write_text(yaml.safe_dump(TINY_PPO))
    path = sweep_yaml(tmp_path, "killed", base=str(base), overrides=None, score=None, metric="episode_return_mean",
                      param_space={"training.lr": {"choice": [1.0e-4, 1.0e-3]}}, num_samples=2, max_concurrent=1,
                      search={"algorithm": "random", "seed": 0}, scheduler={"type": "fifo"},
                      stop={"training_iterations": 3})
    out = tmp_path / "runs"
    experiment = out / "tune" / "killed"
    first = start_sweep(path, out, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            counts = [len(result_lines(t)) for t in trial_dirs(experiment)] if experiment.is_dir() else []
            if len(counts) == 2 and max(counts) == 3 and min(counts) >= 1:  # one finished, the other begun
                break
            time.sleep(0.2)
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    finally:
        kill_session(first)
    before = {t.name: result_lines(t) for t in trial_dirs(experiment)}
    assert max(map(len, before.values())) == 3, "no trial had finished: " + str(before)
    assert not (experiment / "best.json").exists()

    second = start_sweep(path, out, tmp_path / "second.log")
    assert second.wait(timeout=180) == 0, (tmp_path / "second.log").read_text()[-3000:]
    assert "resuming the interrupted sweep" in (tmp_path / "second.log").read_text()
    after = {t.name: result_lines(t) for t in trial_dirs(experiment)}
    assert set(after) == set(before), "the same trials, none started again under a new name"
    for name, lines in after.items():
        assert [line["training_iteration"] for line in lines] == [1, 2, 3], (name, lines)
        assert lines[: len(before[name])] == before[name], "results before the kill are kept as they were"
    assert len(read_trials(experiment)) == 2 and json.loads((experiment / "best.json").read_text())["trials"] == 2


@pytest.mark.slow
def test_killed_sweep_resumes_where_it_stopped(tmp_path):
    """Kill the sweep driver (its whole process group) after the first trial result; rerun the same command."""
    path = sweep_yaml(tmp_path, "resumable", num_samples=3, max_concurrent=1, stop={"training_iterations": 3},
                      scheduler={"type": "fifo"})
    out = tmp_path / "runs"
    experiment = out / "tune" / "resumable"
    command = [sys.executable, "-m", "rlexec.cli.main", "tune", str(path), "--local", "--out", str(out)]
    env = {**os.environ, "RAY_DEDUP_LOGS": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)

    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and first.poll() is None:
            if experiment.is_dir() and any(result_lines(t) for t in trial_dirs(experiment)):
                break
            time.sleep(0.5)
        assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert any(result_lines(t) for t in trial_dirs(experiment)), "no trial result within the deadline"
    finally:
        try:
            os.killpg(first.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        first.wait(timeout=30)
        log.close()
    time.sleep(2)
    try:  # anything of that Ray instance still in the group (raylet, workers) goes too
        os.killpg(first.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass

    before = {t.name: result_lines(t) for t in trial_dirs(experiment)}
    assert not (experiment / "best.json").exists()
    started = [name for name, lines in before.items() if lines]
    assert started and list(experiment.glob("experiment_state-*.json"))

    second = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resuming the interrupted sweep" in second.stdout

    after = {t.name: result_lines(t) for t in trial_dirs(experiment)}
    assert len(after) == 3 and set(before) <= set(after), "the same trials, none restarted under a new name"
    rows = read_trials(experiment)
    assert len(rows) == 3 and all(int(r["training_iteration"]) == 3 for r in rows)
    for name in started:  # continued from its checkpoint: iterations 1..3, each once
        iterations = [line["training_iteration"] for line in after[name]]
        assert iterations == [1, 2, 3], (name, iterations)
        assert after[name][0] == before[name][0]
    assert json.loads((experiment / "best.json").read_text())["trials"] == 3

"""Train one algorithm from a :class:`~rlexec.training.spec.TrainSpec` into a run folder.

Run folder (``<out>/train/<name>/<UTC time>-<config hash>/``)::

    config.yaml        the spec as run (paths made absolute)
    run.json           config, seed, package versions, git commit, command, host, Ray address
    progress.jsonl     one line of figures per training iteration (appended, never rewritten)
    checkpoints/       iter_NNNNNN/ (RLlib layout) + latest.json
    summary.json       final figures, and what the algorithm's ``after_training`` hook returned

Where Ray runs: ``local=True`` starts a small private Ray and samples in the driver (one process:
breakpoints work); otherwise, with ``RAY_ADDRESS`` set (a cluster, or inside ``ray job submit``),
it attaches to that cluster and the config's ``num_env_runners`` fan out over it; with neither, it
starts a private Ray on this machine's cores.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from rlexec.errors import ConfigError
from rlexec.provenance import new_run_dir, run_record, write_json_atomic
from rlexec.training.checkpoints import latest_checkpoint, restore_algorithm, save_checkpoint
from rlexec.training.spec import TrainSpec, build_algorithm_config

# Figures copied from RLlib's nested result into progress.jsonl (missing ones are skipped). Every
# scalar the algorithm's Learner logs for the default module is copied too (``learner_metrics``), so an
# algorithm's own losses reach the log without this file naming them.
PROGRESS_KEYS = {
    "episode_return_mean": ("env_runners", "episode_return_mean"),
    "episode_len_mean": ("env_runners", "episode_len_mean"),
    "num_episodes": ("env_runners", "num_episodes"),
    "env_steps_sampled": ("env_runners", "num_env_steps_sampled"),
    "env_steps_sampled_lifetime": ("env_runners", "num_env_steps_sampled_lifetime"),
    "env_steps_per_s": ("env_runners", "num_env_steps_sampled_lifetime_throughput"),
    "evaluation_return_mean": ("evaluation", "env_runners", "episode_return_mean"),
    "time_this_iter_s": ("time_this_iter_s",),
    "sample_time_s": ("timers", "env_runner_sampling_timer"),
    "learn_time_s": ("timers", "learner_update_timer"),
    "env_runner_restarts": ("fault_tolerance", "num_remote_worker_restarts"),  # RLlib 2.60 result keys
    "healthy_env_runners": ("fault_tolerance", "num_healthy_workers"),
}


def init_ray(*, local: bool) -> str:
    """Start or attach to Ray; returns a description of where it runs."""
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return "already initialised"
    if local:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        return "local (2 CPUs, sampling in the driver)"
    if os.environ.get("RAY_ADDRESS"):
        ray.init()  # attach; inside a submitted job this is the job's cluster
        return f"cluster at {os.environ['RAY_ADDRESS']}"
    ray.init(address="local", include_dashboard=False)
    return "local (all CPUs)"


def train(
    spec: TrainSpec,
    *,
    out: str | os.PathLike = "runs",
    resume: str | os.PathLike | None = None,
    local: bool = False,
    on_iteration: Callable[[dict[str, Any]], None] | None = None,
) -> Path:
    """Train until ``spec.stop``; returns the run folder. ``resume``: a run folder to continue."""
    where = init_ray(local=local)
    config = build_algorithm_config(spec, local=local)

    if resume is not None:
        run_dir = Path(resume)
        checkpoint = latest_checkpoint(run_dir)
        if not (run_dir / "config.yaml").exists():
            raise ConfigError(f"{run_dir}: not an rlexec run folder (no config.yaml); pass the run folder to --resume")
    else:
        run_dir = new_run_dir(out, f"train/{spec.name}", spec.to_dict())
        (run_dir / "config.yaml").write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
        record = run_record(spec.to_dict(), spec.seed)
        record.update({"ray": where, "source": spec.source})
        write_json_atomic(record, run_dir / "run.json")

    algo = config.build_algo()
    try:
        if resume is not None:
            restore_algorithm(algo, checkpoint)
            _append(run_dir / "progress.jsonl", {"event": "resumed", "checkpoint": checkpoint.name,
                                                  "iteration": algo.iteration, "ray": where})
        started = time.monotonic()
        result: dict[str, Any] = {}
        while not should_stop(spec.stop, algo.iteration, result, time.monotonic() - started):
            result = algo.train()
            line = progress_line(result, algo.iteration)
            _append(run_dir / "progress.jsonl", line)
            if on_iteration is not None:
                on_iteration(line)
            if spec.checkpoint_frequency and algo.iteration % spec.checkpoint_frequency == 0:
                save_checkpoint(algo, run_dir, algo.iteration, spec.keep_checkpoints)
        final = save_checkpoint(algo, run_dir, algo.iteration, spec.keep_checkpoints)
        summary = {"iterations": algo.iteration, "checkpoint": str(final), "last": progress_line(result, algo.iteration)}
        hook = spec.algorithm_entry().load_after_training()
        if hook is not None:
            summary["after_training"] = hook(algo, run_dir)
        write_json_atomic(summary, run_dir / "summary.json")
    finally:
        algo.stop()
    return run_dir


def latest_run(out: str | os.PathLike, name: str) -> Path:
    root = Path(out) / "train" / name
    runs = sorted(p for p in root.glob("*") if (p / "config.yaml").exists()) if root.is_dir() else []
    if not runs:
        raise ConfigError(f"--resume: no earlier run of {name!r} under {root}")
    return runs[-1]


def progress_line(result: dict[str, Any], iteration: int) -> dict[str, Any]:
    line: dict[str, Any] = {"iteration": iteration}
    for name, path in PROGRESS_KEYS.items():
        node: Any = result
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if _is_figure(node):
            line[name] = float(node)
    line.update(learner_metrics(result))
    return line


def learner_metrics(result: dict[str, Any], module_id: str = "default_policy") -> dict[str, float]:
    """The scalars the Learner logged for ``module_id`` (losses, entropy, alpha, ...), by their own names."""
    logged = ((result.get("learners") or {}).get(module_id) or {}) if result else {}
    return {key: float(value) for key, value in logged.items()
            if isinstance(key, str) and key not in PROGRESS_KEYS and _is_figure(value)}


def _is_figure(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def should_stop(stop: dict[str, float], iteration: int, result: dict[str, Any], elapsed: float) -> bool:
    if "training_iterations" in stop and iteration >= stop["training_iterations"]:
        return True
    steps = (result.get("env_runners") or {}).get("num_env_steps_sampled_lifetime", 0) if result else 0
    if "env_steps" in stop and steps >= stop["env_steps"]:
        return True
    return "time_s" in stop and elapsed >= stop["time_s"]


def _append(path: Path, line: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")

"""Train one algorithm from a :class:`~rlexec.training.spec.TrainSpec` into a run folder.

Run folder (``<out>/train/<name>/<UTC time>-<config hash>/``)::

    config.yaml        the spec as run (paths made absolute)
    config.resumed_N.yaml  the spec a ``--resume`` at iteration N went on with, where it differs
    run.json           config, seed, package versions, git commit, command, host, Ray address
    progress.jsonl     one line of figures per training iteration (appended, never rewritten)
    tb/                TensorBoard event files of the same figures (rlexec.training.tensorboard)
    checkpoints/       iter_NNNNNN/ (RLlib layout) + latest.json
    summary.json       final figures, and what the algorithm's ``after_training`` hook returned

Where Ray runs: ``local=True`` starts a small private Ray and samples in the driver (one process:
breakpoints work); otherwise, with ``RAY_ADDRESS`` set (a cluster, or inside ``ray job submit``),
it attaches to that cluster and the config's ``num_env_runners`` fan out over it; with neither, it
starts a private Ray on this machine's cores.

Random streams, and what ``--resume`` restores. RLlib seeds each EnvRunner (its envs' first reset,
and the process's torch / numpy / ``random``, which sample the actions) and each Learner (minibatch
shuffles) from ``seed`` once, when they are built: a restored algorithm sampled iteration 3 exactly
like iteration 1. So before every iteration :func:`seed_iteration` re-derives the streams from
``(seed, iteration)``: each training EnvRunner's process RNGs, each sub-env's ``np_random`` and each
Learner's process RNGs; and if no episode is part-way (every env finished its episode when the last
iteration ended) every env starts a fresh episode from its new stream. After a restore,
:func:`complete_restore` adds what RLlib's checkpoint restore leaves out (the weights of remote
EnvRunners, PPO's adaptive KL coefficient). The checkpoint itself holds the weights, optimizer
state, connector states, iteration, step counters and metrics windows.

So when each env's share of an iteration is a whole number of episodes, iteration k depends only
on ``(seed, k)`` and the checkpoint, and 2 iterations + resume + 2 sample and learn exactly like 4
in a row. PPO's share is its rollout fragment, ``train_batch_size_per_learner /
(num_envs_per_env_runner * max(1, num_env_runners))``: 16 episodes of 8 steps in every bar-env
config. What differs, and why:

* Episodes part-way when a checkpoint is taken are lost on resume (RLlib cannot checkpoint an env
  mid-episode): the resumed run starts fresh episodes where the unbroken run continued them, and
  from there its envs' streams differ. The LOB Q-learning configs are such a case: RLlib's default
  200-step fragments until the 1,560-step batch is full are 800 steps per runner against a
  780-step episode (``env_runners.rollout_fragment_length: 780`` would align them). Episodes are
  never cut while training runs on.
* Whatever an env fixes at its first, seeded reset (the bar env's order pool) stays a function of
  RLlib's build-time seed, the same in a fresh and a resumed run. Randomness an env keeps outside
  gymnasium's ``np_random`` is not re-derived (the LOB env seeds each episode's simulator from it).
* Evaluation EnvRunners reset their envs with their fixed build-time seed before every evaluation,
  so every evaluation sees the same episodes (RLlib does so itself for ``evaluation_duration_unit:
  episodes``). Their process RNGs are not re-derived: remote evaluation runners with ``explore:
  true`` do not sample their actions reproducibly across a resume.
* A sub-env or EnvRunner restarted after a failure draws fresh streams until the next iteration.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rlexec.errors import ConfigError
from rlexec.provenance import new_run_dir, run_record, write_atomic, write_json_atomic
from rlexec.training.checkpoints import latest_checkpoint, restore_algorithm, save_checkpoint
from rlexec.training.progress import IterationClock, TrainingMonitor
from rlexec.training.spec import TrainSpec, build_algorithm_config
from rlexec.training.tensorboard import ScalarWriter
from rlexec.training.validation import ValidationSpec, Validator

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
    "time_this_iter_s": ("time_this_iter_s",),  # RLlib's step() wall-clock; the parts: rlexec.training.progress
    "env_runner_restarts": ("fault_tolerance", "num_remote_worker_restarts"),  # RLlib 2.60 result keys
    "healthy_env_runners": ("fault_tolerance", "num_healthy_workers"),
}


CONFIG = "config.yaml"
_RESUMED_CONFIG = re.compile(r"config\.resumed_(\d+)\.yaml")
# Settings that say how long a run goes on, how it keeps checkpoints and what it measures on the side
# (validation draws on no training stream), not what an iteration computes: a resume may change them
# (training longer is what --resume is for).
RUN_LENGTH_KEYS = ("stop", "checkpoint_frequency", "keep_checkpoints", "validation")


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
    force_config: bool = False,
    monitor: TrainingMonitor | None = None,
) -> Path:
    """Train until ``spec.stop``; returns the run folder.

    ``resume``: a run folder to continue. ``spec`` must then match the config the run last trained
    with (:func:`recorded_config`) except in :data:`RUN_LENGTH_KEYS`, unless ``force_config``; a
    ``spec`` that differs at all is recorded as ``config.resumed_<iteration>.yaml``.
    ``monitor`` hears the steps before the first iteration, the run folder and every progress line.
    """
    monitor = monitor or TrainingMonitor()
    if resume is not None:
        run_dir = Path(resume)
        changed = changed_settings(spec, recorded_config(run_dir), force=force_config)
        checkpoint = latest_checkpoint(run_dir)
    # before Ray starts and any folder is made: a split without validation days fails here
    validator = Validator(ValidationSpec.from_dict(spec.validation), spec) if spec.validation else None
    monitor.status("starting Ray")
    where = init_ray(local=local)
    config = build_algorithm_config(spec, local=local)
    if resume is None:
        run_dir = new_run_dir(out, f"train/{spec.name}", spec.to_dict())
        write_atomic(run_dir / CONFIG, lambda tmp: tmp.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False)))
        record = run_record(spec.to_dict(), spec.seed)
        record.update({"ray": where, "source": spec.source})
        write_json_atomic(record, run_dir / "run.json")

    monitor.started(run_dir, config)
    monitor.status(f"Ray: {where}; building the algorithm")
    algo = config.build_algo()
    placement = env_runner_placement(algo)
    if resume is None:  # where sampling runs: on a cluster, which nodes the env runners landed on
        write_json_atomic({**record, "env_runners": placement}, run_dir / "run.json")
    board = ScalarWriter(run_dir / "tb")
    try:
        saved = None  # the newest checkpoint of this run, and its iteration
        if resume is not None:
            saved = restore_algorithm(algo, checkpoint), algo.iteration
            complete_restore(algo)
            event = {"event": "resumed", "checkpoint": checkpoint.name, "iteration": algo.iteration, "ray": where,
                     "env_runners": placement}
            if changed:
                resumed_config = run_dir / f"config.resumed_{algo.iteration:06d}.yaml"
                text = yaml.safe_dump(spec.to_dict(), sort_keys=False)
                write_atomic(resumed_config, lambda tmp: tmp.write_text(text))
                event.update({"config": resumed_config.name, "changed": changed})
            _append(run_dir / "progress.jsonl", event)
        started = time.monotonic()
        clock = IterationClock(algo)
        result: dict[str, Any] = {}
        while not should_stop(spec.stop, algo.iteration, result, time.monotonic() - started):
            result = train_iteration(algo, spec.seed, clock)
            with clock.part("checkpoint"):  # before the line, which reports its time
                if spec.checkpoint_frequency and algo.iteration % spec.checkpoint_frequency == 0:
                    saved = save_checkpoint(algo, run_dir, algo.iteration, spec.keep_checkpoints), algo.iteration
            if validator is not None and validator.due(algo.iteration):
                with clock.part("validation"):
                    figures = validator(algo)
            else:
                figures = {}
            line = {**progress_line(result, algo.iteration), **figures, **clock.lap()}
            _append(run_dir / "progress.jsonl", line)
            board.write_progress(line)
            monitor.iteration(line)
            if on_iteration is not None:
                on_iteration(line)
        if saved is None or saved[1] != algo.iteration:  # never save one iteration twice
            saved = save_checkpoint(algo, run_dir, algo.iteration, spec.keep_checkpoints), algo.iteration
        summary = {"iterations": algo.iteration, "checkpoint": str(saved[0]),
                   "last": progress_line(result, algo.iteration)}
        hook = spec.algorithm_entry().load_after_training()
        if hook is not None:
            summary["after_training"] = hook(algo, run_dir)
        write_json_atomic(summary, run_dir / "summary.json")
    finally:
        board.close()
        algo.stop()
    return run_dir


def env_runner_placement(algo) -> list[dict[str, Any]]:
    """Node and process of each remote env runner (empty when sampling runs in the driver)."""
    group = getattr(algo, "env_runner_group", None)
    if group is None or group.num_remote_env_runners() == 0:
        return []

    def where(_runner) -> dict[str, Any]:
        import ray

        context = ray.get_runtime_context()
        return {"node_id": context.get_node_id(), "node_ip": ray.util.get_node_ip_address(), "pid": os.getpid()}

    return group.foreach_env_runner(where, local_env_runner=False)


def recorded_config(run_dir: str | os.PathLike) -> Path:
    """The config a run last trained with: its newest ``config.resumed_<iteration>.yaml``, else ``config.yaml``."""
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise ConfigError(f"{run_dir}: not an rlexec run folder (no {CONFIG}); pass the run folder to --resume")
    resumed = sorted((int(match[1]), path) for path in run_dir.iterdir()
                     if (match := _RESUMED_CONFIG.fullmatch(path.name)))
    return resumed[-1][1] if resumed else run_dir / CONFIG


def changed_settings(spec: TrainSpec, recorded: Path, *, force: bool = False) -> list[str]:
    """Dotted keys in which ``spec`` differs from the ``recorded`` config of the run it resumes.

    A change outside :data:`RUN_LENGTH_KEYS` would train the rest of the run on other settings than
    its start: refused unless ``force``.
    """
    changed = _changed_keys(TrainSpec.from_yaml(recorded).to_dict(), spec.to_dict())
    refused = [key for key in changed if key.split(".")[0] not in RUN_LENGTH_KEYS]
    if refused and not force:
        raise ConfigError(
            f"{spec.source}: differs from the config the run trained with ({recorded}) in {', '.join(refused)}; "
            f"resume with the run's own config (`rlexec train --resume {recorded.parent}`), or pass --force-config "
            "to train on with the new settings (recorded as config.resumed_<iteration>.yaml)")
    return changed


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        return [changed for key in sorted(set(old) | set(new), key=str)
                for changed in _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [prefix.rstrip(".")]


def complete_restore(algo) -> None:
    """What RLlib 2.60's ``restore_from_path`` leaves out; call it right after restoring.

    * The restored weights reach remote EnvRunners through fire-and-forget calls, of which RLlib
      drops any beyond two in flight per runner: the weight sync, coming last, was dropped, and
      the first iteration after a resume sampled with freshly initialised weights. Here every
      EnvRunner gets the Learner's weights, and the call waits until it has them.
    * PPO's adaptive KL coefficient (PPO, OPD) is Learner state the checkpoint does not hold; it
      restarted at ``kl_coeff``. Its last value is in the restored metrics (``curr_kl_coeff``).
    """
    import ray
    from ray.rllib.algorithms.ppo.ppo import LEARNER_RESULTS_CURR_KL_COEFF_KEY
    from ray.rllib.core import COMPONENT_LEARNER, COMPONENT_RL_MODULE
    from ray.rllib.utils.metrics import LEARNER_RESULTS

    state = algo.learner_group.get_state(components=f"{COMPONENT_LEARNER}/{COMPONENT_RL_MODULE}",
                                         inference_only=True)[COMPONENT_LEARNER]
    # No WEIGHTS_SEQ_NO in the state: the EnvRunner takes it whatever weights it holds.
    if algo.env_runner_group is not None:  # None: an offline algorithm (MoE-DPO) samples no env
        state_ref = ray.put(state)
        algo.env_runner_group.foreach_env_runner(lambda env_runner: env_runner.set_state(ray.get(state_ref)))

    # The value the last iteration reported (the reduced window holds NaN until the next update).
    learner_results = algo.metrics.peek(LEARNER_RESULTS, default={}, latest_merged_only=True) or {}
    kl_coeffs = {module_id: float(figures[LEARNER_RESULTS_CURR_KL_COEFF_KEY])
                 for module_id, figures in learner_results.items()
                 if isinstance(figures, dict) and math.isfinite(figures.get(LEARNER_RESULTS_CURR_KL_COEFF_KEY, math.nan))}
    if kl_coeffs:
        algo.learner_group.foreach_learner(partial(_set_kl_coeffs, kl_coeffs=kl_coeffs))


def _set_kl_coeffs(learner, *, kl_coeffs: dict[str, float]) -> None:
    for module_id, value in kl_coeffs.items():
        learner.curr_kl_coeffs_per_module[module_id].data.fill_(value)


# Spawn keys that keep the derived streams apart (numpy SeedSequence: distinct keys, independent streams).
_ENV_STREAM, _ACTION_STREAM, _LEARNER_STREAM = 0, 1, 2


def train_iteration(algo, seed: int, clock: IterationClock) -> dict[str, Any]:
    """One ``algo.train()`` on the iteration's own sampling stream (:func:`seed_iteration`), timed by
    ``clock``: what ``rlexec train`` and every sweep trial do each iteration, so both sample alike."""
    with clock.part("reseed"):
        seed_iteration(algo, seed, algo.iteration + 1)
    with clock.part("train"):
        return algo.train()


def seed_iteration(algo, seed: int, iteration: int) -> None:
    """Re-derive every sampling stream of training iteration ``iteration`` from ``(seed, iteration)``.

    Call it before each ``algo.train()``; see the module docstring for what it covers. Learners go
    first, so that with the Learner and the EnvRunner in one process (``num_env_runners: 0``) the
    actions are sampled from the EnvRunner's stream and the minibatches shuffled from what follows it.
    """
    algo.learner_group.foreach_learner(partial(_seed_learner, seed=seed, iteration=iteration))
    if algo.env_runner_group is not None:  # None: an offline algorithm (MoE-DPO) samples no env
        algo.env_runner_group.foreach_env_runner(partial(_seed_env_runner, seed=seed, iteration=iteration))
    if algo.eval_env_runner_group is not None:
        algo.eval_env_runner_group.foreach_env_runner(_restart_evaluation_episodes)


def _derived_seed(seed: int, *key: int) -> int:
    # 31 bits: a valid seed for np.random.seed, torch and random alike.
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0] >> 1)


def _seed_process(config, seed: int) -> None:
    from ray.rllib.utils.debug import update_global_seed_if_necessary

    update_global_seed_if_necessary(config.framework_str, seed)


def _seed_learner(learner, *, seed: int, iteration: int) -> None:
    _seed_process(learner.config, _derived_seed(seed, _LEARNER_STREAM, iteration))


def _seed_env_runner(env_runner, *, seed: int, iteration: int) -> None:
    """Every sub-env's ``np_random`` keyed by (iteration, runner, sub-env); fresh episodes if none is cut."""
    index = env_runner.worker_index or 0
    _seed_process(env_runner.config, _derived_seed(seed, _ACTION_STREAM, iteration, index))
    env = getattr(env_runner, "env", None)
    if env is None:  # the driver's EnvRunner when remote ones sample: it holds no env
        return
    # RLlib's build-time seed has not reached the envs yet (a new or restarted EnvRunner): let it
    # fix what an env derives once from its seed (the bar env's order pool), as in an unbroken run.
    # ``_seed`` (RLlib 2.60) goes to the next reset that ``_needs_initial_reset`` forces; None from
    # here on, so that such a reset keeps the np_random streams set below.
    if env_runner._seed is not None:
        env.reset(seed=env_runner._seed)
        env_runner._seed = None
    vector = env.unwrapped
    vector.set_attr("np_random", [
        np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_ENV_STREAM, iteration, index, k)))
        for k in range(vector.num_envs)
    ])
    # Start every env afresh unless that would cut an episode that has taken steps: the next episodes
    # then come from the streams above, as they do after a resume.
    if not any(episode is not None and episode.t > 0 for episode in env_runner._ongoing_episodes):
        env_runner._needs_initial_reset = True


def _restart_evaluation_episodes(env_runner) -> None:
    # The next evaluation resets every env with the runner's fixed seed: the same episodes each time.
    # RLlib resets them before each evaluation anyway (evaluation_force_reset_envs_before_iteration).
    env_runner._needs_initial_reset = True


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

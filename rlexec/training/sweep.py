"""Ray Tune sweeps over a training config: searcher and scheduler from a YAML file, resumable.

Sweep YAML (``tune_configs/*.yaml``)::

    name: opds_lr_alpha
    base: ../configs/opds.yaml           # a training config, relative to this file
    overrides: {env_runners.num_env_runners: 0}    # dotted keys applied to the base for every trial
    param_space:                          # dotted keys of the training config -> a Tune domain
      training.lr: {loguniform: [1.0e-5, 1.0e-3]}
      environment.env_config.execution.reward.alpha: {choice: [25.0, 50.0, 100.0, 200.0]}
    metric: episode_return_mean           # a key of progress.jsonl lines (rlexec.training.runner)
    mode: max
    num_samples: 8
    max_concurrent: 2
    search: {algorithm: optuna, sampler: tpe, seed: 0}    # optuna (tpe | gp | random) or random
    scheduler: {type: asha, grace_period: 2, reduction_factor: 2}   # asha | median | fifo
    stop: {training_iterations: 10}
    checkpoint_frequency: 2

Each trial builds its config through the same :func:`~rlexec.training.spec.build_algorithm_config`
as ``rlexec train`` and reports the same figures. Trials checkpoint through Tune, so a sweep whose
driver was killed resumes (``Tuner.restore``) when the same command runs again: finished trials
are kept, unfinished ones continue from their last checkpoint.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlexec.configs import read_yaml_mapping
from rlexec.errors import ConfigError
from rlexec.training.spec import TrainSpec

DOMAINS = ("choice", "uniform", "loguniform", "randint", "quniform")
SEARCHERS = ("optuna", "random")
SCHEDULERS = ("asha", "median", "fifo")
SWEEP_KEYS = ("name", "base", "overrides", "param_space", "metric", "mode", "num_samples", "max_concurrent",
              "search", "scheduler", "stop", "checkpoint_frequency")


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    name: str
    base: TrainSpec
    param_space: dict[str, dict[str, Any]]
    metric: str = "episode_return_mean"
    mode: str = "max"
    num_samples: int = 4
    max_concurrent: int = 2
    search: dict[str, Any] = field(default_factory=lambda: {"algorithm": "optuna", "sampler": "tpe", "seed": 0})
    scheduler: dict[str, Any] = field(default_factory=lambda: {"type": "asha"})
    checkpoint_frequency: int = 2
    source: str = "<dict>"

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> "SweepSpec":
        data = read_yaml_mapping(path)
        source = str(path)
        unknown = set(data) - set(SWEEP_KEYS)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)}; known: {list(SWEEP_KEYS)}")
        if not data.get("base"):
            raise ConfigError(f"{source}: 'base' (a training config) is required")
        base = TrainSpec.from_yaml(Path(path).parent / data["base"])
        overrides = dict(data.get("overrides") or {})
        if data.get("stop"):
            overrides["stop"] = data["stop"]
        base = base.with_overrides(overrides)
        space = data.get("param_space") or {}
        if not isinstance(space, dict) or not space:
            raise ConfigError(f"{source}: param_space must map dotted config keys to a domain")
        for key, domain in space.items():
            if not (isinstance(domain, dict) and len(domain) == 1 and next(iter(domain)) in DOMAINS):
                raise ConfigError(f"{source}: param_space.{key} must be one of {{{', '.join(DOMAINS)}: ...}}, got {domain!r}")
        base.with_overrides({k: _example(v) for k, v in space.items()})  # every key must make a valid config
        search = {"algorithm": "optuna", "sampler": "tpe", "seed": 0, **(data.get("search") or {})}
        scheduler = {"type": "asha", **(data.get("scheduler") or {})}
        if search["algorithm"] not in SEARCHERS:
            raise ConfigError(f"{source}: search.algorithm must be one of {SEARCHERS}")
        if scheduler["type"] not in SCHEDULERS:
            raise ConfigError(f"{source}: scheduler.type must be one of {SCHEDULERS}")
        mode = data.get("mode", "max")
        if mode not in ("max", "min"):
            raise ConfigError(f"{source}: mode must be 'max' or 'min'")
        return cls(
            name=str(data.get("name") or Path(path).stem), base=base, param_space=space,
            metric=str(data.get("metric", "episode_return_mean")), mode=mode,
            num_samples=int(data.get("num_samples", 4)), max_concurrent=int(data.get("max_concurrent", 2)),
            search=search, scheduler=scheduler, checkpoint_frequency=int(data.get("checkpoint_frequency", 2)),
            source=source,
        )


def tune_domain(spec: dict[str, Any]):
    from ray import tune

    (kind, args), = spec.items()
    if kind == "choice":
        return tune.choice(list(args))
    return getattr(tune, kind)(*args)


def trial_trainable(trial_params: dict[str, Any], *, base: TrainSpec, checkpoint_every: int) -> None:
    """One trial: the base training spec with the sampled overrides, trained and reported to Tune."""
    import ray.tune
    from ray.tune import Checkpoint

    from rlexec.training.runner import progress_line, should_stop
    from rlexec.training.spec import build_algorithm_config

    spec = base.with_overrides(dict(trial_params))
    every = checkpoint_every
    algo = build_algorithm_config(spec).build_algo()
    try:
        checkpoint = ray.tune.get_checkpoint()
        if checkpoint is not None:
            with checkpoint.as_directory() as folder:
                algo.restore_from_path(folder)
        result: dict[str, Any] = {}
        started = time.monotonic()
        while not should_stop(spec.stop, algo.iteration, result, time.monotonic() - started):
            result = algo.train()
            line = progress_line(result, algo.iteration)
            if every and (algo.iteration % every == 0
                          or should_stop(spec.stop, algo.iteration, result, time.monotonic() - started)):
                with tempfile.TemporaryDirectory() as folder:
                    algo.save_to_path(folder)
                    ray.tune.report(line, checkpoint=Checkpoint.from_directory(folder))
            else:
                ray.tune.report(line)
    finally:
        algo.stop()


def run_sweep(sweep: SweepSpec, *, out: str | os.PathLike = "runs", local: bool = False, restart: bool = False,
              console=None):
    """Run (or resume) the sweep; returns a summary dict of the best trial."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule
    from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter

    from rlexec.provenance import run_record, write_json_atomic
    from rlexec.training.runner import init_ray

    init_ray(local=local)
    storage = Path(out).resolve() / "tune"
    experiment = storage / sweep.name
    trainable = tune.with_resources(
        tune.with_parameters(trial_trainable, base=sweep.base, checkpoint_every=sweep.checkpoint_frequency),
        _trial_resources(sweep.base),
    )
    if experiment.exists() and restart:
        import shutil

        shutil.rmtree(experiment)
    if tune.Tuner.can_restore(str(experiment)):
        if console is not None:
            console.print(f"resuming the interrupted sweep in {experiment}")
        tuner = tune.Tuner.restore(str(experiment), trainable=trainable, resume_unfinished=True, resume_errored=True)
    else:
        iterations = int(sweep.base.stop.get("training_iterations", 100))
        if sweep.scheduler["type"] == "asha":
            options = {k: v for k, v in sweep.scheduler.items() if k != "type"}
            scheduler = ASHAScheduler(time_attr="training_iteration", max_t=options.pop("max_t", iterations), **options)
        elif sweep.scheduler["type"] == "median":
            options = {k: v for k, v in sweep.scheduler.items() if k != "type"}
            scheduler = MedianStoppingRule(time_attr="training_iteration", **options)
        else:
            scheduler = FIFOScheduler()
        if sweep.search["algorithm"] == "optuna":
            searcher = ConcurrencyLimiter(_optuna_searcher(sweep), max_concurrent=sweep.max_concurrent)
        else:
            searcher = BasicVariantGenerator(random_state=sweep.search.get("seed", 0),
                                             max_concurrent=sweep.max_concurrent)
        param_space = {k: tune_domain(v) for k, v in sweep.param_space.items()}
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(metric=sweep.metric, mode=sweep.mode, num_samples=sweep.num_samples,
                                        search_alg=searcher, scheduler=scheduler),
            run_config=tune.RunConfig(name=sweep.name, storage_path=str(storage), verbose=1,
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=2)),
        )
        experiment.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_record({"sweep": sweep.source, "base": sweep.base.to_dict(),
                                      "param_space": sweep.param_space, "search": sweep.search,
                                      "scheduler": sweep.scheduler}, sweep.base.seed), experiment / "rlexec_run.json")
    results = tuner.fit()
    best = results.get_best_result(metric=sweep.metric, mode=sweep.mode)
    table = results.get_dataframe()
    table.to_csv(experiment / "trials.csv", index=False)
    summary = {
        "experiment": str(experiment),
        "trials": len(results),
        "errors": len(results.errors),
        "best_params": dict(best.config),
        "best_" + sweep.metric: best.metrics.get(sweep.metric),
        "best_checkpoint": str(best.checkpoint.path) if best.checkpoint else None,
    }
    write_json_atomic(summary, experiment / "best.json")
    return summary


def _trial_resources(base: TrainSpec):
    from ray import tune

    runners = int((base.sections.get("env_runners") or {}).get("num_env_runners", 2))
    return tune.PlacementGroupFactory([{"CPU": 1}] + [{"CPU": 1}] * runners)


def _optuna_searcher(sweep: SweepSpec):
    try:
        import optuna
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise ConfigError("search.algorithm optuna needs the optuna package (pip install optuna)") from None
    seed = sweep.search.get("seed", 0)
    samplers = {"tpe": optuna.samplers.TPESampler, "gp": optuna.samplers.GPSampler,
                "random": optuna.samplers.RandomSampler}
    name = sweep.search.get("sampler", "tpe")
    if name not in samplers:
        raise ConfigError(f"{sweep.source}: search.sampler must be one of {sorted(samplers)}")
    return OptunaSearch(sampler=samplers[name](seed=seed), seed=seed)


def _example(domain: dict[str, Any]):
    """A value the domain can produce (its first argument), to check the key makes a valid config."""
    (args,) = domain.values()
    return args[0]
